"""Imports in bulk: read what is stored, work out the changes in Python, write them in a few statements.

An import of 100,000 rows is three steps inside one write transaction:

1. :func:`load_stored` reads the members the import names (one scan when the
   import covers much of the table, indexed look-ups in chunks otherwise);
2. :func:`plan_upsert`, a pure function, sorts each record into insert, update,
   unchanged or suppressed, keeping the stickiness rule;
3. :func:`apply_plan` writes it: one bulk INSERT, one INSERT ... SELECT for the
   'added' events, bulk UPDATEs by id, one bulk INSERT of the other events.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    Text,
    case,
    false,
    func,
    insert,
    literal,
    null,
    select,
)
from sqlalchemy import cast as sql_cast

from mailer.store.bulk import BulkWriter
from mailer.store.emails import email_key, suppression_hash
from mailer.store.models import EventKind, ImportCounts, MemberRecord, SubscriberStatus
from mailer.store.schema import SubscriberEventRow, SubscriberRow, SuppressionRow, UTCDateTime

_S = SubscriberRow
SUBSCRIBERS = cast(Table, SubscriberRow.__table__)
EVENTS = cast(Table, SubscriberEventRow.__table__)
# Bind parameters per IN (...) query: well under SQLite's limit of 32,766.
CHUNK = 500
# An import's outcome for a forgotten address: not added.
SUPPRESSED = "suppressed"
# What an import may change besides the status.
PROFILE = ("email", "name", "organisation", "region", "tags", "attributes")


@dataclass(frozen=True, slots=True)
class Stored:
    """What an import compares against: a member's profile and status, as stored."""

    id: int
    email: str
    name: str
    organisation: str
    region: str
    tags: tuple[str, ...]
    attributes: dict[str, str]
    status: str


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while an import builds its rows.

    An import makes hundreds of thousands of small tuples, dicts and strings, none
    of them in reference cycles; each collection the allocations trigger would
    walk them all again, which took a third of an import's time. Reference
    counting still frees everything; the collector resumes (if it was on) after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# -- reading ------------------------------------------------------------------------


def load_stored(
    connection: Connection, keys: Sequence[str], total: int | None = None
) -> dict[str, Stored]:
    """The stored members among ``keys``, by key; ``total``: how many members are stored, if known."""
    if total is None:
        total = connection.scalar(select(func.count()).select_from(_S)) or 0
    if total == 0 or not keys:
        return {}
    # JSON comes back as text and is decoded through a cache: lists repeat tag sets.
    columns = (
        _S.email_key,
        _S.id,
        _S.email,
        _S.name,
        _S.organisation,
        _S.region,
        sql_cast(_S.tags, Text),
        sql_cast(_S.attributes, Text),
        _S.status,
    )
    if len(keys) * 4 >= total:  # a scan beats thousands of look-ups
        wanted = set(keys)
        rows: Iterable[Any] = (
            row for row in connection.execute(select(*columns)) if row[0] in wanted
        )
    else:
        rows = (
            row
            for chunk in chunks(keys)
            for row in connection.execute(select(*columns).where(_S.email_key.in_(chunk)))
        )
    return {
        key: Stored(id_, email, name, organisation, region, _tags(tags), dict(_json(attrs)), status)
        for key, id_, email, name, organisation, region, tags, attrs, status in rows
    }


def suppressed_among(connection: Connection, keys: Sequence[str]) -> set[str]:
    """The keys among ``keys`` whose address was forgotten."""
    if not connection.execute(select(SuppressionRow.id).limit(1)).first():
        return set()  # the usual case: no need to hash every address
    by_hash = {suppression_hash(key): key for key in keys}
    found: set[str] = set()
    for chunk in chunks(list(by_hash)):
        query = select(SuppressionRow.email_hash).where(SuppressionRow.email_hash.in_(chunk))
        found.update(by_hash[hash_] for hash_ in connection.scalars(query))
    return found


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


@lru_cache(maxsize=4096)
def decode_json(text: str) -> Any:
    """JSON text decoded, once per distinct text (the result is shared: never change it)."""
    return json.loads(text)


@lru_cache(maxsize=4096)
def decode_tags(text: str) -> tuple[str, ...]:
    """A JSON list of tags as a tuple, once per distinct text."""
    return tuple(json.loads(text))


_json, _tags = decode_json, decode_tags


# -- planning (pure) ----------------------------------------------------------------


@dataclass
class UpsertPlan:
    """What an import will write, worked out before anything is written."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    profile_updates: list[dict[str, Any]] = field(default_factory=list)
    status_updates: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    # (address key, when, what): earlier history of new members, written once they have ids.
    history: list[tuple[str, dt.datetime, str]] = field(default_factory=list)
    # Each record's status after the import, in the order given ("suppressed" if forgotten).
    outcomes: list[str] = field(default_factory=list)
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0

    def counts(self) -> ImportCounts:
        return ImportCounts(
            added=len(self.inserts),
            updated=self.updated,
            unchanged=self.unchanged,
            suppressed=self.suppressed,
        )


@dataclass(frozen=True)
class UpsertOutcome:
    """What an import did: the counts, and each record's status after it (``outcomes``)."""

    counts: ImportCounts
    outcomes: list[str]


def plan_upsert(
    records: Iterable[MemberRecord],
    stored: dict[str, Stored],
    suppressed: set[str],
    when: dt.datetime,
    source: str,
) -> UpsertPlan:
    """Sort records into inserts, updates, unchanged and suppressed.

    Never revives a sticky status: a record may move an active member to a
    sticky status, never the other way. Raises ValueError if an address repeats.
    """
    plan = UpsertPlan()
    seen: set[str] = set()
    for record in records:
        key = email_key(record.email)
        if key in seen:
            raise ValueError(f"{record.email!r} is given twice; addresses must be unique")
        seen.add(key)
        if key in suppressed:
            plan.suppressed += 1
            plan.outcomes.append(SUPPRESSED)
        elif key in stored:
            plan.outcomes.append(_plan_update(plan, stored[key], record, when, source))
        else:
            row = new_row(record, when, source)
            plan.inserts.append(row)
            plan.outcomes.append(row["status"])
            plan.history.extend((key, at, what) for at, what in record.history)
    return plan


def _plan_update(
    plan: UpsertPlan, row: Stored, record: MemberRecord, when: dt.datetime, source: str
) -> str:
    """Plan the changes to a stored member; returns their status after the import."""
    profile = _merged_profile(row, record)
    changed = [name for name in PROFILE if profile[name] != getattr(row, name)]
    if changed:
        plan.profile_updates.append(
            {"id": row.id, **profile, "tags": list(profile["tags"]), "updated_at": when}
        )
        detail = "changed " + ", ".join(changed)
        plan.events.append(event(row.id, when, EventKind.updated, detail, source))
    new_status = record.status
    status = row.status
    revives = new_status is None or not new_status.sticky
    if not revives and row.status == SubscriberStatus.active and new_status is not None:
        status = new_status.value
        reason = record.status_reason or f"marked {new_status.value} in {source}"
        plan.status_updates.append(
            {
                "id": row.id,
                "status": new_status.value,
                "status_changed_at": record.status_changed_at or when,
                "status_reason": reason,
                "updated_at": when,
            }
        )
        plan.events.append(
            event(row.id, when, EventKind.status, reason, source, row.status, new_status.value)
        )
        changed.append("status")
    if changed:
        plan.updated += 1
    else:
        plan.unchanged += 1
    return status


def _merged_profile(row: Stored, record: MemberRecord) -> dict[str, Any]:
    """The profile after applying what the record gives (None: keep what is stored)."""
    attributes = row.attributes
    if record.attributes:
        attributes = dict(attributes)
        for name, value in record.attributes.items():
            if value is None:
                attributes.pop(name, None)
            else:
                attributes[name] = value
    return {
        "email": record.email,
        "name": row.name if record.name is None else record.name,
        "organisation": row.organisation if record.organisation is None else record.organisation,
        "region": row.region if record.region is None else record.region,
        "tags": row.tags if record.tags is None else record.tags,
        "attributes": attributes,
    }


def new_row(record: MemberRecord, when: dt.datetime, source: str) -> dict[str, Any]:
    """The subscribers row for a new member."""
    attributes = dict(record.attributes)
    if None in attributes.values():
        attributes = {name: value for name, value in attributes.items() if value is not None}
    return {
        "email": record.email,
        "email_key": email_key(record.email),
        "name": record.name or "",
        "organisation": record.organisation or "",
        "region": record.region or "",
        "tags": record.tags or (),
        "attributes": attributes,
        "status": record.status.value if record.status else SubscriberStatus.active.value,
        "status_changed_at": record.status_changed_at or when,
        "status_reason": record.status_reason or f"added by {source}",
        "created_at": record.created_at or when,
        "updated_at": when,
    }


def event(
    subscriber_id: int,
    when: dt.datetime,
    kind: EventKind,
    detail: str,
    source: str,
    status_from: str | None = None,
    status_to: str | None = None,
) -> dict[str, Any]:
    """A subscriber_events row."""
    return {
        "subscriber_id": subscriber_id,
        "at": when,
        "kind": kind.value,
        "detail": detail,
        "source": source,
        "status_from": status_from,
        "status_to": status_to,
    }


# -- writing ------------------------------------------------------------------------


def apply_plan(
    connection: Connection,
    plan: UpsertPlan,
    when: dt.datetime,
    source: str,
    *,
    analyze: bool = True,
) -> None:
    writer = BulkWriter(connection)
    new = insert_new(connection, plan.inserts, when, source, writer)
    writer.update(SUBSCRIBERS, plan.profile_updates)
    writer.update(SUBSCRIBERS, plan.status_updates)
    writer.insert(EVENTS, plan.events)
    if plan.history:
        found = connection.execute(select(_S.email_key, _S.id).where(new))
        ids = {key: id_ for key, id_ in found}
        earlier = [
            event(ids[key], at, EventKind.prior, what, source) for key, at, what in plan.history
        ]
        writer.insert(EVENTS, earlier)
    if analyze and connection.dialect.name == "postgresql" and len(plan.inserts) > 1000:
        # Fresh statistics, or the planner scans the table for every look-up that follows.
        connection.exec_driver_sql("ANALYZE subscribers")


class ChunkedUpsert:
    """An import written a chunk of records at a time, all in the caller's one transaction.

    Each chunk is read, planned and written as :meth:`SubscriberStore.upsert_outcomes`
    does it, so only a chunk's rows are ever held. The addresses must be unique over
    every chunk (the import sees to it). What is worked out once per import rather
    than per chunk: how many members are stored, and PostgreSQL's statistics, which
    are refreshed each time the table has doubled (not after every chunk).
    """

    def __init__(
        self, connection: Connection, when: dt.datetime, source: str, *, dry_run: bool
    ) -> None:
        self.connection = connection
        self.when = when
        self.source = source
        self.dry_run = dry_run
        self.total = connection.scalar(select(func.count()).select_from(_S)) or 0
        self._analysed = self.total
        self._postgresql = connection.dialect.name == "postgresql"

    def __call__(self, records: Sequence[MemberRecord]) -> UpsertOutcome:
        keys = [email_key(record.email) for record in records]
        stored = load_stored(self.connection, keys, self.total)
        suppressed = suppressed_among(self.connection, keys)
        plan = plan_upsert(records, stored, suppressed, self.when, self.source)
        if not self.dry_run:
            apply_plan(self.connection, plan, self.when, self.source, analyze=False)
            self.total += len(plan.inserts)
            if self._postgresql and self.total > 2 * max(self._analysed, 500):
                self._analyze()
        return UpsertOutcome(plan.counts(), plan.outcomes)

    def finish(self) -> None:
        """Fresh statistics for what follows the import, if it added many members."""
        if self._postgresql and self.total - self._analysed > 1000:
            self._analyze()

    def _analyze(self) -> None:
        # Fresh statistics, or the planner scans the table for every look-up that follows.
        self.connection.exec_driver_sql("ANALYZE subscribers")
        self._analysed = self.total


def insert_new(
    connection: Connection,
    rows: list[dict[str, Any]],
    when: dt.datetime,
    source: str,
    writer: BulkWriter | None = None,
) -> ColumnElement[bool]:
    """Insert new subscribers and their 'added' events; returns a condition selecting them."""
    if not rows:
        return false()
    # Ids above the highest one before the insert are ours: writers are serialised
    # (BEGIN IMMEDIATE on SQLite) or isolated (SERIALIZABLE on PostgreSQL). This
    # saves RETURNING, which SQLite can only do a row at a time.
    before = connection.scalar(select(func.coalesce(func.max(_S.id), 0)))
    (writer or BulkWriter(connection)).insert(SUBSCRIBERS, rows)
    new = _S.id > before
    detail = case(
        (_S.status == SubscriberStatus.active.value, literal("added")),
        else_=literal("added as ") + _S.status + literal(": ") + _S.status_reason,
    )
    added = select(
        _S.id,
        literal(when, UTCDateTime()),
        literal(EventKind.added.value),
        detail,
        literal(source),
        null(),
        _S.status,
    ).where(new)
    columns = ("subscriber_id", "at", "kind", "detail", "source", "status_from", "status_to")
    connection.execute(insert(SubscriberEventRow).from_select(columns, added))
    return new
