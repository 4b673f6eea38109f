"""Members' segment choices: the segments (topics) a member asked not to get.

A member is in a segment by the rules in mailer.toml (tags, region,
attributes); the preference centre lets them opt out of a segment's content
without leaving the list. The audience step takes opted-out segments away from a
member's segments before choosing their variant, so they get the general
sections only. Choices are kept per member (erased with the member by
``forget``), and every change is written to the member's history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Engine, ForeignKey, String, delete, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from mailer.errors import SubscriberNotFound
from mailer.store.emails import email_key
from mailer.store.models import EventKind, ImportCounts, MemberRecord
from mailer.store.schema import Base, SubscriberEventRow, UTCDateTime
from mailer.store.transact import read, run_write
from mailer.store.upsert import apply_plan, event, load_stored, plan_upsert, suppressed_among

__all__ = ["SegmentOptOutRow", "opted_out", "save_member_choices", "set_opted_out"]

_CHUNK = 1000


class SegmentOptOutRow(Base):
    """One segment one member does not want."""

    __tablename__ = "segment_opt_outs"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    segment: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


_O = SegmentOptOutRow


def opted_out_in(connection: Connection, ids: Sequence[int]) -> dict[int, frozenset[str]]:
    """The segments each of these members opted out of; members with none are absent."""
    found: dict[int, set[str]] = {}
    for start in range(0, len(ids), _CHUNK):
        query = select(_O.subscriber_id, _O.segment).where(
            _O.subscriber_id.in_(ids[start : start + _CHUNK])
        )
        for subscriber_id, segment in connection.execute(query):
            found.setdefault(subscriber_id, set()).add(segment)
    return {subscriber_id: frozenset(names) for subscriber_id, names in found.items()}


def opted_out(engine: Engine, ids: Iterable[int]) -> dict[int, frozenset[str]]:
    """The segments each of these members opted out of, in one short read."""
    with read(engine) as connection:
        return opted_out_in(connection, list(ids))


def set_opted_out(
    engine: Engine, subscriber_id: int, segments: Iterable[str], *, source: str
) -> frozenset[str]:
    """Make ``segments`` the member's opted-out set; logs the change. Returns the new set."""
    wanted_out = frozenset(segments)
    return run_write(
        engine, lambda connection: _set_opted_out(connection, subscriber_id, wanted_out, source)
    )


def save_member_choices(
    engine: Engine,
    record: MemberRecord,
    *,
    source: str,
    opted_out: Iterable[str] | None = None,
) -> ImportCounts:
    """Change one member's profile (and, if given, their opted-out segments) in one transaction.

    The profile goes through the import's rules (:func:`plan_upsert`): fields left
    ``None`` are kept, and no status is changed, so a member who unsubscribed,
    bounced or complained stays so. SubscriberNotFound if the address is not a
    member's (a forgotten one included).
    """
    key = email_key(record.email)

    def work(connection: Connection) -> ImportCounts:
        stored = load_stored(connection, [key])
        if key not in stored:
            raise SubscriberNotFound(record.email)
        when = dt.datetime.now(dt.UTC)
        plan = plan_upsert(
            [record._replace(email=stored[key].email, status=None)],
            stored,
            suppressed_among(connection, [key]),
            when,
            source,
        )
        apply_plan(connection, plan, when, source)
        if opted_out is not None:
            _set_opted_out(connection, stored[key].id, frozenset(opted_out), source)
        return plan.counts()

    return run_write(engine, work)


def _set_opted_out(
    connection: Connection, subscriber_id: int, wanted_out: frozenset[str], source: str
) -> frozenset[str]:
    before = opted_out_in(connection, [subscriber_id]).get(subscriber_id, frozenset())
    if before == wanted_out:
        return before
    when = dt.datetime.now(dt.UTC)
    connection.execute(delete(_O).where(_O.subscriber_id == subscriber_id))
    if wanted_out:
        connection.execute(
            insert(_O),
            [
                {"subscriber_id": subscriber_id, "segment": name, "created_at": when}
                for name in sorted(wanted_out)
            ],
        )
    connection.execute(
        insert(SubscriberEventRow),
        event(subscriber_id, when, EventKind.updated, _describe(before, wanted_out), source),
    )
    return wanted_out


def _describe(before: frozenset[str], after: frozenset[str]) -> str:
    parts: list[str] = []
    if after - before:
        parts.append("opted out of " + ", ".join(sorted(after - before)))
    if before - after:
        parts.append("opted back in to " + ", ".join(sorted(before - after)))
    return "segment preferences: " + "; ".join(parts)
