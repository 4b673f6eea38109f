"""The message as the email package builds it: what MessageTemplate must match.

This is how the transports built every message before MessageTemplate (~10 ms
each): slow, but the email package does all the encoding and folding. The tests
compare what each way gives a mail client: parsed back, the same headers and parts.
"""

from __future__ import annotations

import datetime as dt
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser, Parser
from email.policy import default
from email.utils import format_datetime, make_msgid
from typing import cast

from mailer.headersafety import header_safe
from mailer.mail import Batch, Recipient, fill, header_values, personalise
from mailer.transports.message import ONE_CLICK, POLICY, UTF8_POLICY, domain_of, to_address


def build_message(batch: Batch, recipient: Recipient, *, now: dt.datetime) -> EmailMessage:
    """The complete message for one recipient of the batch, with a fresh Message-ID.

    Member text in headers as mailer means it (:func:`header_safe`): on one line, and
    left out if it holds an encoded-word, which the email package would decode.
    """
    content = personalise(batch.content, recipient.values)
    subject = fill(batch.content.subject, header_values(recipient.values), escape=False)
    sender = batch.sender
    msg = EmailMessage(policy=POLICY)
    msg["Message-ID"] = make_msgid(domain=domain_of(sender.email))
    msg["Date"] = format_datetime(now)
    msg["From"] = Address(sender.name, addr_spec=sender.email)
    msg["To"] = to_address(header_safe(recipient.name), recipient.email)
    if sender.reply_to:
        msg["Reply-To"] = Address(addr_spec=sender.reply_to)
    msg["Subject"] = subject
    msg["List-Id"] = batch.list_id
    msg["List-Unsubscribe"] = recipient.list_unsubscribe
    msg["List-Unsubscribe-Post"] = ONE_CLICK
    for name, value in {**batch.headers, **recipient.headers}.items():
        msg[name] = value
    msg.set_content(content.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(content.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


def oracle_bytes(batch: Batch, recipient: Recipient, *, now: dt.datetime) -> bytes:
    """The email package's message as bytes: headers in UTF-8 only for a non-ASCII address."""
    msg = build_message(batch, recipient, now=now)
    utf8 = not all(address.addr_spec.isascii() for address in msg["To"].addresses)
    return msg.as_bytes(policy=UTF8_POLICY if utf8 else POLICY)


def parse(data: bytes) -> EmailMessage:
    """The message as a mail client reads it; one that takes UTF-8 headers (RFC 6532)."""
    if data.isascii():
        return cast(EmailMessage, BytesParser(policy=default).parsebytes(data))
    return cast(EmailMessage, Parser(policy=default).parsestr(data.decode("utf-8")))


def parts(message: EmailMessage) -> list[EmailMessage]:
    return [cast(EmailMessage, part) for part in message.iter_parts()]


_VARY = {"Message-ID", "Content-Type"}  # Content-Type: for its boundary


def reading(data: bytes) -> dict[str, object]:
    """What a mail client makes of a message, but for what differs every time.

    Every header but Message-ID and Content-Type, decoded, in order; the type and
    its parameters but the boundary; and each part's type, charset, transfer
    encoding and decoded body. Whitespace before a header's value is folding, not
    text, though the email package's parser keeps it when a value starts on the
    next line (as the email package itself folds some).
    """
    message = parse(data)
    params = message["Content-Type"].params
    return {
        "headers": [
            (name, str(value).lstrip(" \t")) for name, value in message.items() if name not in _VARY
        ],
        "type": (message.get_content_type(), {k: v for k, v in params.items() if k != "boundary"}),
        "parts": [
            (
                part.get_content_type(),
                part.get_content_charset(),
                part.get("Content-Transfer-Encoding"),
                part.get_content(),
            )
            for part in parts(message)
        ],
    }
