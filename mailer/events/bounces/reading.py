"""What a message in the bounce mailbox says: a pure function from its bytes to a :class:`Reading`.

In this order, the first that fits:

1. An RFC 3464 delivery report (:mod:`~mailer.events.bounces.dsn`): a finding per
   recipient that failed or is delayed. A report in which every recipient was
   delivered is left alone.
2. An RFC 5965 feedback report (:mod:`~mailer.events.bounces.arf`): a complaint,
   when its type is ``abuse`` or ``fraud``; any other type is left alone. So are
   other reports (read receipts, RFC 8098).
3. A bounce in one of the free-text formats of old servers and large providers,
   as far as the Mailman project's ``flufl.bounce`` recognises them, and only in a
   message from a mail system (an empty Return-Path, or From MAILER-DAEMON,
   postmaster...), so that a person quoting a bounce is not taken for one.
4. A message to a ``List-Unsubscribe`` address (a ``u``/``v`` VERP token in the
   address it was delivered to) that is not an automatic reply: the member
   unsubscribes (one marked ``Auto-Submitted: auto-generated`` counts: mail
   programs write these requests for the member).
5. Anything else, auto-replies (RFC 3834's ``Auto-Submitted``, and the headers and
   subjects of the common out-of-office replies) and people writing included, is
   left alone.

Nothing here raises for bad input: a message that cannot be read at all is
"other", with the reason. Whose message it is (the VERP token, verified) is
decided later, with the store (:mod:`mailer.events.bounces.attribution`).
"""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import logging
import re
from dataclasses import dataclass, field, replace
from email.message import Message
from email.policy import compat32
from enum import StrEnum

from flufl.bounce import all_failures

from mailer.events.bounces.arf import FeedbackReport, read_arf, returned_headers
from mailer.events.bounces.dsn import DeliveryReport, Outcome, outcome, read_dsn
from mailer.events.bounces.fields import addresses_in, header_text, parse_date

__all__ = ["Finding", "Reading", "ReadingKind", "read_message"]

log = logging.getLogger(__name__)

MAX_MESSAGE = 10 * 1024 * 1024  # bytes read of one message: a bounce is a few KB
_KEY_LENGTH = 250
# Headers naming the address a message was delivered to, most trustworthy first.
ENVELOPE_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to", "cc")
_DAEMON = re.compile(
    r"^(mailer-daemon|mail-daemon|mailerdaemon|postmaster|mail\.?delivery\.?(system|subsystem)?)@",
    re.IGNORECASE,
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|autoreply|out of (the )?office|"
    r"abwesenheitsnotiz|r[ée]ponse automatique|risposta automatica|respuesta autom[áa]tica|"
    r"on vacation|away from (my|the) (desk|office))",
    re.IGNORECASE,
)
_MAILTO = re.compile(r"<mailto:([^>?\s]+)", re.IGNORECASE)


class ReadingKind(StrEnum):
    dsn = "dsn"  # an RFC 3464 delivery report
    arf = "arf"  # an RFC 5965 feedback report
    bounce = "bounce"  # a bounce in a free-text format
    unsubscribe = "unsubscribe"  # a message to a List-Unsubscribe address
    auto_reply = "auto_reply"  # out of office and the like: left alone
    other = "other"  # anything else: left alone


@dataclass(frozen=True, slots=True)
class Finding:
    """What a report says of one address (the address as the report gives it, if it does)."""

    outcome: Outcome
    address: str | None = None
    status: str | None = None  # RFC 3463: 5.1.1
    diagnostic: str = ""  # what the server said
    at: dt.datetime | None = None  # when it happened, if the report says


@dataclass(frozen=True)
class Reading:
    """What one message says, before anyone is looked up."""

    kind: ReadingKind
    key: str  # Message-ID, or a hash of the bytes: the same message met twice is known by it
    sender: str  # From
    subject: str
    date: dt.datetime | None
    note: str  # why it was read so, for the command's listing
    findings: tuple[Finding, ...] = ()
    # Where a VERP token may be: the addresses the message was delivered to, first...
    recipients: tuple[str, ...] = ()
    # ...then, for a report, the addresses inside it (X-Postfix-Sender, Original-Mail-From,
    # the returned message's Return-Path and List-Unsubscribe).
    returned: tuple[str, ...] = field(default=())

    @property
    def acts(self) -> bool:
        """Whether the message may change a member (rather than being left alone)."""
        return bool(self.findings)


def read_message(raw: bytes) -> Reading:
    """What the message says; never raises (an unreadable message is 'other', with why)."""
    key = message_key(raw, None)
    try:
        message = email.message_from_bytes(raw[:MAX_MESSAGE], policy=compat32)
        key = message_key(raw, message)
        return _read(message, key)
    except Exception as error:  # bad input must never stop a fetch
        log.warning("could not read a message (%s): %s", key, error)
        return Reading(ReadingKind.other, key, "", "", None, f"could not be read: {error}")


def message_key(raw: bytes, message: Message | None) -> str:
    """The message's Message-ID, without brackets; failing that, ``sha256:`` and its hash."""
    if message is not None:
        found = header_text(message.get("message-id")).strip().strip("<>").strip()
        if found and " " not in found:
            return found[:_KEY_LENGTH]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _read(message: Message, key: str) -> Reading:
    date = parse_date(message.get("date"))
    other = Reading(
        ReadingKind.other,
        key=key,
        sender=header_text(message.get("from")),
        subject=header_text(message.get("subject")),
        date=date,
        note="not a bounce, complaint or unsubscribe",
        recipients=tuple(_recipients(message)),
    )
    report = read_dsn(message)
    if report is not None:
        return _from_dsn(other, report, message)
    feedback = read_arf(message)
    if feedback is not None:
        return _from_arf(other, feedback)
    if message.get_content_type() == "multipart/report":
        kind = header_text(message.get_param("report-type")) or "unknown"
        return replace(other, note=f"a report of type {kind}, not a bounce")
    if _from_mail_system(message):
        findings = _free_text_bounce(message, date)
        if findings:
            returned = tuple(_returned_addresses(returned_headers(message)))
            return replace(
                other,
                kind=ReadingKind.bounce,
                note="a bounce in a free-text format",
                findings=findings,
                returned=returned,
            )
    automatic = automatic_reason(message)
    # A mail program may mark the message it writes for the member "auto-generated"; only a
    # reply (an out-of-office answering whatever reached it) is not the member's request.
    replying = automatic is not None and "auto-generated" not in automatic
    if not replying and any(_unsubscribe_token(address) for address in other.recipients):
        return replace(
            other,
            kind=ReadingKind.unsubscribe,
            note="a message to the List-Unsubscribe address",
            findings=(Finding(Outcome.unsubscribe, at=date),),
        )
    if automatic is not None:
        return replace(other, kind=ReadingKind.auto_reply, note=automatic)
    return other


def _from_dsn(other: Reading, report: DeliveryReport, message: Message) -> Reading:
    findings = []
    for recipient in report.recipients:
        found = outcome(recipient)
        if found is not None:
            findings.append(
                Finding(
                    found,
                    recipient.address,
                    recipient.status,
                    recipient.diagnostic,
                    recipient.last_attempt or other.date or report.arrival,
                )
            )
    returned = [report.envelope_sender, *_returned_addresses(returned_headers(message))]
    if not findings:
        actions = ", ".join(sorted({r.action or "none" for r in report.recipients})) or "none"
        return replace(other, note=f"a delivery report with nothing failed (action: {actions})")
    failed = sum(1 for f in findings if f.outcome is not Outcome.delayed)
    note = "a delivery report (RFC 3464): " + (
        f"{failed} failed" if failed else "delayed, still being tried"
    )
    return replace(
        other,
        kind=ReadingKind.dsn,
        note=note,
        findings=tuple(findings),
        returned=tuple(address for address in returned if address),
    )


def _from_arf(other: Reading, report: FeedbackReport) -> Reading:
    agent = f" from {report.user_agent}" if report.user_agent else ""
    if not report.is_complaint:
        return replace(
            other, note=f"a feedback report (RFC 5965) of type {report.feedback_type}{agent}"
        )
    addresses = report.original_rcpt_to or tuple(
        addresses_in(report.original.get("to")) if report.original is not None else ()
    )
    at = report.arrival or other.date
    findings = tuple(
        Finding(
            Outcome.complaint, address, diagnostic=f"Feedback-Type: {report.feedback_type}", at=at
        )
        for address in (addresses[:1] or (None,))  # one complaint: about one message to one member
    )
    returned = [report.original_mail_from, *_returned_addresses(report.original)]
    return replace(
        other,
        kind=ReadingKind.arf,
        note=f"a spam complaint (RFC 5965, {report.feedback_type}){agent}",
        findings=findings,
        returned=tuple(address for address in returned if address),
    )


def _recipients(message: Message) -> list[str]:
    """The addresses the message was delivered to, as its headers say, most trustworthy first."""
    found: list[str] = []
    for name in ENVELOPE_HEADERS:
        for value in message.get_all(name) or []:
            found.extend(addresses_in(value))
    return list(dict.fromkeys(found))


def _returned_addresses(headers: Message | None) -> list[str]:
    """Our addresses in a returned message's headers: its Return-Path, its List-Unsubscribe mailto."""
    if headers is None:
        return []
    found = addresses_in(headers.get("return-path"))
    found += _MAILTO.findall(header_text(headers.get("list-unsubscribe")))
    return found


def _unsubscribe_token(address: str) -> bool:
    """Whether an address has the shape of a List-Unsubscribe VERP address (``local+u...``)."""
    local = address.rpartition("@")[0]
    token = local.partition("+")[2].lower()
    return token[:1] in ("u", "v") and token.count("-") == 2


def _from_mail_system(message: Message) -> bool:
    """Sent by a mail system, not a person: an empty Return-Path, or From a mailer daemon."""
    return_path = message.get("return-path")
    if return_path is not None and header_text(return_path).strip() in ("<>", ""):
        return True
    senders = addresses_in(message.get("from"))
    return any(_DAEMON.match(sender) for sender in senders)


def _free_text_bounce(message: Message, date: dt.datetime | None) -> tuple[Finding, ...]:
    """The failures flufl.bounce finds in a free-text bounce; none if it finds none, or fails."""
    try:
        temporary, permanent = all_failures(message)
    except Exception as error:  # a detector tripping over odd input: not a bounce we can read
        log.warning("flufl.bounce could not read a message: %s", error)
        return ()
    findings = [Finding(Outcome.hard, _text(a), at=date) for a in sorted(permanent)]
    findings += [Finding(Outcome.soft, _text(a), at=date) for a in sorted(temporary - permanent)]
    return tuple(f for f in findings if f.address)


def _text(address: bytes) -> str | None:
    text = address.decode("ascii", "replace").strip().strip("<>")
    return text if "@" in text else None


def automatic_reason(message: Message) -> str | None:
    """Why a message is an automatic reply (RFC 3834 and common practice); None for a person's."""
    submitted = header_text(message.get("auto-submitted")).lower()
    if submitted and not submitted.startswith("no"):
        return f"an automatic reply (Auto-Submitted: {submitted})"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        if message.get(name) is not None:
            return f"an automatic reply ({name.title()})"
    precedence = header_text(message.get("precedence")).lower()
    if precedence in ("auto_reply", "bulk", "junk", "list"):
        return f"an automatic reply (Precedence: {precedence})"
    if header_text(message.get("x-auto-response-suppress")):
        return "an automatic reply (X-Auto-Response-Suppress)"
    subject = header_text(message.get("subject"))
    if _AUTO_SUBJECT.match(subject):
        return f"an automatic reply (subject: {subject[:60]})"
    return None
