"""The audience: which members get an issue, and which variant each gets.

Active members are streamed from the store a page at a time (keyset pagination,
each page its own short read), so memory stays flat however long the list is.
Each member's *variant key* is the set of the issue's segments they belong to
(:func:`mailer.render.variant_key` over :func:`mailer.audience.segments.segments_of`).
The ledger then says who still needs the issue: members with no row for it, or
with a ``failed`` row that may be retried.

Two walks over the list use this: :func:`plan` counts (for ``--dry-run``, the
confirmation and the progress bar), and :func:`batches` groups the members still
to send into per-variant batches for the deliver stage. Whether a member is still
active is checked again when each batch is claimed (:meth:`Ledger.claim`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, NamedTuple, TypeVar

from mailer.audience.segments import rules_of
from mailer.config import Newsletter
from mailer.issues.model import Issue
from mailer.mail import DeliveryState
from mailer.render import variant_key, variant_name
from mailer.store import SubscriberStore
from mailer.store.transact import driver_rows, read

__all__ = [
    "Addressee",
    "Done",
    "Idle",
    "Member",
    "Pending",
    "Plan",
    "ShareSpan",
    "Span",
    "VariantKeys",
    "VariantPlan",
    "Walked",
    "batches",
    "members",
    "members_by_variant",
    "plan",
]

PAGE_SIZE = 1000
SAMPLE_SIZE = 5

T = TypeVar("T")


class Addressee(NamedTuple):
    """What a send needs of an active member: the address and the values merge tags use."""

    id: int
    email: str
    name: str
    organisation: str
    region: str
    first_name: str
    link_version: int = 0


@dataclass(frozen=True, slots=True)
class Member:
    """An active member, the variant of the issue they get, and their ledger row for it."""

    addressee: Addressee
    key: frozenset[str]
    ledger: tuple[str, bool] | None  # (state, retryable); None: no row yet


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to ``size`` items, in order."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


# Two reads per page, each a range scan on one table's index: the members (keyset on
# the primary key), then their ledger rows for the issue (the unique index on issue,
# subscriber_id). One LEFT JOIN read the same rows, but PostgreSQL planned it as a
# merge join that walked the ledger's subscriber index from its start on every page:
# quadratic in the list once an issue has been sent (15 s instead of 0.5 s for a
# re-run at 300,000 members). JSON columns come as text, decoded once per distinct
# value: lists have far fewer profiles than members.
_ACTIVE_BY_ID = (
    "FROM subscribers s "
    "WHERE s.status = 'active' AND s.id > {m} AND s.id <= {m} ORDER BY s.id LIMIT {m}"
)
_PAGE = (
    "SELECT s.id, s.email, s.name, s.organisation, s.region, "
    "CAST(s.tags AS TEXT), CAST(s.attributes AS TEXT), s.link_version " + _ACTIVE_BY_ID
)
# What plan() reads of a member, in a page row's places: the variant key's fields, the
# address for the samples (the attributes only when some rule reads them, {a}).
_PLAN_PAGE = "SELECT s.id, s.email, '', '', s.region, CAST(s.tags AS TEXT), {a}, 0 " + _ACTIVE_BY_ID
_LEDGER = (
    "SELECT subscriber_id, state, retryable FROM deliveries "
    "WHERE issue = {m} AND subscriber_id BETWEEN {m} AND {m}"
)
# The ids of a share of the audience (mailer.store.shares), first and last included.
Span = tuple[int, int]
EVERYONE: Span = (0, 2**62)

_OPT_OUTS = (
    "SELECT subscriber_id, segment FROM segment_opt_outs WHERE subscriber_id BETWEEN {m} AND {m}"
)


def members(
    store: SubscriberStore,
    issue: Issue,
    newsletter: Newsletter,
    *,
    page_size: int = PAGE_SIZE,
    span: Span = EVERYONE,
) -> Iterator[list[Member]]:
    """Pages of active members, in id order, each with their variant key and ledger row.

    Segments a member opted out of in the preference centre do not count for them.
    """
    keys = VariantKeys(issue, newsletter)
    for page in _pages(store, issue, page_size, span):
        yield [
            Member(*keys.addressee(row, page.opted.get(row[0])), page.ledger_row(row[0]))
            for row in page.rows
        ]


# A member's page row: id, email, name, organisation, region, tags, attributes (JSON
# text), link_version.
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Page:
    """A page of member rows, with their ledger rows for the issue and the segments each
    opted out of (by member id; most members have neither)."""

    rows: list[Row]
    ledger: dict[int, tuple[str, Any]]  # (state, retryable)
    opted: dict[int, set[str]]

    def ledger_row(self, member_id: int) -> tuple[str, bool] | None:
        """The member's (state, retryable) for the issue; None: no row yet."""
        found = self.ledger.get(member_id)
        return None if found is None else (found[0], bool(found[1]))


def _pages(
    store: SubscriberStore, issue: Issue, page_size: int, span: Span, query: str = _PAGE
) -> Iterator[_Page]:
    """Member rows a page at a time, with their ledger rows and the segments opted out of.

    Keyset pagination, each page its own short read, keeps memory flat and never
    holds a transaction open. This walk is on the path of every recipient of a
    send, so it reads plain rows, and profiles are worked out once (VariantKeys).
    """
    last_id, until = span[0] - 1, span[1]
    while True:
        with read(store.engine) as connection:
            mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
            page = query.format(m=mark)
            found: list[Row] = driver_rows(connection, page, (last_id, until, page_size))
            if not found:
                return
            span = (found[0][0], found[-1][0])
            ledger = {
                subscriber_id: (state, retryable)
                for subscriber_id, state, retryable in driver_rows(
                    connection, _LEDGER.format(m=mark), (issue.slug, *span)
                )
            }
            opted: dict[int, set[str]] = {}
            for subscriber_id, segment in driver_rows(connection, _OPT_OUTS.format(m=mark), span):
                opted.setdefault(subscriber_id, set()).add(segment)
        yield _Page(found, ledger, opted)
        last_id = found[-1][0]


class VariantKeys:
    """A member's variant key, worked out once per distinct profile.

    A profile is first the stored text of tags, region and attributes (most members
    share theirs with many others; the attributes only when some rule reads them),
    then, where that text is new, what the segment rules read of it (tags as a set,
    the region, the attributes some rule names): a list whose members each have
    attributes of their own (a first name, a member number) still has few of those.
    Both caches are bounded, so that a list where every profile differs cannot grow
    them without limit.
    """

    MAX_CACHED = 4096

    def __init__(self, issue: Issue, newsletter: Newsletter) -> None:
        self.issue, self.newsletter = issue, newsletter
        self._rules = rules_of(newsletter)
        # Rules that read no attribute: a profile is its tags and region alone, and the
        # attributes' text (as varied as the members) is not even parsed.
        self.reads_attributes = bool(self._rules.attribute_names)
        self._profiles: dict[tuple[str | None, str, str | None], frozenset[str]] = {}
        self._keys: dict[tuple[frozenset[str], str, tuple[str, ...]], frozenset[str]] = {}

    def addressee(self, row: Row, opted_out: set[str] | None) -> tuple[Addressee, frozenset[str]]:
        """A page row (see ``Row``) as an Addressee, with the member's variant key."""
        member_id, email, name, organisation, region, tags, attributes, link_version = row
        key = self._known(tags, region, attributes)
        if opted_out:
            key = key - opted_out
        first_name = _first_name(attributes)
        if not first_name:
            words = name.split()
            first_name = words[0] if words else ""
        # _make is tuple.__new__ itself; calling the class goes through a lambda of Python's.
        addressee = Addressee._make(
            (member_id, email, name, organisation, region, first_name, link_version)
        )
        return addressee, key

    def key(self, row: Row, opted_out: set[str] | None) -> frozenset[str]:
        """The variant key of a page row's member (what :func:`plan` needs of them)."""
        key = self._known(row[5], row[4], row[6])
        return key - opted_out if opted_out else key

    def _known(self, tags: str | None, region: str, attributes: str | None) -> frozenset[str]:
        profile = (tags, region, attributes if self.reads_attributes else None)
        known = self._profiles.get(profile)
        if known is None:
            if len(self._profiles) >= self.MAX_CACHED:
                self._profiles.clear()
            known = self._profiles[profile] = self._profile(*profile)
        return known

    def _profile(self, tags: str | None, region: str, attributes: str | None) -> frozenset[str]:
        """The variant key of a profile."""
        read = self._rules.folded(_json(tags), region, dict(_json(attributes)))
        key = self._keys.get(read)
        if key is None:
            if len(self._keys) >= self.MAX_CACHED:
                self._keys.clear()
            key = self._keys[read] = variant_key(self.issue, self._rules.of_folded(*read))
        return key


def _first_name(attributes: str | None) -> str:
    """The ``first_name`` attribute in a member's stored attributes, if any. Most members
    have none: their text, JSON written by the store, cannot hold the key unquoted."""
    if not attributes or '"first_name"' not in attributes:
        return ""
    return str(dict(_json(attributes)).get("first_name", "")).strip()


def _json(text: str | None) -> Any:
    return json.loads(text) if text else ()


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
    issue: Issue,
    newsletter: Newsletter,
    *,
    page_size: int = PAGE_SIZE,
    sample: int = SAMPLE_SIZE,
) -> Plan:
    """Count the audience per variant, and where each member stands in the ledger. Reads only."""
    result = Plan()
    keys = VariantKeys(issue, newsletter)
    read = "CAST(s.attributes AS TEXT)" if keys.reads_attributes else "NULL"
    query = _PLAN_PAGE.replace("{a}", read)
    for page in _pages(store, issue, page_size, EVERYONE, query):
        ledger, opted = page.ledger, page.opted
        for row in page.rows:
            variant = result.variant(keys.key(row, opted.get(row[0])), newsletter)
            state, retryable = ledger.get(row[0], (None, None))
            if state is None or (state == DeliveryState.failed and retryable):
                variant.to_send += 1
                if len(variant.sample) < sample:
                    variant.sample.append(row[1])
            else:
                _count_done(variant, state)
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
    addressees: list[Addressee]
    shares: frozenset[int] = frozenset()  # the shares of the audience its members are in


@dataclass(frozen=True, slots=True)
class Done:
    """Members of one variant the ledger says need nothing now, and their state there."""

    key: frozenset[str]
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class Walked:
    """Every member of the share still to send is in a batch yielded before this."""

    share: int


@dataclass(frozen=True, slots=True)
class Idle:
    """No share to walk for now: every member read so far is in a batch yielded before this."""


# What :func:`batches` walks: (share id, the ids it spans) one after another; None when
# there is no share to walk for now (others send the rest) and it may be asked again.
ShareSpan = tuple[int, Span]


@dataclass
class _Buffer:
    addressees: list[Addressee] = field(default_factory=list)
    shares: set[int] = field(default_factory=set)


def batches(
    store: SubscriberStore,
    issue: Issue,
    newsletter: Newsletter,
    *,
    batch_size: int,
    shares: Iterable[ShareSpan | None] = ((0, EVERYONE),),
) -> Iterator[Pending | Done | Walked | Idle]:
    """Members still to send, grouped by variant into batches of at most ``batch_size``.

    A variant's batch is yielded as soon as it is full, the rest at the end, so at
    most one partial batch per variant is held. Members the ledger says are done
    (or are waiting to be resolved) are reported as :class:`Done` counts, per page.

    The audience is walked share after share (see :mod:`mailer.store.shares`), and a
    variant's batch fills across them: each share ending with part-filled batches would
    make many small requests. :class:`Walked` says when a share's every member is in a
    batch yielded; at a None among ``shares``, the part-filled batches are yielded, then
    :class:`Idle`.
    """
    buffers: dict[frozenset[str], _Buffer] = {}
    walked: list[int] = []  # shares walked whose members may still be in a buffer
    keys = VariantKeys(issue, newsletter)

    def finished() -> Iterator[Walked]:
        held = {share for buffer in buffers.values() for share in buffer.shares}
        for share in [share for share in walked if share not in held]:
            walked.remove(share)
            yield Walked(share)

    def flush() -> Iterator[Pending | Walked]:
        for key, buffer in buffers.items():
            if buffer.addressees:
                yield Pending(key, buffer.addressees, frozenset(buffer.shares))
        buffers.clear()
        yield from finished()

    for share in shares:
        if share is None:
            yield from flush()
            yield Idle()
            continue
        share_id, span = share
        for page in _pages(store, issue, max(batch_size, PAGE_SIZE), span):
            done: Counter[tuple[frozenset[str], str]] = Counter()
            opted = page.opted
            for row in page.rows:
                addressee, key = keys.addressee(row, opted.get(row[0]) if opted else None)
                if page.ledger:
                    ledger = page.ledger_row(row[0])
                    if ledger is not None and not _needs_sending(ledger):
                        done[key, ledger[0]] += 1
                        continue
                buffer = buffers.get(key)
                if buffer is None:
                    buffer = buffers[key] = _Buffer()
                buffer.addressees.append(addressee)
                buffer.shares.add(share_id)
                if len(buffer.addressees) >= batch_size:
                    yield Pending(key, buffer.addressees, frozenset(buffer.shares))
                    buffers[key] = _Buffer([], {share_id})  # the share goes on
            yield from (Done(key, state, count) for (key, state), count in done.items())
        for buffer in buffers.values():  # a buffer emptied just now holds none of it
            if not buffer.addressees:
                buffer.shares.discard(share_id)
        walked.append(share_id)
        yield from finished()
    yield from flush()


def members_by_variant(
    store: SubscriberStore, issue: Issue, newsletter: Newsletter
) -> dict[frozenset[str], int]:
    """How many active members get each variant, the largest first: the variants a send makes."""
    return {variant.key: variant.audience for variant in plan(store, issue, newsletter).ordered()}
