"""Feedback reports (RFC 5965, the Abuse Reporting Format): a mailbox provider's word that
a member marked a message as spam.

An ARF report is ``multipart/report; report-type=feedback-report``: a note for
people, a ``message/feedback-report`` part of fields (``Feedback-Type``,
``User-Agent``, ``Version``, and optionally ``Original-Mail-From``,
``Original-Rcpt-To``, ``Arrival-Date``, ``Reporting-MTA``, ``Source-IP``...) and the
message complained about, whole (``message/rfc822``) or its headers only
(``text/rfc822-headers``). Providers often redact the recipient's address from
both; the returned headers still carry our VERP Return-Path and List-Unsubscribe
address, which name the member.

``Feedback-Type: abuse`` (a spam complaint) and ``fraud`` (phishing) are
complaints; ``not-spam`` (RFC 6430), ``virus``, ``auth-failure`` (RFC 6591) and
``other`` are not about the member, and are left alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from mailer.events.bounces.fields import (
    body_text,
    field_blocks,
    header_text,
    parse_date,
    typed_address,
)

__all__ = ["COMPLAINTS", "FeedbackReport", "read_arf"]

COMPLAINTS = frozenset({"abuse", "fraud"})
RETURNED_TYPES = ("message/rfc822", "text/rfc822-headers", "message/global-headers")


@dataclass(frozen=True, slots=True)
class FeedbackReport:
    """The machine-readable part of an ARF report, and the headers of the message it is about."""

    feedback_type: str
    user_agent: str
    original_mail_from: str | None
    original_rcpt_to: tuple[str, ...]
    arrival: dt.datetime | None
    original: Message | None  # the returned message's headers

    @property
    def is_complaint(self) -> bool:
        return self.feedback_type in COMPLAINTS


def read_arf(message: Message) -> FeedbackReport | None:
    """The feedback report in a message; None when it has no message/feedback-report part."""
    part = next(
        (p for p in message.walk() if p.get_content_type() == "message/feedback-report"), None
    )
    if part is None:
        return None
    blocks = field_blocks(part)
    fields = blocks[0] if blocks else Message()
    return FeedbackReport(
        feedback_type=header_text(fields.get("feedback-type")).lower() or "other",
        user_agent=header_text(fields.get("user-agent")),
        original_mail_from=typed_address(fields.get("original-mail-from")),
        original_rcpt_to=tuple(
            address
            for value in fields.get_all("original-rcpt-to") or []
            if (address := typed_address(value)) is not None
        ),
        arrival=parse_date(fields.get("arrival-date") or fields.get("received-date")),
        original=returned_headers(message),
    )


def returned_headers(message: Message) -> Message | None:
    """The headers of the message a report returns (DSN or ARF), if it has them."""
    for part in message.walk():
        if part.get_content_type() not in RETURNED_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        return HeaderParser(policy=compat32).parsestr(body_text(part))
    return None
