"""The HTML report in real headless Chromium: charts drawn, figures in the tables, nothing fetched."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers.history import (
    EXPECTED_SECOND,
    FIRST,
    HEALTH_AT_FIRST,
    HEALTH_AT_SECOND,
    SECOND,
    History,
)
from helpers.project import BASE_URL, ROOT
from playwright.sync_api import Browser, Page, Request

from mailer.config import load_newsletter
from mailer.report.build import issue_report, list_report
from mailer.report.html import issue_page, list_page
from mailer.store import open_store

# The page is the same whichever database the figures came from: SQLite's story will do.
pytestmark = [pytest.mark.browser, pytest.mark.parametrize("history", ["sqlite"], indirect=True)]
NEWSLETTER = load_newsletter(ROOT / "mailer.toml")


@dataclass
class Opened:
    """A page and everything it tried to do on its own."""

    page: Page
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def open_page(browser: Browser, html: str, width: int) -> Opened:
    page = browser.new_page(viewport={"width": width, "height": 900})
    opened = Opened(page)

    def refuse(request: Request) -> None:
        opened.requests.append(request.url)

    page.on("request", refuse)
    page.on("console", lambda message: opened.console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.route("**/*", lambda route: route.abort())
    page.set_content(html, wait_until="load")
    return opened


@pytest.fixture(scope="module")
def pages(history: History) -> dict[str, str]:
    with open_store(history.url) as store:
        report = issue_report(store.engine, SECOND, NEWSLETTER, base_url=BASE_URL)
        listed = list_report(store.engine)
    return {"issue": issue_page(report, NEWSLETTER), "list": list_page(listed, NEWSLETTER)}


@pytest.fixture(scope="module")
def opened_issue(browser: Browser, pages: dict[str, str]) -> Iterator[Opened]:
    opened = open_page(browser, pages["issue"], 1000)
    yield opened
    opened.page.close()


SHOTS = os.environ.get("TEST_SCREENSHOTS")  # a folder to keep the pages' screenshots in


def screenshot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def chart_boxes(page: Page) -> dict[str, tuple[float, float]]:
    """Each chart's id and its (width, height) as laid out."""
    boxes: dict[str, tuple[float, float]] = {}
    for chart in page.locator("svg.chart").all():
        box = chart.bounding_box()
        assert box is not None
        boxes[chart.get_attribute("id") or ""] = (box["width"], box["height"])
    return boxes


class TestTheIssuePage:
    def test_both_charts_are_drawn(self, opened_issue: Opened) -> None:
        """The funnel and the list health chart take up room, and their bars and lines do too."""
        boxes = chart_boxes(opened_issue.page)
        assert ["funnel", "health"] == sorted(boxes)
        for width, height in boxes.values():
            assert width > 300 and height > 150
        for chart in ("funnel", "health"):
            drawn = opened_issue.page.locator(f"#{chart} g[id^='{chart}-patch_'] path").all()
            assert drawn, chart
            sizes = [box for path in drawn[:20] if (box := path.bounding_box())]
            assert any(box["width"] > 10 and box["height"] > 5 for box in sizes), chart

    def test_nothing_is_fetched_and_nothing_complains(self, opened_issue: Opened) -> None:
        """No request at all (not a font, not an image), no console message, no script error."""
        assert [] == opened_issue.requests
        assert [] == opened_issue.console
        assert [] == opened_issue.errors

    def test_charts_are_named_for_screen_readers(self, opened_issue: Opened) -> None:
        """role=img, labelled by the chart's own title and description."""
        funnel = opened_issue.page.locator("svg#funnel")
        assert "img" == funnel.get_attribute("role")
        assert "funnel-title funnel-desc" == funnel.get_attribute("aria-labelledby")
        assert (
            "Delivery funnel per segment"
            == opened_issue.page.locator("#funnel-title").text_content()
        )
        described = opened_issue.page.locator("#funnel-desc").text_content() or ""
        assert "All members: sent 8, delivered 8, opened 2, clicked 1" in described

    def test_the_tables_beside_the_charts_hold_the_figures(self, opened_issue: Opened) -> None:
        """Every count of the Delivery and Response tables, as the page shows them."""
        page = opened_issue.page
        for name, expected in EXPECTED_SECOND.items():
            for table, measures in (
                ("delivery", ("sent", "delivered", "bounced", "dropped", "not_sent")),
                (
                    "response",
                    (
                        "delivered",
                        "opened",
                        "clicked",
                        "complained",
                        "unsubscribed",
                        "opens",
                        "clicks",
                    ),
                ),
            ):
                row = page.locator(f"#{table} tr[data-segment='{name}']")
                shown = {
                    measure: (row.locator(f"td[data-measure='{measure}']").inner_text()).split()[0]
                    for measure in measures
                }
                assert {measure: str(expected[measure]) for measure in measures} == shown

    def test_rates_sit_under_their_counts(self, opened_issue: Opened) -> None:
        cell = opened_issue.page.locator(
            "#response tr[data-segment='all'] td[data-measure='opened']"
        )
        assert ["2", "25.0%"] == cell.inner_text().split()

    def test_the_list_health_table(self, opened_issue: Opened) -> None:
        rows = opened_issue.page.locator("#health-table tbody tr").all()
        cells = [row.locator("td").all_inner_texts() for row in rows]
        assert [
            [*cells[0][:2], *(str(n) for n in HEALTH_AT_FIRST)],
            [*cells[1][:2], *(str(n) for n in HEALTH_AT_SECOND)],
        ] == cells
        assert ["10", "8"] == [row[1] for row in cells]
        assert [FIRST, SECOND] == [row.locator("th").inner_text() for row in rows]

    def test_on_a_phone_the_page_does_not_scroll_sideways(
        self, browser: Browser, pages: dict[str, str]
    ) -> None:
        """Charts shrink to the screen; wide tables scroll inside their own box."""
        opened = open_page(browser, pages["issue"], 375)
        try:
            assert opened.page.evaluate("document.scrollingElement.scrollWidth") <= 375
            assert all(width <= 375 for width, _ in chart_boxes(opened.page).values())
        finally:
            opened.page.close()

    def test_on_a_phone_no_text_is_cut_off(self, browser: Browser, pages: dict[str, str]) -> None:
        """Captions stay within their box; headings never break mid-word; tables scroll inside."""
        opened = open_page(browser, pages["issue"], 375)
        page = opened.page
        try:
            screenshot(page, "report-375")
            for box in page.locator("div.scroll").all():
                outer = box.bounding_box()
                caption = box.locator("caption").bounding_box()
                assert outer is not None and caption is not None
                assert caption["x"] + caption["width"] <= outer["x"] + outer["width"] + 1
            delivery = page.locator("div.scroll:has(#delivery)")
            assert delivery.evaluate("e => e.scrollWidth > e.clientWidth")  # it scrolls, inside
            for heading in page.locator("thead th").all():  # one line each: no "Deliver|ed"
                assert heading.evaluate(
                    "e => e.getClientRects().length === 1 && e.offsetHeight < 40"
                )
        finally:
            page.close()

    def test_charts_use_the_pages_font(self, opened_issue: Opened) -> None:
        page = opened_issue.page
        body = page.evaluate("getComputedStyle(document.body).fontFamily")
        fonts = page.locator("svg.chart text").evaluate_all(
            "texts => [...new Set(texts.map(t => getComputedStyle(t).fontFamily))]"
        )
        assert [body] == fonts


class TestTheListPage:
    def test_its_chart_is_drawn_with_nothing_fetched(
        self, browser: Browser, pages: dict[str, str]
    ) -> None:
        opened = open_page(browser, pages["list"], 1000)
        try:
            boxes = chart_boxes(opened.page)
            assert ["health"] == list(boxes)
            assert all(width > 300 and height > 150 for width, height in boxes.values())
            rows = opened.page.locator("#health-table tbody tr th").all_inner_texts()
            assert [FIRST, SECOND, "Now"] == rows
            assert ([], [], []) == (opened.requests, opened.console, opened.errors)
        finally:
            opened.page.close()


@pytest.mark.parametrize("name", ["issue", "list"])
def test_axe_finds_nothing_on_a_phone(browser: Browser, pages: dict[str, str], name: str) -> None:
    """axe-core's WCAG A and AA rules at 375 px (its script let in past the page's CSP)."""
    from axe_playwright_python.sync_playwright import Axe

    context = browser.new_context(viewport={"width": 375, "height": 900}, bypass_csp=True)
    try:
        page = context.new_page()
        page.route("**/*", lambda route: route.abort())
        page.set_content(pages[name], wait_until="load")
        violations = Axe().run(page).response["violations"]
        assert [] == [(v["id"], v["help"], len(v["nodes"])) for v in violations]
    finally:
        context.close()
