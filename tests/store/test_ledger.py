"""The send ledger's rules, on SQLite and PostgreSQL: one row per (issue, member), the batch
protocol (claim, record), settling an interrupted send, reconciliation and the lease."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from helpers.members import add_members
from helpers.owners import dead_sender
from sqlalchemy import inspect

from mailer.errors import SendRefused
from mailer.mail import Delivery, DeliveryState
from mailer.store import SubscriberStatus, SubscriberStore
from mailer.store.ledger import Ledger, SendStatus, StateCount, new_owner
from mailer.store.schema import Base

ISSUE = "2026-12-03-winter-connections"
LEDGER_TABLES = {"sends", "deliveries"}


@pytest.fixture
def ledger(store: SubscriberStore) -> Ledger:
    return Ledger(store.engine)


@pytest.fixture
def owner(ledger: Ledger) -> str:
    """This test's process, holding the lease on the issue's send."""
    me = new_owner()
    ledger.acquire(ISSUE, "outbox", me)
    return me


def sent(email: str, message_id: str = "<m@x>") -> Delivery:
    return Delivery(email=email, state="sent", message_id=message_id)


def states(ledger: Ledger) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in ledger.counts(ISSUE):
        totals[row.state] = totals.get(row.state, 0) + row.count
    return totals


class TestSchema:
    def test_migration_creates_the_declared_tables(self, store: SubscriberStore) -> None:
        """Migration 0002 creates exactly the ledger tables mailer.store.ledger declares."""
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
            tables = set(inspect(connection).get_table_names())
        assert LEDGER_TABLES <= tables
        assert [] == [d for d in differences if LEDGER_TABLES & {str(part) for part in _flat(d)}]


def _flat(diff: object) -> list[object]:
    """Every table name mentioned in one of alembic's difference tuples (nested or not)."""
    items = diff if isinstance(diff, list) else [diff]
    names: list[object] = []
    for item in items:
        for part in item if isinstance(item, tuple) else (item,):
            table = getattr(part, "table", None)
            names.append(getattr(table, "name", None) or getattr(part, "name", part))
    return names


class TestClaim:
    def test_claims_active_members_in_flight(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """A batch's members get one in_flight row each, committed before anything is sent."""
        members = add_members(store, 3)
        claim = ledger.claim(ISSUE, "general", [m.id for m in members], owner)
        assert {m.id for m in members} == set(claim.claimed)
        assert {"in_flight": 3} == states(ledger)

    def test_a_member_is_claimed_once(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """Claiming again finds the row: nobody is handed over twice (UNIQUE(issue, subscriber))."""
        members = add_members(store, 2)
        ledger.claim(ISSUE, "general", [m.id for m in members], owner)
        again = ledger.claim(ISSUE, "general", [m.id for m in members], owner)
        assert ({}, {m.id for m in members}) == (dict(again.claimed), set(again.already))

    def test_members_who_left_are_not_claimed(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """The status is checked again at the claim: an unsubscribed member gets no row."""
        first, second = add_members(store, 2)
        store.unsubscribe(second.id, reason="asked", source="test")
        claim = ledger.claim(ISSUE, "general", [first.id, second.id], owner)
        assert ([first.id], {second.id}) == (list(claim.claimed), set(claim.inactive))

    def test_a_retryable_failure_is_claimed_again(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """A failure that may be retried is claimed by the next send, counting the attempt."""
        [member] = add_members(store, 1)
        claim = ledger.claim(ISSUE, "general", [member.id], owner)
        failure = Delivery(email=member.email, state="failed", error="server busy")
        ledger.record(ISSUE, owner, [(claim.claimed[member.id], failure)])
        again = ledger.claim(ISSUE, "general", [member.id], owner)
        assert [member.id] == list(again.claimed)

    def test_one_claim_sorts_a_mixed_batch(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """New members and retryable failures are claimed; a member who left is not, even
        with a failure that could be retried; a member already sent is left alone."""
        new, retry, done, gone, left = add_members(store, 5)
        first = ledger.claim(ISSUE, "general", [retry.id, done.id, left.id], owner)
        busy = Delivery(email="x@example.org", state="failed", error="server busy")
        ledger.record(
            ISSUE,
            owner,
            [
                (first.claimed[retry.id], busy),
                (first.claimed[done.id], sent(done.email)),
                (first.claimed[left.id], busy),
            ],
        )
        store.unsubscribe(gone.id, reason="asked", source="test")
        store.unsubscribe(left.id, reason="asked", source="test")
        claim = ledger.claim(
            ISSUE, "general", [m.id for m in (new, retry, done, gone, left)], owner
        )
        assert ({new.id, retry.id}, {done.id}, {gone.id, left.id}) == (
            set(claim.claimed),
            set(claim.already),
            set(claim.inactive),
        )
        assert {"in_flight": 2, "sent": 1, "failed": 1} == states(ledger)

    def test_a_permanent_failure_is_not_claimed_again(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """An address the server refused for good is not tried again."""
        [member] = add_members(store, 1)
        claim = ledger.claim(ISSUE, "general", [member.id], owner)
        refused = Delivery(
            email=member.email, state="failed", error="550 no such user", permanent=True
        )
        ledger.record(ISSUE, owner, [(claim.claimed[member.id], refused)])
        assert {} == dict(ledger.claim(ISSUE, "general", [member.id], owner).claimed)

    def test_records_the_batch_before_in_the_same_transaction(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """The claim of a batch also writes what the transport said of the one before."""
        first, second = add_members(store, 2)
        before = ledger.claim(ISSUE, "general", [first.id], owner)
        recording = [(before.claimed[first.id], sent(first.email))]
        claim = ledger.claim(ISSUE, "general", [second.id], owner, recording=recording)
        assert [second.id] == list(claim.claimed)
        assert {"sent": 1, "in_flight": 1} == states(ledger)

    def test_a_process_that_lost_the_lease_still_records_but_cannot_claim(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """What was handed over is written even when another process took the send over;
        nothing more is claimed."""
        first, second = add_members(store, 2)
        before = ledger.claim(ISSUE, "general", [first.id], owner)
        recording = [(before.claimed[first.id], sent(first.email))]
        with pytest.raises(SendRefused, match="no longer holds the send"):
            ledger.claim(ISSUE, "general", [second.id], "elsewhere:1:ffff", recording=recording)
        assert {"sent": 1} == states(ledger)

    def test_a_process_that_lost_the_lease_cannot_claim(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """A claim checks the lease in the same transaction, so two processes never both send."""
        [member] = add_members(store, 1)
        with pytest.raises(SendRefused, match="no longer holds the send"):
            ledger.claim(ISSUE, "general", [member.id], "elsewhere:1:ffff")


class TestRecord:
    def test_records_each_outcome(self, store: SubscriberStore, ledger: Ledger, owner: str) -> None:
        """sent, failed and unknown are written in one go, with the message id and the error."""
        members = add_members(store, 3)
        claim = ledger.claim(ISSUE, "general", [m.id for m in members], owner)
        outcomes = [
            sent(members[0].email),
            Delivery(email=members[1].email, state="failed", error="refused"),
            Delivery(email=members[2].email, state="unknown", error="no answer"),
        ]
        ledger.record(
            ISSUE, owner, [(claim.claimed[m.id], d) for m, d in zip(members, outcomes, strict=True)]
        )
        assert {"sent": 1, "failed": 1, "unknown": 1} == states(ledger)
        assert [("general", "refused", 1), ("general", "no answer", 1)] == sorted(
            ledger.failures(ISSUE), key=lambda f: f[1], reverse=True
        )

    def test_records_several_requests_at_once_each_with_its_message_id(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """With requests in flight, the answers of several come together: each row gets its
        own request's message id (and the failures their error), as when recorded alone."""
        members = add_members(store, 300)
        claimed = ledger.claim(ISSUE, "general", [m.id for m in members], owner).claimed
        outcomes = [
            (claimed[m.id], sent(m.email, f"<request-{n // 50}@x>"))
            if n < 250
            else (claimed[m.id], Delivery(email=m.email, state="failed", error="refused"))
            for n, m in enumerate(members)
        ]
        ledger.record(ISSUE, owner, outcomes)
        with store.engine.connect() as connection:
            rows = dict(
                connection.exec_driver_sql(
                    "SELECT subscriber_id, COALESCE(message_id, state) FROM deliveries"
                ).all()
            )
        expected = {
            m.id: f"<request-{n // 50}@x>" if n < 250 else "failed" for n, m in enumerate(members)
        }
        assert expected == rows
        assert {"sent": 250, "failed": 50} == states(ledger)

    def test_never_undoes_what_reconciliation_proved(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """A row SendGrid's events marked sent while in flight stays sent whatever the answer was."""
        [member] = add_members(store, 1)
        claim = ledger.claim(ISSUE, "general", [member.id], owner)
        assert 1 == ledger.mark_accepted([(ISSUE, member.id, "sg-1")])
        unknown = Delivery(email=member.email, state="unknown", error="timeout")
        ledger.record(ISSUE, owner, [(claim.claimed[member.id], unknown)])
        assert {"sent": 1} == states(ledger)


class TestInterrupted:
    def test_lists_rows_left_in_flight_with_addresses(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """After a crash, the rows still in_flight are the ambiguous ones."""
        members = add_members(store, 2)
        ledger.claim(ISSUE, "general", [m.id for m in members], owner)
        assert [m.email for m in members] == [row.email for row in ledger.in_flight(ISSUE)]

    def test_settles_sent_unsent_and_unknown(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """Settling makes each in_flight row sent, failed-to-retry, or unknown."""
        members = add_members(store, 3)
        claim = ledger.claim(ISSUE, "general", [m.id for m in members], owner)
        ids = [claim.claimed[m.id] for m in members]
        ledger.settle(sent=[ids[0]], unsent=[ids[1]], unknown=[ids[2]], unknown_reason="?")
        assert {"sent": 1, "failed": 1, "unknown": 1} == states(ledger)
        assert [members[1].id] == list(
            ledger.claim(ISSUE, "general", [m.id for m in members], owner).claimed
        )

    def test_an_unknown_row_keeps_the_message_id_chosen_before_the_claim(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """The Message-ID given with the claim stays through settling, for --resolve-unknown=list;
        a member claimed without one has none."""
        members = add_members(store, 2)
        claim = ledger.claim(
            ISSUE, "general", [m.id for m in members], owner, message_ids={members[0].id: "<a@x>"}
        )
        ledger.settle(unknown=list(claim.claimed.values()), unknown_reason="interrupted")
        rows = {row.email: row for row in ledger.unknown(ISSUE)}
        assert {members[0].email: "<a@x>", members[1].email: None} == {
            email: row.message_id for email, row in rows.items()
        }
        assert {"interrupted"} == {row.error for row in rows.values()}

    @pytest.mark.parametrize(("decision", "expected"), [("sent", "sent"), ("resend", "failed")])
    def test_the_operator_resolves_unknown_rows(
        self, store: SubscriberStore, ledger: Ledger, owner: str, decision: str, expected: str
    ) -> None:
        """--resolve-unknown=sent marks them sent; =resend makes them claimable again."""
        [member] = add_members(store, 1)
        claim = ledger.claim(ISSUE, "general", [member.id], owner)
        ledger.settle(unknown=[claim.claimed[member.id]], unknown_reason="?")
        assert 1 == ledger.resolve_unknown(ISSUE, decision)  # type: ignore[arg-type]
        assert {expected: 1} == states(ledger)

    def test_a_dropped_message_fails_for_good(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """SendGrid's 'dropped' settles an unknown row as failed, not to be retried."""
        [member] = add_members(store, 1)
        claim = ledger.claim(ISSUE, "general", [member.id], owner)
        ledger.settle(unknown=[claim.claimed[member.id]], unknown_reason="?")
        assert 1 == ledger.mark_dropped(
            [(ISSUE, member.id, "SendGrid dropped it: Bounced Address")]
        )
        assert [StateCount("general", DeliveryState.failed, False, 1)] == ledger.counts(ISSUE)

    def test_settles_thousands_of_rows_in_chunks_counting_each_once(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """Reconciliation marks rows a chunk at a time: the count is of rows that changed, each
        accepted row keeps the message id its event gave, and an event without one invents
        none; a dropped row already sent stays sent."""
        members = add_members(store, 2_500)
        ids = [
            delivery_id
            for start in range(0, 2_500, 1_000)
            for delivery_id in ledger.claim(
                ISSUE, "general", [m.id for m in members[start : start + 1_000]], owner
            ).claimed.values()
        ]
        ledger.settle(sent=ids[:100], unknown=ids[100:], unknown_reason="no answer")
        accepted = [(ISSUE, m.id, f"sg-{m.id}") for m in members[50:2_000]]
        accepted.append((ISSUE, members[2_100].id, None))
        assert 1_901 == ledger.mark_accepted(accepted)  # 50..99 were already sent
        dropped = [(ISSUE, m.id, "SendGrid dropped it") for m in members[1_990:2_500]]
        assert 2_500 - 2_000 - 1 == ledger.mark_dropped(dropped)
        assert {"sent": 2_001, "failed": 499} == states(ledger)
        with store.engine.connect() as connection:
            found = dict(
                connection.exec_driver_sql(
                    "SELECT subscriber_id, message_id FROM deliveries WHERE subscriber_id IN "
                    f"({members[500].id}, {members[2_100].id})"
                ).all()
            )
        assert f"sg-{members[500].id}" == found[members[500].id]
        assert found[members[2_100].id] is None


class TestTakingTurns:
    def test_a_ledger_taking_turns_writes_only_holding_the_lock(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """A send's processes share a lock for their ledger writes: a claim waits for it."""
        [member] = add_members(store, 1)
        lock = threading.Lock()
        turns = ledger.taking_turns(lock)
        claims: list[int] = []
        with lock:
            claimer = threading.Thread(
                target=lambda: claims.extend(
                    turns.claim(ISSUE, "general", [member.id], owner).claimed
                )
            )
            claimer.start()
            claimer.join(0.5)
            assert claimer.is_alive() and [] == claims and {} == states(ledger)
        claimer.join(5)
        assert [member.id] == claims


class TestLease:
    def test_a_second_live_process_is_refused(self, ledger: Ledger, owner: str) -> None:
        """While one process sends an issue, another `mailer send` of it stops at once."""
        with pytest.raises(SendRefused, match="being sent by another process"):
            ledger.acquire(ISSUE, "outbox", new_owner())

    def test_a_dead_process_lease_is_taken_over(self, ledger: Ledger, database_url: str) -> None:
        """A send killed with -9 holds nothing: the next run takes over at once."""
        dead_sender(database_url, ISSUE, transport="sendgrid")
        previous = ledger.acquire(ISSUE, "outbox", new_owner())
        assert ("sendgrid", SendStatus.sending) == (previous.transport, previous.status)

    def test_release_records_how_the_send_ended(self, ledger: Ledger, owner: str) -> None:
        """A finished send says so; its lease is free for the next run."""
        ledger.release(ISSUE, owner, SendStatus.finished)
        assert SendStatus.finished == ledger.send_status(ISSUE)
        ledger.acquire(ISSUE, "outbox", new_owner())


class TestForgetting:
    def test_forgetting_a_member_erases_their_deliveries(
        self, store: SubscriberStore, ledger: Ledger, owner: str
    ) -> None:
        """`forget` erases personal data: the ledger rows go with the member."""
        [member] = add_members(store, 1)
        ledger.claim(ISSUE, "general", [member.id], owner)
        store.forget(member.email, reason="asked", source="test")
        assert [] == ledger.counts(ISSUE)
        assert SubscriberStatus.active  # forgetting itself is tested in test_subscribers.py
