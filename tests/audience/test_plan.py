"""The audience: active members a page at a time, their variants, and who still needs the issue."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from helpers.members import add_members
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.audience.plan import Addressee, Done, Pending, VariantKeys, batches, members, plan
from mailer.audience.segments import segments_of
from mailer.config import Newsletter, Segment
from mailer.issues.model import Issue
from mailer.mail import Delivery
from mailer.render import variant_key
from mailer.store import MemberRecord, SubscriberStore
from mailer.store.ledger import Ledger, new_owner


class TestMembers:
    def test_gives_each_active_member_as_a_send_needs_them(
        self, store: SubscriberStore, issue: Issue, newsletter: Newsletter
    ) -> None:
        """Active members only, in id order, a page at a time, with the fields merge tags use."""
        added = add_members(store, 5)
        store.unsubscribe("member002@example.org", reason="left", source="test")
        [named] = store.add(
            [
                MemberRecord(
                    email="ann@example.org", name="Dr Ann Lee", attributes={"first_name": "Annie"}
                )
            ],
            source="test",
        )
        pages = list(members(store, issue, newsletter, page_size=2))
        assert [2, 2, 1] == [len(page) for page in pages]
        got = [m.addressee for page in pages for m in page]
        expected = [s for s in [*added, named] if s.email != "member002@example.org"]
        assert [
            Addressee(s.id, s.email, s.name, s.organisation, s.region, s.first_name)
            for s in expected
        ] == got
        assert "Annie" == got[-1].first_name

    def test_carries_each_members_ledger_row_for_the_issue(
        self, store: SubscriberStore, issue: Issue, newsletter: Newsletter
    ) -> None:
        """The state of the member's row for this issue (and only this issue) comes along."""
        first, second = add_members(store, 2)
        ledger, owner = Ledger(store.engine), new_owner()
        ledger.acquire(issue.slug, "outbox", owner)
        ledger.acquire("another-issue", "outbox", owner)
        ledger.claim(issue.slug, "youth", [first.id], owner)
        ledger.claim("another-issue", "general", [second.id], owner)
        rows = {
            m.addressee.id: m.ledger for page in members(store, issue, newsletter) for m in page
        }
        assert {first.id: ("in_flight", False), second.id: None} == rows


class TestPlan:
    def test_counts_each_variant_with_its_first_addresses(
        self, store: SubscriberStore, issue: Issue, newsletter: Newsletter
    ) -> None:
        """Counts per variant, and the first addresses of each, for --dry-run and the question."""
        add_members(store, 7)
        audience = plan(store, issue, newsletter, sample=2)
        assert {"youth": 3, "wales": 2, "general": 2} == {
            v.name: v.to_send for v in audience.variants.values()
        }
        youth = next(v for v in audience.variants.values() if v.name == "youth")
        assert ["member000@example.org", "member003@example.org"] == youth.sample
        assert (7, 7, 0) == (audience.audience, audience.to_send, audience.sent)

    def test_counts_who_already_has_it(
        self, store: SubscriberStore, issue: Issue, newsletter: Newsletter
    ) -> None:
        """Members the ledger says were sent are counted as such, not as to send."""
        members = add_members(store, 3)
        ledger, owner = Ledger(store.engine), new_owner()
        ledger.acquire(issue.slug, "outbox", owner)
        claim = ledger.claim(issue.slug, "youth", [members[0].id], owner)
        ledger.record(
            issue.slug,
            owner,
            [(claim.claimed[members[0].id], Delivery(email=members[0].email, state="sent"))],
        )
        audience = plan(store, issue, newsletter)
        assert (2, 1) == (audience.to_send, audience.sent)


class TestBatches:
    def test_groups_members_by_variant_in_batches_of_the_size(
        self, store: SubscriberStore, issue: Issue, newsletter: Newsletter
    ) -> None:
        """Each batch holds members of one variant, at most batch_size of them."""
        add_members(store, 10)
        found = list(batches(store, issue, newsletter, batch_size=2))
        pending = [work for work in found if isinstance(work, Pending)]
        assert all(len(work.addressees) <= 2 for work in pending)
        by_key: dict[frozenset[str], int] = {}
        for work in pending:
            by_key[work.key] = by_key.get(work.key, 0) + len(work.addressees)
        assert {frozenset({"youth"}): 4, frozenset({"wales"}): 3, frozenset(): 3} == by_key

    def test_reports_members_the_ledger_has_done(
        self, store: SubscriberStore, issue: Issue, newsletter: Newsletter
    ) -> None:
        """Members with a row that may not be retried are counted as Done, not batched."""
        members = add_members(store, 2, start=2)  # both general
        ledger, owner = Ledger(store.engine), new_owner()
        ledger.acquire(issue.slug, "outbox", owner)
        ledger.claim(issue.slug, "general", [members[0].id], owner)
        found = list(batches(store, issue, newsletter, batch_size=10))
        assert [Done(frozenset(), "in_flight", 1)] == [w for w in found if isinstance(w, Done)]
        assert [[members[1].id]] == [
            [s.id for s in w.addressees] for w in found if isinstance(w, Pending)
        ]


class TestVariantKeys:
    """The audience walk works a member's variant out from cached profiles: always what the
    segment rules say of the member, whatever else their attributes hold."""

    @settings(max_examples=200, deadline=None)
    @given(
        members=st.lists(
            st.tuples(
                st.lists(st.sampled_from(["youth-loneliness", " Youth-Loneliness", "in-person"])),
                st.sampled_from(["Wales", " wales ", "Yorkshire and the Humber", ""]),
                st.dictionaries(
                    st.sampled_from(["first_name", "Member type", "member_type", "size"]),
                    st.sampled_from(["Ann", "charity", " Charity", "small", ""]),
                ),
            ),
            max_size=30,
        )
    )
    @pytest.mark.parametrize("rules", ["the project's", "one reading an attribute"])
    def test_a_members_variant_is_the_rules_whatever_else_differs(
        self, issue: Issue, newsletter: Newsletter, rules: str, members: list[Any]
    ) -> None:
        """Whether or not some rule reads attributes (when none does, profiles leave them
        out); the first name an addressee gets is their ``first_name`` attribute still."""
        if rules != "the project's":
            reading = Segment(name="grassroots", label="G", attributes={"Member type": "charity"})
            newsletter = newsletter.model_copy(update={"segments": [*newsletter.segments, reading]})
        keys = VariantKeys(issue, newsletter)
        for n, (tags, region, attributes) in enumerate(members):
            row = (n, "m@x.org", "Mo Lee", "", region, json.dumps(tags), json.dumps(attributes), 0)
            profile = SimpleNamespace(tags=tags, region=region, attributes=attributes)
            expected = variant_key(issue, segments_of(profile, newsletter))
            assert expected == keys.key(row, None)
            addressee, key = keys.addressee(row, None)
            assert expected == key
            assert (attributes.get("first_name", "").strip() or "Mo") == addressee.first_name
