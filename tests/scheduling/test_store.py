"""The scheduler's tables: migration 0004 on both databases, and the claim rules."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from helpers.owners import dead_slot_owner
from helpers.scheduling import both_databases
from sqlalchemy import inspect

import mailer.store.slots
from mailer.store import SubscriberStore, open_store
from mailer.store.database import alembic_config, write_connection
from mailer.store.ledger import new_owner
from mailer.store.schema import Base
from mailer.store.slots import NOTICE_ATTEMPTS, NoticeKind, SlotState, SlotStore, SlotTaken

OURS = {"schedule_slots", "schedule_notices", "scheduler_heartbeats"}
AT = dt.datetime(2026, 12, 3, 9, tzinfo=dt.UTC)
NOW = AT + dt.timedelta(seconds=5)


@pytest.fixture
def slots(store: SubscriberStore) -> SlotStore:
    return SlotStore(store.engine)


class TestMigration:
    def test_the_migration_matches_the_tables(self, database_url: str) -> None:
        """0004 creates exactly what mailer.store.slots declares, on SQLite and PostgreSQL."""
        assert mailer.store.slots
        with open_store(database_url) as store, store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert [] == [d for d in differences if any(name in repr(d) for name in OURS)]

    def test_it_downgrades_and_upgrades_again(self, database_url: str) -> None:
        with open_store(database_url) as store:
            assert OURS <= set(inspect(store.engine).get_table_names())
            config = alembic_config()
            with write_connection(store.engine) as connection:
                config.attributes["connection"] = connection
                command.downgrade(config, "0003")
            assert not OURS & set(inspect(store.engine).get_table_names())
        with open_store(database_url) as store:
            assert OURS <= set(inspect(store.engine).get_table_names())


@both_databases
class TestSlotClaims:
    def test_only_the_first_claim_wins(self, slots: SlotStore) -> None:
        """Two schedulers claiming one slot: the second is told it is taken, by whom."""
        first, second = new_owner(), new_owner()
        assert slots.claim(AT, first, NOW) is None
        with pytest.raises(SlotTaken) as taken:
            slots.claim(AT, second, NOW)
        assert (SlotState.claimed, first) == (taken.value.record.state, taken.value.record.owner)

    def test_a_final_slot_is_never_claimed_again(self, slots: SlotStore) -> None:
        owner = new_owner()
        slots.claim(AT, owner, NOW)
        slots.finish(AT, owner, SlotState.sent, NOW, "sent=3")
        with pytest.raises(SlotTaken):
            slots.claim(AT, new_owner(), NOW)

    def test_an_interrupted_or_orphaned_claim_is_taken_over(self, slots: SlotStore) -> None:
        """Stopped by a signal, or left by a process that died: the next claim resumes it."""
        owner = new_owner()
        slots.claim(AT, owner, NOW)
        slots.choose_issue(AT, owner, "2026-12-03-winter-connections")
        slots.finish(AT, owner, SlotState.interrupted, NOW, "asked to stop")
        dead = dead_slot_owner(slots.engine.url.render_as_string(hide_password=False), AT)
        record = slots.get(AT)
        assert record is not None
        assert (SlotState.claimed, dead) == (record.state, record.owner)
        again = slots.claim(AT, new_owner(), NOW)  # its owner is dead
        assert again is not None
        record = slots.get(AT)
        assert record is not None
        assert 3 == record.runs

    def test_a_missed_slot_is_recorded_once(self, slots: SlotStore) -> None:
        assert slots.record_missed(AT, NOW, "late")
        assert not slots.record_missed(AT, NOW, "late")
        with pytest.raises(SlotTaken):
            slots.claim(AT, new_owner(), NOW)


@both_databases
class TestNotices:
    def test_a_notice_is_claimed_once_and_sent_once(self, slots: SlotStore) -> None:
        owner = new_owner()
        assert slots.claim_notice(AT, NoticeKind.reminder, owner, NOW)
        assert not slots.claim_notice(AT, NoticeKind.reminder, new_owner(), NOW)  # being sent
        slots.finish_notice(
            AT, NoticeKind.reminder, owner, sent=True, recipients=["a@example.org"], now=NOW
        )
        assert slots.notice_sent(AT, NoticeKind.reminder)
        assert not slots.claim_notice(AT, NoticeKind.reminder, owner, NOW)
        assert slots.claim_notice(AT, NoticeKind.no_issue, owner, NOW)  # another kind

    def test_a_failed_notice_is_tried_again_a_few_times(self, slots: SlotStore) -> None:
        owner = new_owner()
        tries = 0
        while slots.claim_notice(AT, NoticeKind.missed, owner, NOW):
            tries += 1
            slots.finish_notice(AT, NoticeKind.missed, owner, sent=False, recipients=[], now=NOW)
        assert NOTICE_ATTEMPTS == tries


@both_databases
class TestHeartbeats:
    def test_the_latest_beat_and_whether_a_scheduler_ran_before(self, slots: SlotStore) -> None:
        owner = new_owner()
        assert slots.last_beat() is None
        assert not slots.ran_before(AT)
        slots.beat(owner, AT - dt.timedelta(hours=1), AT)
        slots.beat(owner, AT - dt.timedelta(minutes=1), AT)
        beat = slots.last_beat()
        assert beat is not None
        assert (AT - dt.timedelta(hours=1), AT - dt.timedelta(minutes=1), None) == (
            beat.started_at,
            beat.beat_at,
            beat.stopped_at,
        )
        assert slots.ran_before(AT)
        slots.stopped(owner, AT)
        stopped = slots.last_beat()
        assert stopped is not None
        assert AT == stopped.stopped_at
