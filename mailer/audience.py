"""The audience: which members get an issue, and which variant each gets.

Active members are streamed from the store a page at a time (keyset pagination,
each page its own short read), so memory stays flat however long the list is.
Each member's *variant key* is the set of the issue's segments they belong to
(:func:`mailer.render.variant_key` over :func:`mailer.segments.segments_of`).
The ledger then says who still needs the issue: members with no row for it, or
with a ``failed`` row that may be retried.

Two walks over the list use this: :func:`plan` counts (for ``--dry-run``, the
confirmation and the progress bar), and :func:`batches` groups the members still
to send into per-variant batches for the deliver stage. Whether a member is still
active is checked again when each batch is claimed (:meth:`Ledger.claim`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Engine, Text, select, type_coerce

from mailer.config import Newsletter
from mailer.issue import Issue
from mailer.render import variant_key, variant_name
from mailer.segments import segments_of
from mailer.store import Subscriber, SubscriberStatus, SubscriberStore
from mailer.store.ledger import DeliveryState, Ledger
from mailer.store.preferences import opted_out
from mailer.store.schema import SubscriberRow

__all__ = [
    "Done",
    "Member",
    "Pending",
    "Plan",
    "VariantKeys",
    "VariantPlan",
    "active_pages",
    "batches",
    "members",
    "plan",
]

PAGE_SIZE = 1000
SAMPLE_SIZE = 5

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Member:
    """An active subscriber and the variant of the issue they get."""

    subscriber: Subscriber
    key: frozenset[str]


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to ``size`` items, in order."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def members(
    store: SubscriberStore, issue: Issue, newsletter: Newsletter, *, page_size: int = PAGE_SIZE
) -> Iterator[list[Member]]:
    """Pages of active members, in id order, each with their variant key.

    Segments a member opted out of in the preference centre do not count for them.
    """
    key_of = VariantKeys(issue, newsletter)
    for page in active_pages(store.engine, page_size=page_size):
        choices = opted_out(store.engine, [subscriber.id for subscriber in page])
        yield [
            Member(subscriber, key_of(subscriber) - choices.get(subscriber.id, frozenset()))
            for subscriber in page
        ]


class VariantKeys:
    """A member's variant key, worked out once per distinct profile (tags, region, attributes).

    Lists have far fewer profiles than members; the cache is bounded so that a list
    where every profile differs cannot grow it without limit.
    """

    MAX_CACHED = 4096

    def __init__(self, issue: Issue, newsletter: Newsletter) -> None:
        self.issue, self.newsletter = issue, newsletter
        self._cache: dict[tuple[object, ...], frozenset[str]] = {}

    def __call__(self, subscriber: Subscriber) -> frozenset[str]:
        profile = (subscriber.tags, subscriber.region, tuple(sorted(subscriber.attributes.items())))
        key = self._cache.get(profile)
        if key is None:
            if len(self._cache) >= self.MAX_CACHED:
                self._cache.clear()
            key = variant_key(self.issue, segments_of(subscriber, self.newsletter))
            self._cache[profile] = key
        return key


_S = SubscriberRow
# Read raw: JSON as text and times as the database gives them, converted below.
_COLUMNS = (
    _S.id,
    _S.email,
    _S.name,
    _S.organisation,
    _S.region,
    type_coerce(_S.tags, Text),
    type_coerce(_S.attributes, Text),
    type_coerce(_S.status_changed_at, Text),
    _S.status_reason,
    type_coerce(_S.created_at, Text),
    type_coerce(_S.updated_at, Text),
)


def active_pages(engine: Engine, *, page_size: int = PAGE_SIZE) -> Iterator[list[Subscriber]]:
    """Active members in id order, a page per short read: what ``SubscriberStore.active()`` gives.

    Keyset pagination keeps memory flat and never holds a transaction open. Each
    distinct JSON text and timestamp is converted once per page: on SQLite,
    converting every row through the column types made reading 100,000 members
    take three times as long as the rest of their send.
    """
    last_id = 0
    while True:
        query = (
            select(*_COLUMNS)
            .where(_S.id > last_id, _S.status == SubscriberStatus.active.value)
            .order_by(_S.id)
            .limit(page_size)
        )
        with engine.connect() as connection, connection.begin():
            rows = connection.execute(query).all()
        if not rows:
            return
        yield _subscribers(rows)
        last_id = rows[-1][0]


def _subscribers(rows: Sequence[Any]) -> list[Subscriber]:
    json_of: dict[Any, Any] = {}
    time_of: dict[Any, dt.datetime] = {}

    def decoded(raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw  # PostgreSQL's driver decodes JSONB itself
        if raw not in json_of:
            json_of[raw] = json.loads(raw)
        return json_of[raw]

    def when(raw: Any) -> dt.datetime:
        found = time_of.get(raw)
        if found is None:
            value = raw if isinstance(raw, dt.datetime) else dt.datetime.fromisoformat(raw)
            found = time_of[raw] = (
                value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
            )
        return found

    active = SubscriberStatus.active
    return [
        Subscriber(
            id=row[0],
            email=row[1],
            name=row[2],
            organisation=row[3],
            region=row[4],
            tags=tuple(decoded(row[5])),
            attributes=dict(decoded(row[6])),
            status=active,
            status_changed_at=when(row[7]),
            status_reason=row[8],
            created_at=when(row[9]),
            updated_at=when(row[10]),
        )
        for row in rows
    ]


def _needs_sending(row: tuple[str, bool] | None) -> bool:
    """No row yet, or a failure that may be retried."""
    return row is None or (row[0] == DeliveryState.failed and row[1])


@dataclass
class VariantPlan:
    """One variant's share of the audience."""

    key: frozenset[str]
    name: str
    to_send: int = 0
    sent: int = 0  # already sent
    unknown: int = 0  # handed over earlier with no answer: not resent until resolved
    interrupted: int = 0  # in_flight from a send that died: settled when the next send starts
    failed: int = 0  # refused for good earlier: not retried
    sample: list[str] = field(default_factory=list)  # the first few addresses to send to

    @property
    def audience(self) -> int:
        return self.to_send + self.sent + self.unknown + self.interrupted + self.failed


@dataclass
class Plan:
    """Who gets which variant: counts per variant, and a few addresses of each."""

    variants: dict[frozenset[str], VariantPlan] = field(default_factory=dict)

    def variant(self, key: frozenset[str], newsletter: Newsletter) -> VariantPlan:
        found = self.variants.get(key)
        if found is None:
            found = self.variants[key] = VariantPlan(key, variant_name(key, newsletter))
        return found

    @property
    def audience(self) -> int:
        return sum(v.audience for v in self.variants.values())

    @property
    def to_send(self) -> int:
        return sum(v.to_send for v in self.variants.values())

    @property
    def sent(self) -> int:
        return sum(v.sent for v in self.variants.values())

    @property
    def unknown(self) -> int:
        return sum(v.unknown for v in self.variants.values())

    @property
    def interrupted(self) -> int:
        return sum(v.interrupted for v in self.variants.values())

    def ordered(self) -> list[VariantPlan]:
        """Variants, the largest first."""
        return sorted(self.variants.values(), key=lambda v: (-v.audience, v.name))


def plan(
    store: SubscriberStore,
    ledger: Ledger,
    issue: Issue,
    newsletter: Newsletter,
    *,
    page_size: int = PAGE_SIZE,
    sample: int = SAMPLE_SIZE,
) -> Plan:
    """Count the audience per variant, and where each member stands in the ledger. Reads only."""
    result = Plan()
    for page in members(store, issue, newsletter, page_size=page_size):
        rows = ledger.states_of(issue.slug, [m.subscriber.id for m in page])
        for member in page:
            variant = result.variant(member.key, newsletter)
            row = rows.get(member.subscriber.id)
            if _needs_sending(row):
                variant.to_send += 1
                if len(variant.sample) < sample:
                    variant.sample.append(member.subscriber.email)
            elif row is not None:
                _count_done(variant, row[0])
    return result


def _count_done(variant: VariantPlan, state: str) -> None:
    if state == DeliveryState.sent:
        variant.sent += 1
    elif state == DeliveryState.unknown:
        variant.unknown += 1
    elif state == DeliveryState.in_flight:
        variant.interrupted += 1
    else:
        variant.failed += 1


@dataclass(frozen=True, slots=True)
class Pending:
    """A batch of members of one variant who still need the issue."""

    key: frozenset[str]
    subscribers: list[Subscriber]


@dataclass(frozen=True, slots=True)
class Done:
    """Members of one variant the ledger says need nothing now, and their state there."""

    key: frozenset[str]
    state: str
    count: int


def batches(
    store: SubscriberStore,
    ledger: Ledger,
    issue: Issue,
    newsletter: Newsletter,
    *,
    batch_size: int,
) -> Iterator[Pending | Done]:
    """Members still to send, grouped by variant into batches of at most ``batch_size``.

    A variant's batch is yielded as soon as it is full, the rest at the end, so at
    most one partial batch per variant is held. Members the ledger says are done
    (or are waiting to be resolved) are reported as :class:`Done` counts, per page.
    """
    buffers: dict[frozenset[str], list[Subscriber]] = {}
    for page in members(store, issue, newsletter, page_size=max(batch_size, PAGE_SIZE)):
        rows = ledger.states_of(issue.slug, [m.subscriber.id for m in page])
        done: Counter[tuple[frozenset[str], str]] = Counter()
        for member in page:
            row = rows.get(member.subscriber.id)
            if row is not None and not _needs_sending(row):
                done[member.key, row[0]] += 1
                continue
            buffer = buffers.setdefault(member.key, [])
            buffer.append(member.subscriber)
            if len(buffer) >= batch_size:
                yield Pending(member.key, buffer)
                buffers[member.key] = []
        yield from (Done(key, state, count) for (key, state), count in done.items())
    yield from (Pending(key, buffer) for key, buffer in buffers.items() if buffer)
