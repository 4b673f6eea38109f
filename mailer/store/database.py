"""Engines and migrations: one URL picks the database, first use brings it up to date.

SQLite (the embedded default) is set up for a file several processes share: WAL
journal (readers never block the writer), a busy timeout (a writer waits for the
lock instead of failing), foreign keys on. mailer emits its own ``BEGIN`` because
Python's sqlite3 driver does not begin a transaction before a SELECT, which would
let a read-then-write see stale data; write transactions use ``BEGIN IMMEDIATE``
so that they take the write lock up front (waiting out the busy timeout) rather
than failing half-way when they upgrade a read lock.

On PostgreSQL, write transactions run SERIALIZABLE, so a concurrent change between
an import's reads and its writes fails the import instead of being overwritten.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from mailer.errors import ConfigError, StoreError

if TYPE_CHECKING:  # Alembic is imported when migrations run: it is slow to import
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
MIN_SQLITE = (3, 35, 0)
# Execution option marking a connection whose transactions write.
WRITE = "mailer_write"
# Any constant will do: it serialises concurrent migrations of one PostgreSQL database.
_MIGRATION_LOCK = 0x6D61696C6572


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL for ``url``, with psycopg 3 as the PostgreSQL driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"MAILER_DATABASE_URL: {url!r} is not a database URL; use sqlite:///path/to/mailer.db "
            "or postgresql://user@host:5432/dbname"
        ) from None
    # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"MAILER_DATABASE_URL: {parsed.get_backend_name()!r} databases are not supported; "
            "use sqlite:///... or postgresql://..."
        )
    return parsed


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with mailer's connection settings (see the module docstring)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return _postgres_engine(parsed)


def _sqlite_engine(url: URL) -> Engine:
    require_sqlite(sqlite3.sqlite_version_info)
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"cannot create {folder} for the subscriber store: {error.strerror}; "
                "set MAILER_DATABASE_URL to a file in a folder you can write to"
            ) from None
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def require_sqlite(version: tuple[int, int, int]) -> None:
    """Refuse an SQLite older than the ledger needs (``RETURNING`` came in 3.35, 2021)."""
    if version < MIN_SQLITE:
        found, needed = ".".join(map(str, version)), ".".join(map(str, MIN_SQLITE))
        raise StoreError(
            f"this Python's SQLite is version {found}; mailer needs {needed} or later. "
            "Use a newer Python (python.org's and most distributions' builds have it), "
            "or PostgreSQL (MAILER_DATABASE_URL=postgresql://...)"
        )


def _postgres_engine(url: URL) -> Engine:
    return create_engine(url, pool_pre_ping=True)


@contextmanager
def write_connection(engine: Engine, *, isolation: str = "SERIALIZABLE") -> Iterator[Connection]:
    """A connection in a write transaction, committed on success and rolled back on error.

    ``isolation`` is PostgreSQL's level: SERIALIZABLE unless the work takes row locks
    of its own (``READ COMMITTED``, as the webhook does); SQLite has one writer at a time.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection = connection.execution_options(**{WRITE: True})
        else:
            connection = connection.execution_options(isolation_level=isolation)
        with connection.begin():
            yield connection


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


HEAD_REVISION = "0012"
"""The newest schema revision, the migrations' head (a test checks they agree): opening an
up-to-date store then reads one row and never imports Alembic, a third of a second."""


def current_revisions(connection: Connection) -> set[str]:
    """The revisions the database is at, from Alembic's own table; none for a new database."""
    if not inspect(connection).has_table("alembic_version"):
        return set()
    return set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def migrate(engine: Engine) -> None:
    """Bring the database up to the newest schema; cheap when it already is."""
    heads = {HEAD_REVISION}
    with engine.connect() as connection:
        current = current_revisions(connection)
    if current == heads:
        return
    _check_not_newer(current, heads)
    with migration_connection(engine) as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        if current_revisions(connection) == heads:  # another process got there first
            return
        from alembic import command

        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        _check_foreign_keys(connection)


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A write transaction for migrating; on SQLite with foreign keys off, as SQLite's guide
    to rebuilding a table says.

    A rebuilt table's old copy is dropped, and with foreign keys on, dropping it would
    delete every row that refers to it (ON DELETE CASCADE). The pragma cannot change
    inside a transaction, so it is set on the connection before it begins, and set
    back before the connection goes back to the pool.
    """
    if engine.dialect.name != "sqlite":
        with write_connection(engine) as connection:
            yield connection
        return
    with engine.connect() as plain:
        raw = plain.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys = OFF")
        try:
            connection = plain.execution_options(**{WRITE: True})
            with connection.begin():
                yield connection
        finally:
            raw.execute("PRAGMA foreign_keys = ON")


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise StoreError(f"the migration left rows that refer to nothing: {broken[:5]}")


def _check_not_newer(current: set[str], heads: set[str]) -> None:
    from alembic.script import ScriptDirectory

    known = {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }
    unknown = current - known
    if unknown:
        raise StoreError(
            f"the database is at schema revision {', '.join(sorted(unknown))}, which this version "
            "of mailer does not know: it was upgraded by a newer mailer. Upgrade mailer."
        )
