"""The bounce mailbox's log: migration 0008 on both databases, and one row per message."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

import mailer.store.bouncelog
from mailer.store import SubscriberStore, open_store
from mailer.store.bouncelog import known_keys, record, recorded
from mailer.store.database import alembic_config, write_connection
from mailer.store.schema import Base

AT = dt.datetime(2026, 12, 3, 9, tzinfo=dt.UTC)


def row(uid: str, key: str, *, mailbox: str = "imaps://b@mx:993/INBOX") -> dict[str, object]:
    return {
        "mailbox": mailbox,
        "uid": uid,
        "message_key": key,
        "outcome": "bounce",
        "handled": True,
        "summary": "dsn",
        "processed_at": AT,
    }


class TestMigration:
    def test_the_migration_matches_the_table(self, database_url: str) -> None:
        """0008 creates exactly what mailer.store.bouncelog declares, on SQLite and PostgreSQL."""
        assert mailer.store.bouncelog
        with open_store(database_url) as store, store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert [] == [d for d in differences if "bounce_messages" in repr(d)]

    def test_it_downgrades_and_upgrades_again(self, database_url: str) -> None:
        """0008 reverts cleanly (the table goes) and applies again."""
        with open_store(database_url) as store:
            config = alembic_config()
            with store.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.downgrade(config, "0007")
                assert not inspect(connection).has_table("bounce_messages")
                command.upgrade(config, "head")
                assert inspect(connection).has_table("bounce_messages")


class TestTheLog:
    def test_what_was_recorded_is_found_by_id_and_by_message_id(
        self, store: SubscriberStore
    ) -> None:
        """A recorded message is known by its mailbox and id, and by its Message-ID anywhere."""
        with write_connection(store.engine) as connection:
            record(connection, [row("7:1", "a@mx"), row("7:2", "b@mx")])
        with write_connection(store.engine) as connection:
            found = recorded(connection, "imaps://b@mx:993/INBOX", ["7:1", "7:3"])
            other = recorded(connection, "pop3s://b@mx:995", ["7:1"])
            keys = known_keys(connection, ["b@mx", "c@mx"])
        assert (["7:1"], {}, {"b@mx"}) == (list(found), other, keys)

    def test_a_message_is_recorded_once(self, store: SubscriberStore) -> None:
        """Recording a mailbox's id a second time fails (the run is retried, and finds it)."""
        with write_connection(store.engine) as connection:
            record(connection, [row("7:1", "a@mx")])
        with pytest.raises(IntegrityError), write_connection(store.engine) as connection:
            record(connection, [row("7:1", "a@mx")])
