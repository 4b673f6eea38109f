"""Reading the machine-readable parts of reports: blocks of ``Name: value`` fields, typed
addresses, dates and status codes. Pure functions over the email package's messages.

A ``message/delivery-status`` part (RFC 3464), a ``message/global-delivery-status``
one (RFC 6533) and a ``message/feedback-report`` one (RFC 5965) are all blocks of
header-like fields separated by blank lines. The email package parses the first
into one message per block and the others into something else, and some servers
send them base64-encoded: :func:`field_blocks` gets the text back whatever
happened to it and reads the blocks itself.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import quopri
import re
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

__all__ = [
    "addresses_in",
    "body_text",
    "field_blocks",
    "header_text",
    "parse_date",
    "status_code",
    "typed_address",
]

_HEADERS = HeaderParser(policy=compat32)
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BASIC = re.compile(r"(?<![\d.])([245])\d\d(?![\d.])")
_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")
_SIMPLE_ADDRESS = re.compile(r"<?([^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+)>?")
_MAX_FIELD = 2000  # characters of one field kept: reports are small, this is no report


def header_text(value: object) -> str:
    """A header's value as one line of text (encoded words decoded, folding undone), fit to
    store: bytes that are not UTF-8 become U+FFFD, and NULs go (PostgreSQL refuses them)."""
    if value is None:
        return ""
    if not isinstance(value, str):  # compat32 gives a Header for undecodable bytes
        value = str(value)
    text = value
    if "=?" in value:  # encoded words to decode; most fields of most reports have none
        try:
            text = str(make_header(decode_header(value)))
        except (ValueError, LookupError, UnicodeError):
            text = value
    return _storable(" ".join(text.split())[:_MAX_FIELD])


def _storable(text: str) -> str:
    if text.isascii() and "\x00" not in text:
        return text
    raw = text.encode("utf-8", "surrogateescape")  # the bytes the parser could not decode
    return raw.decode("utf-8", "replace").replace("\x00", "")


def body_text(part: Message) -> str:
    """The text of a part whatever the email package made of it, transfer encoding undone."""
    payload = part.get_payload()
    if isinstance(payload, list):  # parsed into header blocks or an embedded message
        raw = "\n".join(_as_text(item) for item in payload if isinstance(item, Message))
    else:
        raw = payload if isinstance(payload, str) else ""
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    data = raw.encode("utf-8", "surrogateescape")
    try:
        if encoding == "base64":
            data = base64.b64decode(data, validate=False)
        elif encoding == "quoted-printable":
            data = quopri.decodestring(data)
    except (binascii.Error, ValueError):
        pass
    return data.decode("utf-8", "replace")


def _as_text(message: Message) -> str:
    """A parsed block back as text, its fields as received (no refolding, no re-encoding)."""
    fields = "\n".join(f"{name}: {value}" for name, value in message.items())
    payload = message.get_payload()
    body = payload if isinstance(payload, str) else ""
    return f"{fields}\n\n{body}" if body.strip() else fields


def field_blocks(part: Message) -> list[Message]:
    """The blocks of ``Name: value`` fields in a report part, each as a header-only message."""
    payload = part.get_payload()
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    if (
        isinstance(payload, list)
        and encoding not in ("base64", "quoted-printable")
        and all(isinstance(block, Message) and not block.get_payload() for block in payload)
    ):
        return list(payload)  # the email package's own blocks (message/delivery-status)
    blocks = []
    for chunk in _BLANK_LINE.split(body_text(part)):
        if chunk.strip():
            blocks.append(_HEADERS.parsestr(chunk.strip("\r\n") + "\n"))
    return blocks


def typed_address(value: object) -> str | None:
    """The address in ``rfc822; user@example.org`` (RFC 3464's address-type; utf-8 too)."""
    text = header_text(value)
    if not text:
        return None
    kind, semicolon, address = text.partition(";")
    if not semicolon:
        address = kind
    address = address.strip().strip("<>").strip()
    return address if "@" in address and " " not in address else None


def addresses_in(value: object) -> list[str]:
    """The addresses in an address header's value (To, Delivered-To, Return-Path...)."""
    text = header_text(value)
    simple = _SIMPLE_ADDRESS.fullmatch(text)
    if simple:  # one plain address, bracketed or not: most such headers; skips a slow parse
        return [simple[1]] if "@" in simple[1] else []
    return [address for _, address in getaddresses([text]) if "@" in address]


def parse_date(value: object) -> dt.datetime | None:
    """An RFC 5322 date as an aware UTC datetime; None when absent or not a date."""
    text = header_text(value)
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000": the time is UTC, its zone unknown
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def status_code(*texts: str | None) -> str | None:
    """The RFC 3463 status code (``5.1.1``) in the first text that has one; failing that, the
    class of a basic SMTP reply code (``550`` gives ``5.0.0``)."""
    for text in texts:
        match = _ENHANCED.search(text or "")
        if match:
            return ".".join(match.groups())
    for text in texts:
        basic = _BASIC.search(text or "")
        if basic:
            return f"{basic[1]}.0.0"
    return None
