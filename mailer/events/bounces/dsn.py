"""Delivery status notifications (RFC 3464): what a mail server says became of each recipient.

A DSN is ``multipart/report; report-type=delivery-status``: a note for people, a
``message/delivery-status`` part (``message/global-delivery-status`` for
internationalised mail, RFC 6533) and usually the returned message or its
headers. The status part is one block of per-message fields (``Reporting-MTA``,
``Arrival-Date``...) and a block per recipient (``Final-Recipient``, ``Action``,
``Status``, ``Diagnostic-Code``...). This module reads those blocks; what they do
to a member is :mod:`mailer.events.bounces.reading`'s business.

What a recipient's block means (:func:`outcome`):

* ``Action: failed`` with a 5.x.x ``Status``: a hard bounce; the address does not
  work. Two exceptions are soft: x.7.x, a security or policy refusal (the sender or
  the message was refused, not the address: SendGrid calls these blocks), and
  x.2.2, a full mailbox, which RFC 3463 says is a persistent *transient* failure.
* ``Action: failed`` with a 4.x.x status (the server gave up retrying), or with
  none: a soft bounce.
* ``Action: delayed``: a soft bounce too; the server is still trying.
* ``delivered``, ``relayed``, ``expanded``: nothing to do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import Message
from enum import StrEnum

from mailer.events.bounces.fields import (
    field_blocks,
    header_text,
    parse_date,
    status_code,
    typed_address,
)

__all__ = ["DeliveryReport", "Outcome", "RecipientStatus", "outcome", "read_dsn"]

STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")


class Outcome(StrEnum):
    """What a report says of one address."""

    hard = "hard"  # it does not work: the member is bounced
    soft = "soft"  # it failed this time: counted toward MAILER_SOFT_BOUNCE_LIMIT
    delayed = "delayed"  # not delivered yet, still being tried: counted the same
    complaint = "complaint"  # the member marked the message as spam
    unsubscribe = "unsubscribe"  # the member wrote to the List-Unsubscribe address


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """One recipient's block of a DSN."""

    action: str
    status: str | None
    final_recipient: str | None
    original_recipient: str | None
    diagnostic: str
    last_attempt: dt.datetime | None

    @property
    def address(self) -> str | None:
        """The address as we sent to it, when the server kept it; else the one it delivered to."""
        return self.original_recipient or self.final_recipient


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """The machine-readable part of a DSN."""

    reporting_mta: str
    arrival: dt.datetime | None
    # Postfix names the envelope sender (our VERP address) in X-Postfix-Sender.
    envelope_sender: str | None
    recipients: tuple[RecipientStatus, ...]


def read_dsn(message: Message) -> DeliveryReport | None:
    """The delivery report in a message; None when it has no delivery-status part."""
    part = next((p for p in message.walk() if p.get_content_type() in STATUS_TYPES), None)
    if part is None:
        return None
    blocks = field_blocks(part)
    per_message = blocks[0] if blocks and "action" not in blocks[0] else Message()
    recipients = tuple(
        _recipient(block) for block in blocks if "action" in block or "final-recipient" in block
    )
    return DeliveryReport(
        reporting_mta=header_text(per_message.get("reporting-mta")).partition(";")[2].strip(),
        arrival=parse_date(per_message.get("arrival-date")),
        envelope_sender=typed_address(per_message.get("x-postfix-sender")),
        recipients=recipients,
    )


def _recipient(block: Message) -> RecipientStatus:
    diagnostic = header_text(block.get("diagnostic-code"))
    status_field = header_text(block.get("status"))
    return RecipientStatus(
        action=header_text(block.get("action")).lower().split(" ")[0].strip("();"),
        status=status_code(status_field, diagnostic),
        final_recipient=typed_address(block.get("final-recipient")),
        original_recipient=typed_address(block.get("original-recipient")),
        diagnostic=diagnostic.partition(";")[2].strip() if ";" in diagnostic else diagnostic,
        last_attempt=parse_date(block.get("last-attempt-date")),
    )


def outcome(recipient: RecipientStatus) -> Outcome | None:
    """What a recipient's block means (see the module docstring); None: nothing to do."""
    action = recipient.action
    if action.startswith("delayed"):
        return Outcome.delayed
    # opensmtpd writes "error" where RFC 3464 says "failed".
    if not action.startswith(("fail", "error")):
        return None
    status = recipient.status or ""
    if status.startswith("5.") and not status.startswith(("5.7.", "5.2.2")):
        return Outcome.hard
    return Outcome.soft
