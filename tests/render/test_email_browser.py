"""The rendered email in a real browser: Debian's headless Chromium, at phone and desktop widths.

Remote images are answered with a generated PNG, and every other request is
refused, so the tests need no network and see the layout members will see.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import Literal

import pytest
from helpers.project import BASE_URL
from playwright.sync_api import Browser, Page, Route

from mailer.config import Newsletter
from mailer.issues.model import Issue
from mailer.render import render_issue
from mailer.render.preview import sample_member

pytestmark = pytest.mark.browser

WIDTHS = (320, 375, 600)
KEYS = {
    "general": frozenset(),
    "youth": frozenset({"youth"}),
    "intergenerational": frozenset({"intergenerational"}),
    "in-person+wales": frozenset({"in-person", "wales"}),
    # Both two-column layouts (image-left and image-right) in one email.
    "youth+intergenerational": frozenset({"youth", "intergenerational"}),
}
TWO_COLUMNS = "youth+intergenerational"


def png(width: int, height: int) -> bytes:
    """A solid-colour PNG, made here so that the tests need no image files or libraries."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x5a\x8c\x78" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


IMAGE = png(600, 360)


@pytest.fixture(scope="module")
def emails(sample: Issue, newsletter: Newsletter) -> dict[str, str]:
    """Each variant's HTML, personalised for the preview's sample member."""
    variants = render_issue(sample, newsletter, KEYS.values(), archive_url=f"{BASE_URL}/archive/x")
    member = sample_member(BASE_URL)
    return {variant.name: variant.personalise(member).html for variant in variants}


def _answer(route: Route) -> None:
    if route.request.resource_type == "image":
        route.fulfill(status=200, content_type="image/png", body=IMAGE)
    else:
        route.abort()


class Pages:
    """Opens each (variant, width, colour scheme) once per module: the tests only read pages."""

    def __init__(self, browser: Browser, emails: dict[str, str]) -> None:
        self.browser, self.emails = browser, emails
        self.opened: dict[tuple[str, int, str], Page] = {}

    def __call__(
        self, variant: str, width: int, color_scheme: Literal["light", "dark"] = "light"
    ) -> Page:
        key = (variant, width, color_scheme)
        if key not in self.opened:
            page = self.browser.new_page(
                viewport={"width": width, "height": 800},
                color_scheme=color_scheme,
            )
            page.route("**/*", _answer)
            page.set_content(self.emails[variant], wait_until="load")
            self.opened[key] = page
        return self.opened[key]


@pytest.fixture(scope="module")
def show(browser: Browser, emails: dict[str, str]) -> Iterator[Pages]:
    pages = Pages(browser, emails)
    yield pages
    for page in pages.opened.values():
        page.close()


class TestLayout:
    @pytest.mark.parametrize("width", WIDTHS)
    @pytest.mark.parametrize("variant", KEYS)
    def test_no_horizontal_scrolling(self, show: Pages, variant: str, width: int) -> None:
        """No variant is wider than the screen, from a small phone to desktop width."""
        page = show(variant, width)
        scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
        assert scroll_width <= page.evaluate("window.innerWidth")

    @pytest.mark.parametrize("width", [320, 375])
    def test_two_column_blocks_stack_on_phones(self, show: Pages, width: int) -> None:
        """On a phone the image sits above its text, in one column, whichever side it is on."""
        page = show(TWO_COLUMNS, width)
        blocks = _column_boxes(page)
        assert 2 == len(blocks)
        for image, text in blocks:
            assert abs(image["x"] - text["x"]) <= 1
            assert image["y"] + image["height"] <= text["y"] + 1

    def test_two_column_blocks_sit_side_by_side_at_600(self, show: Pages) -> None:
        """At 600 px image and text share a row, the image on the side its layout names."""
        page = show(TWO_COLUMNS, 600)
        (left_image, left_text), (right_image, right_text) = _column_boxes(page)
        assert abs(left_image["y"] - left_text["y"]) <= 1
        assert abs(right_image["y"] - right_text["y"]) <= 1
        assert left_image["x"] + left_image["width"] <= left_text["x"]
        assert right_text["x"] + right_text["width"] <= right_image["x"]


def _column_boxes(page: Page) -> list[tuple[dict[str, float], dict[str, float]]]:
    """(image column box, text column box) for each two-column block, top to bottom."""
    pairs: list[list[dict[str, float]]] = page.evaluate(
        """() => [...document.querySelectorAll('.image-col')].map(image => {
            const text = image.parentElement.querySelector('.text-col');
            const box = el => { const r = el.getBoundingClientRect();
                return {x: r.x, y: r.y, width: r.width, height: r.height}; };
            return [box(image), box(text)];
        })"""
    )
    return [(image, text) for image, text in pairs]


class TestAccessibility:
    @pytest.mark.parametrize("variant", KEYS)
    def test_every_image_has_alt_text(self, show: Pages, variant: str) -> None:
        """Every <img> describes itself with non-empty alt text."""
        page = show(variant, 375)
        alts: list[str | None] = page.eval_on_selector_all(
            "img", "images => images.map(i => i.getAttribute('alt'))"
        )
        assert all(alt and alt.strip() for alt in alts)

    def test_language_is_declared(self, show: Pages) -> None:
        """The document's lang comes from mailer.toml, so screen readers use the right voice."""
        page = show("general", 375)
        assert "en-GB" == page.get_attribute("html", "lang")

    def test_headings_outline_the_email(self, show: Pages) -> None:
        """One h1 (the newsletter's name), then an h2 per section."""
        page = show("youth", 375)
        assert ["Connected Communities"] == page.locator("h1").all_inner_texts()
        assert 2 == page.locator("h2").count()

    @pytest.mark.parametrize("width", WIDTHS)
    @pytest.mark.parametrize("variant", KEYS)
    def test_unsubscribe_link_is_visible(self, show: Pages, variant: str, width: int) -> None:
        """The unsubscribe link is shown, on screen width, and points at the member's own URL."""
        page = show(variant, width)
        link = page.get_by_role("link", name="Unsubscribe from Connected Communities")
        assert link.is_visible()
        box = link.bounding_box()
        assert box is not None and box["width"] > 0 and box["x"] + box["width"] <= width
        assert f"{BASE_URL}/unsubscribe/preview-token" == link.get_attribute("href")


class TestDarkMode:
    def test_dark_scheme_darkens_the_card_and_lightens_the_text(self, show: Pages) -> None:
        """With prefers-color-scheme: dark, the content card is dark and its text light."""
        page = show("general", 375, color_scheme="dark")
        colours = page.evaluate(
            """() => {
                const card = document.querySelectorAll('.dm-card')[1];
                const text = card.querySelector('td div');
                return [getComputedStyle(card).backgroundColor, getComputedStyle(text).color];
            }"""
        )
        assert ["rgb(26, 30, 28)", "rgb(232, 230, 225)"] == colours
