"""A segment's rules as a SQL condition, so that the database picks a segment's members.

`mailer subscribers list --segment` and the other walks of one segment ask the
database for the segment's members instead of reading the whole list into Python.
The condition is built from the same rules as :mod:`mailer.audience.segments`
(which stays the reference) and works on SQLite and PostgreSQL:

* a region or tag is compared as ``lower(trim(value))`` against the rule's values
  folded in Python; tags are read from the JSON array (``json_each`` on SQLite,
  ``jsonb_array_elements_text`` on PostgreSQL);
* an attribute is read from the JSON object (``json_extract`` / ``->>``), a
  missing one as ``''``, as the Python rules read it.

SQL's ``lower`` and ``trim`` agree with Python's ``casefold`` and ``strip`` on
printable ASCII only (SQLite's ``lower`` leaves ``Î`` alone, ``casefold`` turns
``ß`` into ``ss``, ``trim`` keeps tabs). So a value holding anything else is let
through by the condition, and the caller keeps only the members that
:meth:`SegmentRules.of_member` puts in the segment: the condition may select a
few members too many, never one too few (``tests/audience/test_segment_sql.py``
checks both on both databases).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Text, and_, false, func, literal, or_, select, true
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import InstrumentedAttribute

from mailer.audience.segments import SegmentRules
from mailer.config import Segment
from mailer.store.models import Subscriber, SubscriberStatus, column_key
from mailer.store.schema import SubscriberRow

if TYPE_CHECKING:
    from mailer.store import SubscriberStore

_S = SubscriberRow


def segment_members(
    store: SubscriberStore,
    rules: SegmentRules,
    name: str,
    *,
    status: SubscriberStatus | None = None,
) -> Iterator[Subscriber]:
    """The members of the segment called ``name`` (with that status), ordered by address,
    streamed: chosen by the database, each confirmed by the Python rules."""
    where = segment_condition(rules.segment(name), store.engine.dialect.name)
    return (
        member
        for member in store.stream(status=status, where=where)
        if name in rules.of_member(member)
    )


def _fold(value: str) -> str:
    return value.strip().casefold()


def segment_condition(segment: Segment, dialect: str) -> ColumnElement[bool]:
    """A WHERE condition true for every member of ``segment`` (and possibly a few more)."""
    conditions: list[ColumnElement[bool]] = []
    if segment.tags:
        conditions.append(_any_tag({_fold(tag) for tag in segment.tags}, dialect))
    if segment.regions:
        regions = {_fold(region) for region in segment.regions}
        conditions.append(_one_of(_S.region, regions, dialect))
    for name, value in segment.attributes.items():
        allowed = {_fold(v) for v in ([value] if isinstance(value, str) else value)}
        conditions.append(_one_of(_attribute(column_key(name), dialect), allowed, dialect))
    return and_(true(), *conditions)


def _one_of(
    value: ColumnElement[str] | InstrumentedAttribute[str], folded: set[str], dialect: str
) -> ColumnElement[bool]:
    """The value, folded as SQL can, is one of ``folded``; or SQL cannot fold it as Python does."""
    return or_(func.lower(func.trim(value)).in_(sorted(folded)), _unusual(value, dialect))


def _unusual(
    value: ColumnElement[str] | InstrumentedAttribute[str], dialect: str
) -> ColumnElement[bool]:
    """The value holds a character outside printable ASCII (where SQL's folding differs)."""
    if dialect == "sqlite":
        return value.op("GLOB")(literal("*[^ -~]*"))
    return value.op("~")(literal("[^ -~]"))


def _attribute(name: str, dialect: str) -> ColumnElement[str]:
    """The attribute's text, '' if the member has none."""
    if dialect == "sqlite":
        found: ColumnElement[str] = func.json_extract(_S.attributes, f'$."{name}"')
    else:
        found = _S.attributes.op("->>")(literal(name))
    return func.coalesce(sql_cast(found, Text), "")


def _any_tag(folded: set[str], dialect: str) -> ColumnElement[bool]:
    if not folded:
        return false()
    function = func.json_each if dialect == "sqlite" else func.jsonb_array_elements_text
    tags = function(_S.tags).table_valued("value").alias("tag")
    return (
        select(literal(1)).select_from(tags).where(_one_of(tags.c.value, folded, dialect)).exists()
    )
