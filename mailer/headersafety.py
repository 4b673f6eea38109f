"""Member text in mail headers, and the last check on every header block mailer writes.

A member's name goes into the ``To`` header, and any member field may go into a
subject through a merge tag. Two things in such text can add headers of its own:

* a character that ends a line: CR, LF, and the others ``str.splitlines`` knows
  (VT, FF, the file/group/record separators, NEL, U+2028 and U+2029);
* an RFC 2047 encoded-word, ``=?utf-8?q?...?=``: the email package decodes one
  wherever it finds it in a header, inside a quoted display name too, and writes
  what it decoded, CR LF included (Python 3.11.7 has no ``verify_generated_headers``).

So member text is taken in two steps. At the border (sign-up form, import,
``subscribers add``) a name, organisation or region holding ``=?`` is refused,
and its whitespace, line breaks included, collapses to single spaces
(:func:`profile_text_problem`, :func:`one_line`). Where a message is built,
:func:`header_safe` does the same to whatever comes from the store, written before
that rule or not; and :func:`check_header_block` checks the header block actually
written, for the outbox and SMTP, so that a defect anywhere in between refuses the
message instead of sending what an attacker wrote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from mailer.errors import MailerError

__all__ = [
    "ENCODED_WORD",
    "ENCODED_WORD_OPENER",
    "LINE_BREAK",
    "HeaderInjectionError",
    "HeaderLine",
    "check_header_block",
    "check_header_value",
    "header_safe",
    "one_line",
    "profile_text_problem",
]

ENCODED_WORD_OPENER = "=?"
"""What every RFC 2047 encoded-word starts with; no name or organisation needs it."""

ENCODED_WORD = re.compile(r"=\?[^?]*\?[bBqQ]\?[^?]*\?=")
"""An RFC 2047 encoded-word as the email package decodes it, e.g. ``=?utf-8?q?Zo=C3=AB?=``."""

LINE_BREAK = re.compile("[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
"""What ends a line for ``str.splitlines``, and for the email package, which refuses them all in a header."""

# A header line: a field name (RFC 5322 ftext: printable ASCII but ':') and a colon.
_FIELD_NAME = re.compile(rb"([!-9;-~]+):")


def _check_header_line(value: str) -> str:
    if LINE_BREAK.search(value):
        raise PydanticCustomError(
            "header_line", "must be on one line: a line break would end the mail header"
        )
    if ENCODED_WORD.search(value):
        raise PydanticCustomError(
            "header_encoded_word",
            "contains an encoded header ('=?...?='), which mail programs decode; "
            "write the text itself",
        )
    return value


HeaderLine = AfterValidator(_check_header_line)
"""Validates text an editor or operator writes for a header (subject, From's name)."""


class HeaderInjectionError(MailerError):
    """A generated header block that is not the one mailer meant: the message is not sent."""


def one_line(text: str) -> str:
    """Text on one line: every run of whitespace, line breaks included, is one space."""
    return " ".join(text.split())


def header_safe(text: str) -> str:
    """Member text as it may go into a header: on one line, and never an encoded-word.

    Text holding ``=?`` becomes "": the header goes without it (an address with no
    name, a merge tag's fallback), rather than carry what the email package would decode.
    """
    if ENCODED_WORD_OPENER in text:
        return ""
    return one_line(text)


def profile_text_problem(field: str, text: str) -> str | None:
    """Why a member's name, organisation or region is refused at the border, or None."""
    if ENCODED_WORD_OPENER in text:
        return (
            f"the {field} contains '=?', which mail programs read as an encoded header "
            f"(RFC 2047); write the {field} as plain text"
        )
    return None


def check_header_value(name: str, value: str) -> str:
    """*value*, if it can go into header *name* as it is; for a provider that writes the header."""
    if LINE_BREAK.search(value) or ENCODED_WORD.search(value):
        raise HeaderInjectionError(
            f"the {name} header would carry a line break or an encoded-word; "
            "the message was not sent"
        )
    return value


def check_header_block(head: bytes, expected: Sequence[str]) -> None:
    """Refuse a header block whose lines are not exactly the headers *expected*, in order.

    *head* is everything before the blank line that ends the headers. Every line
    break in it must be CRLF, and every line must either start a header named in
    *expected* or continue the one before (start with a space or tab). Anything
    else means a value broke out of its header: raise HeaderInjectionError.
    """
    lines = head.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    names: list[str] = []
    for line in lines:
        if b"\r" in line or b"\n" in line:
            raise HeaderInjectionError("a header holds a bare CR or LF; the message was not sent")
        if line[:1] in (b" ", b"\t"):
            if not names:
                raise HeaderInjectionError("the header block starts with a continuation line")
            continue
        field = _FIELD_NAME.match(line)
        if field is None:
            raise HeaderInjectionError(
                f"a header line is not 'Name: value' ({line[:40]!r}); the message was not sent"
            )
        names.append(field[1].decode("ascii").lower())
    wanted = [name.lower() for name in expected]
    if names != wanted:
        raise HeaderInjectionError(
            f"the message would carry the headers {names}, not the {wanted} mailer wrote; "
            "a value broke out of its header, so the message was not sent"
        )
