"""No member text can add a header to the newsletter's mail, through any transport.

A member's name goes into To, and through a merge tag into the Subject. The
attack found in review was an RFC 2047 encoded-word carrying CR LF: it passed the
line-break check (which looked at the raw text) and the email package decoded it
inside the quoted display name, writing real line breaks. Here names and values
are built from encoded-words, quotes, backslashes, commas, angle brackets and
every character that ends a line, and handed to the transports as the send does
(``Recipient.trusted``, no validation): every message must parse back to one To
with the member's address, one Subject, the intended Reply-To and mailer's MIME
structure.
"""

from __future__ import annotations

import email
import email.policy
import json
from email.message import EmailMessage
from pathlib import Path
from typing import cast

import pytest
from doubles.sendgrid import SendGridDouble
from doubles.smtp import SmtpServer
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import SecretStr

from mailer.config import Sender
from mailer.headersafety import (
    HeaderInjectionError,
    check_header_block,
    check_header_value,
    header_safe,
)
from mailer.mail import Batch, Content, Recipient, placeholder
from mailer.transports.message import MessageTemplate, list_id
from mailer.transports.outbox import OutboxTransport
from mailer.transports.sendgrid import SendGridTransport, request_body
from mailer.transports.smtp import SmtpTransport, parse_smtp_url

# The name from the report: a confirmation email that would read "Your account is locked".
ATTACK = (
    '=?utf-8?q?x"=0D=0ASubject:_Your_account_is_locked=0D=0AReply-To:_a@evil.example'
    "=0D=0AContent-Type:_text/html=0D=0A=0D=0A<a_href=https://evil.example>Unlock</a>=0D=0A?="
)
LINE_BREAKS = ["\r\n", *"\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"]
PIECES = st.one_of(
    st.sampled_from(
        [
            ATTACK,
            "=?utf-8?q?=0D=0ABcc:_victim@example.org?=",
            "=?utf-8?b?DQpCY2M6IHZpY3RpbUBleGFtcGxlLm9yZw==?=",  # base64 of CRLF "Bcc: victim@..."
            "=?iso-8859-1?q?=0A?=",
            "=?",
            "?=",
            '"',
            "\\",
            ",",
            "<",
            ">",
            "<victim@example.org>",
            "Bcc: victim@example.org",
            "Reply-To: a@evil.example",
            " ",
            "Ann",
            "Zoë",
        ]
    ),
    st.sampled_from(LINE_BREAKS),
    st.text(max_size=8),
)
HOSTILE = st.lists(PIECES, max_size=8).map("".join)

SENDER = Sender(
    name="Connected Communities", email="news@example.org", reply_to="editor@example.org"
)
ADDRESS = "member@example.org"
URL = "https://news.example.org/unsubscribe/tok"
CONTENT = Content(
    subject=f"Winter news for {placeholder('name')}",
    html=f"<p>Dear {placeholder('name')}</p>",
    text=f"Dear {placeholder('name')}\n",
)


def hostile_member(name: str) -> Recipient:
    """A member as the send builds one from the store: trusted, not validated."""
    return Recipient.trusted(
        email=ADDRESS,
        name=name,
        values={"name": name},
        unsubscribe_url=URL,
        custom_args={"issue": "2026-01-08-winter", "subscriber": "1"},
    )


def batch_for(recipient: Recipient) -> Batch:
    return Batch(
        issue="2026-01-08-winter",
        sender=SENDER,
        content=CONTENT,
        list_id=list_id("Connected Communities", "news.example.org"),
        recipients=[recipient],
    )


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    return cast(EmailMessage, message)


MEANT = [
    "Message-ID",
    "Date",
    "From",
    "To",
    "Reply-To",
    "Subject",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
]


def assert_as_meant(message: EmailMessage) -> None:
    """One To with the member's address, one Subject, our Reply-To, our MIME structure."""
    assert MEANT == list(message.keys())
    assert [ADDRESS] == [address.addr_spec for address in message["To"].addresses]
    assert str(message["Subject"]).startswith("Winter news for")
    assert ["editor@example.org"] == [a.addr_spec for a in message["Reply-To"].addresses]
    assert "multipart/alternative" == message.get_content_type()
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert ["text/plain", "text/html"] == parts
    for value in (str(message["To"]), str(message["Subject"])):
        assert not any(brk in value for brk in LINE_BREAKS)


class TestTheReportedAttack:
    def test_the_name_adds_no_header_to_the_message(self) -> None:
        """The confirmation-email attack: no Subject, Reply-To or Content-Type of the attacker's."""
        recipient = hostile_member(ATTACK)
        message = parsed(MessageTemplate(batch_for(recipient)).message(recipient).data)
        assert_as_meant(message)
        assert "Winter news for" == str(message["Subject"]).strip()
        assert not [value for _, value in message.items() if "evil.example" in str(value)]

    def test_the_member_still_gets_the_message_addressed_to_them_alone(self) -> None:
        """The hostile name is left out of To; the address stands on its own."""
        recipient = hostile_member(ATTACK)
        message = parsed(MessageTemplate(batch_for(recipient)).message(recipient).data)
        assert ADDRESS == str(message["To"])


class TestAnyNameOrValue:
    @given(name=HOSTILE)
    @example(name=ATTACK)
    @example(name='"\\"=?utf-8?q?=0D=0A?=, <x@y>')
    @example(name="<victim@example.org>" * 4)  # the email package unquotes it when folding
    def test_outbox_and_smtp_messages_parse_back_as_meant(self, name: str) -> None:
        """Outbox and SMTP share MessageTemplate: whatever the name, the headers are ours."""
        recipient = hostile_member(name)
        assert_as_meant(parsed(MessageTemplate(batch_for(recipient)).message(recipient).data))

    @given(name=HOSTILE)
    @example(name=ATTACK)
    def test_sendgrid_gets_a_name_and_subject_on_one_line_without_encoded_words(
        self, name: str
    ) -> None:
        """SendGrid writes the headers itself from to.name and subject: both are plain."""
        body = json.loads(request_body(batch_for(hostile_member(name))))
        [personalization] = body["personalizations"]
        [to] = personalization["to"]
        assert ADDRESS == to["email"]
        for value in (to.get("name", ""), personalization["subject"]):
            assert not any(brk in value for brk in LINE_BREAKS)
            assert "=?" not in value
        assert personalization["subject"].startswith("Winter news for")


class TestThroughRealTransports:
    def test_the_outbox_writes_a_clean_file(self, tmp_path: Path) -> None:
        recipient = hostile_member(ATTACK)
        with OutboxTransport(tmp_path) as outbox:
            [delivery] = outbox.send(batch_for(recipient))
        assert "sent" == delivery.state
        assert_as_meant(parsed(outbox.path_for(batch_for(recipient), recipient).read_bytes()))

    def test_smtp_hands_the_server_a_clean_message(self, smtp_server: SmtpServer) -> None:
        """Through aiosmtpd: what the relay receives is what mailer meant."""
        recipient = hostile_member(ATTACK)
        with SmtpTransport(parse_smtp_url(smtp_server.url()), timeout=5) as smtp:
            [delivery] = smtp.send(batch_for(recipient))
        assert "sent" == delivery.state
        [received] = smtp_server.messages
        assert [ADDRESS] == received.rcpt_tos
        assert_as_meant(parsed(received.data))

    def test_sendgrid_takes_the_request(self, sendgrid_double: SendGridDouble) -> None:
        """The double checks the request against SendGrid's schema, then delivers it."""
        recipient = hostile_member(ATTACK)
        key = SecretStr("SG.test-key")
        with SendGridTransport(key, api_url=sendgrid_double.url, timeout=5) as sendgrid:
            [delivery] = sendgrid.send(batch_for(recipient))
        assert "sent" == delivery.state
        delivered = sendgrid_double.delivered_to(ADDRESS)
        assert delivered.name is None
        assert "Winter news for" == delivered.subject.strip()


class TestTheLastGuard:
    """A defect between the store and the wire is caught where the message is built."""

    def test_a_smuggled_header_is_refused(self) -> None:
        head = b"To: a@example.org\r\nSubject: x\r\nBcc: victim@example.org\r\n"
        with pytest.raises(HeaderInjectionError, match="bcc"):
            check_header_block(head, ["To", "Subject"])

    def test_folded_lines_are_part_of_their_header(self) -> None:
        head = b"To: a@example.org\r\nSubject: a long\r\n subject\r\n\tstill\r\n"
        check_header_block(head, ["To", "Subject"])

    @pytest.mark.parametrize("head", [b"To: a\nBcc: b\r\n", b"To: a\rBcc: b\r\n"])
    def test_a_bare_cr_or_lf_is_refused(self, head: bytes) -> None:
        with pytest.raises(HeaderInjectionError, match="bare CR or LF"):
            check_header_block(head, ["To"])

    def test_a_line_that_is_not_a_header_is_refused(self) -> None:
        with pytest.raises(HeaderInjectionError, match="not 'Name: value'"):
            check_header_block(b"To: a\r\n<a href=x>Unlock</a>\r\n", ["To"])

    @pytest.mark.parametrize("value", ["a\r\nBcc: b", "x\u2028y", "=?utf-8?q?=0A?="])
    def test_a_provider_value_with_a_break_or_encoded_word_is_refused(self, value: str) -> None:
        with pytest.raises(HeaderInjectionError):
            check_header_value("Subject", value)

    def test_the_outbox_refuses_a_message_whose_headers_broke_out(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With the name neutraliser and the To writer replaced by naive ones (a stand-in
        for a future defect), the guard refuses the message: a permanent failure, and no
        file written."""
        monkeypatch.setattr("mailer.transports.message.header_safe", lambda text: text)
        monkeypatch.setattr(
            "mailer.transports.message._to",
            lambda policy, name, email: f"To: {name} <{email}>\r\n".encode(),
        )
        recipient = hostile_member("Ann\r\nBcc: victim@example.org")
        with OutboxTransport(tmp_path) as outbox:
            [delivery] = outbox.send(batch_for(recipient))
        assert ("failed", True) == (delivery.state, delivery.permanent)
        assert "not sent" in (delivery.error or "")
        assert [] == list(tmp_path.rglob("*.eml"))


class TestHeaderSafe:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("Ann Lee", "Ann Lee"),
            ("Ann\r\nLee", "Ann Lee"),
            ("Ann\u2028 Lee\x85", "Ann Lee"),
            ('O\'Brien, "Siobhán" <x>', 'O\'Brien, "Siobhán" <x>'),
            (ATTACK, ""),
            ("What =? is this", ""),
        ],
    )
    def test_member_text_for_a_header(self, given: str, expected: str) -> None:
        assert expected == header_safe(given)

    @given(st.text())
    @example("Ann =\r\n?q?x?=")
    @example("=\u2028?\x1c\x85\x0b")
    def test_what_it_gives_needs_no_second_check(self, text: str) -> None:
        """Whatever a member wrote, the header-safe text passes the last header check (the
        SendGrid transport relies on it for the To name)."""
        safe = header_safe(text)
        assert safe == check_header_value("To", safe)
