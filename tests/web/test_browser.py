"""Real headless Chromium clicks through unsubscribe, preferences and sign-up, without JavaScript help."""

from __future__ import annotations

import email
import email.policy
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from helpers.browser import axe_violations
from helpers.web import Web, mark_sent
from playwright.sync_api import Browser, Page, expect

from mailer.audience.segments import segments_of
from mailer.config import Newsletter
from mailer.store import SubscriberStatus
from mailer.store.preferences import opted_out
from mailer.tokens import Purpose

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 740}


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A phone-sized page that fails the test on any CSP violation or page error."""
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    opened = context.new_page()
    problems: list[str] = []
    opened.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    opened.on("pageerror", lambda error: problems.append(str(error)))
    yield opened
    context.close()
    assert [] == problems


def fits_the_phone(page: Page) -> None:
    """Nothing wider than the screen: no sideways scrolling."""
    box = page.locator("main").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_unsubscribe_by_clicking(page: Page, browser: Browser, sqlite_web: Web) -> None:
    [m] = sqlite_web.add("reader@example.org")
    page.goto(sqlite_web.url + sqlite_web.link(m.id, Purpose.unsubscribe))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Unsubscribe from Connected Communities?"
    )
    fits_the_phone(page)
    assert [] == axe_violations(browser, page)
    assert SubscriberStatus.active == sqlite_web.store.get(m.id).status  # opening changed nothing
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    assert [] == axe_violations(browser, page)
    assert SubscriberStatus.unsubscribed == sqlite_web.store.get(m.id).status
    # Changing their mind takes the sign-up form's double opt-in: no other link is handed out.
    page.get_by_role("link", name="Sign up again").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Subscribe to Connected Communities")
    page.get_by_label("Email address").fill("reader@example.org")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
    sqlite_web.settle()
    assert SubscriberStatus.unsubscribed == sqlite_web.store.get(m.id).status  # until confirmed
    assert (sqlite_web.outbox / "confirmations" / "reader@example.org.eml").exists()


def test_choose_topics_in_the_preference_centre(page: Page, sqlite_web: Web) -> None:
    [m] = sqlite_web.add(
        "reader@example.org", tags=("youth-loneliness", "in-person"), region="Wales"
    )
    page.goto(sqlite_web.url + sqlite_web.link(m.id, Purpose.preferences))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your email preferences")
    fits_the_phone(page)
    wales = page.get_by_label("Wales")
    expect(wales).to_be_checked()
    wales.uncheck()
    page.get_by_role("button", name="Save my choices").click()
    expect(page.get_by_role("status")).to_have_text("Your choices are saved.")
    expect(page.get_by_label("Wales")).not_to_be_checked()
    expect(page.get_by_label("Youth loneliness")).to_be_checked()
    assert {m.id: frozenset({"wales"})} == opted_out(sqlite_web.store.engine, [m.id])


def test_sign_up_and_confirm(page: Page, browser: Browser, sqlite_web: Web) -> None:
    page.goto(sqlite_web.url + "/subscribe")
    fits_the_phone(page)
    expect(page.get_by_label("Leave this field empty")).not_to_be_in_viewport()  # the honeypot
    page.get_by_label("Email address").fill("newcomer@example.org")
    page.get_by_label("Your name").fill("New Comer")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
    sqlite_web.settle()  # the email goes out once the page has been answered
    path = sqlite_web.outbox / "confirmations" / "newcomer@example.org.eml"
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"(http://\S+/confirm/\S+)", text)
    assert link is not None
    page.goto(link[1])
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Confirm your subscription to Connected Communities"
    )
    expect(page.get_by_text("ne***@example.org")).to_be_visible()
    fits_the_phone(page)
    assert [] == axe_violations(browser, page)
    member = sqlite_web.store.find("newcomer@example.org")
    assert member is not None and SubscriberStatus.pending == member.status  # opening: nothing
    page.get_by_role("button", name="Confirm my subscription").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are subscribed")
    assert [] == axe_violations(browser, page)
    assert SubscriberStatus.active == sqlite_web.store.get(member.id).status


def test_the_preference_centre_walked_with_the_keyboard(
    page: Page, browser: Browser, web: Web
) -> None:
    """Gwen changes her interests and region, then her address, with the keyboard alone.

    On a phone, without JavaScript, and axe-core finds nothing on any page she sees.
    """
    [m] = web.add("gwen@example.org", tags=("youth-loneliness",), name="Gwen")
    page.goto(web.url + web.link(m.id, Purpose.preferences))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your email preferences")
    fits_the_phone(page)
    assert [] == axe_violations(browser, page)
    expect(page.locator("#sections")).to_have_text(
        "You get the sections every member gets, and those for Youth loneliness."
    )
    # Keyboard only: Tab to each control, Space ticks, arrows choose in the select.
    page.get_by_role("textbox", name="Organisation").focus()
    page.keyboard.type("Youth Cymru")
    page.keyboard.press("Tab")  # the region
    expect(page.get_by_label("Nation or region")).to_be_focused()
    page.get_by_label("Nation or region").select_option("Wales")
    page.get_by_label("Intergenerational connection").focus()
    page.keyboard.press("Space")
    page.get_by_label("Youth loneliness").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Save my choices").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Your choices are saved.")
    expect(page.locator("#sections")).to_have_text(
        "You get the sections every member gets, and those for Intergenerational connection "
        "and Wales."
    )
    fits_the_phone(page)
    assert [] == axe_violations(browser, page)
    member = web.store.get(m.id)
    assert ("Youth Cymru", "Wales", ("intergenerational",)) == (
        member.organisation,
        member.region,
        member.tags,
    )
    assert {"intergenerational", "wales"} == segments_of(member, web_newsletter(web))

    # A new address: nothing changes until the link sent to it is followed.
    page.get_by_label("New email address").focus()
    page.keyboard.type("gwen@youthcymru.example.org")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("We have emailed a link to g***@youthcymru")
    assert "gwen@example.org" == web.store.get(m.id).email
    path = web.outbox / "confirmations" / "gwen@youthcymru.example.org.eml"
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"(http://\S+/change-address/\S+)", text)
    assert link is not None
    page.goto(link[1])
    expect(page.get_by_role("heading", level=1)).to_have_text("Use your new address?")
    fits_the_phone(page)
    assert [] == axe_violations(browser, page)
    assert "gwen@example.org" == web.store.get(m.id).email  # opening: nothing
    page.get_by_role("button", name="Use this address").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your address is changed")
    assert [] == axe_violations(browser, page)
    assert "gwen@youthcymru.example.org" == web.store.get(m.id).email
    assert (web.outbox / "confirmations" / "gwen@example.org.eml").exists()  # the note


def test_sign_up_with_choices_lands_in_the_segments(
    page: Page, browser: Browser, sqlite_web: Web
) -> None:
    page.goto(sqlite_web.url + "/subscribe")
    fits_the_phone(page)
    assert [] == axe_violations(browser, page)
    page.get_by_label("Email address").fill("rhys@example.org")
    page.get_by_role("textbox", name="Organisation").fill("Age Cymru Gwent")
    page.get_by_label("Nation or region").select_option("Wales")
    page.get_by_label("Returning to in-person services").check()
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
    sqlite_web.settle()
    member = sqlite_web.store.find("rhys@example.org")
    assert member is not None and "Age Cymru Gwent" == member.organisation
    assert {"in-person", "wales"} == segments_of(member, web_newsletter(sqlite_web))


GIF = bytes.fromhex(
    "47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b"
)


def test_the_archive_footer_in_the_browser(browser: Browser, sqlite_web: Web) -> None:
    """The public web version links to the sign-up page and the past issues, which work."""
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    # The images are on the web, which this machine cannot reach: stand-ins.
    context.route(
        lambda url: not url.startswith(sqlite_web.url),
        lambda route: route.fulfill(body=GIF, content_type="image/gif"),
    )
    page = context.new_page()
    mark_sent(sqlite_web, "2026-12-03-winter-connections")
    page.goto(sqlite_web.url + "/archive/2026-12-03-winter-connections")
    expect(page.get_by_text("receiving this")).to_have_count(0)
    page.get_by_role("link", name="Read past issues").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Past issues")
    assert [] == axe_violations(browser, page)
    page.go_back()
    page.get_by_role("link", name="Subscribe to Connected Communities").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Subscribe to Connected Communities")
    context.close()


@pytest.mark.parametrize("width", [375, 1280])
def test_the_member_pages_at_phone_and_desktop_widths(
    browser: Browser, sqlite_web: Web, width: int
) -> None:
    """Each member page: no sideways scroll, and axe-core finds nothing, on a phone and a desktop."""
    [m] = sqlite_web.add("gwen@example.org", region="Wales", tags=("youth-loneliness",))
    context = browser.new_context(
        viewport={"width": width, "height": 800}, java_script_enabled=False
    )
    page = context.new_page()
    for path in (
        sqlite_web.link(m.id, Purpose.preferences),
        sqlite_web.link(m.id, Purpose.unsubscribe),
        "/subscribe",
        "/archive/",
        sqlite_web.confirm_link(m),
    ):
        page.goto(sqlite_web.url + path)
        for part in ("main", "body", "form >> nth=0"):
            if part.startswith("form") and not page.locator("form").count():
                continue
            box = page.locator(part).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, path
        assert [] == axe_violations(browser, page), path
    context.close()


def web_newsletter(web: Web) -> Newsletter:
    newsletter = web.app.state.web.newsletter
    assert isinstance(newsletter, Newsletter)
    return newsletter


# -- the pages at 375 px: home, sign-up, preferences --------------------------------------------

SHOTS = os.environ.get("TEST_SCREENSHOTS")  # a folder to keep the pages' screenshots in


def screenshot(page: Page, name: str) -> None:
    """Keep a full-page screenshot when TEST_SCREENSHOTS names a folder, to look at."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def no_sideways_scrolling(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]


def css_rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_the_home_page_on_a_phone(page: Page, sqlite_web: Web) -> None:
    mark_sent(sqlite_web, "2026-12-03-winter-connections")
    page.goto(sqlite_web.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Connected Communities")
    expect(page.get_by_role("link", name=re.compile("^Winter connections"))).to_be_visible()
    fits_the_phone(page)
    no_sideways_scrolling(page)
    screenshot(page, "home-375")
    page.get_by_label("Email address").fill("home@example.org")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")


def test_focus_rings_and_checkboxes_use_the_brand_colour(
    page: Page, sqlite_web: Web, newsletter: Newsletter
) -> None:
    brand = css_rgb(newsletter.brand_colour)
    page.goto(sqlite_web.url + "/subscribe")
    fits_the_phone(page)
    no_sideways_scrolling(page)
    screenshot(page, "subscribe-375")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")  # the newsletter's name, on the brand colour: a white ring
    ring = "e => [e.matches(':focus-visible'), getComputedStyle(e).outlineColor]"
    assert [True, "rgb(255, 255, 255)"] == page.evaluate(f"({ring})(document.activeElement)")
    page.keyboard.press("Tab")  # the email field: a ring in the brand colour
    field = page.get_by_label("Email address")
    assert [True, brand] == field.evaluate(ring)
    [m] = sqlite_web.add("reader@example.org", tags=("youth-loneliness",), region="Wales")
    page.goto(sqlite_web.url + sqlite_web.link(m.id, Purpose.preferences))
    box = page.locator("input[type=checkbox]").first
    assert brand == box.evaluate("e => getComputedStyle(e).accentColor")
    box.focus()
    assert brand == box.evaluate("e => getComputedStyle(e).outlineColor")
    screenshot(page, "preferences-375")


def test_the_topics_box_has_no_empty_gap(page: Page, sqlite_web: Web) -> None:
    """The "Other topics you get" box starts with its text, right under the legend.

    (Its topics are those that follow from the member's fields, such as the region.)
    """
    [m] = sqlite_web.add("reader@example.org", region="Wales")
    page.goto(sqlite_web.url + sqlite_web.link(m.id, Purpose.preferences))
    topics = page.locator("fieldset:has(input[name=segment])")
    legend = topics.locator("legend").bounding_box()
    hint = topics.locator("p.hint").first.bounding_box()
    assert legend is not None and hint is not None
    assert hint["y"] - (legend["y"] + legend["height"]) <= 12  # the box's padding; 30 px before


@pytest.fixture
def axe_page(browser: Browser) -> Iterator[Page]:
    """A phone-sized page that lets axe-core's script in (the pages' CSP allows none)."""
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("path", ["/", "/subscribe", "preferences"])
def test_axe_finds_nothing_on_a_phone(axe_page: Page, sqlite_web: Web, path: str) -> None:
    """axe-core's WCAG 2.x A and AA rules, and its best practices, at 375 px."""
    mark_sent(sqlite_web, "2026-12-03-winter-connections")
    if path == "preferences":
        [m] = sqlite_web.add("reader@example.org", tags=("youth-loneliness",), region="Wales")
        path = sqlite_web.link(m.id, Purpose.preferences)
    axe_page.goto(sqlite_web.url + path)
    results = Axe().run(axe_page)
    assert [] == [(v["id"], v["help"]) for v in results.response["violations"]]


def test_the_archive_page_has_a_main_landmark(browser: Browser, sqlite_web: Web) -> None:
    """The web version of a sent issue: axe-core finds its main landmark and nothing outside
    a landmark (the page is the email's HTML; JavaScript on here only to run axe)."""
    from axe_playwright_python.sync_playwright import Axe

    slug = "2026-12-03-winter-connections"
    mark_sent(sqlite_web, slug)
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    try:
        page = context.new_page()
        page.route("**/*.png", lambda route: route.abort())
        page.route("**/*.jpg", lambda route: route.abort())
        page.goto(f"{sqlite_web.url}/archive/{slug}")
        results = Axe().run(page, options={"runOnly": ["landmark-one-main", "region"]})
        assert [] == [violation["id"] for violation in results.response["violations"]]
        expect(page.get_by_role("main")).to_have_count(1)
    finally:
        context.close()
