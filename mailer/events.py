"""SendGrid's delivery events, and what each does to the subscriber list.

SendGrid posts events in batches (see :mod:`mailer.web.webhook` for the HTTP
side). :func:`apply_events` takes one batch, in one transaction:

1. **Store once.** Events already in the log (same ``sg_event_id``) are
   skipped; the rest are inserted (``ON CONFLICT DO NOTHING`` as well, for a
   batch posted twice at once).
2. **Find the member** through our ``custom_args`` (``subscriber``, checked
   against the event's address, since an id may name someone else after a
   ``forget``), else by address. Events about addresses we do not know are kept.
3. **Write back**, by :class:`Kind`:

   ========================================  =========================================
   hard bounce (``bounce`` type ``bounce``,   member becomes ``bounced``
   ``dropped`` "Bounced Address")
   complaint (``spamreport``, ``dropped``     ``complained``: never mailed again
   "Spam Reporting Address")
   unsubscribe (``unsubscribe``,              ``unsubscribed``
   ``group_unsubscribe``, ``dropped``
   "Unsubscribed Address")
   soft bounce (``bounce`` type ``blocked``)  counted; ``soft_bounce_limit`` in a row
                                              (no delivery between) makes ``bounced``
   ``delivered``, ``open``, ``click``,        kept for reports; the send ledger's row
   ``processed``, ``deferred``                is marked sent (:mod:`mailer.reconcile`)
   ========================================  =========================================

Order does not matter. SendGrid does not promise order, retries batches, and
a batch may be replayed, so the outcome is defined over the *set* of events:

* An event counts only if it happened after the member last joined (was added,
  re-subscribed or confirmed): events from before a re-subscription are stale.
* Among the events that count, the most serious status wins (complained >
  bounced > unsubscribed), whatever order they come in; events never make
  anyone active again, and never make a member less suppressed.
* The soft-bounce streak is counted from the log (soft bounces after the later
  of the member's last delivery and their joining), not kept as a counter, so a
  late delivery or a late bounce lands where its timestamp puts it. One case
  cannot be undone: once a streak has made a member ``bounced``, a delivery
  that arrives later with an earlier timestamp does not revive them (events
  never make anyone active).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
)
from sqlalchemy import Connection

from mailer.reconcile import outcomes
from mailer.store import SubscriberStatus, SubscriberStore, eventlog
from mailer.store.emails import InvalidEmail, normalise_email
from mailer.store.transact import run_write

__all__ = [
    "DEFAULT_SOFT_BOUNCE_LIMIT",
    "Applied",
    "Decision",
    "Kind",
    "MemberState",
    "SendGridEvent",
    "apply_events",
    "classify",
    "decide",
]

DEFAULT_SOFT_BOUNCE_LIMIT = 3
# The largest timestamp a datetime can hold (9999-12-31T23:59:59Z).
MAX_TIMESTAMP = 253_402_300_799
SOURCE = "webhook"
_DETAIL_LENGTH = 300


def storable(value: str) -> bool:
    """Whether text can be stored: no NUL (PostgreSQL refuses it), no lone surrogate (not UTF-8)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _storable(value: str) -> str:
    if not storable(value):
        raise ValueError("must not contain NUL or unpaired surrogate characters")
    return value


def _text_or_none(value: object) -> str | None:
    """Optional fields are read leniently: a number becomes text, anything else is absent."""
    if isinstance(value, str):
        return value if storable(value) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


Lenient = Annotated[str | None, BeforeValidator(_text_or_none)]
Required = Annotated[StrictStr, AfterValidator(_storable)]


class SendGridEvent(BaseModel):
    """One event as SendGrid posts it: strict on the fields every event has, lenient on the rest.

    Unknown fields are kept (``model_extra``): SendGrid adds fields over time, and
    our ``custom_args`` arrive as top-level keys (``issue``, ``subscriber``, ``test``).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    email: Annotated[Required, Field(min_length=1, max_length=320)]
    timestamp: Annotated[StrictInt, Field(ge=0, le=MAX_TIMESTAMP)]
    event: Annotated[Required, Field(min_length=1, max_length=40)]
    sg_event_id: Annotated[Required, Field(min_length=1, max_length=128)]
    sg_message_id: Lenient = None
    type: Lenient = None
    reason: Lenient = None
    response: Lenient = None
    status: Lenient = None
    url: Lenient = None
    issue: Lenient = None
    subscriber: Lenient = None
    test: Lenient = None

    @property
    def at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp, dt.UTC)

    @property
    def subscriber_id(self) -> int | None:
        """Our subscriber id from custom_args, when it is one."""
        value = (self.subscriber or "").strip()
        return int(value) if value.isdigit() and 0 < len(value) <= 12 else None

    @property
    def issue_slug(self) -> str | None:
        value = (self.issue or "").strip()
        return value if 0 < len(value) <= 100 else None

    def as_mapping(self) -> dict[str, Any]:
        """The fields :mod:`mailer.reconcile` reads."""
        return {
            "event": self.event,
            "issue": self.issue_slug,
            "subscriber": self.subscriber,
            "test": self.test,
            "sg_message_id": self.sg_message_id,
            "reason": self.reason,
        }


class Kind(StrEnum):
    """What an event means for the list."""

    hard_bounce = "hard_bounce"
    soft_bounce = "soft_bounce"
    complaint = "complaint"
    unsubscribe = "unsubscribe"
    delivered = "delivered"
    open = "open"
    click = "click"
    accepted = "accepted"  # processed, deferred: SendGrid has the message
    dropped = "dropped"  # dropped for another reason (e.g. "Invalid")
    other = "other"  # group_resubscribe, and event types we do not know


# The status each kind moves a member to, and how serious each status is.
TARGET = {
    Kind.hard_bounce: SubscriberStatus.bounced,
    Kind.complaint: SubscriberStatus.complained,
    Kind.unsubscribe: SubscriberStatus.unsubscribed,
}
RANK = {
    SubscriberStatus.active: 0,
    SubscriberStatus.pending: 0,
    SubscriberStatus.unsubscribed: 1,
    SubscriberStatus.bounced: 2,
    SubscriberStatus.complained: 3,
}
_DROPPED = {
    "bounced address": Kind.hard_bounce,
    "spam reporting address": Kind.complaint,
    "unsubscribed address": Kind.unsubscribe,
}
_SIMPLE = {
    "processed": Kind.accepted,
    "deferred": Kind.accepted,
    "delivered": Kind.delivered,
    "open": Kind.open,
    "click": Kind.click,
    "spamreport": Kind.complaint,
    "unsubscribe": Kind.unsubscribe,
    "group_unsubscribe": Kind.unsubscribe,
}


def classify(event: SendGridEvent) -> Kind:
    """The kind of an event, by its type, bounce type and drop reason."""
    name = event.event.strip().lower()
    if name == "bounce":
        # "blocked" is a block; a bounce of no known type is counted, not taken as final.
        bounce_type = (event.type or "").strip().lower()
        return Kind.hard_bounce if bounce_type == "bounce" else Kind.soft_bounce
    if name == "dropped":
        return _DROPPED.get((event.reason or "").strip().lower(), Kind.dropped)
    return _SIMPLE.get(name, Kind.other)


def _detail(event: SendGridEvent) -> str:
    parts = [event.type, event.reason, event.status, event.response, event.url]
    text = " | ".join(part.strip() for part in parts if part and part.strip())
    return text[:_DETAIL_LENGTH]


# -- the decision, per member (pure) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberState:
    """What the rules need to know of a member."""

    id: int
    status: SubscriberStatus
    joined_at: dt.datetime  # added, or last re-subscribed or confirmed
    last_delivered_at: dt.datetime | None = None  # from the log, before this batch
    soft_bounces: tuple[dt.datetime, ...] = ()  # from the log, before this batch


@dataclass(frozen=True, slots=True)
class Classified:
    event: SendGridEvent
    kind: Kind

    @property
    def sort_key(self) -> tuple[int, str]:
        return self.event.timestamp, self.event.sg_event_id


@dataclass(frozen=True, slots=True)
class Decision:
    """What a member's new events do: the new status (None: unchanged), and each event's effect."""

    status: SubscriberStatus | None
    reason: str
    effects: Mapping[str, str]


def decide(member: MemberState, events: Sequence[Classified], *, limit: int) -> Decision:
    """The outcome of a member's new events, the same whatever order they are given in.

    Every event that counts proposes a status (a streak of soft bounces proposes
    ``bounced``); the most serious proposal wins if it is more serious than where
    the member stands. Taking the maximum is what makes the order irrelevant.
    """
    effects: dict[str, str] = {}
    status, reason = member.status, ""
    proposals = [
        (item.event.sg_event_id, target, _reason(item))
        for item in sorted(events, key=lambda item: item.sort_key)
        if (target := TARGET.get(item.kind)) is not None
        and _counts(member, item, effects, "from before the member (re)joined")
    ]
    streak = _soft_bounce_streak(member, events, limit, effects)
    if streak is not None:
        proposals.append((*streak[:1], SubscriberStatus.bounced, streak[1]))
    for key, target, why in proposals:
        if RANK[target] > RANK[status]:
            effects[key] = effects.get(key, "") + f"status {status} -> {target}"
            status, reason = target, why
        else:
            effects[key] = effects.get(key, "") + f"no change: already {status}"
    return Decision(status if status != member.status else None, reason, effects)


def _counts(member: MemberState, item: Classified, effects: dict[str, str], why: str) -> bool:
    """Whether an event happened after the member last joined; notes it when not."""
    if item.event.at > member.joined_at:
        return True
    effects[item.event.sg_event_id] = f"no change: {why}"
    return False


def _soft_bounce_streak(
    member: MemberState, events: Sequence[Classified], limit: int, effects: dict[str, str]
) -> tuple[str, str] | None:
    """(event that completes the streak, reason) when ``limit`` soft bounces follow the last delivery.

    The streak counts soft bounces after the later of the member's joining and
    their last delivery, from the log and this batch together, so a late event
    lands where its timestamp puts it.
    """
    softs = sorted(
        (item for item in events if item.kind is Kind.soft_bounce), key=lambda item: item.sort_key
    )
    if not softs:
        return None
    delivered = [item.event.at for item in events if item.kind is Kind.delivered]
    if member.last_delivered_at is not None:
        delivered.append(member.last_delivered_at)
    since = max([member.joined_at, *delivered])
    streak = sorted(t for t in (*member.soft_bounces, *(s.event.at for s in softs)) if t > since)
    completing: Classified | None = None
    for item in softs:
        key = item.event.sg_event_id
        if item.event.at <= since:
            effects[key] = "soft bounce before a later delivery: not counted"
            continue
        count = sum(1 for t in streak if t <= item.event.at)
        effects[key] = f"soft bounce {count} in a row (limit {limit})"
        if count == limit or (completing is None and count > limit):
            completing = item
    if len(streak) < limit:
        return None
    # Completed by this batch, or by the log's bounces with this batch's in between.
    last = completing or softs[-1]
    effects[last.event.sg_event_id] += ": "
    return (
        last.event.sg_event_id,
        f"{limit} soft bounces or blocks in a row; the last: {_reason(last)}",
    )


def _reason(item: Classified) -> str:
    event = item.event
    what = {
        Kind.hard_bounce: "hard bounce",
        Kind.soft_bounce: "soft bounce",
        Kind.complaint: "marked as spam",
        Kind.unsubscribe: "unsubscribed through SendGrid",
    }.get(item.kind, event.event)
    if event.event == "dropped":
        what = f"dropped by SendGrid ({event.reason})"
    when = f"{event.at:%Y-%m-%d %H:%M} UTC"
    detail = _detail(event) if event.event != "dropped" else ""
    issue = f" on issue {event.issue_slug}" if event.issue_slug else ""
    return f"SendGrid: {what}{issue} at {when}" + (f" ({detail})" if detail else "")


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

    def to_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "duplicates": self.duplicates,
            "stored": self.stored,
            "unknown_addresses": self.unknown_addresses,
            "status_changes": dict(self.status_changes),
            "ledger": {"sent": self.ledger_sent, "dropped": self.ledger_dropped},
        }


def apply_events(
    store: SubscriberStore,
    events: Sequence[SendGridEvent],
    *,
    soft_bounce_limit: int = DEFAULT_SOFT_BOUNCE_LIMIT,
    now: dt.datetime | None = None,
) -> Applied:
    """Store a batch of events once and write them back to the list, in one transaction."""
    if soft_bounce_limit < 1:
        raise ValueError("soft_bounce_limit must be at least 1")
    unique: dict[str, SendGridEvent] = {}
    for event in events:
        unique.setdefault(event.sg_event_id, event)  # the first of an event sent twice
    when = now or dt.datetime.now(dt.UTC)

    def work(connection: Connection) -> Applied:
        applied = Applied(received=len(events))
        _apply(connection, list(unique.values()), soft_bounce_limit, when, applied)
        applied.duplicates = len(events) - applied.stored
        return applied

    return run_write(store.engine, work)


def _apply(
    connection: Connection,
    events: Sequence[SendGridEvent],
    limit: int,
    when: dt.datetime,
    applied: Applied,
) -> None:
    seen = eventlog.stored_ids(connection, [event.sg_event_id for event in events])
    new = [Classified(event, classify(event)) for event in events if event.sg_event_id not in seen]
    if not new:
        return
    owners = eventlog.owners(
        connection,
        [(e.sg_event_id, _email_key(e.email), e.subscriber_id) for e in (i.event for i in new)],
    )
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
    applied.stored = eventlog.insert_events(connection, rows)
    applied.unknown_addresses = sum(1 for row in rows if row["subscriber_id"] is None)
    changes = [
        eventlog.StatusChange(member_id, states[member_id].status, d.status, d.reason[:1000])
        for member_id, d in decisions.items()
        if d.status is not None
    ]
    eventlog.change_statuses(connection, changes, when, SOURCE)
    applied.status_changes.update(change.status_to for change in changes)
    accepted, dropped = outcomes(item.event.as_mapping() for item in new)
    applied.ledger_sent, applied.ledger_dropped = eventlog.settle_deliveries(
        connection, accepted, dropped, when
    )


def _member_states(
    connection: Connection, by_member: Mapping[int, Sequence[Classified]]
) -> dict[int, MemberState]:
    """The state of members whose new events may change their status (the others need none)."""
    relevant = [
        member_id
        for member_id, items in by_member.items()
        if any(item.kind in TARGET or item.kind is Kind.soft_bounce for item in items)
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


def _email_key(address: str) -> str:
    plain = address.strip()
    if plain.isascii() and "@" in plain:
        return plain.lower()  # what normalising then lower-casing gives a plain address
    try:
        return normalise_email(address).key
    except InvalidEmail:
        return address.strip().lower()


def _log_row(
    item: Classified, owner: int | None, effects: Mapping[str, str], when: dt.datetime
) -> dict[str, Any]:
    event = item.event
    key = event.sg_event_id
    effect = effects.get(key) or ("unknown address" if owner is None else "recorded")
    return {
        "sg_event_id": key,
        "event": event.event,
        "kind": item.kind.value,
        "email": event.email,
        "subscriber_id": owner,
        "issue": event.issue_slug,
        "occurred_at": event.at,
        "received_at": when,
        "detail": _detail(event),
        "effect": effect,
        "url": _clicked_url(item),
        "test": _is_test(event),
    }


def _clicked_url(item: Classified) -> str | None:
    """A click's URL as the report groups links by (whole, unlike ``detail``)."""
    url = (item.event.url or "").strip()
    return url[: eventlog.URL_LENGTH] if item.kind is Kind.click and url else None


def _is_test(event: SendGridEvent) -> bool:
    """Whether the event is of a test send: our custom_args say ``test: "true"``."""
    return (event.test or "").strip().lower() == "true"
