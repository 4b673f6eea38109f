"""Real headless Chromium clicks through unsubscribe, preferences and sign-up, without JavaScript help."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator

import pytest
from helpers.web import Web
from playwright.sync_api import Browser, Page, expect

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


def test_unsubscribe_by_clicking(page: Page, sqlite_web: Web) -> None:
    [m] = sqlite_web.add("reader@example.org")
    page.goto(sqlite_web.url + sqlite_web.link(m.id, Purpose.unsubscribe))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Unsubscribe from Connected Communities?"
    )
    fits_the_phone(page)
    assert SubscriberStatus.active == sqlite_web.store.get(m.id).status  # opening changed nothing
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
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


def test_sign_up_and_confirm(page: Page, sqlite_web: Web) -> None:
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
    member = sqlite_web.store.find("newcomer@example.org")
    assert member is not None and SubscriberStatus.pending == member.status  # opening: nothing
    page.get_by_role("button", name="Confirm my subscription").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are subscribed")
    assert SubscriberStatus.active == sqlite_web.store.get(member.id).status


def test_the_archive_page_has_a_main_landmark(browser: Browser, sqlite_web: Web) -> None:
    """The web version of a sent issue: axe-core finds its main landmark and nothing outside
    a landmark (the page is the email's HTML; JavaScript on here only to run axe)."""
    from axe_playwright_python.sync_playwright import Axe

    from mailer.store.ledger import Ledger, new_owner

    slug = "2026-12-03-winter-connections"
    Ledger(sqlite_web.store.engine).acquire(slug, "outbox", new_owner())
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
