"""Bounce mailbox messages made to order: DSNs as Postfix writes them, ARF complaints, replies.

For tests and benchmarks that need many messages of a known kind; the corpus of
hand-written samples in the formats of major providers is in
tests/events/bounces/corpus/. Addresses are fictional.
"""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime

from mailer.config import Settings
from mailer.verp import VerpPurpose, VerpSigner, verp_signer

ISSUE = "2026-12-03-winter-connections"
BOUNCE_ADDRESS = "bounces@news.example.org"
SECRET = "test-secret-key-0123456789abcdef"


def signer(bounce_address: str = BOUNCE_ADDRESS, secret: str = SECRET) -> VerpSigner:
    """The VERP signer mailer uses with this bounce address and key."""
    settings = Settings(bounce_address=bounce_address, secret_key=secret, transport="smtp")
    made = verp_signer(settings)
    assert made is not None
    return made


def envelope(verp: VerpSigner, member_id: int, email: str, issue: str = ISSUE) -> str:
    """The envelope sender mailer gave a member's copy of an issue."""
    return verp.address(VerpPurpose.bounce, member_id, issue, email)


def dsn(
    to: str,
    recipient: str,
    *,
    status: str = "5.1.1",
    action: str = "failed",
    diagnostic: str | None = None,
    message_id: str,
    date: dt.datetime | None = None,
) -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464), to ``to``."""
    when = format_datetime(date or dt.datetime.now(dt.UTC))
    said = diagnostic or f"smtp; 550 {status} <{recipient}>: Recipient address rejected"
    return (
        f"Return-Path: <>\r\n"
        f"Delivered-To: {to}\r\n"
        f"Date: {when}\r\n"
        f"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n"
        f"To: {to}\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        f"Message-Id: <{message_id}>\r\n"
        f"\r\n"
        f"--B\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n"
        f"\r\n"
        f"I'm sorry to have to inform you that your message could not be delivered.\r\n"
        f"\r\n"
        f"--B\r\n"
        f"Content-Type: message/delivery-status\r\n"
        f"\r\n"
        f"Reporting-MTA: dns; mx.example.net\r\n"
        f"X-Postfix-Sender: rfc822; {to}\r\n"
        f"Arrival-Date: {when}\r\n"
        f"\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: {said}\r\n"
        f"\r\n"
        f"--B\r\n"
        f"Content-Type: text/rfc822-headers\r\n"
        f"\r\n"
        f"Return-Path: <{to}>\r\n"
        f"From: Connected Communities <news@news.example.org>\r\n"
        f"To: {recipient}\r\n"
        f"Subject: Winter connections\r\n"
        f"\r\n"
        f"--B--\r\n"
    ).encode()
