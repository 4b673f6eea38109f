"""`forget` leaves nothing of the person behind, in any table, even when SendGrid writes late.

After ``mailer subscribers forget``, mail already in mailboxes keeps producing
opens and clicks for weeks. Every text column of every table is searched for the
address: the history, the send ledger, the event log (owned and unowned rows), the
sign-up counts, and whatever a later change adds, since the search walks the schema.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from helpers.events import sg_event
from sqlalchemy import JSON, String, Text, func, insert, select

from mailer.events.apply import apply_events
from mailer.events.sendgrid import SendGridEvent
from mailer.store import MemberRecord, SubscriberStore
from mailer.store.emails import mailbox_key
from mailer.store.eventlog import WebhookEventRow
from mailer.store.preferences import set_opted_out
from mailer.store.schema import Base
from mailer.store.signups import SignupAttemptRow, attempt, limit_key

ADDRESS = "Ann.Lee@Example.org"


def events(*raw: dict[str, object]) -> list[SendGridEvent]:
    return [SendGridEvent.model_validate(event) for event in raw]


def mentions(store: SubscriberStore, needle: str) -> list[tuple[str, str]]:
    """Every (table, column) of the schema with a value holding *needle*, in any case."""
    found: list[tuple[str, str]] = []
    with store.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, String | Text | JSON) and column.name not in (
                    "tags",
                    "attributes",
                ):
                    continue
                text = func.lower(func.cast(column, Text))
                hits = connection.scalar(
                    select(func.count()).select_from(table).where(text.contains(needle.lower()))
                )
                if hits:
                    found.append((table.name, column.name))
    return found


@pytest.fixture
def forgotten(store: SubscriberStore) -> Iterator[SubscriberStore]:
    """A member with a life on the list (history, choices, events, a sign-up), then forgotten."""
    [member] = store.add(
        [MemberRecord(ADDRESS, name="Ann Lee", organisation="Ann's Lunch Club")], source="test"
    )
    set_opted_out(store.engine, member.id, frozenset({"youth"}), source="web")
    store.unsubscribe(member.id, reason="asked", source="test")
    apply_events(
        store,
        events(
            sg_event("open", ADDRESS, subscriber=member.id, issue="2026-12-03-winter"),
            sg_event(
                "click",
                ADDRESS,
                subscriber=member.id,
                url=f"https://example.org/?who={ADDRESS}",
            ),
        ),
    )
    attempt(
        store.engine,
        {limit_key("address", mailbox_key(ADDRESS.lower())): 3},
        window=dt.timedelta(hours=1),
        now=dt.datetime.now(dt.UTC),
    )
    # An event stored with the address before mailer stopped keeping unknown ones' addresses.
    with store.engine.begin() as connection:
        connection.execute(
            insert(WebhookEventRow),
            {
                "sg_event_id": "legacy-1",
                "event": "bounce",
                "kind": "hard_bounce",
                "email": ADDRESS.lower(),
                "subscriber_id": None,
                "occurred_at": dt.datetime.now(dt.UTC),
                "received_at": dt.datetime.now(dt.UTC),
                "detail": f"550 {ADDRESS} unknown",
                "effect": "unknown address",
            },
        )
    assert mentions(store, ADDRESS)  # the search sees what it looks for
    store.forget(ADDRESS, reason="erasure requested", source="test")
    yield store


class TestForgetLeavesNothing:
    def test_no_table_holds_the_address(self, forgotten: SubscriberStore) -> None:
        assert [] == mentions(forgotten, ADDRESS)
        assert [] == mentions(forgotten, "Ann's Lunch Club")

    def test_nor_its_sign_up_counts(self, forgotten: SubscriberStore) -> None:
        key = limit_key("address", mailbox_key(ADDRESS.lower()))
        with forgotten.engine.connect() as connection:
            left = connection.scalar(
                select(func.count())
                .select_from(SignupAttemptRow)
                .where(SignupAttemptRow.key == key)
            )
        assert 0 == left

    def test_late_events_are_counted_without_the_address(self, forgotten: SubscriberStore) -> None:
        """Opens, clicks and bounces arriving after the forget keep no trace of the person."""
        late = events(
            sg_event("open", ADDRESS),
            sg_event("click", ADDRESS, url=f"https://example.org/?who={ADDRESS}"),
            sg_event("bounce", ADDRESS, type="bounce", reason=f"550 5.1.1 <{ADDRESS}>"),
        )
        applied = apply_events(forgotten, late)
        assert (3, 3) == (applied.stored, applied.unknown_addresses)
        assert [] == mentions(forgotten, ADDRESS)
        assert [] == mentions(forgotten, "ann.lee")
        again = apply_events(forgotten, late)  # a replay is still known, and still stores nothing
        assert (0, 3) == (again.stored, again.duplicates)

    def test_a_second_forget_finds_nothing_to_erase(self, forgotten: SubscriberStore) -> None:
        assert False is forgotten.forget(ADDRESS, reason="again", source="test")
        assert forgotten.is_suppressed(ADDRESS)
