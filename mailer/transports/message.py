"""One recipient's RFC 5322 message, for the outbox and SMTP transports.

multipart/alternative with text/plain before text/html (clients show the last
part they understand), UTF-8 in quoted-printable so the message is 7-bit clean
for any relay, and the list headers Gmail and Yahoo require of bulk senders.

The messages of a batch differ only in a few headers and the filled-in bodies, so
a :class:`MessageTemplate` folds the shared headers once per batch and writes each
message's bytes directly. An ``EmailMessage`` per recipient took 3-10 ms for the
sample issue, most of it quoting the HTML in pure Python; ``binascii.b2a_qp`` does
that in C (0.3 ms a message in all). URI-list headers are never RFC 2047-encoded.
The tests check the messages against the ones the email package builds.
"""

from __future__ import annotations

import binascii
import datetime as dt
import re
import secrets
from dataclasses import dataclass
from email.headerregistry import Address, HeaderRegistry, UnstructuredHeader
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid
from typing import Any

from mailer.headersafety import check_header_block, header_safe
from mailer.mail import Batch, Recipient, fill, header_values, personalised_text, placeholders_in

ONE_CLICK = "List-Unsubscribe=One-Click"

_MAX_LINE = 78  # the longest header line the email package writes (RFC 5322's SHOULD)

# Headers whose value is a list of <URI>s. The email package folds a long word by
# turning it into an RFC 2047 encoded-word, which no client reads as a URI; fold
# these between their URIs instead.
_URI_LIST_HEADERS = frozenset(
    {"list-unsubscribe", "list-archive", "list-help", "list-subscribe", "list-post", "archived-at"}
)


class _MailPolicy(EmailPolicy):
    """policy.SMTP, except that URI-list headers are never encoded."""

    def _uri_list(self, name: str, value: Any) -> str | None:
        text = str(value)
        if name.lower() not in _URI_LIST_HEADERS or not text.isascii():
            return None
        return f"{name}: " + text.replace(", <", "," + self.linesep + " <") + self.linesep

    def fold(self, name: str, value: Any) -> str:
        return self._uri_list(name, value) or super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        folded = self._uri_list(name, value)
        return folded.encode("ascii") if folded else super().fold_binary(name, value)


POLICY = _MailPolicy(linesep="\r\n")
"""How headers are folded: policy.SMTP plus URI-list folding."""

UTF8_POLICY = POLICY.clone(utf8=True)
"""POLICY for a message to a non-ASCII address: headers in UTF-8, not RFC 2047 (RFC 6532)."""

# Headers the email package parses as addresses, dates, IDs...: it may rewrite their
# text (quote, normalise), so they always go through it.
_STRUCTURED = frozenset(
    name
    for name, kind in HeaderRegistry().registry.items()
    if not issubclass(kind, UnstructuredHeader)
)

# Printable ASCII words between single spaces: text the email package writes as it is
# (folded at its spaces), unless it has "=?", which it would decode as an encoded word.
_PLAIN = re.compile(r"[!-~]+(?: [!-~]+)*")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# A name of atoms and a dot-atom address: the email package writes "name <address>" as is.
_PLAIN_NAME = re.compile(rf"(?:{_ATEXT}(?: {_ATEXT})*)?")
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def to_address(name: str, email: str) -> Address | str:
    """The To header's value, as the email package takes it."""
    if email.isascii():
        return Address(name, addr_spec=email)
    # Address() refuses a non-ASCII local part; the header parser takes it (RFC 6532),
    # and UTF8_POLICY writes it as UTF-8.
    return f'"{_escaped(name)}" <{email}>' if name else email


def list_id(name: str, domain: str) -> str:
    """A List-Id header value (RFC 2919): the newsletter's name and its list-id domain."""
    if not name.isascii():
        return f"{name} <{domain}>"  # the email package encodes it; quotes would hide that
    return f'"{_escaped(name)}" <{domain}>'


def _escaped(phrase: str) -> str:
    """A phrase ready to go between double quotes (RFC 5322 quoted-string)."""
    return phrase.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True, slots=True)
class WireMessage:
    """One recipient's message, as it goes on the wire or into a .eml file (CRLF line ends)."""

    message_id: str
    data: bytes
    utf8: bool
    """The address is not ASCII: the headers are UTF-8 and SMTP needs SMTPUTF8 (RFC 6531)."""


class MessageTemplate:
    """A batch's messages: shared headers folded once, the rest filled in per recipient."""

    def __init__(self, batch: Batch) -> None:
        self._batch = batch
        self._domain = domain_of(batch.sender.email)
        self._fixed: dict[bool, _Fixed] = {}  # by utf8, made when first needed
        boundary = _boundary()
        self._mime_headers = (
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'
        ).encode("ascii")
        self._head = self._mime_headers + b"\r\n" + _part_head(boundary, "plain").encode("ascii")
        self._names = (
            "Message-ID", "Date", "From", "To", *(("Reply-To",) if batch.sender.reply_to else ()),
            "Subject", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", *batch.headers,
        )  # fmt: skip
        self._html_head = ("\r\n" + _part_head(boundary, "html")).encode("ascii")
        self._end = f"\r\n--{boundary}--\r\n".encode("ascii")
        self._quoted_printable = QuotedPrintable()

    def message(self, recipient: Recipient, *, now: dt.datetime | None = None) -> WireMessage:
        """The recipient's message, with its Message-ID (``recipient.message_id``, else fresh).

        Raises HeaderInjectionError if the headers written are not the ones meant.
        """
        utf8 = not recipient.email.isascii()
        message_id = recipient.message_id or make_msgid(domain=self._domain)
        content, values = self._batch.content, recipient.values
        headers = b"".join(
            self._headers(recipient, message_id, now or dt.datetime.now(dt.UTC), utf8)
        )
        check_header_block(headers + self._mime_headers, self._header_names(recipient))
        data = b"".join(
            [
                headers,
                self._head,
                self._quoted_printable(personalised_text(content, values)),
                self._html_head,
                self._quoted_printable(fill(content.html, values, escape=True)),
                self._end,
            ]
        )
        return WireMessage(message_id=message_id, data=data, utf8=utf8)

    def _header_names(self, recipient: Recipient) -> tuple[str, ...]:
        """The headers the recipient's message is meant to have, in order."""
        return (*self._names, *recipient.headers, "MIME-Version", "Content-Type")

    def _headers(
        self, recipient: Recipient, message_id: str, now: dt.datetime, utf8: bool
    ) -> list[bytes]:
        """The recipient's headers, in the order the email package wrote them."""
        policy = UTF8_POLICY if utf8 else POLICY
        fixed = self._fixed_for(utf8)
        subject = fixed.subject
        if subject is None:
            filled = fill(
                self._batch.content.subject, header_values(recipient.values), escape=False
            )
            subject = _header(policy, "Subject", filled)
        ids = f"Message-ID: {message_id}\r\nDate: {format_datetime(now)}\r\n"
        return [
            ids.encode("utf-8" if utf8 else "ascii"),
            fixed.sender,
            _to(policy, header_safe(recipient.name), recipient.email),
            fixed.reply_to,
            subject,
            fixed.list_id,
            _header(policy, "List-Unsubscribe", recipient.list_unsubscribe),
            fixed.rest,
            *(_header(policy, name, value) for name, value in recipient.headers.items()),
        ]

    def _fixed_for(self, utf8: bool) -> _Fixed:
        # Made lazily: most batches never need the UTF-8 form.
        if utf8 not in self._fixed:
            self._fixed[utf8] = _Fixed.of(self._batch, UTF8_POLICY if utf8 else POLICY)
        return self._fixed[utf8]


@dataclass(frozen=True)
class _Fixed:
    """The headers every message of a batch shares, folded in one policy."""

    sender: bytes
    reply_to: bytes  # empty without a reply address
    subject: bytes | None  # None when the subject has placeholders
    list_id: bytes
    rest: bytes  # List-Unsubscribe-Post and the batch's own headers

    @classmethod
    def of(cls, batch: Batch, policy: _MailPolicy) -> _Fixed:
        sender, subject = batch.sender, batch.content.subject
        reply_to = sender.reply_to
        return cls(
            sender=_fold(policy, "From", Address(sender.name, addr_spec=sender.email)),
            reply_to=_fold(policy, "Reply-To", Address(addr_spec=reply_to)) if reply_to else b"",
            subject=None if placeholders_in(subject) else _header(policy, "Subject", subject),
            list_id=_header(policy, "List-Id", batch.list_id),
            rest=b"".join(
                _header(policy, name, value)
                for name, value in {"List-Unsubscribe-Post": ONE_CLICK, **batch.headers}.items()
            ),
        )


def return_path_header(address: str) -> bytes:
    """The Return-Path line a receiving server puts first: the envelope sender (RFC 5321 4.4)."""
    return f"Return-Path: <{address}>\r\n".encode("utf-8" if not address.isascii() else "ascii")


def _boundary() -> str:
    # Quoted-printable writes "=" only before two hex digits or a line end, so no
    # body can hold "=_", nor any line starting with this boundary.
    return "=_" + secrets.token_hex(16)


def _part_head(boundary: str, subtype: str) -> str:
    return (
        f"--{boundary}\r\n"
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )


MOST_BYTES_KEPT = 1_000_000
"""How much a batch's :class:`QuotedPrintable` keeps, lines and their encodings."""


class QuotedPrintable:
    """UTF-8 text in quoted-printable as on the wire: 7-bit, CRLF line ends.

    Line ends are split as the email package splits them (bytes: CR, LF or CRLF).
    b2a_qp escapes "=", bytes outside printable ASCII, a space or tab before a line
    end and a lone "." on a line. Its lines are at most 76 characters, or 77 when it
    escapes a space or tab before a line end (the email package writes up to 78).

    b2a_qp encodes every line on its own, and most lines of a variant's text and HTML
    are the same in every member's message, the values being on a few: each line's
    encoding is kept, up to ``most`` bytes of lines and encodings (the first met, which
    are the variant's own), so that a batch encodes those once instead of once a member.
    """

    def __init__(self, most: int = MOST_BYTES_KEPT) -> None:
        self._encoded: dict[bytes, bytes] = {}
        self._room = most

    def __call__(self, text: str) -> bytes:
        encoded, b2a_qp = self._encoded, binascii.b2a_qp
        parts = []
        for line in text.encode("utf-8").splitlines() or [b""]:
            part = encoded.get(line)
            if part is None:
                part = b2a_qp(line + b"\r\n", istext=True)
                size = len(line) + len(part)
                if size <= self._room:
                    encoded[line] = part
                    self._room -= size
            parts.append(part)
        return b"".join(parts)


def _header(policy: _MailPolicy, name: str, value: str) -> bytes:
    """A header as the email package writes it, skipping its slow parser for plain text."""
    if name.lower() in _URI_LIST_HEADERS and _PLAIN.fullmatch(value):
        return policy.fold_binary(name, value)  # between its URIs
    return _fold_plain(name, value) or _fold(policy, name, value)


def _to(policy: _MailPolicy, name: str, email: str) -> bytes:
    value = f"{name} <{email}>" if name else email
    plain = _PLAIN_NAME.fullmatch(name) and _PLAIN_ADDRESS.fullmatch(email)
    if plain and "=?" not in value and len(value) + len("To: ") <= _MAX_LINE:
        return f"To: {value}\r\n".encode("ascii")
    utf8 = policy.utf8
    if name and (_QUOTABLE_UTF8 if utf8 else _QUOTABLE).fullmatch(name):
        return _quoted_to(name, email, utf8)
    return _fold(policy, "To", to_address(name, email))


# A display name written as one quoted-string: printable ASCII, or (RFC 6532, a UTF-8
# message) any text but control characters. The email package folds a long quoted
# name by dropping its quotes, so '<a@x><a@x>...' would become the addresses in To.
_QUOTABLE = re.compile(r"[ -~]+")
_QUOTABLE_UTF8 = re.compile(r"[^\x00-\x1f\x7f-\x9f]+")
_MAX_QUOTED = 900  # keeps the line under RFC 5322's 998 characters


def _quoted_to(name: str, email: str, utf8: bool) -> bytes:
    """To with the name as one quoted-string: never folded inside, the address may go below."""
    phrase = f'"{_escaped(name)}"' if len(name) <= _MAX_QUOTED else ""
    head = f"To: {phrase}" if phrase else "To:"
    fold = " " if len(head) + len(email) + 3 <= _MAX_LINE else "\r\n "
    return f"{head}{fold}<{email}>\r\n".encode("utf-8" if utf8 else "ascii")


def _fold_plain(name: str, value: str) -> bytes | None:
    """Plain text folded at its spaces; None when the email package must encode it."""
    if name.lower() in _STRUCTURED or "=?" in value or not _PLAIN.fullmatch(value):
        return None
    first = line = f"{name}:"
    lines = []
    for word in value.split(" "):
        if len(line) + 1 + len(word) > _MAX_LINE:
            if line == first or len(word) + 1 > _MAX_LINE:
                return None  # no room to fold: the email package encodes the word
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _fold(policy: _MailPolicy, name: str, value: object) -> bytes:
    """A header exactly as the email package writes it (header_store_parse refuses CR, LF)."""
    _, header = policy.header_store_parse(name, value)
    return policy.fold_binary(name, header)
