"""The RFC 5322 message the outbox and SMTP transports send, read back as a mail client would.

test_message_template.py checks it against the message the email package builds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import BytesParser, Parser
from email.policy import default
from email.utils import parsedate_to_datetime
from typing import cast

import pytest

from mailer.config import Sender
from mailer.mail import Batch, Recipient
from mailer.transports.message import MessageTemplate, list_id

MakeBatch = Callable[..., Batch]
MakeRecipient = Callable[..., Recipient]
NOW = dt.datetime(2026, 1, 8, 9, 30, tzinfo=dt.UTC)


def wire(batch: Batch, recipient: Recipient | None = None) -> bytes:
    """The message for the batch's first (or given) recipient, as it goes on the wire."""
    return MessageTemplate(batch).message(recipient or batch.recipients[0], now=NOW).data


def read(data: bytes) -> EmailMessage:
    return cast(EmailMessage, BytesParser(policy=default).parsebytes(data))


def parsed(batch: Batch, recipient: Recipient | None = None) -> EmailMessage:
    """The message for the batch's first (or given) recipient, parsed back."""
    return read(wire(batch, recipient))


def parts(message: EmailMessage) -> list[EmailMessage]:
    return [cast(EmailMessage, part) for part in message.iter_parts()]


def body(part: EmailMessage) -> str:
    """A part's decoded text, with the wire's CRLFs as newlines."""
    return str(part.get_content()).replace("\r\n", "\n")


class TestStructure:
    def test_multipart_alternative(self, make_batch: MakeBatch) -> None:
        """The message is multipart/alternative."""
        assert "multipart/alternative" == parsed(make_batch()).get_content_type()

    def test_text_before_html(self, make_batch: MakeBatch) -> None:
        """text/plain comes before text/html: clients show the last part they understand."""
        assert ["text/plain", "text/html"] == [
            p.get_content_type() for p in parts(parsed(make_batch()))
        ]

    def test_utf8(self, make_batch: MakeBatch) -> None:
        """Both parts are UTF-8."""
        assert ["utf-8", "utf-8"] == [p.get_content_charset() for p in parts(parsed(make_batch()))]

    def test_quoted_printable(self, make_batch: MakeBatch) -> None:
        """Both parts are quoted-printable, whatever their text."""
        assert ["quoted-printable", "quoted-printable"] == [
            p["Content-Transfer-Encoding"] for p in parts(parsed(make_batch()))
        ]

    def test_seven_bit_clean(self, make_batch: MakeBatch, make_recipient: MakeRecipient) -> None:
        """Non-ASCII text travels as quoted-printable, so any relay can carry it."""
        zoe = make_recipient(
            1, name="Zoë Ø", values={"first_name": "Zoë", "unsubscribe_url": "https://x/u"}
        )
        assert wire(make_batch(recipients=[zoe]), zoe).isascii()

    def test_crlf_line_ends(self, make_batch: MakeBatch) -> None:
        """Every line ends in CRLF, as on the wire."""
        data = wire(make_batch())
        assert data.count(b"\n") == data.count(b"\r\n")

    def test_bodies_personalised(self, make_batch: MakeBatch) -> None:
        """Each part carries the recipient's own values, escaped in the HTML only."""
        batch = make_batch()
        member = batch.recipients[0].model_copy(
            update={
                "values": {"first_name": "Ann & <Bo>", "unsubscribe_url": "https://x/u?a=1&b=2"}
            }
        )
        text, html = parts(parsed(batch, member))
        assert "Dear Ann & <Bo>,\n\nNews.\n\nUnsubscribe: https://x/u?a=1&b=2\n" == body(text)
        assert (
            '<p>Dear Ann &amp; &lt;Bo&gt;,</p><p>News.</p><a href="https://x/u?a=1&amp;b=2">Unsubscribe</a>'
            == body(html).rstrip("\n")
        )


class TestOneTemplatePerBatch:
    def test_each_recipient_their_own_message(self, make_batch: MakeBatch) -> None:
        """The template is built once per batch; each message has its recipient's own parts."""
        batch = make_batch(2)
        template = MessageTemplate(batch)
        messages = [read(template.message(r, now=NOW).data) for r in batch.recipients]
        assert [
            ("Member 0 <member0@example.com>", "Hello Member0: the winter issue", "tok0"),
            ("Member 1 <member1@example.com>", "Hello Member1: the winter issue", "tok1"),
        ] == [
            (m["To"], m["Subject"], m["List-Unsubscribe"].rpartition("/")[2].rstrip(">"))
            for m in messages
        ]

    def test_bodies_filled_per_recipient(self, make_batch: MakeBatch) -> None:
        """Each recipient's values are in their own bodies only."""
        batch = make_batch(2)
        template = MessageTemplate(batch)
        texts = [body(parts(read(template.message(r).data))[0]) for r in batch.recipients]
        assert [True, True] == [
            text.startswith(f"Dear Member{i},") and f"tok{i}\n" in text
            for i, text in enumerate(texts)
        ]

    def test_smtputf8_only_for_non_ascii_addresses(
        self, make_batch: MakeBatch, make_recipient: MakeRecipient
    ) -> None:
        """utf8 says the address needs SMTPUTF8; then headers are UTF-8, not RFC 2047 (RFC 6532)."""
        ann = make_recipient(1, name="Zoë")
        zoe = make_recipient(2, name="Zoë", email="zoë@example.com")
        template = MessageTemplate(make_batch(recipients=[ann, zoe]))
        first, second = template.message(ann), template.message(zoe)
        assert (False, True, True, True) == (
            first.utf8,
            second.utf8,
            first.data.isascii(),
            'To: "Zoë" <zoë@example.com>\r\n'.encode() in second.data,
        )

    def test_non_ascii_address(self, make_batch: MakeBatch, make_recipient: MakeRecipient) -> None:
        """A non-ASCII address reads back whole, with its name, by a client that reads UTF-8."""
        zoe = make_recipient(2, name="Zoë", email="zoë@example.com")
        text = wire(make_batch(recipients=[zoe]), zoe).decode("utf-8")
        [address] = Parser(policy=default).parsestr(text)["To"].addresses
        assert ("Zoë", "zoë@example.com") == (address.display_name, address.addr_spec)


class TestHeaders:
    def test_message_id_in_the_senders_domain(self, make_batch: MakeBatch) -> None:
        """The Message-ID is unique and ends in the sender's domain."""
        message_id = parsed(make_batch())["Message-ID"]
        assert (True, True) == (message_id.startswith("<"), message_id.endswith("@example.org>"))

    def test_fresh_message_id_per_message(self, make_batch: MakeBatch) -> None:
        """Two messages never share a Message-ID, even from the same template."""
        batch = make_batch()
        template = MessageTemplate(batch)
        first, second = (template.message(batch.recipients[0]) for _ in range(2))
        assert first.message_id != second.message_id

    def test_message_id_reported(self, make_batch: MakeBatch) -> None:
        """The Message-ID the transports report is the one in the message."""
        batch = make_batch()
        message = MessageTemplate(batch).message(batch.recipients[0])
        assert message.message_id == read(message.data)["Message-ID"]

    def test_date(self, make_batch: MakeBatch) -> None:
        """Date is the time of building, with its zone."""
        assert NOW == parsedate_to_datetime(parsed(make_batch())["Date"])

    def test_from(self, make_batch: MakeBatch) -> None:
        """From has the newsletter's name and address."""
        assert "Connected Communities <news@example.org>" == parsed(make_batch())["From"]

    def test_to(self, make_batch: MakeBatch) -> None:
        """To is the recipient, with their name."""
        assert "Member 0 <member0@example.com>" == parsed(make_batch())["To"]

    def test_non_ascii_names(self, make_batch: MakeBatch, make_recipient: MakeRecipient) -> None:
        """Names outside ASCII survive the trip (as RFC 2047 encoded words)."""
        zoe = make_recipient(1, name="Zoë Ørsted")
        batch = make_batch(
            recipients=[zoe], sender=Sender(name="Côté Cœur", email="news@example.org")
        )
        message = parsed(batch)
        assert ("Côté Cœur", "Zoë Ørsted") == (
            message["From"].addresses[0].display_name,
            message["To"].addresses[0].display_name,
        )

    def test_reply_to(self, make_batch: MakeBatch) -> None:
        """Reply-To is the sender's reply address."""
        assert "editor@example.org" == parsed(make_batch())["Reply-To"]

    def test_no_reply_to_without_one(self, make_batch: MakeBatch) -> None:
        """Without a reply address there is no Reply-To header."""
        batch = make_batch(sender=Sender(name="N", email="news@example.org"))
        assert None is parsed(batch)["Reply-To"]

    def test_subject_personalised(self, make_batch: MakeBatch) -> None:
        """The subject carries the recipient's value, unescaped."""
        assert "Hello Member0: the winter issue" == parsed(make_batch())["Subject"]

    def test_list_id(self, make_batch: MakeBatch) -> None:
        """List-Id names the newsletter and its list-id domain."""
        assert '"Connected Communities" <news.example.org>' == parsed(make_batch())["List-Id"]

    def test_list_id_quotes_specials(self) -> None:
        """A name with quotes is escaped inside the phrase."""
        assert r'"The \"Good\" News" <n.example.org>' == list_id('The "Good" News', "n.example.org")

    def test_list_unsubscribe(self, make_batch: MakeBatch) -> None:
        """List-Unsubscribe is the member's own one-click URL in angle brackets."""
        assert (
            "<https://news.example.org/unsubscribe/tok0>"
            == parsed(make_batch())["List-Unsubscribe"]
        )

    def test_list_unsubscribe_with_mailto(
        self, make_batch: MakeBatch, make_recipient: MakeRecipient
    ) -> None:
        """A mailto may follow the URL."""
        member = make_recipient(1, unsubscribe_mailto="mailto:leave@example.org")
        expected = "<https://news.example.org/unsubscribe/tok1>, <mailto:leave@example.org>"
        assert expected == parsed(make_batch(recipients=[member]))["List-Unsubscribe"]

    def test_long_list_unsubscribe_is_not_encoded(
        self, make_batch: MakeBatch, make_recipient: MakeRecipient
    ) -> None:
        """A long token URL stays a plain URL on the wire, not an encoded word no client follows."""
        url = "https://news.example.org/unsubscribe/" + "T" * 150
        member = make_recipient(
            1, unsubscribe_url=url, unsubscribe_mailto="mailto:leave@example.org"
        )
        data = wire(make_batch(recipients=[member]), member)
        assert (False, True) == (b"=?" in data.split(b"\r\n\r\n")[0], f"<{url}>".encode() in data)

    def test_list_unsubscribe_post(self, make_batch: MakeBatch) -> None:
        """List-Unsubscribe-Post asks for RFC 8058 one-click."""
        assert "List-Unsubscribe=One-Click" == parsed(make_batch())["List-Unsubscribe-Post"]

    def test_extra_headers(self, make_batch: MakeBatch, make_recipient: MakeRecipient) -> None:
        """The batch's and the recipient's extra headers are both present."""
        member = make_recipient(1, headers={"X-Member": "1"})
        message = parsed(make_batch(recipients=[member], headers={"X-Issue": "winter"}))
        assert ("winter", "1") == (message["X-Issue"], message["X-Member"])

    @pytest.mark.parametrize(
        "name",
        [
            "Message-ID",
            "Date",
            "From",
            "To",
            "Subject",
            "List-Id",
            "List-Unsubscribe",
            "MIME-Version",
        ],
    )
    def test_each_header_once(self, make_batch: MakeBatch, name: str) -> None:
        """No header the transport sets appears twice."""
        assert 1 == len(parsed(make_batch()).get_all(name) or [])
