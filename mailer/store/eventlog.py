"""The webhook event log: every SendGrid event kept once, with what it changed.

One row per event, unique on SendGrid's ``sg_event_id`` (SendGrid retries a
batch until it gets a 2xx, so the same event can arrive many times). Rows name
the member (``subscriber_id``, erased with the member by ``forget``) and the
issue from our ``custom_args``, the event's own time, a ``kind`` saying what the
event means for the list (:class:`mailer.events.Kind`) and ``effect``, what
processing it changed. Reports count deliveries, opens and clicks from here;
the soft-bounce streak is counted from here too.

Two columns are for reports (migration 0005): ``url``, a click's URL in full
(``detail`` keeps only its first 300 characters, which would merge long links
that differ at the end), and ``test``, set for events of test sends (``mailer
send --test``) so that an editor's own opens and clicks of a proof never count
as the list's. Two partial indexes let the report sum an issue's events member
by member, and its clicks link by link, from an index alone.

The statements :func:`mailer.events.apply_events` runs, in the caller's
transaction, are here too. They take plain data and are written for batches of
1,000 events: one query per step, not one per event, and on PostgreSQL lists
go as one array parameter (``= ANY(...)``) rather than 1,000 placeholders.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    Engine,
    ForeignKey,
    Index,
    String,
    Text,
    any_,
    bindparam,
    false,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from mailer.mail import DeliveryState
from mailer.store.ledger import DeliveryRow
from mailer.store.models import EventKind
from mailer.store.schema import Base, BigId, SubscriberEventRow, SubscriberRow, UTCDateTime
from mailer.store.transact import read
from mailer.store.upsert import event as history_row

__all__ = [
    "LOG_COLUMNS",
    "URL_LENGTH",
    "MemberFacts",
    "RejectedRow",
    "StatusChange",
    "WebhookEventRow",
    "activity",
    "change_statuses",
    "insert_events",
    "keep_rejected",
    "lock_members",
    "member_facts",
    "owners",
    "rejected_events",
    "settle_deliveries",
    "stored_ids",
]

_CHUNK = 500


def _partial(condition: str) -> dict[str, Any]:
    """A partial index's condition, as both databases spell it (SQLite has no ``false``)."""
    return {
        "postgresql_where": text(condition),
        "sqlite_where": text(condition.replace("false", "0")),
    }


class WebhookEventRow(Base):
    """One SendGrid event, as received, and its effect on the list."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index(None, "subscriber_id", "kind", "occurred_at"),
        Index(None, "issue", "kind"),
        # Reports read these two, and not the table: an issue's events of real sends summed
        # member by member, and its clicks link by link. Partial, so that test sends' events
        # (and, for the second, everything but clicks) cost nothing to keep.
        Index(None, "issue", "subscriber_id", "kind", "event", **_partial("test = false")),
        Index(None, "issue", "url", "subscriber_id", **_partial("kind = 'click' AND test = false")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sg_event_id: Mapped[str] = mapped_column(String(128), unique=True)
    event: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    # The address as SendGrid gave it; events about unknown addresses are kept too.
    email: Mapped[str] = mapped_column(String(320))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=True
    )
    issue: Mapped[str | None] = mapped_column(String(100), nullable=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # SendGrid's reason, bounce type or clicked URL, shortened.
    detail: Mapped[str] = mapped_column(Text, default="")
    effect: Mapped[str] = mapped_column(Text, default="")
    # A click's URL, up to URL_LENGTH characters; NULL for other events.
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    # From a test send (custom_args test=true): kept, applied, but never reported.
    test: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


_W = WebhookEventRow


class RejectedRow(Base):
    """An item of a verified webhook batch that was not an event we could apply (migration 0009).

    Kept once (``fingerprint``: SHA-256 of its JSON, so SendGrid's retries add
    nothing) for ``mailer events rejected``: SendGrid posts every event of the
    account, and none may vanish without a trace. ``email_key`` lets ``forget``
    erase the rows that name a forgotten address.
    """

    __tablename__ = "webhook_rejected"
    __table_args__ = (Index(None, "received_at"), Index(None, "email_key"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    # The item as JSON (ASCII, escaped), cut after 20,000 characters.
    body: Mapped[str] = mapped_column(Text)
    email_key: Mapped[str] = mapped_column(String(320), default="")


# Longer than any link a mail client keeps working; anything longer is cut here.
URL_LENGTH = 2048


def activity(engine: Engine, issue: str) -> dict[str, int]:
    """Members with at least one event of each kind for an issue: a quick look, test sends
    included (:mod:`mailer.report` has the whole picture)."""
    query = (
        select(_W.kind, func.count(func.distinct(_W.subscriber_id)))
        .where(_W.issue == issue, _W.subscriber_id.is_not(None))
        .group_by(_W.kind)
    )
    with read(engine) as connection:
        return {kind: int(count) for kind, count in connection.execute(query)}


def _among(connection: Connection, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values``; on PostgreSQL ``= ANY(array)``, one parameter however many values."""
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[start : start + _CHUNK] for start in range(0, len(values), _CHUNK)]


# -- reading ----------------------------------------------------------------------------------


def stored_ids(connection: Connection, ids: Sequence[str]) -> set[str]:
    """Which of these sg_event_ids are in the log already."""
    found: set[str] = set()
    for chunk in _chunks(ids):
        query = select(_W.sg_event_id).where(_among(connection, _W.sg_event_id, chunk))
        found.update(connection.scalars(query))
    return found


def owners(connection: Connection, events: Sequence[tuple[str, str, int | None]]) -> dict[str, int]:
    """sg_event_id -> subscriber id, from (sg_event_id, address key, subscriber id in custom_args).

    The id in custom_args counts only when that member has the event's address (an
    id can name someone else after a ``forget``); otherwise the address decides.
    """
    S = SubscriberRow
    claimed = sorted({sid for _, _, sid in events if sid is not None})
    by_id: dict[int, str] = {}
    for chunk in _chunks(claimed):
        query = select(S.id, S.email_key).where(_among(connection, S.id, chunk))
        by_id.update((row.id, row.email_key) for row in connection.execute(query))
    found: dict[str, int] = {}
    for event_id, key, sid in events:
        if sid is not None and by_id.get(sid) == key:
            found[event_id] = sid
    unresolved = sorted({key for event_id, key, _ in events if event_id not in found})
    by_key: dict[str, int] = {}
    for chunk in _chunks(unresolved):
        by_email = select(S.email_key, S.id).where(_among(connection, S.email_key, chunk))
        by_key.update((row.email_key, row.id) for row in connection.execute(by_email))
    for event_id, key, _ in events:
        if event_id not in found and key in by_key:
            found[event_id] = by_key[key]
    return found


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """What the write-back rules need to know of a member, from the list and the log."""

    status: str
    joined_at: dt.datetime  # added, or last re-subscribed or confirmed
    last_delivered_at: dt.datetime | None
    soft_bounces: tuple[dt.datetime, ...]


def member_facts(
    connection: Connection, ids: Sequence[int], *, delivered: str, soft_bounce: str
) -> dict[int, MemberFacts]:
    """Each member's status, when they last joined, their last delivery and soft bounces logged.

    ``delivered`` and ``soft_bounce`` are the log's kinds for those events.
    """
    S, H = SubscriberRow, SubscriberEventRow
    rows: dict[int, Any] = {}
    rejoined: dict[int, dt.datetime] = {}
    # Keyed by the log's nullable subscriber_id (only members' rows are selected).
    last_delivery: dict[int | None, dt.datetime] = {}
    softs: dict[int | None, list[dt.datetime]] = defaultdict(list)
    for chunk in _chunks(sorted(ids)):
        for row in connection.execute(
            select(S.id, S.status, S.created_at).where(_among(connection, S.id, chunk))
        ):
            rows[row.id] = row
        for member_id, at in connection.execute(
            select(H.subscriber_id, func.max(H.at))
            .where(_among(connection, H.subscriber_id, chunk), H.kind == EventKind.resubscribed)
            .group_by(H.subscriber_id)
        ):
            rejoined[member_id] = at
        for owner, at in connection.execute(
            select(_W.subscriber_id, func.max(_W.occurred_at))
            .where(_among(connection, _W.subscriber_id, chunk), _W.kind == delivered)
            .group_by(_W.subscriber_id)
        ):
            last_delivery[owner] = at
        for owner, at in connection.execute(
            select(_W.subscriber_id, _W.occurred_at).where(
                _among(connection, _W.subscriber_id, chunk), _W.kind == soft_bounce
            )
        ):
            softs[owner].append(at)
    return {
        member_id: MemberFacts(
            status=row.status,
            joined_at=max(row.created_at, rejoined.get(member_id, row.created_at)),
            last_delivered_at=last_delivery.get(member_id),
            soft_bounces=tuple(softs.get(member_id, ())),
        )
        for member_id, row in rows.items()
    }


# -- writing -----------------------------------------------------------------------------------

LOG_COLUMNS = (
    "sg_event_id",
    "event",
    "kind",
    "email",
    "subscriber_id",
    "issue",
    "occurred_at",
    "received_at",
    "detail",
    "effect",
    "url",
    "test",
)
# PostgreSQL: every row in one statement, one array per column.
_UNNEST_TYPES = (
    "varchar[]",
    "varchar[]",
    "varchar[]",
    "varchar[]",
    "integer[]",
    "varchar[]",
    "timestamptz[]",
    "timestamptz[]",
    "text[]",
    "text[]",
    "text[]",
    "boolean[]",
)


def insert_events(connection: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert log rows (keys: LOG_COLUMNS), skipping any another transaction stored meanwhile.

    Returns how many went in. Straight to the driver: SQLAlchemy's multi-row VALUES
    for 1,000 rows costs more to build and parse than to store. PostgreSQL gets one
    INSERT ... SELECT FROM unnest(arrays); SQLite one short statement per row
    (executemany).
    """
    columns = ", ".join(LOG_COLUMNS)
    conflict = "ON CONFLICT (sg_event_id) DO NOTHING"
    if connection.dialect.name == "postgresql":
        arrays = ", ".join(f"%s::{kind}" for kind in _UNNEST_TYPES)
        sql = f"INSERT INTO webhook_events ({columns}) SELECT * FROM unnest({arrays}) {conflict}"
        values = tuple([row[name] for row in rows] for name in LOG_COLUMNS)
        return max(int(connection.exec_driver_sql(sql, values).rowcount), 0)
    marks = ", ".join(["?"] * len(LOG_COLUMNS))
    sql = f"INSERT INTO webhook_events ({columns}) VALUES ({marks}) {conflict}"
    params = [
        tuple(
            _sqlite_time(row[name]) if name.endswith("_at") else row[name] for name in LOG_COLUMNS
        )
        for row in rows
    ]
    return max(int(connection.exec_driver_sql(sql, params).rowcount), 0)


def keep_rejected(connection: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert rejected items (keys: fingerprint, received_at, reason, body, email_key), each once.

    Returns the fingerprints that went in now (the others were kept before).
    """
    if not rows:
        return set()
    unique = {row["fingerprint"]: row for row in rows}
    known: set[str] = set()
    for chunk in _chunks(sorted(unique)):
        query = select(RejectedRow.fingerprint).where(
            _among(connection, RejectedRow.fingerprint, chunk)
        )
        known.update(connection.scalars(query))
    new = [unique[key] for key in sorted(unique) if key not in known]
    if not new:
        return set()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(RejectedRow).on_conflict_do_nothing(index_elements=["fingerprint"])
    connection.execute(statement, new)
    return {row["fingerprint"] for row in new}


def rejected_events(engine: Engine, *, limit: int, since: dt.datetime | None = None) -> list[Any]:
    """The newest rejected items, newest first (id, received_at, reason, body)."""
    query = select(RejectedRow.id, RejectedRow.received_at, RejectedRow.reason, RejectedRow.body)
    if since is not None:
        query = query.where(RejectedRow.received_at >= since)
    query = query.order_by(RejectedRow.id.desc()).limit(limit)
    with read(engine) as connection:
        return list(connection.execute(query))


def lock_members(connection: Connection, ids: Sequence[int]) -> set[int]:
    """Lock these members' rows until the transaction ends, in id order; the ids still there.

    On PostgreSQL, batches that touch the same members then take turns, each in the
    same order (no deadlock), instead of failing on a serialization conflict. SQLite
    has one writer at a time already.
    """
    if connection.dialect.name != "postgresql":
        return set(ids)  # found in this transaction, which holds the database's write lock
    found: set[int] = set()
    for chunk in _chunks(sorted(set(ids))):
        query = (
            select(SubscriberRow.id)
            .where(_among(connection, SubscriberRow.id, chunk))
            .order_by(SubscriberRow.id)
            # NO KEY UPDATE: what the status UPDATE takes anyway. It leaves alone the KEY
            # SHARE locks that inserting rows which refer to a member takes (another
            # batch's opens and clicks), so those never wait on it or deadlock with it.
            .with_for_update(key_share=True)
        )
        found.update(connection.scalars(query))
    return found


def _sqlite_time(value: dt.datetime) -> str:
    """A time as UTCDateTime stores it on SQLite (SQLAlchemy's DATETIME text format, in UTC)."""
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


@dataclass(frozen=True, slots=True)
class StatusChange:
    subscriber_id: int
    status_from: str
    status_to: str
    reason: str


def change_statuses(
    connection: Connection, changes: Sequence[StatusChange], when: dt.datetime, source: str
) -> None:
    """Move each member to a new status, with an entry in their history."""
    if not changes:
        return
    S = SubscriberRow
    statement = (
        update(S)
        .where(S.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            status_changed_at=literal(when, UTCDateTime()),
            status_reason=bindparam("b_reason"),
            updated_at=literal(when, UTCDateTime()),
        )
    )
    connection.execute(
        statement,
        [{"b_id": c.subscriber_id, "b_status": c.status_to, "b_reason": c.reason} for c in changes],
    )
    connection.execute(
        insert(SubscriberEventRow),
        [
            history_row(
                c.subscriber_id,
                when,
                EventKind.status,
                c.reason,
                source,
                c.status_from,
                c.status_to,
            )
            for c in changes
        ],
    )


def settle_deliveries(
    connection: Connection,
    accepted: Sequence[tuple[str, int, str | None]],
    dropped: Sequence[tuple[str, int, str]],
    when: dt.datetime,
) -> tuple[int, int]:
    """Mark (issue, subscriber, message id) sent and (issue, subscriber, reason) failed for good.

    The same rules as :meth:`mailer.store.ledger.Ledger.mark_accepted` and
    ``mark_dropped``, in the caller's transaction. Only rows that would change are
    updated: once a send has settled, most events name rows already ``sent``, and
    one read finds that out for the whole batch. Returns (sent, failed) counts.
    """
    keys = [(issue, sid) for issue, sid, _ in accepted] + [
        (issue, sid) for issue, sid, _ in dropped
    ]
    states = _delivery_states(connection, keys)
    sent_state, failed_state = DeliveryState.sent.value, DeliveryState.failed.value
    to_send = [
        {"b_issue": issue, "b_subscriber": sid, "b_message_id": message_id}
        for issue, sid, message_id in accepted
        if states.get((issue, sid)) not in (None, sent_state)
    ]
    to_fail = [
        {"b_issue": issue, "b_subscriber": sid, "b_error": reason}
        for issue, sid, reason in dropped
        if states.get((issue, sid)) not in (None, sent_state, failed_state)
    ]
    # One order for every transaction, so two that mark the same rows never deadlock.
    to_send.sort(key=lambda row: (row["b_issue"], row["b_subscriber"]))
    to_fail.sort(key=lambda row: (row["b_issue"], row["b_subscriber"]))
    D = DeliveryRow
    sent = failed = 0
    if to_send:
        statement = (
            update(D)
            .where(
                D.issue == bindparam("b_issue"),
                D.subscriber_id == bindparam("b_subscriber"),
                D.state != sent_state,
            )
            .values(
                state=sent_state,
                error="",
                message_id=func.coalesce(bindparam("b_message_id", type_=Text()), D.message_id),
                updated_at=literal(when, UTCDateTime()),
            )
        )
        sent = max(int(connection.execute(statement, to_send).rowcount), 0)
    if to_fail:
        statement = (
            update(D)
            .where(
                D.issue == bindparam("b_issue"),
                D.subscriber_id == bindparam("b_subscriber"),
                D.state.not_in([sent_state, failed_state]),
            )
            .values(
                state=failed_state,
                retryable=False,
                error=bindparam("b_error"),
                updated_at=literal(when, UTCDateTime()),
            )
        )
        failed = max(int(connection.execute(statement, to_fail).rowcount), 0)
    return sent, failed


def _delivery_states(
    connection: Connection, keys: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], str]:
    """The ledger state of each (issue, subscriber) that has a row."""
    D = DeliveryRow
    by_issue: dict[str, list[int]] = defaultdict(list)
    for issue, sid in dict.fromkeys(keys):
        by_issue[issue].append(sid)
    found: dict[tuple[str, int], str] = {}
    for issue, ids in by_issue.items():
        for chunk in _chunks(ids):
            query = select(D.subscriber_id, D.state).where(
                D.issue == issue, _among(connection, D.subscriber_id, chunk)
            )
            for sid, state in connection.execute(query):
                found[issue, sid] = state
    return found
