"""Opening the store: engines, connection settings and migrations on both databases."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from mailer.errors import ConfigError, StoreError
from mailer.store import MemberRecord, SubscriberStore, open_store
from mailer.store.database import (
    HEAD_REVISION,
    head_revisions,
    make_engine,
    migrate,
    parse_url,
    require_sqlite,
    write_connection,
)
from mailer.store.schema import Base

# The tables this store defines; later tables (the send ledger, ...) have tests of their own.
STORE_TABLES = {"subscribers", "subscriber_events", "suppressions"}


class TestParseUrl:
    def test_plain_postgresql_urls_use_psycopg_3(self) -> None:
        """postgresql:// and postgres:// mean psycopg 3, the driver mailer ships with."""
        assert "postgresql+psycopg" == parse_url("postgresql://u@h/db").drivername
        assert "postgresql+psycopg" == parse_url("postgres://u@h/db").drivername

    def test_sqlite_urls_are_kept(self) -> None:
        """The default SQLite URL is taken as it is."""
        assert "sqlite" == parse_url("sqlite:///subscribers/mailer.db").drivername

    def test_other_databases_are_refused(self) -> None:
        """Only SQLite and PostgreSQL are supported, and the message says so."""
        with pytest.raises(ConfigError, match="'mysql' databases are not supported"):
            parse_url("mysql://u@h/db")

    def test_garbage_is_refused(self) -> None:
        """Something that is not a URL at all is a configuration error."""
        with pytest.raises(ConfigError, match="is not a database URL"):
            parse_url("subscribers.db")


class TestSqliteEngine:
    def test_creates_the_folder_of_the_database_file(self, tmp_path: Path) -> None:
        """The default subscribers/mailer.db works in a fresh clone where the folder may be missing."""
        path = tmp_path / "new" / "folder" / "mailer.db"
        with open_store(f"sqlite:///{path}"):
            pass
        assert path.exists()

    def test_sets_wal_busy_timeout_and_foreign_keys(self, tmp_path: Path) -> None:
        """Every connection runs in WAL mode, waits for locks and enforces foreign keys."""
        engine = make_engine(f"sqlite:///{tmp_path / 'mailer.db'}")
        with engine.connect() as connection:
            assert "wal" == connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            assert 30000 == connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
            assert 1 == connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
        engine.dispose()

    def test_reads_happen_inside_a_transaction(self, tmp_path: Path) -> None:
        """mailer emits BEGIN itself, so that a read followed by a write sees one snapshot."""
        engine = make_engine(f"sqlite:///{tmp_path / 'mailer.db'}")
        with engine.connect() as connection, connection.begin():
            connection.execute(text("SELECT 1"))
            assert connection.connection.driver_connection.in_transaction  # type: ignore[union-attr]
        engine.dispose()


class TestFailures:
    def test_an_unreachable_database_is_a_store_error_without_the_password(self) -> None:
        """A server that does not answer is reported plainly, never showing a password."""
        with pytest.raises(StoreError, match="failed") as caught:
            open_store("postgresql://mailer:s3cret@127.0.0.1:1/mailer?connect_timeout=2")
        assert "s3cret" not in str(caught.value)

    def test_a_folder_that_cannot_be_created(self, tmp_path: Path) -> None:
        """A SQLite path below a file is reported with what to do."""
        (tmp_path / "file").write_text("not a folder")
        with pytest.raises(StoreError, match=r"cannot create .* for the subscriber store"):
            open_store(f"sqlite:///{tmp_path / 'file' / 'sub' / 'mailer.db'}")

    def test_an_sqlite_too_old_for_the_ledger_is_refused(self) -> None:
        """The ledger's claim needs RETURNING (SQLite 3.35): an older one is named, with a way out;
        the SQLite this Python has passes."""
        with pytest.raises(StoreError, match=r"SQLite is version 3\.34\.1; mailer needs 3\.35\.0"):
            require_sqlite((3, 34, 1))
        require_sqlite(sqlite3.sqlite_version_info)


class TestConcurrentWriters:
    def test_a_writer_waits_for_another_instead_of_failing(self, tmp_path: Path) -> None:
        """With WAL and a busy timeout, a second process's write waits for the first to commit."""
        url = f"sqlite:///{tmp_path / 'mailer.db'}"
        first, second = open_store(url), open_store(url)
        holding, done = threading.Event(), threading.Event()

        def hold_the_write_lock() -> None:
            with write_connection(first.engine) as connection:
                connection.execute(text("UPDATE suppressions SET reason = reason"))
                holding.set()
                done.wait(5)
                time.sleep(0.3)  # still holding the lock when the other writer starts

        worker = threading.Thread(target=hold_the_write_lock)
        worker.start()
        assert holding.wait(5)
        done.set()
        [added] = second.add([MemberRecord("jane@example.org")], source="test")
        worker.join()
        assert added == first.get("jane@example.org")
        first.close()
        second.close()


class TestMigrations:
    def test_first_use_creates_the_schema_at_head(self, database_url: str) -> None:
        """Opening an empty database migrates it to the newest revision."""
        with open_store(database_url) as store, store.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
        assert head_revisions() == current

    def test_the_head_revision_mailer_checks_is_the_migrations_head(self) -> None:
        """Opening a store compares the database with HEAD_REVISION, without loading Alembic."""
        assert {HEAD_REVISION} == head_revisions()

    def test_migrations_match_the_tables_the_code_declares(self, store: SubscriberStore) -> None:
        """The hand-written migrations create exactly the tables in mailer.store.schema, on both databases."""
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        ours = [diff for diff in differences if STORE_TABLES & _tables_of(diff)]
        assert [] == ours

    def test_opening_again_changes_nothing(self, database_url: str) -> None:
        """A second open finds the schema current and leaves the data alone."""
        with open_store(database_url) as store:
            store.add([MemberRecord("jane@example.org")], source="test")
        with open_store(database_url) as store:
            migrate(store.engine)
            assert ["jane@example.org"] == [member.email for member in store.list_subscribers()]

    def test_a_database_from_a_newer_mailer_is_refused(self, store: SubscriberStore) -> None:
        """A revision this mailer does not know means a newer mailer upgraded the database."""
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
        with pytest.raises(StoreError, match="upgraded by a newer mailer"):
            migrate(store.engine)


def _tables_of(diff: object) -> set[str]:
    """Names of the tables an autogenerate difference touches."""
    found: set[str] = set()

    def visit(item: object) -> None:
        if isinstance(item, tuple | list):
            for part in item:
                visit(part)
        name = getattr(item, "name", None)
        table = getattr(item, "table", None)
        if table is not None and getattr(table, "name", None):
            found.add(table.name)
        elif isinstance(name, str):
            found.add(name)
        if isinstance(item, str):
            found.add(item)

    visit(diff)
    return found
