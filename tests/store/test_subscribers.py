"""The store's rules, on SQLite and PostgreSQL: uniqueness, stickiness, history, forgetting."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from mailer.errors import StoreError, SubscriberNotFound
from mailer.store import EventKind, MemberRecord, SubscriberStatus, SubscriberStore

ACTIVE, PENDING = SubscriberStatus.active, SubscriberStatus.pending
UNSUBSCRIBED, BOUNCED, COMPLAINED = (
    SubscriberStatus.unsubscribed,
    SubscriberStatus.bounced,
    SubscriberStatus.complained,
)
STICKY = [PENDING, UNSUBSCRIBED, BOUNCED, COMPLAINED]


def jane(**fields: object) -> MemberRecord:
    return MemberRecord(email="Jane@example.org", name="Jane Doe", **fields)  # type: ignore[arg-type]


class TestAdd:
    def test_adds_an_active_member_with_every_field(self, store: SubscriberStore) -> None:
        """A new member is stored as given, active, with the time and reason of the status."""
        record = MemberRecord(
            email="Jane@example.org",
            name="Jane Doe",
            organisation="Leeds Lunch Club",
            region="Yorkshire and the Humber",
            tags=("in-person", "youth-loneliness"),
            attributes={"member_type": "charity"},
        )
        [added] = store.add([record], source="test")
        assert ("Jane@example.org", "Jane Doe", "Leeds Lunch Club") == (
            added.email,
            added.name,
            added.organisation,
        )
        assert ("Yorkshire and the Humber", ("in-person", "youth-loneliness")) == (
            added.region,
            added.tags,
        )
        assert {"member_type": "charity"} == added.attributes
        assert (ACTIVE, "added by test") == (added.status, added.status_reason)
        assert added.status_changed_at.tzinfo is not None
        assert added == store.get("jane@example.org")

    def test_refuses_an_address_already_listed_in_any_case(self, store: SubscriberStore) -> None:
        """Addresses are unique case-insensitively, and add never overwrites."""
        store.add([jane()], source="test")
        with pytest.raises(
            StoreError, match=r"'JANE@EXAMPLE.ORG' is already on the list \(status active\)"
        ):
            store.add([MemberRecord("JANE@EXAMPLE.ORG")], source="test")

    def test_adds_all_or_none(self, store: SubscriberStore) -> None:
        """One refused address means none of the others is added either."""
        store.add([jane()], source="test")
        with pytest.raises(StoreError):
            store.add([MemberRecord("bob@example.org"), jane()], source="test")
        assert store.find("bob@example.org") is None

    def test_can_add_a_pending_member(self, store: SubscriberStore) -> None:
        """A sign-up waiting for confirmation is stored as pending."""
        [added] = store.add([jane(status=PENDING)], source="web")
        assert PENDING == added.status

    def test_records_the_addition_in_the_history(self, store: SubscriberStore) -> None:
        """The first event of every member says who added them."""
        store.add([jane()], source="test")
        [event] = store.history("jane@example.org")
        assert (EventKind.added, "test", None, ACTIVE) == (
            event.kind,
            event.source,
            event.status_from,
            event.status_to,
        )


class TestReading:
    def test_find_and_get_compare_case_insensitively(self, store: SubscriberStore) -> None:
        """Look-ups use the key, so any capitalisation finds the member."""
        [added] = store.add([jane()], source="test")
        assert added == store.find("JANE@EXAMPLE.ORG")
        assert added == store.get(" jane@Example.org ")
        assert added == store.get(added.id)

    def test_find_returns_none_and_get_raises_for_strangers(self, store: SubscriberStore) -> None:
        """Unknown or malformed addresses are simply not found."""
        assert store.find("nobody@example.org") is None
        assert store.find("not an address") is None
        with pytest.raises(
            SubscriberNotFound,
            match=re.escape("no subscriber with the address 'nobody@example.org'"),
        ):
            store.get("nobody@example.org")
        with pytest.raises(SubscriberNotFound):
            store.get(12345)

    def test_lists_by_address_and_filters_by_status(self, store: SubscriberStore) -> None:
        """list_subscribers orders by address; a status narrows it."""
        store.add(
            [MemberRecord(e) for e in ["c@example.org", "a@example.org", "b@example.org"]],
            source="t",
        )
        store.unsubscribe("b@example.org", reason="asked", source="t")
        assert ["a@example.org", "b@example.org", "c@example.org"] == [
            m.email for m in store.list_subscribers()
        ]
        assert ["b@example.org"] == [m.email for m in store.list_subscribers(status=UNSUBSCRIBED)]

    def test_active_streams_only_active_members_in_batches(self, store: SubscriberStore) -> None:
        """The audience reads active members a batch at a time, in id order, skipping the others."""
        emails = [f"m{n:02d}@example.org" for n in range(25)]
        store.add([MemberRecord(e) for e in emails], source="t")
        for email in emails[::3]:
            store.set_status(email, BOUNCED, reason="hard bounce", source="t")
        streamed = [m.email for m in store.active(batch_size=4)]
        assert [e for i, e in enumerate(emails) if i % 3] == streamed

    def test_counts_every_status(self, store: SubscriberStore) -> None:
        """counts() has an entry for every status, zero included."""
        store.add([MemberRecord("a@example.org"), MemberRecord("b@example.org")], source="t")
        store.set_status("b@example.org", COMPLAINED, reason="spam report", source="t")
        assert {ACTIVE: 1, PENDING: 0, UNSUBSCRIBED: 0, BOUNCED: 0, COMPLAINED: 1} == store.counts()

    def test_first_name_comes_from_the_attribute_or_the_name(self, store: SubscriberStore) -> None:
        """Merge fields use first_name if the list has it, else the first word of the name."""
        store.add(
            [
                MemberRecord("a@example.org", name="Rowan Ellis"),
                MemberRecord("b@example.org", name="Dr Sam Rao", attributes={"first_name": "Sam"}),
                MemberRecord("c@example.org"),
            ],
            source="t",
        )
        assert ["Rowan", "Sam", ""] == [m.first_name for m in store.list_subscribers()]


class TestStatus:
    @pytest.mark.parametrize("status", STICKY)
    def test_set_status_records_when_why_and_who(
        self, store: SubscriberStore, status: SubscriberStatus
    ) -> None:
        """A status change keeps its time and reason on the member and an event in the history."""
        [added] = store.add([jane()], source="test")
        changed = store.set_status(added.id, status, reason="because", source="webhook")
        assert (status, "because") == (changed.status, changed.status_reason)
        assert changed.status_changed_at >= added.status_changed_at
        event = store.history(added.id)[-1]
        assert (EventKind.status, ACTIVE, status, "because", "webhook") == (
            event.kind,
            event.status_from,
            event.status_to,
            event.detail,
            event.source,
        )

    def test_setting_the_same_status_again_changes_nothing(self, store: SubscriberStore) -> None:
        """Webhooks repeat themselves: a second bounce is not a second event."""
        store.add([jane()], source="test")
        first = store.set_status("jane@example.org", BOUNCED, reason="bounce", source="webhook")
        again = store.set_status("jane@example.org", BOUNCED, reason="bounce", source="webhook")
        assert first == again
        assert 2 == len(store.history("jane@example.org"))

    def test_set_status_never_makes_a_member_active(self, store: SubscriberStore) -> None:
        """Only resubscribe revives a member."""
        store.add([jane()], source="test")
        store.unsubscribe("jane@example.org", reason="asked", source="web")
        with pytest.raises(StoreError, match="use resubscribe"):
            store.set_status("jane@example.org", ACTIVE, reason="oops", source="test")
        assert UNSUBSCRIBED == store.get("jane@example.org").status

    @pytest.mark.parametrize("status", STICKY)
    def test_resubscribe_revives_any_sticky_status_and_logs_it(
        self, store: SubscriberStore, status: SubscriberStatus
    ) -> None:
        """An explicit re-subscription is the one way back to active, with its reason kept."""
        store.add([jane()], source="test")
        if status is not ACTIVE:
            store.set_status("jane@example.org", status, reason="gone", source="test")
        member = store.resubscribe(
            "jane@example.org", reason="asked by email on 3 May", source="cli"
        )
        assert (ACTIVE, "asked by email on 3 May") == (member.status, member.status_reason)
        event = store.history(member.id)[-1]
        assert (EventKind.resubscribed, status, ACTIVE, "cli") == (
            event.kind,
            event.status_from,
            event.status_to,
            event.source,
        )

    def test_resubscribe_needs_a_reason(self, store: SubscriberStore) -> None:
        """Without a reason there is nothing to show it was the member's own request."""
        store.add([jane()], source="test")
        with pytest.raises(StoreError, match="needs a reason"):
            store.resubscribe("jane@example.org", reason=" ", source="cli")

    def test_resubscribing_a_stranger_is_not_found(self, store: SubscriberStore) -> None:
        """resubscribe does not add people who were never on the list."""
        with pytest.raises(SubscriberNotFound):
            store.resubscribe("nobody@example.org", reason="asked", source="cli")

    def test_confirm_activates_only_pending_members(self, store: SubscriberStore) -> None:
        """Confirming a sign-up revives pending, and leaves an unsubscribe alone."""
        store.add([jane(status=PENDING), MemberRecord("bob@example.org")], source="web")
        store.unsubscribe("bob@example.org", reason="asked", source="web")
        assert ACTIVE == store.confirm("jane@example.org", source="web").status
        assert UNSUBSCRIBED == store.confirm("bob@example.org", source="web").status


class TestForget:
    def test_erases_the_member_and_their_history(self, store: SubscriberStore) -> None:
        """After forget, nothing about the person is left but a hash of the address."""
        [added] = store.add([jane(attributes={"phone": "0113 496 0000"})], source="test")
        store.unsubscribe(added.id, reason="asked", source="web")
        assert store.forget("jane@example.org", reason="erasure request", source="cli")
        assert store.find("jane@example.org") is None
        assert [] == store.list_subscribers()
        with store.engine.connect() as connection:
            assert (
                0 == connection.exec_driver_sql("SELECT count(*) FROM subscriber_events").scalar()
            )
            hashes = (
                connection.exec_driver_sql("SELECT email_hash FROM suppressions").scalars().all()
            )
        assert 1 == len(hashes)
        assert "jane" not in hashes[0]

    def test_a_forgotten_address_cannot_be_added_again(self, store: SubscriberStore) -> None:
        """add refuses a suppressed address, whatever its capitalisation, and says why."""
        store.add([jane()], source="test")
        store.forget("jane@example.org", reason="erasure request", source="cli")
        assert store.is_suppressed("JANE@example.org")
        with pytest.raises(StoreError, match="was forgotten at the member's request"):
            store.add([MemberRecord("JANE@EXAMPLE.ORG")], source="test")

    def test_forgetting_a_stranger_still_suppresses_the_address(
        self, store: SubscriberStore
    ) -> None:
        """Someone who asks never to be contacted is suppressed even if they were not listed."""
        assert not store.forget("nobody@example.org", reason="asked", source="cli")
        assert store.is_suppressed("nobody@example.org")

    def test_forgetting_twice_is_harmless(self, store: SubscriberStore) -> None:
        """A repeated request finds nothing more to erase and keeps one suppression."""
        store.add([jane()], source="test")
        assert store.forget("jane@example.org", reason="asked", source="cli")
        assert not store.forget("jane@example.org", reason="asked", source="cli")

    def test_resubscribe_lifts_the_suppression_at_the_members_request(
        self, store: SubscriberStore
    ) -> None:
        """A forgotten person who asks to rejoin comes back active, with no old data."""
        store.add([jane()], source="test")
        store.forget("jane@example.org", reason="asked", source="cli")
        member = store.resubscribe(
            "Jane@example.org", reason="signed up again at the AGM", source="cli"
        )
        assert (ACTIVE, "") == (member.status, member.name)
        assert not store.is_suppressed("jane@example.org")


class TestTimes:
    def test_times_are_aware_utc_on_both_databases(self, store: SubscriberStore) -> None:
        """Every datetime comes back timezone-aware, in UTC."""
        when = dt.datetime(2024, 5, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
        [added] = store.add([jane(created_at=when, status_changed_at=when)], source="test")
        assert dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC) == added.created_at
        assert dt.UTC == added.created_at.tzinfo
