"""The report's numbers, summed by the database: GROUP BY in SQL, never event rows in Python.

An issue with a million stored events comes back as one row per variant, one
per link and one per (period, status change), read from two partial indexes of
the event log (migration 0005) rather than the table; see ``benchmarks/report.py``.

Who counts: the members in the issue's send ledger (``deliveries``), each in
the variant they were sent, which names the segments of the issue they were in
when it went out. Events count when SendGrid tied them to the issue and to one
of those members (``custom_args``); events of test sends and of addresses not
on the list do not.

* sent: ledger rows ``sent``; not sent: the other states.
* delivered, bounced (``bounce``, hard or block), dropped: members with such
  an event. complained: a ``spamreport`` (a ``dropped`` "Spam Reporting
  Address" is SendGrid refusing an earlier complainer, not a new complaint; the
  same goes for unsubscribes).
* unsubscribed: a SendGrid unsubscribe event for the issue, *or* a move to
  ``unsubscribed`` in the member's history while this issue was the last one
  they had been sent. Most members leave through our own link, whose token
  names the member, not the issue, so the history is what sees them.
* opened, clicked: members with at least one; opens and clicks: every event.

List health is each status's count at a moment, from the history: every change
of status is an entry (``added`` ones included, with ``status_from`` NULL), so
the count of a status at T is the entries into it up to T minus those out of
it. Forgotten members are erased with their history, from the past too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    literal_column,
    select,
    union,
)
from sqlalchemy.orm import aliased

from mailer.mail import DeliveryState
from mailer.store.eventlog import WebhookEventRow
from mailer.store.ledger import DeliveryRow, SendRow
from mailer.store.models import SubscriberStatus
from mailer.store.schema import SubscriberEventRow, SubscriberRow, UTCDateTime

__all__ = [
    "Send",
    "StatusCounts",
    "Tally",
    "find_send",
    "joined_later",
    "recipients",
    "sends",
    "status_counts_at",
    "status_counts_now",
    "tallies",
    "top_links",
]

_W, _D, _H = WebhookEventRow, DeliveryRow, SubscriberEventRow
SENT = DeliveryState.sent.value
# Our own links carry a member's token: every member's is different, so they are
# counted as one link each, under the path with the token left out.
MEMBER_LINKS = ("unsubscribe", "preferences")


@dataclass(frozen=True, slots=True)
class Send:
    """An issue's send, from the ledger."""

    issue: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str


@dataclass(slots=True)
class Tally:
    """What happened among the members sent one variant of an issue."""

    sent: int = 0
    not_sent: int = 0
    delivered: int = 0
    bounced: int = 0
    dropped: int = 0
    complained: int = 0
    unsubscribed: int = 0
    opened: int = 0
    opens: int = 0
    clicked: int = 0
    clicks: int = 0

    def add(self, other: Tally) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


StatusCounts = dict[SubscriberStatus, int]


# -- sends ----------------------------------------------------------------------------------


def _send_columns() -> Any:
    return select(SendRow.issue, SendRow.started_at, SendRow.finished_at, SendRow.status)


def find_send(connection: Connection, issue: str) -> Send | None:
    """The issue's send, or None if it was never sent."""
    row = connection.execute(_send_columns().where(SendRow.issue == issue)).first()
    return None if row is None else Send(*row)


def sends(connection: Connection) -> list[Send]:
    """Every issue ever sent, oldest first."""
    query = _send_columns().order_by(SendRow.started_at, SendRow.issue)
    return [Send(*row) for row in connection.execute(query)]


def recipients(connection: Connection, issues: Sequence[str]) -> dict[str, int]:
    """Members each of these issues went out to: its ledger rows, whatever their state.

    Rows, not just ``sent`` ones: counted from the ledger's unique index alone, which
    takes a third of the time of reading each row's state, for a dozen issues of
    100,000 members; the report on one issue tells sent from not sent.
    """
    if not issues:
        return {}
    query = select(_D.issue, func.count()).where(_D.issue.in_(issues)).group_by(_D.issue)
    return {issue: int(count) for issue, count in connection.execute(query)}


def joined_later(connection: Connection, shown: Sequence[Send]) -> dict[str, int]:
    """Per issue, its recipients who joined the list after its send started.

    A later run of `mailer send` (after an import, say) sends to them; they were not
    on the list when it started, which is when the report counts the list.
    """
    if not shown:
        return {}
    query = (
        select(_D.issue, func.count())
        .join(SubscriberRow, SubscriberRow.id == _D.subscriber_id)
        .join(SendRow, SendRow.issue == _D.issue)
        .where(_D.issue.in_([send.issue for send in shown]))
        .where(SubscriberRow.created_at > SendRow.started_at)
        .group_by(_D.issue)
    )
    return {issue: int(count) for issue, count in connection.execute(query)}


# -- one issue, per variant --------------------------------------------------------------------


def tallies(connection: Connection, issue: str) -> dict[str, Tally]:
    """Variant name -> what happened among the members sent it."""
    found: dict[str, Tally] = {}
    for variant, state, count in connection.execute(
        select(_D.variant, _D.state, func.count())
        .where(_D.issue == issue)
        .group_by(_D.variant, _D.state)
    ):
        tally = found.setdefault(variant, Tally())
        if state == SENT:
            tally.sent += int(count)
        else:
            tally.not_sent += int(count)
    for row in connection.execute(_event_sums(issue)).mappings():
        tally = found.setdefault(row["variant"], Tally())
        for name in _EVENT_SUMS:
            setattr(tally, name, int(row[name] or 0))
    for variant, count in connection.execute(_unsubscribed(issue)):
        found.setdefault(variant, Tally()).unsubscribed = int(count)
    return found


_EVENT_SUMS = (
    "delivered",
    "bounced",
    "dropped",
    "complained",
    "opened",
    "opens",
    "clicked",
    "clicks",
)


def _count(condition: Any) -> Any:
    """Rows where ``condition`` holds: ``count(*) FILTER (WHERE ...)``, on both databases,
    a good third quicker on SQLite than summing a CASE."""
    return func.count().filter(condition)


def _real_events(issue: str) -> Any:
    """The issue's events that count: of a member, and not of a test send.

    ``test = false`` is written out, not a parameter, so that SQLite sees the
    query is within the partial indexes (which leave test sends out) and uses them.
    """
    return and_(_W.issue == issue, _W.subscriber_id.is_not(None), _W.test == false())


def _event_sums(issue: str) -> Any:
    """Per variant: members with each kind of event, and open and click events in all.

    The inner query sums each member's events (from the index on issue,
    subscriber_id, kind, event alone); the outer one adds members up per variant.
    """
    by_member = (
        select(
            _W.subscriber_id.label("member"),
            _count(_W.kind == "delivered").label("delivered"),
            _count(_W.event == "bounce").label("bounced"),
            _count(_W.event == "dropped").label("dropped"),
            _count(_W.event == "spamreport").label("complained"),
            _count(_W.kind == "open").label("opens"),
            _count(_W.kind == "click").label("clicks"),
        )
        .where(_real_events(issue))
        .group_by(_W.subscriber_id)
        .subquery()
    )
    m = by_member.c
    return (
        select(
            _D.variant.label("variant"),
            _count(m.delivered > 0).label("delivered"),
            _count(m.bounced > 0).label("bounced"),
            _count(m.dropped > 0).label("dropped"),
            _count(m.complained > 0).label("complained"),
            _count(m.opens > 0).label("opened"),
            func.sum(m.opens).label("opens"),
            _count(m.clicks > 0).label("clicked"),
            func.sum(m.clicks).label("clicks"),
        )
        .join_from(by_member, _D, and_(_D.issue == issue, _D.subscriber_id == m.member))
        .group_by(_D.variant)
    )


def _unsubscribed(issue: str) -> Any:
    """Per variant: members who unsubscribed through this issue (see the module docstring)."""
    through_sendgrid = select(_W.subscriber_id.label("member")).where(
        _real_events(issue), _W.kind == "unsubscribe", _W.event != "dropped"
    )
    this, later = aliased(_D, name="this_issue"), aliased(_D, name="later_issue")
    # The member was sent this issue, left after it, and no other issue was sent to them between.
    in_between = exists().where(
        later.subscriber_id == _H.subscriber_id,
        later.state == SENT,
        later.created_at > this.created_at,
        later.created_at <= _H.at,
    )
    through_history = (
        select(_H.subscriber_id.label("member"))
        .join(this, and_(this.issue == issue, this.subscriber_id == _H.subscriber_id))
        .where(
            _H.status_to == SubscriberStatus.unsubscribed.value,
            this.state == SENT,
            _H.at >= this.created_at,
            ~in_between,
        )
    )
    members = union(through_sendgrid, through_history).subquery()
    return (
        select(_D.variant, func.count())
        .join_from(members, _D, and_(_D.issue == issue, _D.subscriber_id == members.c.member))
        .group_by(_D.variant)
    )


def top_links(connection: Connection, issue: str, base_url: str, limit: int) -> list[Any]:
    """(url, members who clicked it, clicks) for the ``limit`` most-clicked links."""
    return list(connection.execute(_top_links(issue, base_url, limit)))


def _top_links(issue: str, base_url: str, limit: int) -> Any:
    # Grouped outside the subquery: PostgreSQL does not take a GROUP BY expression with
    # parameters for the same as the selected one, whose parameters are numbered apart.
    clicks = (
        select(_link_expression(base_url).label("link"), _W.subscriber_id.label("member"))
        # 'click' written out, as test = false is: the partial index of clicks is used.
        .where(_real_events(issue), _W.kind == literal_column("'click'"), _W.url.is_not(None))
        .subquery()
    )
    clicked = func.count(func.distinct(clicks.c.member))
    return (
        select(clicks.c.link, clicked, func.count())
        .group_by(clicks.c.link)
        .order_by(clicked.desc(), func.count().desc(), clicks.c.link)
        .limit(limit)
    )


def _link_expression(base_url: str) -> Any:
    """A click's URL, with the token of our own unsubscribe and preference links left out.

    A prefix compared with ``substr`` rather than LIKE: no escaping of the base URL's
    ``%`` or ``_``, and half the time on SQLite.
    """
    base = base_url.rstrip("/")
    whens = []
    for path in MEMBER_LINKS:
        prefix = f"{base}/{path}/"
        whens.append((func.substr(_W.url, 1, len(prefix)) == prefix, literal(f"{prefix}…")))
    return case(*whens, else_=_W.url)


# -- the list's health ------------------------------------------------------------------------


def status_counts_at(connection: Connection, moments: Sequence[dt.datetime]) -> list[StatusCounts]:
    """The number of members in each status at each moment (ascending), from the history.

    One pass over the history: each entry falls in the period up to the first
    moment at or after it (a CASE over the moments), the database sums the
    changes per period, and the running total at each moment is the answer.
    """
    if not moments:
        return []
    period = case(
        *[(_H.at <= literal(moment, UTCDateTime()), index) for index, moment in enumerate(moments)],
        else_=len(moments),
    )
    entries = (
        select(period.label("period"), _H.status_from, _H.status_to)
        .where(_H.status_to.is_not(None), _H.at <= literal(moments[-1], UTCDateTime()))
        .subquery()
    )
    e = entries.c
    query = select(e.period, e.status_from, e.status_to, func.count()).group_by(
        e.period, e.status_from, e.status_to
    )
    changes: list[dict[str, int]] = [{} for _ in moments]
    for index, status_from, status_to, count in connection.execute(query):
        change = changes[index]
        change[status_to] = change.get(status_to, 0) + int(count)
        if status_from is not None:
            change[status_from] = change.get(status_from, 0) - int(count)
    running = dict.fromkeys((status.value for status in SubscriberStatus), 0)
    counted: list[StatusCounts] = []
    for change in changes:
        for status, delta in change.items():
            running[status] = running.get(status, 0) + delta
        counted.append({status: running[status.value] for status in SubscriberStatus})
    return counted


def status_counts_now(connection: Connection) -> StatusCounts:
    """The number of members in each status now, from the list itself."""
    query = select(SubscriberRow.status, func.count()).group_by(SubscriberRow.status)
    found = {status: int(count) for status, count in connection.execute(query)}
    return {status: found.get(status.value, 0) for status in SubscriberStatus}
