"""apply_events on a real store, SQLite and PostgreSQL: stored once, written back, ledger settled."""

from __future__ import annotations

import itertools

import pytest
from helpers.events import at, logged_effects, sg_event
from sqlalchemy import func, select

from mailer.events.apply import apply_events
from mailer.events.sendgrid import SendGridEvent
from mailer.mail import Delivery, DeliveryState
from mailer.store import MemberRecord, Subscriber, SubscriberStore, open_store
from mailer.store.eventlog import WebhookEventRow, activity
from mailer.store.ledger import Ledger, new_owner

ISSUE = "2026-12-03-winter-connections"


def add(store: SubscriberStore, *emails: str) -> list[Subscriber]:
    return store.add([MemberRecord(email=e) for e in emails], source="test")


def events(*raw: dict[str, object]) -> list[SendGridEvent]:
    return [SendGridEvent.model_validate(r) for r in raw]


def log_count(store: SubscriberStore) -> int:
    with store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(WebhookEventRow)) or 0)


class TestWriteBack:
    def test_a_hard_bounce_marks_the_member_bounced_and_logs_why(
        self, store: SubscriberStore
    ) -> None:
        [m] = add(store, "a@example.org")
        applied = apply_events(
            store,
            events(
                sg_event(
                    "bounce",
                    "a@example.org",
                    type="bounce",
                    subscriber=m.id,
                    issue=ISSUE,
                    reason="550 5.1.1 no such user",
                )
            ),
        )
        assert {"bounced": 1} == dict(applied.status_changes)
        member = store.get(m.id)
        assert "bounced" == member.status
        assert "550 5.1.1 no such user" in member.status_reason
        last = store.history(m.id)[-1]
        assert ("webhook", "active", "bounced") == (last.source, last.status_from, last.status_to)

    @pytest.mark.parametrize(
        ("raw", "status"),
        [
            ({"event": "spamreport"}, "complained"),
            ({"event": "dropped", "reason": "Spam Reporting Address"}, "complained"),
            ({"event": "unsubscribe"}, "unsubscribed"),
            ({"event": "group_unsubscribe", "asm_group_id": 7}, "unsubscribed"),
            ({"event": "dropped", "reason": "Unsubscribed Address"}, "unsubscribed"),
            ({"event": "dropped", "reason": "Bounced Address"}, "bounced"),
        ],
    )
    def test_each_rule(self, store: SubscriberStore, raw: dict[str, str], status: str) -> None:
        [m] = add(store, "a@example.org")
        event = {**sg_event(raw["event"], "a@example.org", subscriber=m.id), **raw}
        apply_events(store, events(event))
        assert status == store.get(m.id).status

    def test_three_blocks_in_a_row_bounce_a_member_and_a_delivery_resets(
        self, store: SubscriberStore
    ) -> None:
        """Counted across batches, from the log."""
        a, b = add(store, "a@example.org", "b@example.org")
        for minute in (1, 2):
            apply_events(
                store,
                events(
                    sg_event("bounce", a.email, type="blocked", timestamp=at(minute)),
                    sg_event("bounce", b.email, type="blocked", timestamp=at(minute)),
                ),
            )
        apply_events(store, events(sg_event("delivered", b.email, timestamp=at(3))))
        apply_events(
            store,
            events(
                sg_event("bounce", a.email, type="blocked", timestamp=at(4)),
                sg_event("bounce", b.email, type="blocked", timestamp=at(4)),
            ),
        )
        assert ("bounced", "active") == (store.get(a.id).status, store.get(b.id).status)

    def test_the_soft_bounce_limit_is_a_parameter(self, store: SubscriberStore) -> None:
        [m] = add(store, "a@example.org")
        apply_events(
            store, events(sg_event("bounce", m.email, type="blocked")), soft_bounce_limit=1
        )
        assert "bounced" == store.get(m.id).status

    def test_events_about_unknown_addresses_are_kept(self, store: SubscriberStore) -> None:
        applied = apply_events(
            store, events(sg_event("bounce", "stranger@example.org", type="bounce"))
        )
        assert (1, 1) == (applied.stored, applied.unknown_addresses)
        assert ["unknown address"] == list(logged_effects(store).values())

    def test_an_id_in_custom_args_with_another_address_is_not_trusted(
        self, store: SubscriberStore
    ) -> None:
        """An id can name someone else after a forget; the address decides."""
        a, b = add(store, "a@example.org", "b@example.org")
        apply_events(store, events(sg_event("spamreport", "b@example.org", subscriber=a.id)))
        assert ("active", "complained") == (store.get(a.id).status, store.get(b.id).status)

    def test_addresses_are_matched_without_regard_to_case(self, store: SubscriberStore) -> None:
        [m] = add(store, "Jane.Doe@Example.org")
        apply_events(store, events(sg_event("unsubscribe", "jane.doe@example.org")))
        assert "unsubscribed" == store.get(m.id).status

    def test_stale_events_do_not_undo_a_re_subscription(self, store: SubscriberStore) -> None:
        """Bounced, then re-subscribed explicitly: a late copy of an old complaint changes nothing."""
        [m] = add(store, "a@example.org")
        apply_events(store, events(sg_event("bounce", m.email, type="bounce", timestamp=at(1))))
        store.resubscribe(m.email, reason="asked by phone", source="test")
        apply_events(store, events(sg_event("spamreport", m.email, timestamp=at(-1))))
        assert "active" == store.get(m.id).status
        apply_events(store, events(sg_event("spamreport", m.email, timestamp=at(5))))
        assert "complained" == store.get(m.id).status

    def test_a_forgotten_member_s_events_go_with_them(self, store: SubscriberStore) -> None:
        """forget erases the member's part of the event log too (ON DELETE CASCADE)."""
        [m] = add(store, "a@example.org")
        apply_events(store, events(sg_event("open", m.email, subscriber=m.id)))
        store.forget(m.email, reason="asked", source="test")
        assert 0 == log_count(store)


class TestOnce:
    def test_a_replayed_batch_changes_nothing_more(self, store: SubscriberStore) -> None:
        """SendGrid retries: the same batch again is stored once, applied once."""
        [m] = add(store, "a@example.org")
        batch = events(sg_event("bounce", m.email, type="blocked"), sg_event("open", m.email))
        first = apply_events(store, batch)
        history = store.history(m.id)
        second = apply_events(store, batch)
        assert (2, 0, 0, 2) == (first.stored, first.duplicates, second.stored, second.duplicates)
        assert history == store.history(m.id)
        assert 2 == log_count(store)

    def test_an_event_twice_in_one_batch_is_stored_once(self, store: SubscriberStore) -> None:
        [m] = add(store, "a@example.org")
        [e] = events(sg_event("open", m.email))
        applied = apply_events(store, [e, e])
        assert (2, 1, 1) == (applied.received, applied.duplicates, applied.stored)

    def test_a_thousand_events_in_one_batch(self, store: SubscriberStore) -> None:
        """A full batch: stored, applied, counted; repeated, all duplicates."""
        members = add(store, *(f"m{n:04d}@example.org" for n in range(250)))
        kinds = itertools.cycle(
            [
                ("delivered", {}),
                ("open", {}),
                ("click", {"url": "https://x.org"}),
                ("processed", {}),
            ]
        )
        raw = [
            sg_event(kind, m.email, subscriber=m.id, issue=ISSUE, **extra)
            for m in members
            for kind, extra in itertools.islice(kinds, 4)
        ]
        raw[0] = sg_event("bounce", members[0].email, type="bounce", subscriber=members[0].id)
        batch = events(*raw)
        assert 1000 == len(batch)
        applied = apply_events(store, batch)
        assert (1000, 1000, {"bounced": 1}) == (
            applied.received,
            applied.stored,
            dict(applied.status_changes),
        )
        assert 1000 == apply_events(store, batch).duplicates


class TestOrder:
    def test_batches_in_any_order_end_the_same(self, database_url: str, tmp_path: object) -> None:
        """Every order of four batches gives the same statuses as the order they happened in."""
        batches_of = [
            [("bounce", {"type": "blocked"}, 1)],
            [("bounce", {"type": "blocked"}, 2), ("unsubscribe", {}, 2)],
            [("delivered", {}, 3), ("bounce", {"type": "blocked"}, 4)],
            [("spamreport", {}, 5), ("bounce", {"type": "blocked"}, 6)],
        ]
        outcomes = set()
        for order in [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1), (1, 3, 0, 2)]:
            with open_store(database_url) as store:
                _reset(store)
                a, b = add(store, "a@example.org", "b@example.org")
                made = [
                    events(
                        *(
                            sg_event(
                                kind,
                                email,
                                timestamp=at(minute),
                                sg_event_id=f"{email}-{n}-{i}",
                                **extra,
                            )
                            for email in (a.email,)
                            for i, (kind, extra, minute) in enumerate(batch)
                        )
                    )
                    + events(
                        *(
                            sg_event(
                                kind,
                                b.email,
                                timestamp=at(minute),
                                sg_event_id=f"b-{n}-{i}",
                                **extra,
                            )
                            for i, (kind, extra, minute) in enumerate(batch)
                            if kind == "bounce"
                        )
                    )
                    for n, batch in enumerate(batches_of)
                ]
                for index in order:
                    apply_events(store, made[index])
                outcomes.add((store.get(a.id).status, store.get(b.id).status))
        assert {("complained", "bounced")} == outcomes


def _reset(store: SubscriberStore) -> None:
    from sqlalchemy import delete

    from mailer.store.schema import SubscriberRow

    with store.engine.begin() as connection:
        connection.execute(delete(WebhookEventRow))
        connection.execute(delete(SubscriberRow))


class TestLedger:
    def _sent_unknown(self, store: SubscriberStore, members: list[Subscriber]) -> Ledger:
        ledger = Ledger(store.engine)
        owner = new_owner()
        ledger.acquire(ISSUE, "sendgrid", owner)
        claim = ledger.claim(ISSUE, "general", [m.id for m in members], owner)
        ledger.record(
            ISSUE,
            owner,
            [(claim.claimed[m.id], Delivery(email=m.email, state="unknown")) for m in members],
        )
        return ledger

    def test_events_settle_unknown_deliveries(self, store: SubscriberStore) -> None:
        """processed/delivered mark the row sent; dropped marks it failed for good."""
        a, b, c = add(store, "a@example.org", "b@example.org", "c@example.org")
        ledger = self._sent_unknown(store, [a, b, c])
        applied = apply_events(
            store,
            events(
                sg_event(
                    "processed", a.email, subscriber=a.id, issue=ISSUE, sg_message_id="abc.filter"
                ),
                sg_event("delivered", a.email, subscriber=a.id, issue=ISSUE),
                sg_event("dropped", b.email, subscriber=b.id, issue=ISSUE, reason="Invalid"),
                sg_event("open", c.email, subscriber=c.id, issue=ISSUE, test="true"),
            ),
        )
        assert (1, 1) == (applied.ledger_sent, applied.ledger_dropped)
        states = ledger.states_of(ISSUE, [a.id, b.id, c.id])
        assert {
            a.id: (DeliveryState.sent, False),
            b.id: (DeliveryState.failed, False),
            c.id: (DeliveryState.unknown, False),
        } == states

    def test_activity_counts_members_per_kind(self, store: SubscriberStore) -> None:
        """What `mailer report` can count: members who were delivered, opened, clicked."""
        a, b = add(store, "a@example.org", "b@example.org")
        apply_events(
            store,
            events(
                sg_event("delivered", a.email, subscriber=a.id, issue=ISSUE),
                sg_event("delivered", b.email, subscriber=b.id, issue=ISSUE),
                sg_event("open", a.email, subscriber=a.id, issue=ISSUE),
                sg_event("open", a.email, subscriber=a.id, issue=ISSUE),
            ),
        )
        assert {"delivered": 2, "open": 1} == activity(store.engine, ISSUE)
