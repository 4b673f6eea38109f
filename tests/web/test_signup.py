"""Sign-up with double opt-in: the form, the email through the configured transport, the link."""

from __future__ import annotations

import email
import email.policy
import logging
import re
from collections.abc import Callable
from email.message import EmailMessage

import httpx
import pytest
import time_machine
from doubles.smtp import SmtpServer
from helpers.web import Web, sign_up, snapshot
from pydantic import SecretStr

from mailer.audience.segments import segments_of
from mailer.config import Newsletter
from mailer.store import SubscriberStatus
from mailer.web.context import SignupLimits
from mailer.web.logs import RedactTokens

TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def mail_to(web: Web, address: str) -> EmailMessage | None:
    path = web.outbox / "confirmations" / f"{address.lower()}.eml"
    if not path.exists():
        return None
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def confirm_link(web: Web, address: str) -> str:
    message = mail_to(web, address)
    assert message is not None, f"no email to {address}"
    found = re.search(r"(https?://\S+/confirm/\S+)", text_of(message))
    assert found
    return found[1].removeprefix(web.url)


def confirm(web: Web, link: str) -> httpx.Response:
    """Open the link, then press "Confirm my subscription", as a person does."""
    page = web.client.get(link)
    token = TOKEN.search(page.text)
    assert token, page.text
    return web.client.post(link, data={"form_token": token[1]})


class TestDoubleOptIn:
    def test_a_new_address_is_pending_until_the_link_is_opened(self, web: Web) -> None:
        response = sign_up(web, "New.Person@Example.org", "New Person")
        assert 200 == response.status_code
        assert "Check your inbox" in response.text
        member = web.store.find("new.person@example.org")
        assert member is not None and SubscriberStatus.pending == member.status
        message = mail_to(web, "New.Person@example.org")
        assert message is not None
        assert "Confirm your subscription to Connected Communities" == message["Subject"]
        assert message["List-Unsubscribe"].startswith(f"<{web.url}/unsubscribe/")
        assert 'press "Confirm my subscription"' in " ".join(text_of(message).split())
        assert SubscriberStatus.pending == web.store.get(member.id).status  # not yet
        confirmed = confirm(web, confirm_link(web, "New.Person@example.org"))
        assert (200, True) == (confirmed.status_code, "You are subscribed" in confirmed.text)
        assert SubscriberStatus.active == web.store.get(member.id).status
        assert "New Person" == web.store.get(member.id).name
        last = web.store.history(member.id)[-1]
        assert "web sign-up" == last.source

    def test_opening_the_link_changes_nothing(self, web: Web) -> None:
        """Mail scanners (Safe Links and the like) open every link: GET must not confirm."""
        sign_up(web, "new.person@example.org")
        member = web.store.find("new.person@example.org")
        assert member is not None
        link = confirm_link(web, "new.person@example.org")
        before = snapshot(web.store)
        for _ in range(2):
            page = web.client.get(link)
            assert 200 == page.status_code
            assert "Confirm your subscription to Connected Communities" in page.text
            assert "Confirm my subscription" in page.text
            assert f'<form method="post" action="{link}">' in page.text
        assert "ne***@example.org" in page.text
        assert "new.person@example.org" not in page.text
        assert 200 == web.client.head(link).status_code
        assert before == snapshot(web.store)
        assert SubscriberStatus.pending == web.store.get(member.id).status

    def test_the_page_does_not_re_subscribe_either(self, sqlite_web: Web) -> None:
        [m] = sqlite_web.add("back@example.org")
        sqlite_web.store.unsubscribe(m.id, reason="test", source="test")
        sign_up(sqlite_web, "back@example.org")
        before = snapshot(sqlite_web.store)
        page = sqlite_web.client.get(confirm_link(sqlite_web, "back@example.org"))
        assert (200, True) == (page.status_code, "Confirm my subscription" in page.text)
        assert before == snapshot(sqlite_web.store)

    @pytest.mark.parametrize(
        "data",
        [
            {},
            {"form_token": ""},
            {"form_token": "nonsense"},
            {"List-Unsubscribe": "One-Click"},
        ],
        ids=["none", "empty", "bad", "one-click"],
    )
    def test_a_post_without_a_good_form_token_changes_nothing(
        self, web: Web, data: dict[str, str]
    ) -> None:
        """A cross-site form, or a scanner that posts, cannot confirm anyone."""
        sign_up(web, "a@example.org")
        link = confirm_link(web, "a@example.org")
        before = snapshot(web.store)
        response = web.client.post(link, data=data)
        assert 400 == response.status_code
        assert "nothing was changed" in response.text
        assert "Confirm my subscription" in response.text  # a fresh form to try again
        assert before == snapshot(web.store)
        member = web.store.find("a@example.org")
        assert member is not None and SubscriberStatus.pending == member.status
        fresh = TOKEN.search(response.text)
        assert fresh
        again = web.client.post(link, data={"form_token": fresh[1]})
        assert (200, SubscriberStatus.active) == (
            again.status_code,
            web.store.get(member.id).status,
        )

    def test_a_form_token_from_another_page_does_not_work(self, sqlite_web: Web) -> None:
        """The form token is bound to its confirmation link (and to its purpose)."""
        sign_up(sqlite_web, "a@example.org")
        sign_up(sqlite_web, "b@example.org")
        a_page = sqlite_web.client.get(confirm_link(sqlite_web, "a@example.org"))
        a_token = TOKEN.search(a_page.text)
        subscribe_token = TOKEN.search(sqlite_web.client.get("/subscribe").text)
        assert a_token and subscribe_token
        before = snapshot(sqlite_web.store)
        for token in (a_token[1], subscribe_token[1]):
            response = sqlite_web.client.post(
                confirm_link(sqlite_web, "b@example.org"), data={"form_token": token}
            )
            assert 400 == response.status_code
        assert before == snapshot(sqlite_web.store)

    def test_confirming_twice_is_fine(self, web: Web) -> None:
        sign_up(web, "a@example.org")
        link = confirm_link(web, "a@example.org")
        page = web.client.get(link)
        token = TOKEN.search(page.text)
        assert token
        first = web.client.post(link, data={"form_token": token[1]})
        assert (200, True) == (first.status_code, "You are subscribed" in first.text)
        history = snapshot(web.store)
        again = web.client.post(link, data={"form_token": token[1]})
        assert (200, True) == (again.status_code, "already subscribed" in again.text)
        opened = web.client.get(link)
        assert (200, True) == (opened.status_code, "already subscribed" in opened.text)
        assert history == snapshot(web.store)

    def test_the_confirmation_pages_are_private(self, sqlite_web: Web) -> None:
        """The same headers as the other token pages, and no script."""
        sign_up(sqlite_web, "a@example.org")
        link = confirm_link(sqlite_web, "a@example.org")
        page = sqlite_web.client.get(link)
        token = TOKEN.search(page.text)
        assert token
        refused = sqlite_web.client.post(link, data={})
        done = sqlite_web.client.post(link, data={"form_token": token[1]})
        for response in (page, refused, done, sqlite_web.client.get("/confirm/nonsense")):
            headers = response.headers
            assert "no-store" == headers["cache-control"]
            assert "noindex, nofollow" == headers["x-robots-tag"]
            assert "no-referrer" == headers["referrer-policy"]
            assert "DENY" == headers["x-frame-options"]
            assert "nosniff" == headers["x-content-type-options"]
            csp = headers["content-security-policy"]
            assert "script-src" not in csp and "default-src 'none'" in csp
            assert "form-action 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "<script" not in response.text

    def test_the_token_stays_out_of_the_logs(
        self, make_web: Callable[..., Web], caplog: pytest.LogCaptureFixture
    ) -> None:
        """uvicorn's access log (through the filter mailer serve installs) and mailer's own."""
        web = make_web(server_options={"access_log": True})
        caplog.handler.addFilter(RedactTokens())
        sign_up(web, "a@example.org")
        link = confirm_link(web, "a@example.org")
        token = link.removeprefix("/confirm/")
        with caplog.at_level(logging.INFO):
            web.client.post(link, data={})
            confirm(web, link)
            web.server.server.should_exit = True  # type: ignore[union-attr]
            web.server.thread.join(5)  # type: ignore[union-attr]
        server = [
            (record.name, record.getMessage())
            for record in caplog.records
            if record.name.startswith(("uvicorn", "mailer"))  # not the test's own httpx client
        ]
        access = [line for name, line in server if name == "uvicorn.access"]
        assert any('"POST /confirm/[token] HTTP/1.1" 200' in line for line in access), access
        assert any("sign-up confirmed" in line for _, line in server), server
        assert not any(token in line for _, line in server), server

    def test_the_page_never_says_whether_an_address_is_on_the_list(self, web: Web) -> None:
        """Same status, same words, for new, pending, active, unsubscribed and forgotten addresses."""
        web.add("active@example.org")
        [gone] = web.add("unsub@example.org")
        web.store.unsubscribe(gone.id, reason="test", source="test")
        web.add("forgotten@example.org")
        web.store.forget("forgotten@example.org", reason="test", source="test")
        sign_up(web, "pending@example.org")
        pages = {
            address: sign_up(web, address)
            for address in (
                "new@example.org",
                "pending@example.org",
                "active@example.org",
                "unsub@example.org",
                "forgotten@example.org",
            )
        }
        bodies = {re.sub(r'value="[^"]*"', "", page.text) for page in pages.values()}
        assert {200} == {page.status_code for page in pages.values()}
        assert 1 == len(bodies)

    def test_an_active_member_is_told_by_email_and_nothing_changes(self, sqlite_web: Web) -> None:
        [_m] = sqlite_web.add("active@example.org")
        before = snapshot(sqlite_web.store)
        sign_up(sqlite_web, "active@example.org")
        message = mail_to(sqlite_web, "active@example.org")
        assert message is not None and "already subscribed" in message["Subject"]
        assert f"{sqlite_web.url}/preferences/" in text_of(message)
        assert before == snapshot(sqlite_web.store)

    def test_an_unsubscribed_member_re_subscribes_by_confirming(self, web: Web) -> None:
        """Re-subscribing is explicit (the member opened the link) and logged."""
        [m] = web.add("back@example.org")
        web.store.unsubscribe(m.id, reason="test", source="test")
        sign_up(web, "back@example.org")
        assert SubscriberStatus.unsubscribed == web.store.get(m.id).status
        confirm(web, confirm_link(web, "back@example.org"))
        assert SubscriberStatus.active == web.store.get(m.id).status
        last = web.store.history(m.id)[-1]
        assert ("resubscribed", "web sign-up") == (last.kind, last.source)

    def test_an_old_link_cannot_undo_a_later_unsubscribe(self, sqlite_web: Web) -> None:
        """Out of date on GET and POST alike, even with the page's form token."""
        sign_up(sqlite_web, "a@example.org")
        link = confirm_link(sqlite_web, "a@example.org")
        token = TOKEN.search(sqlite_web.client.get(link).text)
        assert token
        member = sqlite_web.store.find("a@example.org")
        assert member is not None
        sqlite_web.store.unsubscribe(member.id, reason="changed their mind", source="test")
        before = snapshot(sqlite_web.store)
        for response in (
            sqlite_web.client.get(link),
            sqlite_web.client.post(link, data={"form_token": token[1]}),
        ):
            assert (400, True) == (response.status_code, "out of date" in response.text)
        assert SubscriberStatus.unsubscribed == sqlite_web.store.get(member.id).status
        assert before == snapshot(sqlite_web.store)

    def test_a_forgotten_address_is_sent_nothing(self, sqlite_web: Web) -> None:
        sqlite_web.add("gone@example.org")
        sqlite_web.store.forget("gone@example.org", reason="test", source="test")
        sign_up(sqlite_web, "gone@example.org")
        assert None is mail_to(sqlite_web, "gone@example.org")
        assert None is sqlite_web.store.find("gone@example.org")

    def test_the_link_expires(self, sqlite_web: Web) -> None:
        sign_up(sqlite_web, "late@example.org")
        link = confirm_link(sqlite_web, "late@example.org")
        token = TOKEN.search(sqlite_web.client.get(link).text)
        assert token
        before = snapshot(sqlite_web.store)
        with _in_days(8):
            responses = [
                sqlite_web.client.get(link),
                sqlite_web.client.post(link, data={"form_token": token[1]}),
            ]
        for response in responses:
            assert (400, True) == (response.status_code, "expired" in response.text)
        assert before == snapshot(sqlite_web.store)

    @pytest.mark.parametrize("token", ["nonsense", "WzEsImFiYyJd.forged.signature"])
    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_a_confirm_token_that_is_not_ours_is_404(
        self, sqlite_web: Web, token: str, method: str
    ) -> None:
        sign_up(sqlite_web, "a@example.org")
        before = snapshot(sqlite_web.store)
        response = sqlite_web.client.request(method, f"/confirm/{token}")
        assert (404, True) == (response.status_code, "This link does not work" in response.text)
        assert before == snapshot(sqlite_web.store)


def _in_days(days: int) -> time_machine.travel:
    import datetime as dt

    return time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=days), tick=True)


class TestAbuse:
    def test_a_filled_honeypot_is_thanked_and_ignored(self, sqlite_web: Web) -> None:
        before = snapshot(sqlite_web.store)
        response = sign_up(sqlite_web, "bot@example.org", website="http://spam.example")
        assert (200, True) == (response.status_code, "Check your inbox" in response.text)
        assert before == snapshot(sqlite_web.store)
        assert None is mail_to(sqlite_web, "bot@example.org")

    def test_a_post_without_the_form_token_is_refused(self, sqlite_web: Web) -> None:
        response = sqlite_web.client.post("/subscribe", data={"email": "a@example.org"})
        assert 400 == response.status_code
        assert None is sqlite_web.store.find("a@example.org")

    def test_an_invalid_address_is_explained(self, sqlite_web: Web) -> None:
        response = sign_up(sqlite_web, "not an address")
        assert 400 == response.status_code
        assert "like name@example.org" in response.text
        assert 'value="not an address"' in response.text

    def test_one_address_gets_a_limited_number_of_emails(
        self, make_web: Callable[..., Web]
    ) -> None:
        """Nobody can flood someone's inbox through the form; the page does not change."""
        web = make_web(limits=SignupLimits(per_address=2, per_client=100))
        for _ in range(2):
            sign_up(web, "target@example.org")
        path = web.outbox / "confirmations" / "target@example.org.eml"
        path.unlink()
        response = sign_up(web, "Target@example.org")
        assert (200, True) == (response.status_code, "Check your inbox" in response.text)
        assert not path.exists()

    def test_one_client_gets_a_limited_number_of_sign_ups(
        self, make_web: Callable[..., Web]
    ) -> None:
        web = make_web(limits=SignupLimits(per_address=100, per_client=3))
        statuses = [sign_up(web, f"n{n}@example.org").status_code for n in range(4)]
        assert [200, 200, 200, 429] == statuses
        assert None is web.store.find("n3@example.org")


def test_the_confirmation_goes_through_the_configured_transport(
    make_web: Callable[..., Web], smtp_server: SmtpServer
) -> None:
    """With MAILER_TRANSPORT=smtp the email goes to the (real, local) SMTP server."""
    web = make_web(
        transport="smtp",
        smtp_url=SecretStr(smtp_server.url()),
        base_url="https://news.example.org",  # real mail needs https links, as for a send
    )
    sign_up(web, "smtp@example.org")
    [message] = smtp_server.received_by("smtp@example.org")
    assert b"/confirm/" in message.data


class TestNamesThatWouldBeHeaders:
    """A name is never a way to write headers into the newsletter's mail (see headersafety)."""

    ATTACK = (
        '=?utf-8?q?x"=0D=0ASubject:_Your_account_is_locked=0D=0AReply-To:_a@evil.example'
        "=0D=0AContent-Type:_text/html=0D=0A=0D=0A<a_href=https://evil.example>Unlock</a>=0D=0A?="
    )

    def test_an_encoded_word_in_the_name_is_refused_and_nothing_is_sent(self, web: Web) -> None:
        response = sign_up(web, "victim@example.org", self.ATTACK)
        assert 400 == response.status_code
        assert "Please write your name as plain text." in response.text
        assert "evil.example" not in response.text  # not even echoed back into the form
        assert web.store.find("victim@example.org") is None
        assert mail_to(web, "victim@example.org") is None

    def test_line_breaks_in_a_name_become_spaces(self, web: Web) -> None:
        sign_up(web, "ann@example.org", "Ann\r\nBcc: victim@example.org\u2028Lee")
        member = web.store.find("ann@example.org")
        assert member is not None
        assert "Ann Bcc: victim@example.org Lee" == member.name
        message = mail_to(web, "ann@example.org")
        assert message is not None
        assert None is message["Bcc"]
        assert ["ann@example.org"] == [a.addr_spec for a in message["To"].addresses]


class TestChoicesOnTheForm:
    """The form's optional fields land a new member in the right segments."""

    def test_a_new_member_gets_the_organisation_region_and_interests(
        self, web: Web, newsletter: Newsletter
    ) -> None:
        response = sign_up(
            web,
            "gwen@example.org",
            "Gwen",
            organisation="Youth Cymru",
            region="wales",
            interests_shown="1",
            interest=["youth", "intergenerational"],
        )
        assert 200 == response.status_code
        member = web.store.find("gwen@example.org")
        assert member is not None
        assert (SubscriberStatus.pending, "Youth Cymru", "Wales") == (
            member.status,
            member.organisation,
            member.region,
        )
        assert ("youth-loneliness", "intergenerational") == member.tags
        assert {"youth", "intergenerational", "wales"} == segments_of(member, newsletter)

    def test_the_form_does_not_change_an_existing_member(self, web: Web) -> None:
        """Anyone may type any address: the form's choices are a new member's only."""
        [m] = web.add("gwen@example.org", organisation="Youth Cymru", region="Wales")
        sign_up(web, "gwen@example.org", "Someone Else", organisation="Evil", region="Scotland")
        member = web.store.get(m.id)
        assert ("", "Youth Cymru", "Wales") == (member.name, member.organisation, member.region)

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("organisation", "=?utf-8?q?x?=", "Please write your organisation as plain text."),
            ("region", "Atlantis", "Please check the region"),
            ("interest", "wales", "Please check the interests"),
        ],
    )
    def test_a_bad_choice_is_refused_and_nothing_is_stored(
        self, sqlite_web: Web, field: str, value: str, message: str
    ) -> None:
        response = sign_up(sqlite_web, "gwen@example.org", **{field: value})
        assert 400 == response.status_code
        assert message in response.text
        assert sqlite_web.store.find("gwen@example.org") is None
