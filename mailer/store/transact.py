"""Transactions for the web app's tables: errors translated, conflicts retried.

The web app writes from several threads (and SendGrid may post two batches at
once). On PostgreSQL, write transactions run SERIALIZABLE (see
:mod:`mailer.store.database`), so two that touch the same rows can fail with a
serialization failure or a deadlock; both are safe to run again from the start,
which :func:`run_write` does a few times before giving up. On SQLite, writers
queue on the database lock instead (``BEGIN IMMEDIATE`` and the busy timeout).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from mailer.errors import StoreError
from mailer.store.database import WRITE, write_connection

__all__ = ["READ_COMMITTED", "driver_rows", "read", "rehearse", "run_write"]

T = TypeVar("T")
ATTEMPTS = 5
# For work that takes the row locks it needs itself (see run_write's isolation).
READ_COMMITTED = "READ COMMITTED"
# serialization_failure, deadlock_detected: the transaction may simply be run again.
_RETRYABLE = frozenset({"40001", "40P01"})


def _retryable(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) in _RETRYABLE


def _store_error(engine: Engine, error: DBAPIError) -> StoreError:
    where = engine.url.render_as_string(hide_password=True)
    return StoreError(f"the subscriber store at {where} failed: {error.orig}")


def run_write(
    engine: Engine, work: Callable[[Connection], T], *, isolation: str = "SERIALIZABLE"
) -> T:
    """``work(connection)`` in one write transaction, run again on a retryable conflict.

    ``isolation``: see :func:`mailer.store.database.write_connection`.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with write_connection(engine, isolation=isolation) as connection:
                return work(connection)
        except DBAPIError as error:
            if attempt < ATTEMPTS and _retryable(error):
                time.sleep(0.01 * attempt)
                continue
            raise _store_error(engine, error) from error
    raise AssertionError("unreachable")  # pragma: no cover


def rehearse(engine: Engine, work: Callable[[Connection], T]) -> T:
    """``work(connection)`` in a write transaction that is always rolled back: a dry run that
    works everything out exactly as the real one would, and changes nothing."""
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection = connection.execution_options(**{WRITE: True})
            with connection.begin() as transaction:
                try:
                    return work(connection)
                finally:
                    transaction.rollback()
    except DBAPIError as error:
        raise _store_error(engine, error) from error


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """A connection in a read transaction."""
    try:
        with engine.connect() as connection, connection.begin():
            yield connection
    except DBAPIError as error:
        raise _store_error(engine, error) from error


def driver_rows(connection: Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of one statement in the driver's own SQL, as plain tuples.

    For the paths every recipient of a send takes (the audience's pages, the
    ledger's claim): SQLAlchemy's Row for each of 1,000 rows took as long as the
    database's work. Errors are raised as SQLAlchemy's, as from ``exec_driver_sql``.
    """
    base_error: type[Exception] = connection.dialect.loaded_dbapi.Error
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall()) if cursor.description else []
    except base_error as error:
        raise DBAPIError.instance(
            sql, params, error, base_error, dialect=connection.dialect
        ) from error
    finally:
        cursor.close()
