"""Migration 0003 creates exactly the web app's tables, on SQLite and PostgreSQL, and reverts."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import mailer.store.eventlog
import mailer.store.preferences
import mailer.store.signups
from mailer.store import open_store
from mailer.store.database import alembic_config, write_connection
from mailer.store.schema import Base

OURS = {"webhook_events", "segment_opt_outs", "signup_attempts"}


def _differences(url: str) -> list[object]:
    with open_store(url) as store, store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    # Other engineers' tables are checked by their own tests.
    return [d for d in diffs if any(name in repr(d) for name in OURS)]


def test_the_migration_matches_the_tables(database_url: str) -> None:
    assert mailer.store.eventlog and mailer.store.preferences and mailer.store.signups
    assert [] == _differences(database_url)


def test_it_downgrades_and_upgrades_again(database_url: str) -> None:
    with open_store(database_url) as store:
        assert OURS <= set(inspect(store.engine).get_table_names())
        config = alembic_config()
        with write_connection(store.engine) as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0002")
        assert not OURS & set(inspect(store.engine).get_table_names())
    with open_store(database_url) as store:
        assert OURS <= set(inspect(store.engine).get_table_names())
