"""Bulk writes for imports: one ``executemany`` straight to the driver per statement.

Why not SQLAlchemy's own executemany: at 100,000 rows, turning each row's
datetimes and JSON into driver values through the column types takes longer than
the database takes to store them. A list has few distinct tag sets, attribute
sets and timestamps, so converting each distinct value once and handing the
driver ready tuples makes an import several times faster. The conversions are
the same ones the column types apply, so rows read back through SQLAlchemy
exactly as if it had written them (``tests/store/test_bulk.py`` checks this).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, Table

from mailer.store.schema import UTCDateTime

Convert = Callable[[Any], Any]
BATCH = 5000  # rows converted and sent at a time


class BulkWriter:
    """Inserts and updates many rows of one table at a time, in the caller's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.sqlite = connection.dialect.name == "sqlite"
        self._placeholder = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        self._times: dict[dt.datetime, Any] = {}

    def insert(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """INSERT every row; all rows have the same keys."""
        if not rows:
            return
        names = list(rows[0])
        columns = ", ".join(map(self._quote, names))
        if not self.sqlite:  # COPY is PostgreSQL's fast path for many rows
            self._copy(f"COPY {self._quote(table.name)} ({columns}) FROM STDIN", table, names, rows)
            return
        sql = (
            f"INSERT INTO {self._quote(table.name)} ({columns}) "
            f"VALUES ({', '.join(self._value(table, name) for name in names)})"
        )
        self._run(sql, table, names, rows)

    def _copy(
        self, sql: str, table: Table, names: list[str], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        import psycopg  # here, not at the top: SQLite stores never load it

        driver = self.connection.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for batch in self._batches(table, names, rows):
                for params in batch:
                    copy.write_row(params)

    def update(self, table: Table, rows: Sequence[Mapping[str, Any]], *, key: str = "id") -> None:
        """UPDATE each row by ``key``; all rows have the same keys."""
        if not rows:
            return
        names = [name for name in rows[0] if name != key]
        assignments = ", ".join(
            f"{self._quote(name)} = {self._value(table, name)}" for name in names
        )
        sql = (
            f"UPDATE {self._quote(table.name)} SET {assignments} "
            f"WHERE {self._quote(key)} = {self._placeholder}"
        )
        self._run(sql, table, [*names, key], rows)

    def _run(
        self, sql: str, table: Table, names: list[str], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        for batch in self._batches(table, names, rows):
            self.connection.exec_driver_sql(sql, batch)

    def _batches(
        self, table: Table, names: list[str], rows: Sequence[Mapping[str, Any]]
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Rows as driver-ready tuples, a batch at a time (so they never all exist at once),
        converted column by column (mostly C loops)."""
        converters = [
            (index, convert)
            for index, name in enumerate(names)
            if (convert := self._converter(table, name)) is not None
        ]
        pick = itemgetter(*names)
        for start in range(0, len(rows), BATCH):
            values = [pick(row) for row in rows[start : start + BATCH]]
            if len(names) == 1:
                values = [(value,) for value in values]
            columns = list(zip(*values, strict=True))
            for index, convert in converters:
                columns[index] = tuple(map(convert, columns[index]))
            yield list(zip(*columns, strict=True))

    def _quote(self, name: str) -> str:
        return self.connection.dialect.identifier_preparer.quote(name)

    def _value(self, table: Table, name: str) -> str:
        if not self.sqlite and isinstance(table.c[name].type, JSON):
            return f"CAST({self._placeholder} AS JSONB)"
        return self._placeholder

    def _converter(self, table: Table, name: str) -> Convert | None:
        column_type = table.c[name].type
        if isinstance(column_type, UTCDateTime):
            return self._time
        if isinstance(column_type, JSON):
            return _JsonCache().convert
        return None

    def _time(self, value: dt.datetime | None) -> Any:
        if value is None:
            return None
        converted = self._times.get(value)
        if converted is None:
            utc = value.astimezone(dt.UTC)
            # SQLAlchemy's SQLite DATETIME storage format; PostgreSQL takes the datetime.
            converted = (
                utc.replace(tzinfo=None).isoformat(" ", "microseconds") if self.sqlite else utc
            )
            self._times[value] = converted
        return converted


class _JsonCache:
    """json.dumps for one column, once per distinct value.

    Tags and attributes are flat (a list of strings, a dict of strings), so a
    tuple of the items identifies the value; anything unhashable is not cached.
    """

    def __init__(self) -> None:
        self._texts: dict[tuple[Any, ...], str] = {}

    def convert(self, value: Any) -> str:
        try:
            if isinstance(value, dict):
                key = tuple(value.items())
            else:
                key = value if isinstance(value, tuple) else tuple(value)
            text = self._texts.get(key)
        except TypeError:
            return json.dumps(value)
        if text is None:
            text = self._texts[key] = json.dumps(value)
        return text
