"""What a message in the bounce mailbox says, over a corpus of the formats that arrive there."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.bounces import dsn

from mailer.events.bounces.dsn import Outcome
from mailer.events.bounces.reading import Reading, ReadingKind, read_message

CORPUS = Path(__file__).resolve().parent / "corpus"

HARD, SOFT, DELAYED, COMPLAINT = Outcome.hard, Outcome.soft, Outcome.delayed, Outcome.complaint

# Each sample: what it is read as, and each finding's (outcome, address, status).
EXPECTED: dict[str, tuple[ReadingKind, list[tuple[Outcome, str | None, str | None]]]] = {
    "postfix-user-unknown.eml": (
        ReadingKind.dsn,
        [(HARD, "aled@conwy-sheds.example.net", "5.1.1")],
    ),
    "postfix-delayed.eml": (
        ReadingKind.dsn,
        [(DELAYED, "bethan@llandudno-lunch.example.net", "4.4.1")],
    ),
    "gmail-no-such-user.eml": (ReadingKind.dsn, [(HARD, "ceri.jones@gmail.example", "5.1.1")]),
    "gmail-mailbox-full.eml": (ReadingKind.dsn, [(SOFT, "dai@gmail.example", "5.2.2")]),
    "outlook-recipient-not-found.eml": (
        ReadingKind.dsn,
        [(HARD, "efa@coastal-befriending.example", "5.1.10")],
    ),
    "yahoo-policy-block.eml": (ReadingKind.dsn, [(SOFT, "gwen@yahoo.example", "5.7.9")]),
    "base64-delivery-status.eml": (ReadingKind.dsn, [(HARD, "quinn@gateway.example", "5.1.1")]),
    "exim-free-text.eml": (ReadingKind.bounce, [(HARD, "iona@hebrides-hub.example", None)]),
    "qmail-free-text.eml": (ReadingKind.bounce, [(HARD, "jac@old-server.example", None)]),
    "yahoo-free-text.eml": (ReadingKind.bounce, [(HARD, "kim@yahoo.example", None)]),
    "arf-yahoo-abuse.eml": (ReadingKind.arf, [(COMPLAINT, "redacted@yahoo.example", None)]),
    "arf-outlook-abuse.eml": (ReadingKind.arf, [(COMPLAINT, "lowri@hotmail.example", None)]),
    "unsubscribe-reply.eml": (ReadingKind.unsubscribe, [(Outcome.unsubscribe, None, None)]),
    "arf-not-spam.eml": (ReadingKind.other, []),
    "auto-reply-outlook.eml": (ReadingKind.auto_reply, []),
    "auto-reply-vacation.eml": (ReadingKind.auto_reply, []),
    "out-of-office-subject-only.eml": (ReadingKind.auto_reply, []),
    "human-reply.eml": (ReadingKind.other, []),
    "read-receipt.eml": (ReadingKind.other, []),
    "delivered-dsn.eml": (ReadingKind.other, []),
    "not-a-message.eml": (ReadingKind.other, []),
}


def read(name: str) -> Reading:
    return read_message((CORPUS / name).read_bytes())


def test_every_sample_in_the_corpus_has_an_expectation() -> None:
    """The corpus and the table agree: no sample goes untested."""
    assert sorted(EXPECTED) == sorted(p.name for p in CORPUS.glob("*.eml"))


class TestTheCorpus:
    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_each_sample_is_read_as_what_it_is(self, name: str) -> None:
        """Each format of DSN, complaint, auto-reply and other mail is told apart, with its findings."""
        reading = read(name)
        kind, findings = EXPECTED[name]
        assert (kind, findings) == (
            reading.kind,
            [(f.outcome, f.address, f.status) for f in reading.findings],
        )

    @pytest.mark.parametrize(
        "name", [name for name, (kind, _) in EXPECTED.items() if kind is not ReadingKind.other]
    )
    def test_a_report_or_reply_keeps_the_addresses_a_token_may_be_in(self, name: str) -> None:
        """The VERP address the message came back to is among those kept for matching."""
        reading = read(name)
        ours = [a for a in (*reading.recipients, *reading.returned) if "+" in a]
        assert ours, reading


class TestDeliveryReports:
    def test_a_delay_then_the_final_failure(self) -> None:
        """A delay warning and the server giving up (4.x.x) are both soft."""
        to = "bounces+b1-aaaaaaaa-aaaaaaaaaaaaaaaa@news.example.org"
        delayed = read_message(
            dsn(to, "x@example.net", action="delayed", status="4.4.1", message_id="d@x")
        )
        failed = read_message(dsn(to, "x@example.net", status="4.4.1", message_id="f@x"))
        assert [DELAYED, SOFT] == [delayed.findings[0].outcome, failed.findings[0].outcome]

    def test_a_failure_without_a_status_is_soft(self) -> None:
        """Action failed with no code at all is counted, not taken as final, as SendGrid's."""
        raw = dsn(
            "b@news.example.org",
            "x@example.net",
            status="",
            diagnostic="x-unix; gone",
            message_id="n@x",
        )
        assert [(SOFT, None)] == [(f.outcome, f.status) for f in read_message(raw).findings]

    def test_the_status_comes_from_the_diagnostic_when_the_field_is_broken(self) -> None:
        """A Status field that is not a code: the enhanced code in the server's reply decides."""
        raw = dsn(
            "b@news.example.org",
            "x@example.net",
            status="failed",
            diagnostic="smtp; 550 5.1.1 no such user",
            message_id="s@x",
        )
        assert [(HARD, "5.1.1")] == [(f.outcome, f.status) for f in read_message(raw).findings]

    def test_the_message_id_is_the_key_and_a_message_without_one_is_known_by_its_bytes(
        self,
    ) -> None:
        """The same message met twice is known by its Message-ID, or by a hash of its bytes."""
        with_id = read("postfix-user-unknown.eml")
        without = read_message(b"From: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n")
        assert "20261203090211.4A1B2C3D@mx.example.net" == with_id.key
        assert without.key.startswith("sha256:") and 71 == len(without.key)


class TestNoMessageCrashesTheReader:
    @pytest.mark.parametrize(
        "raw",
        [
            b"",
            b"\x00" * 100,
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=\r\n\r\n--",
            b"Content-Type: message/delivery-status\r\n\r\nAction: failed\r\nStatus: 9.9.9\r\n",
            b"Subject: =?utf-8?b?////?=\r\nFrom: =?x-unknown?q?a?= <\r\n\r\n",
            b"Content-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n"
            b"--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type:\r\n--b--",
        ],
    )
    def test_bad_input_is_read_as_something(self, raw: bytes) -> None:
        """Whatever arrives, the reader answers (never raises): at worst 'other', with why."""
        assert isinstance(read_message(raw), Reading)


class TestUnsubscribeMails:
    TO = "bounces+u1k-c5rghcma-q2a7f6s1c8d0yt4m@news.example.org"

    def mail(self, *headers: str) -> bytes:
        head = "".join(f"{h}\r\n" for h in headers)
        return f"From: m@example.net\r\nTo: {self.TO}\r\nSubject: unsubscribe\r\n{head}\r\nbye\r\n".encode()

    def test_a_request_a_mail_program_marks_as_generated_still_counts(self) -> None:
        """Auto-Submitted: auto-generated is how some mail programs send the member's request."""
        assert (
            ReadingKind.unsubscribe
            == read_message(self.mail("Auto-Submitted: auto-generated")).kind
        )

    def test_an_auto_reply_to_the_address_is_not_a_request(self) -> None:
        """An out-of-office answering the unsubscribe address is left alone."""
        assert (
            ReadingKind.auto_reply == read_message(self.mail("Auto-Submitted: auto-replied")).kind
        )

    def test_a_report_quoting_the_address_is_not_a_request(self) -> None:
        """A DSN returning our headers (with the mailto: inside) is a bounce, not an unsubscribe."""
        assert (
            ReadingKind.dsn == read_message((CORPUS / "postfix-user-unknown.eml").read_bytes()).kind
        )
