"""Whose a message is: the VERP token verified against the store, and events in SendGrid's words.

A :class:`~mailer.events.bounces.reading.Reading` lists the addresses a token may be
in: those the message was delivered to (``bounces+b1k-…@``: Postfix's DSNs go to
the envelope sender, so even a DSN whose report names a forwarded or rewritten
address is about the member the token names), then those inside the report (the
returned message's Return-Path and List-Unsubscribe). The first token that
verifies (:mod:`mailer.verp`: signed for that member's address) names the member,
the issue and whether it was a test send. Without one, a finding is matched by the
address the report gives, as SendGrid's events are; a report that gives none is
about nobody we know.

Each finding becomes a :class:`MailboxEvent` that :func:`mailer.events.apply_in`
applies with SendGrid's rules: ``bounce`` of type ``bounce`` (hard), ``blocked``
(soft) or ``delayed`` (soft), ``spamreport``, ``unsubscribe``. Its key in the event
log is ``mailbox:<what>:<member>:<issue ref>`` for a verified token, so the same
news twice (a delay warning and then the final failure, or a report sent twice)
counts once per member and issue; otherwise a hash of the message and the address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from mailer.events.bounces.dsn import Outcome
from mailer.events.bounces.reading import Finding, Reading, ReadingKind
from mailer.store.emails import address_key
from mailer.store.ledger import SendRow
from mailer.store.schema import SubscriberRow
from mailer.verp import Token, VerpSigner, issue_ref

__all__ = ["SOURCE", "Attributed", "Attribution", "MailboxEvent", "attribute"]

SOURCE = "Bounce mailbox"  # how members' history names where these events came from

# Each finding in SendGrid's words: (event, bounce type).
_WORDS = {
    Outcome.hard: ("bounce", "bounce"),
    Outcome.soft: ("bounce", "blocked"),
    Outcome.delayed: ("bounce", "delayed"),
    Outcome.complaint: ("spamreport", None),
    Outcome.unsubscribe: ("unsubscribe", None),
}
# What the key of an event says it is: a delay and a soft failure of one message are one.
_KEY_KIND = {
    Outcome.hard: "hard",
    Outcome.soft: "soft",
    Outcome.delayed: "soft",
    Outcome.complaint: "complaint",
    Outcome.unsubscribe: "unsubscribe",
}


@dataclass(frozen=True, slots=True)
class MailboxEvent:
    """A finding of the bounce mailbox as an event (:class:`mailer.events.rules.Event`)."""

    sg_event_id: str
    email: str
    timestamp: int
    event: str
    type: str | None = None
    reason: str | None = None
    status: str | None = None
    member: int | None = None
    issue: str | None = None
    test: str | None = None
    response: str | None = None
    url: str | None = None
    sg_message_id: str | None = None

    @property
    def source(self) -> str:
        return SOURCE

    @property
    def at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp, dt.UTC)

    @property
    def subscriber_id(self) -> int | None:
        return self.member

    @property
    def issue_slug(self) -> str | None:
        return self.issue

    def as_mapping(self) -> dict[str, Any]:
        """What reconciliation reads: a bounce or complaint proves the message was sent."""
        return {
            "event": self.event,
            "issue": self.issue,
            "subscriber": str(self.member) if self.member is not None else None,
            "test": self.test,
            "sg_message_id": None,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Attribution:
    """The member and issue a verified token names."""

    member_id: int
    email: str
    issue_ref: str  # the token's: stands for the issue even when the ledger has no send of it
    issue: str | None
    test: bool


@dataclass(frozen=True)
class Attributed:
    """A message's events, and whose they are (None: no token verified)."""

    events: tuple[MailboxEvent, ...]
    attribution: Attribution | None
    bad_token: bool  # a token was there but did not verify: forged, damaged, or a forgotten member


class Lookups:
    """What verifying tokens needs from the store, read once per batch of messages."""

    def __init__(self, connection: Connection, tokens: Iterable[Token]) -> None:
        ids = sorted({token.member_id for token in tokens})
        self.emails: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            query = select(SubscriberRow.id, SubscriberRow.email).where(SubscriberRow.id.in_(chunk))
            self.emails.update((row.id, row.email) for row in connection.execute(query))
        self.issues = {issue_ref(slug): slug for slug in connection.scalars(select(SendRow.issue))}


def tokens_in(verp: VerpSigner, readings: Iterable[Reading]) -> list[Token]:
    """Every token in these messages' addresses (to look their members up in one go)."""
    return [
        token
        for reading in readings
        for address in (*reading.recipients, *reading.returned)
        if (token := verp.read(address)) is not None
    ]


def attribute(
    reading: Reading, verp: VerpSigner | None, lookups: Lookups, now: dt.datetime
) -> Attributed:
    """The events a message's findings make, for the member its first verified token names."""
    attribution, bad = _attribution(reading, verp, lookups)
    if reading.kind is ReadingKind.unsubscribe and attribution is None:
        return Attributed((), None, bad)  # nobody to unsubscribe: left alone
    events = [
        event
        for finding in reading.findings
        if (event := _event(reading, finding, attribution, now)) is not None
    ]
    return Attributed(tuple(events), attribution, bad)


def _attribution(
    reading: Reading, verp: VerpSigner | None, lookups: Lookups
) -> tuple[Attribution | None, bool]:
    if verp is None:
        return None, False
    unsubscribing = reading.kind is ReadingKind.unsubscribe
    # An unsubscribe counts only when sent to a List-Unsubscribe address; anything else
    # may name its member through any of ours.
    addresses: Sequence[str] = (
        reading.recipients if unsubscribing else (*reading.recipients, *reading.returned)
    )
    bad = False
    for address in addresses:
        token = verp.read(address)
        if token is None or (unsubscribing and not token.purpose.is_unsubscribe):
            continue
        email = lookups.emails.get(token.member_id)
        if email is None or not verp.verify(token, email):
            bad = True
            continue
        issue = lookups.issues.get(token.issue_ref)
        return Attribution(
            token.member_id, email, token.issue_ref, issue, token.purpose.is_test
        ), bad
    return None, bad


def _event(
    reading: Reading, finding: Finding, who: Attribution | None, now: dt.datetime
) -> MailboxEvent | None:
    address = finding.address
    if who is not None and (
        len(reading.findings) == 1
        or address is None
        or address_key(address) == address_key(who.email)
    ):
        key = f"mailbox:{_KEY_KIND[finding.outcome]}:{who.member_id}:{who.issue_ref}"
        email, member, issue = who.email, who.member_id, who.issue
        test = "true" if who.test else None
        key += ":test" if who.test else ""
    elif address:
        digest = hashlib.sha256(f"{reading.key}\n{address.lower()}".encode()).hexdigest()[:40]
        key = f"mailbox:{_KEY_KIND[finding.outcome]}:{digest}"
        email, member, issue, test = address, None, None, None
    else:
        return None  # a report about an address it does not give, and no token: nobody
    when = min(finding.at or reading.date or now, now)
    event, kind = _WORDS[finding.outcome]
    reported = (
        f"reported for {address}"
        if address and address_key(address) != address_key(email)
        else None
    )
    return MailboxEvent(
        sg_event_id=key[:128],
        email=email[:320],
        timestamp=max(int(when.timestamp()), 0),
        event=event,
        type=kind,
        reason=(finding.diagnostic or reading.note)[:300] or None,
        status=finding.status,
        member=member,
        issue=issue,
        test=test,
        response=reported,
    )
