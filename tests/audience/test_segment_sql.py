"""A segment's SQL condition picks the members the Python rules pick, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import delete, select

from mailer.audience.segments import SegmentRules
from mailer.audience.segmentsql import segment_condition, segment_members
from mailer.config import Segment
from mailer.store import MemberRecord, SubscriberStatus, SubscriberStore
from mailer.store.schema import SubscriberRow


def segment(**rules: object) -> Segment:
    return Segment.model_validate({"name": "chosen", "label": "Chosen", **rules})


def fill(
    store: SubscriberStore, profiles: Sequence[tuple[str, tuple[str, ...], dict[str, str]]]
) -> None:
    """Members m0@, m1@, ... with these (region, tags, attributes), replacing any before."""
    with store.engine.begin() as connection:
        connection.execute(delete(SubscriberRow))
    records = [
        MemberRecord(email=f"m{n}@example.org", region=region, tags=tags, attributes=attributes)
        for n, (region, tags, attributes) in enumerate(profiles)
    ]
    if records:
        store.add(records, source="test")


def by_sql(store: SubscriberStore, chosen: Segment) -> set[str]:
    """The members the SQL condition alone selects."""
    condition = segment_condition(chosen, store.engine.dialect.name)
    with store.engine.connect() as connection:
        return set(connection.scalars(select(SubscriberRow.email).where(condition)))


def by_python(store: SubscriberStore, chosen: Segment) -> set[str]:
    """The members the reference (the Python rules) puts in the segment."""
    rules = SegmentRules([chosen])
    return {m.email for m in store.stream() if "chosen" in rules.of_member(m)}


def plain(profile: tuple[str, tuple[str, ...], Mapping[str, str]]) -> bool:
    """Every value printable ASCII: where SQL folds case and space exactly as Python does."""
    region, tags, attributes = profile
    values = [region, *tags, *attributes.values()]
    return all(value.isascii() and value.isprintable() for value in values)


PROFILES = [
    ("Wales", ("youth",), {"member_type": "charity"}),
    ("  WALES ", ("Youth", "older"), {"member_type": "Charity "}),
    ("wales", (), {}),
    ("Scotland", ("in-person",), {"member_type": "council"}),
    ("Île-de-France", ("STRASSE",), {"member_type": "ÉCOLE"}),
    ("île-de-france", ("Straße",), {"member_type": "école"}),
    ("\tWales", ("\tyouth",), {"member_type": "charity\t"}),
    ("", ("youth", "YOUTH "), {"size": "small"}),
]

SEGMENTS = [
    segment(regions=["Wales"]),
    segment(regions=["wales", "scotland"], tags=["youth"]),
    segment(tags=["youth", "in-person"]),
    segment(tags=["strasse"]),
    segment(regions=["ÎLE-DE-FRANCE"]),
    segment(attributes={"Member type": ["charity", "école"]}),
    segment(attributes={"member_type": "charity", "size": ""}),
    segment(attributes={"size": ["", "small"]}, tags=["youth"]),
]


class TestTheSameMembers:
    def test_sql_selects_every_member_python_does_and_exactly_them_where_values_are_plain(
        self, store: SubscriberStore
    ) -> None:
        """A table of rules and awkward values: case, spaces, tabs, accents, ß."""
        fill(store, PROFILES)
        plain_emails = {f"m{n}@example.org" for n, p in enumerate(PROFILES) if plain(p)}
        for chosen in SEGMENTS:
            sql, python = by_sql(store, chosen), by_python(store, chosen)
            assert python <= sql, chosen
            assert python & plain_emails == sql & plain_emails, chosen
            assert python == {
                m.email for m in segment_members(store, SegmentRules([chosen]), "chosen")
            }

    def test_segment_members_with_a_status(self, store: SubscriberStore) -> None:
        """The status narrows in SQL too; members come ordered by address."""
        fill(store, PROFILES[:3])
        store.unsubscribe("m1@example.org", reason="test", source="test")
        rules = SegmentRules([segment(regions=["wales"])])
        active = segment_members(store, rules, "chosen", status=SubscriberStatus.active)
        assert ["m0@example.org", "m2@example.org"] == [m.email for m in active]


# Values built from the characters where SQL and Python could disagree.
VALUE = st.text(
    st.sampled_from(["a", "A", "b", " ", "\t", "ß", "s", "É", "é", "K", "\u212a"]), max_size=4
)
PROFILE = st.tuples(
    VALUE,
    st.lists(VALUE, max_size=3).map(tuple),
    st.dictionaries(st.sampled_from(["kind", "size"]), VALUE, max_size=2),
)
RULES = st.fixed_dictionaries(
    {},
    optional={
        "regions": st.lists(VALUE, min_size=1, max_size=2),
        "tags": st.lists(VALUE, min_size=1, max_size=2),
        "attributes": st.dictionaries(
            st.sampled_from(["Kind", "size"]),
            VALUE | st.lists(VALUE, min_size=1, max_size=2),
            max_size=2,
        ),
    },
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(profiles=st.lists(PROFILE, max_size=8), rules=RULES)
def test_any_rules_and_members(
    store: SubscriberStore,
    profiles: list[tuple[str, tuple[str, ...], dict[str, str]]],
    rules: dict[str, object],
) -> None:
    """For random rules and members, SQL never misses a member, and agrees where values are plain."""
    try:
        chosen = segment(**rules)
    except ValidationError:
        reject()  # no rule at all, or a value mailer.toml refuses
    fill(store, profiles)
    sql, python = by_sql(store, chosen), by_python(store, chosen)
    plain_emails = {f"m{n}@example.org" for n, p in enumerate(profiles) if plain(p)}
    assert python <= sql
    assert python & plain_emails == sql & plain_emails
    assert python == {m.email for m in segment_members(store, SegmentRules([chosen]), "chosen")}
