"""The home page, the confirmation email's greeting and the archive's public titles."""

from __future__ import annotations

import datetime as dt

import pytest
from helpers.outbox import read_eml
from helpers.web import FORM_TOKEN, Web, mark_sent, sign_up

from mailer.store import Subscriber, SubscriberStatus
from mailer.web.archive import public_title
from mailer.web.signup import greeting_name

SENT = "2026-12-03-winter-connections"
NOT_SENT = "2026-12-17-nobody-alone-this-christmas"


def confirmation_text(web: Web, address: str) -> str:
    message = read_eml(web.outbox / "confirmations" / f"{address}.eml")
    text = message.get_body(("plain",))
    assert text is not None
    return str(text.get_content())


class TestTheHomePage:
    def test_it_shows_the_newsletter_and_the_sign_up_form(self, sqlite_web: Web) -> None:
        page = sqlite_web.client.get("/")
        assert 200 == page.status_code
        assert "<h1>Connected Communities</h1>" in page.text
        assert 'action="/subscribe"' in page.text and FORM_TOKEN.search(page.text)
        assert "Latest issues" not in page.text  # nothing sent yet: no empty list

    def test_it_lists_the_latest_sent_issues(self, sqlite_web: Web) -> None:
        mark_sent(sqlite_web, SENT)
        page = sqlite_web.client.get("/").text
        assert f'href="/archive/{SENT}"' in page and "3 December 2026" in page
        assert NOT_SENT not in page  # never sent: not public

    def test_its_form_signs_up(self, sqlite_web: Web) -> None:
        token = FORM_TOKEN.search(sqlite_web.client.get("/").text)
        assert token
        answer = sqlite_web.client.post(
            "/subscribe",
            data={"form_token": token[1], "email": "new@example.org", "name": "", "website": ""},
        )
        sqlite_web.settle()
        assert (200, True) == (answer.status_code, "Check your inbox" in answer.text)
        member = sqlite_web.store.find("new@example.org")
        assert member is not None and SubscriberStatus.pending == member.status


def _member(name: str) -> Subscriber:
    now = dt.datetime.now(dt.UTC)
    return Subscriber(
        id=1, email="x@example.org", name=name, organisation="", region="", tags=(),
        attributes={}, status=SubscriberStatus.pending, status_changed_at=now,
        status_reason="", created_at=now, updated_at=now,
    )  # fmt: skip


class TestTheConfirmationGreeting:
    def test_it_greets_by_first_name(self, sqlite_web: Web) -> None:
        sign_up(sqlite_web, "ann@example.org", "Ann Jones")
        assert "Hello Ann," == confirmation_text(sqlite_web, "ann@example.org").splitlines()[0]
        html = read_eml(sqlite_web.outbox / "confirmations" / "ann@example.org.eml")
        body = html.get_body(("html",))
        assert body is not None and "<p>Hello Ann,</p>" in str(body.get_content())

    def test_without_a_name_it_says_hello(self, sqlite_web: Web) -> None:
        sign_up(sqlite_web, "anon@example.org")
        assert "Hello," == confirmation_text(sqlite_web, "anon@example.org").splitlines()[0]

    @pytest.mark.parametrize(
        ("name", "greeted"),
        [
            ("Siân O'Brien-Jones", "Siân"),
            ("Zoë", "Zoë"),
            ("Your account is suspended: verify now", ""),
            ("Visit evil.example now", ""),  # five words: not a name
            ("Bob2 Smith", ""),
            ("Hi https://evil.example", ""),
            ("A" * 25, ""),
            ("", ""),
        ],
    )
    def test_only_a_plain_name_is_greeted(self, name: str, greeted: str) -> None:
        assert greeted == greeting_name(_member(name))


@pytest.mark.parametrize(
    ("blanked", "title"),
    [
        (", your December bulletin", "Your December bulletin"),
        ("Hello ! Winter news", "Hello! Winter news"),
        ("Winter news for , and friends", "Winter news for, and friends"),
        ("Winter news", "Winter news"),
    ],
)
def test_public_titles_drop_member_fields_and_their_punctuation(blanked: str, title: str) -> None:
    assert title == public_title(blanked)
