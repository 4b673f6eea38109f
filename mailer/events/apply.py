"""Applying a batch of events: stored once, written back to the list, in one transaction.

:func:`apply_events` takes one batch (see :mod:`mailer.events.sendgrid` for how the
webhook's are verified and read, :mod:`mailer.events.bounces` for the bounce
mailbox's); :func:`apply_in` does the same in the caller's transaction:

1. **Find the member** through our ``custom_args`` (``subscriber``, checked
   against the event's address, since an id may name someone else after a
   ``forget``), else by address in its one normal form
   (:func:`mailer.store.emails.address_key`: ``info@xn--exmple-cua.org`` is
   ``info@exämple.org``). Events about addresses we do not know are kept.
2. **Lock the members whose status may change** (bounces, complaints,
   unsubscribes; PostgreSQL: ``SELECT ... FOR UPDATE`` in id order, in a READ
   COMMITTED transaction). Batches that share such members take turns instead
   of failing on serialization conflicts, as SERIALIZABLE made 16 concurrent
   1,000-event batches do; the order makes deadlocks impossible. Opens, clicks
   and deliveries, most of a batch, lock nothing: each row locked is a write.
3. **Store once.** Events already in the log (same ``sg_event_id``), read
   after the locks, are skipped; the rest are inserted in key order with
   ``ON CONFLICT DO NOTHING``, for events of no member posted twice at once.
4. **Write back** what :mod:`mailer.events.rules` decides for each member, and
   mark the send ledger's rows that the events settle (:mod:`mailer.events.reconcile`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from mailer.events.reconcile import outcomes
from mailer.events.rules import (
    TARGET,
    Classified,
    Event,
    Kind,
    MemberState,
    classify,
    decide,
    detail,
)
from mailer.events.sendgrid import RejectedEvent
from mailer.store import SubscriberStatus, SubscriberStore, eventlog
from mailer.store.emails import address_key
from mailer.store.transact import run_write

__all__ = ["DEFAULT_SOFT_BOUNCE_LIMIT", "Applied", "apply_events", "apply_in"]

DEFAULT_SOFT_BOUNCE_LIMIT = 3
SOURCE = "webhook"  # the history entries' source, unless the caller names another


# -- applying a batch ----------------------------------------------------------------------------


@dataclass
class Applied:
    """What one batch did."""

    received: int = 0  # events in the batch
    duplicates: int = 0  # already stored (or twice in the batch): skipped
    stored: int = 0  # new events kept in the log
    unknown_addresses: int = 0  # new events about no member of ours
    status_changes: Counter[str] = field(default_factory=Counter)  # members, by new status
    ledger_sent: int = 0  # deliveries now marked sent
    ledger_dropped: int = 0  # deliveries now marked failed for good
    rejected: int = 0  # items of the batch that are not events we can apply
    rejected_new: list[RejectedEvent] = field(default_factory=list)  # of those, first seen now
    # Each new event's member (None: an address not on the list) and what it did, by its key.
    logged: dict[str, tuple[int | None, str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "duplicates": self.duplicates,
            "stored": self.stored,
            "unknown_addresses": self.unknown_addresses,
            "status_changes": dict(self.status_changes),
            "ledger": {"sent": self.ledger_sent, "dropped": self.ledger_dropped},
            "rejected": self.rejected,
        }


def apply_events(
    store: SubscriberStore,
    events: Sequence[Event],
    *,
    soft_bounce_limit: int = DEFAULT_SOFT_BOUNCE_LIMIT,
    now: dt.datetime | None = None,
    source: str = SOURCE,
    rejected: Sequence[RejectedEvent] = (),
) -> Applied:
    """Store a batch of events once and write them back to the list, in one transaction.

    ``rejected``: the batch's items that are not events (:func:`mailer.events.sendgrid.parse`),
    kept once each in the same transaction for ``mailer events rejected``.
    """
    when = now or dt.datetime.now(dt.UTC)

    def work(connection: Connection) -> Applied:
        applied = apply_in(
            connection, events, soft_bounce_limit=soft_bounce_limit, when=when, source=source
        )
        applied.rejected = len(rejected)
        kept = eventlog.keep_rejected(connection, [_rejected_row(r, when) for r in rejected])
        applied.rejected_new = [r for r in rejected if r.fingerprint in kept]
        return applied

    # The members' row locks (see the module docstring) keep batches apart on PostgreSQL.
    return run_write(store.engine, work, isolation="READ COMMITTED")


def _rejected_row(item: RejectedEvent, when: dt.datetime) -> dict[str, Any]:
    return {
        "fingerprint": item.fingerprint,
        "received_at": when,
        "reason": item.reason,
        "body": item.text,
        "email_key": address_key(item.email)[:320] if item.email else "",
    }


def apply_in(
    connection: Connection,
    events: Sequence[Event],
    *,
    soft_bounce_limit: int = DEFAULT_SOFT_BOUNCE_LIMIT,
    when: dt.datetime,
    source: str = SOURCE,
) -> Applied:
    """:func:`apply_events` in the caller's write transaction, which it leaves uncommitted.

    For work that must commit with the events or not at all: the bounce mailbox
    marks each message processed in the transaction that applies what it says.
    """
    if soft_bounce_limit < 1:
        raise ValueError("soft_bounce_limit must be at least 1")
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.sg_event_id, event)  # the first of an event sent twice
    applied = Applied(received=len(events))
    _apply(connection, list(unique.values()), soft_bounce_limit, when, applied, source)
    applied.duplicates = len(events) - applied.stored
    return applied


def _apply(
    connection: Connection,
    events: Sequence[Event],
    limit: int,
    when: dt.datetime,
    applied: Applied,
    source: str,
) -> None:
    seen = eventlog.stored_ids(connection, [event.sg_event_id for event in events])
    candidates = [Classified(e, classify(e)) for e in events if e.sg_event_id not in seen]
    if not candidates:
        return  # a replay: nothing to lock
    owners = eventlog.owners(
        connection,
        [
            (i.event.sg_event_id, address_key(i.event.email), i.event.subscriber_id)
            for i in candidates
        ],
    )
    # The members whose status these events may change, locked, then the log read again:
    # what another batch stored for them meanwhile is visible now (READ COMMITTED reads
    # what is committed at each statement). Opens, clicks and deliveries lock nothing:
    # their rows are kept once by ON CONFLICT, and a delivery racing a soft-bounce
    # streak ends as if it came after it (see mailer.events.rules).
    deciding = {
        owners[i.event.sg_event_id]
        for i in candidates
        if _decides(i) and i.event.sg_event_id in owners
    }
    present = eventlog.lock_members(connection, sorted(deciding))
    owners = {
        key: owner for key, owner in owners.items() if owner not in deciding or owner in present
    }
    # Only their events can have been stored by a batch that held a lock we waited for;
    # any other event stored meanwhile is skipped by ON CONFLICT, and what it settles in
    # the ledger is settled the same way twice.
    locked = [key for key, owner in owners.items() if owner in present]
    seen = eventlog.stored_ids(connection, locked) if locked else set()
    new = [item for item in candidates if item.event.sg_event_id not in seen]
    if not new:
        return
    by_member: dict[int, list[Classified]] = defaultdict(list)
    for item in new:
        owner = owners.get(item.event.sg_event_id)
        if owner is not None:
            by_member[owner].append(item)
    states = _member_states(connection, by_member)
    decisions = {
        member_id: decide(states[member_id], items, limit=limit)
        for member_id, items in by_member.items()
        if member_id in states
    }
    effects = {key: text for d in decisions.values() for key, text in d.effects.items()}
    rows = [_log_row(item, owners.get(item.event.sg_event_id), effects, when) for item in new]
    rows.sort(key=lambda row: row["sg_event_id"])  # one order for every batch: no deadlock
    applied.stored = eventlog.insert_events(connection, rows)
    applied.logged = {row["sg_event_id"]: (row["subscriber_id"], row["effect"]) for row in rows}
    applied.unknown_addresses = sum(1 for row in rows if row["subscriber_id"] is None)
    changes = [
        eventlog.StatusChange(member_id, states[member_id].status, d.status, d.reason[:1000])
        for member_id, d in decisions.items()
        if d.status is not None
    ]
    eventlog.change_statuses(connection, changes, when, source)
    applied.status_changes.update(change.status_to for change in changes)
    accepted, dropped = outcomes(item.event.as_mapping() for item in new)
    applied.ledger_sent, applied.ledger_dropped = eventlog.settle_deliveries(
        connection, accepted, dropped, when
    )


def _decides(item: Classified) -> bool:
    """Whether the event may change its member's status (and so reads their state)."""
    return item.kind in TARGET or item.kind is Kind.soft_bounce


def _member_states(
    connection: Connection, by_member: Mapping[int, Sequence[Classified]]
) -> dict[int, MemberState]:
    """The state of members whose new events may change their status (the others need none)."""
    relevant = [
        member_id for member_id, items in by_member.items() if any(_decides(item) for item in items)
    ]
    if not relevant:
        return {}
    facts = eventlog.member_facts(
        connection, relevant, delivered=Kind.delivered, soft_bounce=Kind.soft_bounce
    )
    return {
        member_id: MemberState(
            id=member_id,
            status=SubscriberStatus(fact.status),
            joined_at=fact.joined_at,
            last_delivered_at=fact.last_delivered_at,
            soft_bounces=fact.soft_bounces,
        )
        for member_id, fact in facts.items()
    }


def _log_row(
    item: Classified, owner: int | None, effects: Mapping[str, str], when: dt.datetime
) -> dict[str, Any]:
    event = item.event
    key = event.sg_event_id
    if owner is None:
        # An address that is not a member's (never was, or was forgotten): counted, and
        # kept so that a replay is known, but nothing that could be the person's is
        # stored: not the address, nor the bounce text or the click URL, which may hold it.
        return {
            "sg_event_id": key,
            "event": event.event,
            "kind": item.kind.value,
            "email": "",
            "subscriber_id": None,
            "issue": event.issue_slug,
            "occurred_at": event.at,
            "received_at": when,
            "detail": "",
            "effect": "unknown address",
            "url": None,
            "test": _is_test(event),
        }
    return {
        "sg_event_id": key,
        "event": event.event,
        "kind": item.kind.value,
        "email": event.email,
        "subscriber_id": owner,
        "issue": event.issue_slug,
        "occurred_at": event.at,
        "received_at": when,
        "detail": detail(event),
        "effect": effects.get(key) or "recorded",
        "url": _clicked_url(item),
        "test": _is_test(event),
    }


def _clicked_url(item: Classified) -> str | None:
    """A click's URL as the report groups links by (whole, unlike ``detail``)."""
    url = (item.event.url or "").strip()
    return url[: eventlog.URL_LENGTH] if item.kind is Kind.click and url else None


def _is_test(event: Event) -> bool:
    """Whether the event is of a test send: our custom_args say ``test: "true"``."""
    return (event.test or "").strip().lower() == "true"
