"""The SendGrid transport against the SendGrid double: payloads, retries, splits, ambiguity."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from doubles.sendgrid import SendGridDouble, check_mail_send
from doubles.smtp import free_port
from pydantic import SecretStr

from mailer.mail import Batch, Recipient
from mailer.transports.sendgrid import (
    SendGridTransport,
    error_messages,
    html_placeholder,
    request_body,
)

MakeBatch = Callable[..., Batch]
MakeRecipient = Callable[..., Recipient]
NOW = 1_767_000_000.0
KEY = "SG.test-key"


class Sleeps(list[float]):
    """Records the waits a transport asks for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_transport(
    sendgrid_double: SendGridDouble, sleeps: Sleeps
) -> Callable[..., SendGridTransport]:
    """A transport aimed at the double, with a fixed clock, no jitter and recorded sleeps."""
    sendgrid_double.clock = lambda: NOW

    def make(**options: Any) -> SendGridTransport:
        settings: dict[str, Any] = {
            "api_url": sendgrid_double.url,
            "timeout": 2.0,
            "sleep": sleeps,
            "clock": lambda: NOW,
            "jitter": lambda: 0.0,
        }
        return SendGridTransport(SecretStr(options.pop("key", KEY)), **{**settings, **options})

    return make


def build_payload(batch: Batch, *, sandbox: bool = False) -> Any:
    """The request body as SendGrid reads it."""
    return json.loads(request_body(batch, sandbox=sandbox))


def states(deliveries: list[Any]) -> list[str]:
    return [d.state for d in deliveries]


class TestPayload:
    def test_valid_for_sendgrid(self, make_batch: MakeBatch) -> None:
        """The payload passes SendGrid's schema and its unwritten rules."""
        assert [] == check_mail_send(build_payload(make_batch(3)), now=NOW)

    def test_text_before_html(self, make_batch: MakeBatch) -> None:
        """content lists text/plain before text/html."""
        assert ["text/plain", "text/html"] == [
            c["type"] for c in build_payload(make_batch())["content"]
        ]

    def test_one_personalization_per_recipient(self, make_batch: MakeBatch) -> None:
        """Each recipient is the only `to` of their own personalization."""
        payload = build_payload(make_batch(3))
        assert [[{"email": f"member{i}@example.com", "name": f"Member {i}"}] for i in range(3)] == [
            p["to"] for p in payload["personalizations"]
        ]

    def test_html_has_its_own_markers(self, make_batch: MakeBatch) -> None:
        """The HTML has its own markers, so its values can be escaped apart from the text's."""
        html = build_payload(make_batch())["content"][1]["value"]
        assert (True, False) == (
            html_placeholder("first_name") in html,
            "[[mailer:first_name]]" in html,
        )

    def test_substitutions(self, make_batch: MakeBatch, make_recipient: MakeRecipient) -> None:
        """Each personalization carries its values: raw for the text, escaped for the HTML."""
        member = make_recipient(
            1, values={"first_name": "Ann & Bo", "unsubscribe_url": "https://x/u?a=1&b=2"}
        )
        personalization = build_payload(make_batch(recipients=[member]))["personalizations"][0]
        assert {
            "[[mailer:first_name]]": "Ann & Bo",
            "[[mailer:unsubscribe_url]]": "https://x/u?a=1&b=2",
            "[[mailer:first_name|html]]": "Ann &amp; Bo",
            "[[mailer:unsubscribe_url|html]]": "https://x/u?a=1&amp;b=2",
        } == personalization["substitutions"]

    def test_subject_per_recipient(self, make_batch: MakeBatch) -> None:
        """Each personalization has its own, filled-in subject."""
        payload = build_payload(make_batch(2))
        assert ["Hello Member0: the winter issue", "Hello Member1: the winter issue"] == [
            p["subject"] for p in payload["personalizations"]
        ]

    def test_list_headers(self, make_batch: MakeBatch) -> None:
        """List-Id and one-click are common; List-Unsubscribe is each member's own."""
        payload = build_payload(make_batch(2))
        assert (
            {
                "List-Id": '"Connected Communities" <news.example.org>',
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            [
                "<https://news.example.org/unsubscribe/tok0>",
                "<https://news.example.org/unsubscribe/tok1>",
            ],
        ) == (
            payload["headers"],
            [p["headers"]["List-Unsubscribe"] for p in payload["personalizations"]],
        )

    def test_custom_args(self, make_batch: MakeBatch) -> None:
        """custom_args name the issue and the subscriber, per recipient."""
        payload = build_payload(make_batch(2))
        assert [
            {"issue": "2026-01-08-winter", "subscriber": "0"},
            {"issue": "2026-01-08-winter", "subscriber": "1"},
        ] == [p["custom_args"] for p in payload["personalizations"]]

    def test_from_and_reply_to(self, make_batch: MakeBatch) -> None:
        """From has the newsletter's name; reply_to the editor's address."""
        payload = build_payload(make_batch())
        assert (
            {"email": "news@example.org", "name": "Connected Communities"},
            {"email": "editor@example.org"},
        ) == (payload["from"], payload["reply_to"])

    def test_sandbox(self, make_batch: MakeBatch) -> None:
        """Sandbox mode asks SendGrid to validate without sending."""
        assert {"sandbox_mode": {"enable": True}} == build_payload(make_batch(), sandbox=True)[
            "mail_settings"
        ]

    def test_the_body_is_json_with_every_character_intact(
        self, make_batch: MakeBatch, make_recipient: MakeRecipient
    ) -> None:
        """Quotes, backslashes, accents and emoji in names and values survive as SendGrid reads them."""
        name = 'Siân "Sunny" O\\Brien 🌞'
        url = "https://news.example.org/unsubscribe/tok1"
        member = make_recipient(1, name=name, values={"first_name": name, "unsubscribe_url": url})
        [personalization] = build_payload(make_batch(recipients=[member]))["personalizations"]
        assert {"email": "member1@example.com", "name": name} == personalization["to"][0]
        assert name in personalization["substitutions"].values()


class TestSendGridTransport:
    def test_delivers_in_one_request(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
    ) -> None:
        """A batch is one request; every recipient is sent, with the request's message id."""
        deliveries = make_transport().send(make_batch(3))
        message_id = sendgrid_double.accepted[0].message_id
        assert (1, ["sent"] * 3, [message_id] * 3) == (
            len(sendgrid_double.received),
            states(deliveries),
            [d.message_id for d in deliveries],
        )

    def test_thousand_recipients_one_request(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
    ) -> None:
        """1000 recipients, SendGrid's maximum, still go in one request, each delivered once."""
        make_transport().send(make_batch(1000))
        counts = sendgrid_double.delivery_counts()
        assert (1, 1000, {1}) == (len(sendgrid_double.received), len(counts), set(counts.values()))

    def test_each_recipient_gets_their_own_message(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
        make_recipient: MakeRecipient,
    ) -> None:
        """After substitution, each member sees their own name and link, escaped in HTML."""
        member = make_recipient(
            7, values={"first_name": "Ann & Bo", "unsubscribe_url": "https://x/u/7?a=1&b=2"}
        )
        make_transport().send(make_batch(recipients=[member]))
        got = sendgrid_double.delivered_to("member7@example.com")
        assert (
            "Hello Ann & Bo: the winter issue",
            "Dear Ann & Bo,\n\nNews.\n\nUnsubscribe: https://x/u/7?a=1&b=2\n",
            '<p>Dear Ann &amp; Bo,</p><p>News.</p><a href="https://x/u/7?a=1&amp;b=2">Unsubscribe</a>',
            "<https://news.example.org/unsubscribe/tok7>",
            {"issue": "2026-01-08-winter", "subscriber": "7"},
        ) == (got.subject, got.text, got.html, got.headers["List-Unsubscribe"], got.custom_args)

    def test_sends_the_key(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
    ) -> None:
        """The request carries the API key as a Bearer token."""
        make_transport().send(make_batch(1))
        assert f"Bearer {KEY}" == sendgrid_double.received[0].headers["Authorization"]

    def test_rate_limited_by_recipients(
        self, make_transport: Callable[..., SendGridTransport], make_batch: MakeBatch
    ) -> None:
        """A request takes one token per recipient from the limiter."""
        taken: list[int] = []

        class Counting:
            def acquire(self, count: int = 1) -> float:
                taken.append(count)
                return 0.0

        make_transport(limiter=Counting()).send(make_batch(4))
        assert [4] == taken

    def test_sandbox(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
    ) -> None:
        """In sandbox mode SendGrid answers 200 and sends nothing; the recipients count as sent."""
        deliveries = make_transport(sandbox=True).send(make_batch(2))
        assert (["sent", "sent"], []) == (states(deliveries), sendgrid_double.accepted)

    def test_oversized_substitutions_fail_alone(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
        make_recipient: MakeRecipient,
    ) -> None:
        """A recipient whose values exceed SendGrid's 10,000 bytes fails; the others are sent."""
        huge = make_recipient(
            1, values={"first_name": "x" * 6000, "unsubscribe_url": "https://x/u"}
        )
        deliveries = make_transport().send(
            make_batch(recipients=[make_recipient(0), huge, make_recipient(2)])
        )
        assert (["sent", "failed", "sent"], 2) == (
            states(deliveries),
            len(sendgrid_double.deliveries()),
        )


class TestRetries:
    def test_429_waits_until_the_reset(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
        sleeps: Sleeps,
    ) -> None:
        """A 429 is retried after waiting until X-RateLimit-Reset."""
        sendgrid_double.rate_limit_next(reset_in=7)
        deliveries = make_transport().send(make_batch(2))
        assert (["sent", "sent"], [7.0], 2) == (
            states(deliveries),
            sleeps,
            len(sendgrid_double.received),
        )

    def test_429_wait_is_capped(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
        sleeps: Sleeps,
    ) -> None:
        """A reset far away is waited for at most max_wait at a time."""
        sendgrid_double.rate_limit_next(reset_in=3600)
        make_transport(max_wait=30).send(make_batch(1))
        assert [30.0] == sleeps

    def test_5xx_backs_off_exponentially(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
        sleeps: Sleeps,
    ) -> None:
        """500 and 503 are retried, each wait twice the last (jitter zero: half the backoff)."""
        sendgrid_double.fail_next(500)
        sendgrid_double.fail_next(503, times=2)
        deliveries = make_transport(backoff=1.0).send(make_batch(1))
        assert (["sent"], [0.5, 1.0, 2.0]) == (states(deliveries), sleeps)

    def test_jitter(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
        sleeps: Sleeps,
    ) -> None:
        """Jitter spreads a wait between half and all of the backoff."""
        sendgrid_double.fail_next(500)
        make_transport(backoff=4.0, jitter=lambda: 1.0).send(make_batch(1))
        assert [4.0] == sleeps

    def test_gives_up_after_max_attempts(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
    ) -> None:
        """After max_attempts 503s, the recipients fail with the status, to retry another time."""
        sendgrid_double.fail_next(503, times=10)
        deliveries = make_transport(max_attempts=3).send(make_batch(2))
        assert (["failed", "failed"], 3, True) == (
            states(deliveries),
            len(sendgrid_double.received),
            "503 to 3 tries" in (deliveries[0].error or ""),
        )

    def test_unreachable_is_retried_then_fails(
        self,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
        sleeps: Sleeps,
    ) -> None:
        """With nothing listening, each try fails to connect; after the last, the batch fails."""
        transport = make_transport(api_url=f"http://127.0.0.1:{free_port()}", max_attempts=3)
        deliveries = transport.send(make_batch(2))
        assert (["failed", "failed"], 2, True) == (
            states(deliveries),
            len(sleeps),
            "could not reach SendGrid" in (deliveries[0].error or ""),
        )


class TestRefusals:
    def test_400_not_retried_with_sendgrids_message(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
        make_recipient: MakeRecipient,
    ) -> None:
        """A 400 fails the batch at once, with SendGrid's own explanation."""
        valid = make_batch(1)
        twice = Batch.model_construct(
            **{**dict(valid), "recipients": [make_recipient(1), make_recipient(1)]}
        )
        deliveries = make_transport().send(twice)
        assert (["failed", "failed"], 1) == (states(deliveries), len(sendgrid_double.received))
        assert "We found the first duplicate instance of [member1@example.com]" in (
            deliveries[0].error or ""
        )
        assert "(400)" in (deliveries[0].error or "")

    def test_401_wrong_key(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
    ) -> None:
        """A wrong key fails the batch at once, saying which setting to check."""
        deliveries = make_transport(key="SG.wrong").send(make_batch(2))
        error = deliveries[0].error or ""
        assert (["failed", "failed"], 1, True, True, False) == (
            states(deliveries),
            len(sendgrid_double.received),
            "grant is invalid" in error,
            "SENDGRID_API_KEY" in error,
            "SG.wrong" in error,
        )

    def test_403_not_retried(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
    ) -> None:
        """A 403 (key without Mail Send permission) is not retried."""
        sendgrid_double.fail_next(403)
        deliveries = make_transport().send(make_batch(1))
        assert (["failed"], 1, True) == (
            states(deliveries),
            len(sendgrid_double.received),
            "(403)" in (deliveries[0].error or ""),
        )

    def test_413_splits_the_batch(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
    ) -> None:
        """A request too large is split in halves, each sent alone; everyone gets one message."""
        batch = make_batch(40)
        size = len(json.dumps(build_payload(batch)).encode())
        sendgrid_double.max_body_bytes = size * 3 // 4
        deliveries = make_transport().send(batch)
        statuses = [r.status for r in sendgrid_double.received]
        assert (["sent"] * 40, [413, 202, 202], {1}) == (
            states(deliveries),
            statuses,
            set(sendgrid_double.delivery_counts().values()),
        )
        assert 40 == len(sendgrid_double.delivery_counts())

    def test_413_for_one_recipient_fails(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
    ) -> None:
        """A single message that is too large fails, saying so."""
        sendgrid_double.max_body_bytes = 100
        deliveries = make_transport().send(make_batch(1))
        assert (["failed"], True) == (
            states(deliveries),
            "too large" in (deliveries[0].error or ""),
        )


class TestAmbiguity:
    def test_timeout_is_unknown(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
    ) -> None:
        """No answer within the timeout: unknown, not resent, though SendGrid did take it."""
        sendgrid_double.slow_next(3.0)
        deliveries = make_transport(timeout=0.3).send(make_batch(2))
        assert (["unknown", "unknown"], 1, 1) == (
            states(deliveries),
            len(sendgrid_double.received),
            len(sendgrid_double.accepted),
        )
        assert "no answer within 0.3 s" in (deliveries[0].error or "")

    def test_accepted_then_dropped_is_unknown(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
    ) -> None:
        """SendGrid took it but the connection dropped before the answer: unknown, not resent."""
        sendgrid_double.drop_next(accept=True)
        deliveries = make_transport().send(make_batch(2))
        assert (
            ["unknown", "unknown"],
            1,
            {"member0@example.com": 1, "member1@example.com": 1},
        ) == (
            states(deliveries),
            len(sendgrid_double.received),
            dict(sendgrid_double.delivery_counts()),
        )

    def test_dropped_is_unknown(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
    ) -> None:
        """A drop before any answer is unknown too: the client cannot tell the cases apart."""
        sendgrid_double.drop_next()
        deliveries = make_transport().send(make_batch(1))
        assert (["unknown"], []) == (states(deliveries), sendgrid_double.accepted)

    def test_retry_unanswered_trades_for_duplicates(
        self,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
    ) -> None:
        """With retry_unanswered, a dropped answer is retried: sent, but possibly twice."""
        sendgrid_double.drop_next(accept=True)
        deliveries = make_transport(retry_unanswered=True).send(make_batch(1))
        assert (["sent"], 2) == (states(deliveries), sendgrid_double.count("member0@example.com"))


class TestSecrets:
    def test_key_not_in_debug_logs(
        self,
        make_transport: Callable[..., SendGridTransport],
        make_batch: MakeBatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Even at DEBUG, the HTTP client's logs never show the key or the addresses."""
        with caplog.at_level(logging.DEBUG):
            make_transport().send(make_batch(1))
        assert (False, False) == (KEY in caplog.text, "member0@example.com" in caplog.text)

    def test_repr(self, make_transport: Callable[..., SendGridTransport]) -> None:
        """The transport's repr names the API, not the key."""
        assert KEY not in repr(make_transport())


class TestErrorMessages:
    def test_fields_and_messages(self) -> None:
        """SendGrid's errors read as 'field: message', joined."""
        body = (
            b'{"errors": [{"field": "from", "message": "required"},'
            b' {"field": null, "message": "bad"}]}'
        )
        assert "from: required; bad" == error_messages(body)

    def test_not_json(self) -> None:
        """A body that is not SendGrid's JSON is shown as text."""
        assert "Bad Gateway" == error_messages(b"Bad Gateway")
