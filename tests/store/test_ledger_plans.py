"""The ledger's per-batch statements read about a batch of rows, and its record touches no index, on PostgreSQL.

Every batch of a send runs the claim (mark the batch's members in flight) and the
record (what the transport said of them). If either read rows in proportion to
the list, or to where the batch is in it, a send would be quadratic in the list.
These tests ask PostgreSQL itself (``EXPLAIN ANALYZE``) how many rows every
statement of a claim and a record touched, for a batch in the middle of a list
that one issue has already gone to, claimed for a new issue (every member gets a
row). (A claim of members who already have a row, which a send makes only of
retryable failures, is planned by PostgreSQL as a scan of the issue's rows on a
table this small, and by the unique index at 300,000 rows: not checked here.)

And the record's update is heap-only (HOT): the ledger's pages keep room for each
row's second version (migration 0011), so recording a batch writes no index entry.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
from helpers.databases import libpq_url, postgres_schema
from helpers.members import plain_members
from sqlalchemy import Connection, text

from mailer.mail import Delivery, DeliveryState
from mailer.store import SubscriberStore, open_store
from mailer.store.ledger import _claim, _record, _Sql
from mailer.store.transact import driver_rows

MEMBERS = 20_000
BATCH = 1000
MIDDLE = MEMBERS // 2


@pytest.fixture(scope="module")
def sent_list(postgres_server: str) -> Iterator[SubscriberStore]:
    """20,000 members (every tenth unsubscribed); 'spring' sent to all who were active,
    'summer' and 'autumn' not yet."""
    with postgres_schema(postgres_server) as url, open_store(url) as store:
        with psycopg.connect(libpq_url(url), autocommit=True) as connection:
            plain_members(connection, MEMBERS)
            for issue in ("spring", "summer", "autumn"):
                connection.execute(
                    "INSERT INTO sends (issue, transport, status, owner, runs, started_at,"
                    " heartbeat_at) VALUES (%s, 'sendgrid', 'sending', 'test', 1, now(), now())",
                    (issue,),
                )
            connection.execute(
                "INSERT INTO deliveries (issue, subscriber_id, variant, state, retryable,"
                " attempts, error, created_at, updated_at) SELECT 'spring', id, 'general',"
                " 'sent', false, 1, '', now(), now() FROM subscribers WHERE status = 'active'"
            )
            connection.execute("ANALYZE")
        yield store


class Explained(_Sql):
    """The claim's and the record's SQL, each statement also run under EXPLAIN ANALYZE
    (in a savepoint rolled back), noting the rows its scans touched."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.touched: list[tuple[str, int]] = []

    def run(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        self.connection.exec_driver_sql("SAVEPOINT explained")
        [(plan,)] = driver_rows(self.connection, "EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        self.connection.exec_driver_sql("ROLLBACK TO SAVEPOINT explained")
        found = plan if isinstance(plan, list) else json.loads(plan)
        self.touched.append((sql.split(" ", 3)[:3][-1], rows_touched(found[0]["Plan"])))
        return super().run(sql, params)


def rows_touched(node: dict[str, Any]) -> int:
    """Rows every scan under the node returned or filtered out, as executed."""
    own = (
        node["Actual Rows"] * node.get("Actual Loops", 1) + node.get("Rows Removed by Filter", 0)
        if "Scan" in node["Node Type"]
        else 0
    )
    return own + sum(rows_touched(child) for child in node.get("Plans", []))


def batch_in_the_middle() -> list[int]:
    return list(range(MIDDLE, MIDDLE + BATCH))


class TestPerBatchWork:
    def test_a_claim_and_a_record_in_the_middle_touch_about_a_batch_of_rows(
        self, sent_list: SubscriberStore
    ) -> None:
        """Each statement of the claim and of the record reads in proportion to the batch."""
        when = dt.datetime.now(dt.UTC)
        with sent_list.engine.connect() as connection, connection.begin() as transaction:
            sql = Explained(connection)
            claim = _claim(sql, "summer", "general", batch_in_the_middle(), when)
            delivered = Delivery(email="", state=DeliveryState.sent, message_id="abc")
            _record(sql, [(row, delivered) for row in claim.claimed.values()], when)
            transaction.rollback()
        # The batch's ids span 1,000 members, 900 of them active: those are claimed.
        assert len(claim.claimed) == 900
        # The claim's insert, its update of retryable failures and its read of who left
        # (for the 100 unsubscribed members), the record's update.
        assert len(sql.touched) == 4
        for statement, touched in sql.touched:
            assert touched <= 2 * BATCH, f"{statement}: {touched} rows"

    def test_the_record_of_a_claimed_batch_writes_no_index_entry(
        self, sent_list: SubscriberStore
    ) -> None:
        """The record's update of each row is heap-only: its page had room for the new version."""
        when = dt.datetime.now(dt.UTC)
        with sent_list.engine.begin() as connection:
            claim = _claim(_Sql(connection), "autumn", "general", batch_in_the_middle(), when)
        with sent_list.engine.connect() as connection, connection.begin() as transaction:
            before = updates(connection)
            delivered = Delivery(email="", state=DeliveryState.sent, message_id="x" * 22)
            _record(_Sql(connection), [(row, delivered) for row in claim.claimed.values()], when)
            after = updates(connection)
            transaction.rollback()
        assert (after[0] - before[0], after[1] - before[1]) == (900, 900)


def updates(connection: Connection) -> tuple[int, int]:
    """Rows of the ledger updated, and of those heap-only, that this backend has not yet
    reported to the statistics (so a difference is what happened in between)."""
    updated, hot = connection.execute(
        text(
            "SELECT pg_stat_get_xact_tuples_updated('deliveries'::regclass),"
            " pg_stat_get_xact_tuples_hot_updated('deliveries'::regclass)"
        )
    ).one()
    return int(updated), int(hot)
