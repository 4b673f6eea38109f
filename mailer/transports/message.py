"""One recipient's RFC 5322 message, for the outbox and SMTP transports.

multipart/alternative with text/plain before text/html (clients show the last
part they understand), UTF-8 in quoted-printable so the message is 7-bit clean
for any relay, and the list headers Gmail and Yahoo require of bulk senders.
"""

from __future__ import annotations

import datetime as dt
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid
from typing import Any

from mailer.transports.base import Batch, Recipient, personalise

ONE_CLICK = "List-Unsubscribe=One-Click"

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
"""What messages are built and written with: policy.SMTP plus URI-list folding."""


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def build_message(
    batch: Batch, recipient: Recipient, *, now: dt.datetime | None = None
) -> EmailMessage:
    """The complete message for one recipient of the batch, with a fresh Message-ID."""
    content = personalise(batch.content, recipient.values)
    sender = batch.sender
    msg = EmailMessage(policy=POLICY)
    msg["Message-ID"] = make_msgid(domain=domain_of(sender.email))
    msg["Date"] = format_datetime(now or dt.datetime.now(dt.UTC))
    msg["From"] = Address(sender.name, addr_spec=sender.email)
    msg["To"] = _address(recipient.name, recipient.email)
    if sender.reply_to:
        msg["Reply-To"] = Address(addr_spec=sender.reply_to)
    msg["Subject"] = content.subject
    msg["List-Id"] = batch.list_id
    msg["List-Unsubscribe"] = recipient.list_unsubscribe
    msg["List-Unsubscribe-Post"] = ONE_CLICK
    for name, value in {**batch.headers, **recipient.headers}.items():
        msg[name] = value
    msg.set_content(content.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(content.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


def _address(name: str, email: str) -> Address | str:
    if email.isascii():
        return Address(name, addr_spec=email)
    # Address() refuses a non-ASCII local part; the header parser takes it (RFC 6532),
    # and to_bytes(utf8=True) writes it as UTF-8.
    phrase = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{phrase}" <{email}>' if name else email


def needs_utf8(msg: EmailMessage) -> bool:
    """Whether an address in the message is not ASCII (SMTPUTF8, RFC 6531/6532)."""
    return not all(address.addr_spec.isascii() for address in msg["To"].addresses)


def to_bytes(msg: EmailMessage, *, utf8: bool | None = None) -> bytes:
    """The message as it goes on the wire or into a .eml file (CRLF line ends).

    Headers are UTF-8 rather than RFC 2047-encoded only when an address needs it.
    """
    utf8 = needs_utf8(msg) if utf8 is None else utf8
    return msg.as_bytes(policy=POLICY.clone(utf8=utf8) if utf8 else POLICY)


def list_id(name: str, domain: str) -> str:
    """A List-Id header value (RFC 2919): the newsletter's name and its list-id domain."""
    if not name.isascii():
        return f"{name} <{domain}>"  # the email package encodes it; quotes would hide that
    phrase = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{phrase}" <{domain}>'
