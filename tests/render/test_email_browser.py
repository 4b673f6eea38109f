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
from axe_playwright_python.sync_playwright import Axe
from helpers.project import BASE_URL
from playwright.sync_api import Browser, Page, Route

from mailer.config import Newsletter
from mailer.issues.model import Issue
from mailer.render import render_issue
from mailer.render.preview import sample_member
from mailer.render.theme import AA, contrast_ratio

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


def _images_off(route: Route) -> None:
    route.abort()  # as a client with remote images blocked: nothing loads


class Pages:
    """Opens each (variant, width, colour scheme) once per module: the tests only read pages."""

    def __init__(self, browser: Browser, emails: dict[str, str]) -> None:
        self.browser, self.emails = browser, emails
        self.opened: dict[tuple[str, int, str], Page] = {}

    def __call__(
        self,
        variant: str,
        width: int,
        color_scheme: Literal["light", "dark"] = "light",
        *,
        images: bool = True,
    ) -> Page:
        key = (variant, width, color_scheme + ("" if images else "-images-off"))
        if key not in self.opened:
            page = self.browser.new_page(
                viewport={"width": width, "height": 800},
                color_scheme=color_scheme,
            )
            page.route("**/*", _answer if images else _images_off)
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


def _hex(rgb: str) -> str:
    """'rgb(26, 30, 28)' -> '#1a1e1c'."""
    values = rgb.removeprefix("rgba(").removeprefix("rgb(").rstrip(")").split(",")[:3]
    return "#" + "".join(f"{int(value):02x}" for value in values)


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
        """One h1 (the issue's headline: here the youth variant's subject), then an h2 per section."""
        page = show("youth", 375)
        assert ["New research: what 2,000 young people told us about loneliness"] == page.locator(
            "h1"
        ).all_inner_texts()
        assert 2 == page.locator("h2").count()

    @pytest.mark.parametrize("variant", ["general", TWO_COLUMNS])
    def test_content_is_in_a_main_landmark(self, show: Pages, variant: str) -> None:
        """axe-core finds one main landmark and no content outside landmarks; the archive
        page is this same HTML (tests/web/test_archive.py runs axe on it there too)."""
        page = show(variant, 375)
        results = Axe().run(
            page, options={"runOnly": ["landmark-one-main", "region", "landmark-unique"]}
        )
        assert [] == [violation["id"] for violation in results.response["violations"]]
        assert 1 == page.get_by_role("main").count()

    def test_in_this_issue_links_jump_to_their_sections(self, show: Pages) -> None:
        """Each entry of 'In this issue' is a same-page link to the section with that title."""
        page = show(TWO_COLUMNS, 600)
        links = page.get_by_role("list").first.get_by_role("link")
        assert 3 == links.count()
        for index in range(links.count()):
            link = links.nth(index)
            target = page.locator(str(link.get_attribute("href")))
            assert link.inner_text() == target.inner_text()
            assert "H2" == target.evaluate("el => el.tagName")

    def test_logo_is_shown_at_its_fixed_size(self, show: Pages) -> None:
        """The logo keeps its 48 x 48 px from mailer.toml, at phone and desktop widths."""
        for width in (375, 600):
            box = (
                show("general", width)
                .get_by_role("img", name="Connected Communities")
                .bounding_box()
            )
            assert box is not None and (48, 48) == (round(box["width"]), round(box["height"]))

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


class TestImagesOff:
    @pytest.mark.parametrize("width", [375, 600])
    def test_each_picture_keeps_its_room(self, show: Pages, width: int) -> None:
        """With pictures blocked, each keeps a box of its 3:2 shape, the side column included."""
        page = show(TWO_COLUMNS, width, images=False)
        boxes = page.eval_on_selector_all(
            "img[height=auto]",
            "images => images.map(i => { const r = i.getBoundingClientRect();"
            " return [r.width, r.height]; })",
        )
        assert 2 == len(boxes)
        for box_width, box_height in boxes:
            assert box_width > 150
            assert abs(box_height - box_width * 2 / 3) <= 2

    def test_alt_text_is_in_the_emails_font_not_blue_and_underlined(self, show: Pages) -> None:
        """Alt text in the sans-serif stack, the muted grey, 14px, and no underline from a link."""
        page = show(TWO_COLUMNS, 600, images=False)
        styles = page.eval_on_selector_all(
            "img[height=auto]",
            """images => images.map(i => { const s = getComputedStyle(i);
                const a = i.closest('a');
                return [s.fontFamily, s.color, s.fontSize,
                        a ? getComputedStyle(a).textDecorationLine : 'none']; })""",
        )
        for family, colour, size, decoration in styles:
            assert family.startswith("-apple-system") and "serif" != family
            assert ("rgb(82, 90, 86)", "14px", "none") == (colour, size, decoration)


class TestDarkMode:
    @pytest.mark.parametrize("variant", ["general", TWO_COLUMNS])
    def test_buttons_stand_out_and_their_labels_read(self, show: Pages, variant: str) -> None:
        """Every button, as drawn in dark mode, against the card and under its label: 4.5:1."""
        page = show(variant, 375, color_scheme="dark")
        colours = page.eval_on_selector_all(
            ".dm-button a",
            """links => links.map(a => [getComputedStyle(a).backgroundColor,
                getComputedStyle(a).color,
                getComputedStyle(a.closest('.dm-card')).backgroundColor])""",
        )
        assert colours
        for button, label, card in colours:
            assert contrast_ratio(_hex(button), _hex(card)) >= AA
            assert contrast_ratio(_hex(label), _hex(button)) >= AA

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
