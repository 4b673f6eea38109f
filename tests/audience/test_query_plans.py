"""The audience walk reads each page in work proportional to the page, on PostgreSQL.

A send, its re-run and ``--dry-run`` walk the whole list a page at a time. If
reading one page costs work proportional to where the page starts, the walk is
quadratic in the list. PostgreSQL once planned the page (members LEFT JOIN the
ledger) as a merge join that read the ledger's subscriber index from its start on
every page: 15 s instead of 0.5 s for a re-run at 300,000 members. These tests
ask PostgreSQL itself (``EXPLAIN ANALYZE``) how many rows each per-page statement
touched, on a list with two issues already sent, at a page in the middle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from helpers.databases import libpq_url, postgres_schema
from helpers.members import plain_members

from mailer.audience.plan import _LEDGER, _OPT_OUTS, _PAGE, _PLAN_PAGE, PAGE_SIZE
from mailer.store import open_store

MEMBERS = 20_000
MIDDLE = MEMBERS // 2


@pytest.fixture(scope="module")
def sent_list(postgres_server: str) -> Iterator[psycopg.Connection[Any]]:
    """20,000 members (every tenth unsubscribed), two issues sent to all who were active."""
    with postgres_schema(postgres_server) as url:
        with open_store(url):
            pass  # migrated
        with psycopg.connect(libpq_url(url), autocommit=True) as connection:
            plain_members(connection, MEMBERS)
            for issue in ("spring", "summer"):
                connection.execute(
                    "INSERT INTO sends (issue, transport, status, owner, runs, started_at,"
                    " heartbeat_at) VALUES (%s, 'outbox', 'finished', 'test', 1, now(), now())",
                    (issue,),
                )
                connection.execute(
                    "INSERT INTO deliveries (issue, subscriber_id, variant, state, retryable,"
                    " attempts, error, created_at, updated_at) SELECT %s, id, 'general', 'sent',"
                    " false, 1, '', now(), now() FROM subscribers WHERE status = 'active'",
                    (issue,),
                )
            connection.execute("ANALYZE")
            yield connection


def rows_touched(connection: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> int:
    """Rows every scan in the statement's plan returned or filtered out, as executed."""
    row = connection.execute(
        "EXPLAIN (ANALYZE, FORMAT JSON) " + sql.format(m="%s"), params
    ).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])

    def scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if "Scan" in node["Node Type"]:
            yield node
        for child in node.get("Plans", []):
            yield from scans(child)

    return sum(
        node["Actual Rows"] * node.get("Actual Loops", 1) + node.get("Rows Removed by Filter", 0)
        for node in scans(plan[0]["Plan"])
    )


class TestPerPageWork:
    @pytest.mark.parametrize("issue", ["summer", "autumn"], ids=["re-run", "new issue"])
    def test_a_page_in_the_middle_touches_about_a_page_of_rows(
        self, sent_list: psycopg.Connection[Any], issue: str
    ) -> None:
        """Members, their ledger rows and their opt-outs: each read scales with the page."""
        found = sent_list.execute(_PAGE.format(m="%s"), (MIDDLE, 2**62, PAGE_SIZE)).fetchall()
        first, last = found[0][0], found[-1][0]
        # A page of active members spans a little more than a page of ids (unsubscribed skipped).
        budget = 2 * PAGE_SIZE
        assert rows_touched(sent_list, _PAGE, (MIDDLE, 2**62, PAGE_SIZE)) <= budget
        assert rows_touched(sent_list, _LEDGER, (issue, first, last)) <= budget
        assert rows_touched(sent_list, _OPT_OUTS, (first, last)) <= budget
        for attributes in ("NULL", "CAST(s.attributes AS TEXT)"):  # the plan's lighter page
            page = _PLAN_PAGE.replace("{a}", attributes)
            assert rows_touched(sent_list, page, (MIDDLE, 2**62, PAGE_SIZE)) <= budget

    def test_the_ledger_read_uses_the_index_that_leads_with_the_issue(
        self, sent_list: psycopg.Connection[Any]
    ) -> None:
        """Whatever the planner's statistics, the ledger read is a range on (issue, subscriber)."""
        text = "\n".join(
            row[0]
            for row in sent_list.execute(
                "EXPLAIN " + _LEDGER.format(m="%s"), ("summer", MIDDLE, MIDDLE + PAGE_SIZE)
            )
        )
        assert "uq_deliveries_issue_subscriber_id" in text
        assert "subscriber_id >=" in text and "subscriber_id <=" in text

    def test_the_ledger_read_keeps_its_plan_whatever_analyze_sampled(
        self, sent_list: psycopg.Connection[Any]
    ) -> None:
        """Statistics drawn again and again: the ledger read still touches about a page of rows.

        With an index on subscriber_id alone, PostgreSQL took it for the unique one by the
        sample of the last ANALYZE (14 times in 20 here), reading both issues' rows; the
        index by member names the issue too (migration 0011), so it never looks cheaper.
        """
        found = sent_list.execute(_PAGE.format(m="%s"), (MIDDLE, 2**62, PAGE_SIZE)).fetchall()
        span = (found[0][0], found[-1][0])
        touched = []
        for _ in range(6):
            sent_list.execute("ANALYZE deliveries")
            touched.append(rows_touched(sent_list, _LEDGER, ("summer", *span)))
        assert max(touched) <= 2 * PAGE_SIZE, touched
