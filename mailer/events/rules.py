"""What each event does to a member: the write-back rules, as pure functions.

Events come from SendGrid's Event Webhook (:mod:`mailer.events.sendgrid`) and from
the bounce mailbox (:mod:`mailer.events.bounces`), which speaks SendGrid's words
for the same things (``bounce`` of type ``bounce`` or ``blocked``, ``spamreport``,
``unsubscribe``): one set of rules for both, and reports that count both alike.
Both are an :class:`Event`. :func:`classify` names an event's :class:`Kind`;
:func:`decide` works out a member's new status from their new events.
:mod:`mailer.events.apply` stores the events and writes the decisions back.

By :class:`Kind`:

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
   ``processed``, ``deferred``                is marked sent (:mod:`mailer.events.reconcile`)
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from mailer.store import SubscriberStatus

__all__ = [
    "RANK",
    "TARGET",
    "Classified",
    "Decision",
    "Event",
    "Kind",
    "MemberState",
    "classify",
    "decide",
    "detail",
]

_DETAIL_LENGTH = 300


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


class Event(Protocol):
    """One event about one message to one address, whatever brought it, as the rules read it.

    Field names are SendGrid's; ``sg_event_id`` is the event log's key (SendGrid's id,
    or one the bounce mailbox makes), and ``source`` says where it came from in
    history entries ("SendGrid", "Bounce mailbox").
    """

    @property
    def sg_event_id(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def event(self) -> str: ...
    @property
    def type(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def response(self) -> str | None: ...
    @property
    def status(self) -> str | None: ...
    @property
    def url(self) -> str | None: ...
    @property
    def test(self) -> str | None: ...
    @property
    def at(self) -> dt.datetime: ...
    @property
    def subscriber_id(self) -> int | None: ...
    @property
    def issue_slug(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    def as_mapping(self) -> dict[str, Any]: ...


def classify(event: Event) -> Kind:
    """The kind of an event, by its type, bounce type and drop reason."""
    name = event.event.strip().lower()
    if name == "bounce":
        # "blocked" is a block; a bounce of no known type is counted, not taken as final.
        bounce_type = (event.type or "").strip().lower()
        return Kind.hard_bounce if bounce_type == "bounce" else Kind.soft_bounce
    if name == "dropped":
        return _DROPPED.get((event.reason or "").strip().lower(), Kind.dropped)
    return _SIMPLE.get(name, Kind.other)


def detail(event: Event) -> str:
    """What the event says beyond its type, on one line, for the history and the log."""
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
    event: Event
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


def _joined(member: MemberState) -> dt.datetime:
    """When the member last joined, as event times can say it: to the second before.

    Event times are whole seconds (SendGrid's timestamps, mail's Date headers), and an
    event in the very second a member joined is about mail sent to them since: nothing
    is sent to anyone before they join.
    """
    return member.joined_at.replace(microsecond=0) - dt.timedelta(microseconds=1)


def _counts(member: MemberState, item: Classified, effects: dict[str, str], why: str) -> bool:
    """Whether an event happened after the member last joined; notes it when not."""
    if item.event.at > _joined(member):
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
    since = max([_joined(member), *delivered])
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
        Kind.unsubscribe: "unsubscribed",
    }.get(item.kind, event.event)
    if event.event == "dropped":
        what = f"dropped by SendGrid ({event.reason})"
    when = f"{event.at:%Y-%m-%d %H:%M} UTC"
    said = detail(event) if event.event != "dropped" else ""
    issue = f" on issue {event.issue_slug}" if event.issue_slug else ""
    return f"{event.source}: {what}{issue} at {when}" + (f" ({said})" if said else "")
