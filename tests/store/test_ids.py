"""A forgotten member's id is never handed to anyone else (issue 14).

SQLite gave a new member the highest id left plus one, so forgetting the member
with the highest id and adding someone made the erased person's links (which name
the id) open the new member's page. Migration 0009 rebuilds ``subscribers`` with
AUTOINCREMENT, for new stores and existing ones; PostgreSQL's sequence never goes back.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select, text

from mailer.store import MemberRecord, open_store
from mailer.store.database import alembic_config, migration_connection
from mailer.store.emails import suppression_hash
from mailer.store.schema import SubscriberEventRow, SubscriberRow


def test_a_forgotten_member_s_id_is_never_given_again(database_url: str) -> None:
    with open_store(database_url) as store:
        first, last = store.add(
            [MemberRecord("ann@example.org"), MemberRecord("bo@example.org")], source="test"
        )
        assert store.forget(last.email, reason="asked", source="test")
        [newcomer] = store.add([MemberRecord("cy@example.org")], source="test")
        assert newcomer.id > last.id > first.id
    with open_store(database_url) as store:  # and after reopening
        store.forget(newcomer.email, reason="asked", source="test")
        [later] = store.add([MemberRecord("di@example.org")], source="test")
        assert later.id > newcomer.id


def _at_0008(database_url: str) -> None:
    """The store as mailer left it before migration 0009."""
    with open_store(database_url) as store:
        config = alembic_config()
        with migration_connection(store.engine) as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0008")


def test_an_existing_sqlite_store_is_rebuilt_with_its_members_history_and_links(
    sqlite_url: str,
) -> None:
    """Upgrading keeps every member, their history and their link version; no id comes back."""
    with open_store(sqlite_url) as store:
        members = store.add([MemberRecord(f"m{n}@example.org") for n in range(5)], source="test")
        store.revoke_links(members[0].id, reason="asked", source="test")
    _at_0008(sqlite_url)
    # The old mailer forgets the two members with the highest ids.
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA foreign_keys = ON")
        for member in members[3:]:
            raw.execute("DELETE FROM subscribers WHERE id = ?", (member.id,))
            raw.execute(
                "INSERT INTO suppressions (email_hash, reason, created_at) VALUES (?, '', ?)",
                (suppression_hash(member.email), dt.datetime.now(dt.UTC).isoformat(" ")),
            )
        before = raw.execute("SELECT * FROM subscribers ORDER BY id").fetchall()
        history = raw.execute("SELECT count(*) FROM subscriber_events").fetchone()[0]
        version = raw.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        sql = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'subscribers'").fetchone()
    assert "0008" == version and history >= 3 and "AUTOINCREMENT" not in sql[0]
    assert 1 == before[0][-1]  # the first member's link version, which must survive

    with open_store(sqlite_url) as store:  # migrates
        with store.engine.connect() as connection:
            sql = connection.scalar(
                text("SELECT sql FROM sqlite_master WHERE name = 'subscribers'")
            )
            assert "AUTOINCREMENT" in sql
            assert history == connection.scalar(
                select(func.count()).select_from(SubscriberEventRow)
            )
            assert [] == connection.execute(text("PRAGMA foreign_key_check")).fetchall()
            assert 1 == connection.execute(text("PRAGMA foreign_keys")).scalar()
        [newcomer] = store.add([MemberRecord("new@example.org")], source="test")
        assert newcomer.id > members[-1].id
        assert [m.email for m in members[:3]] + ["new@example.org"] == [
            m.email for m in store.list_subscribers()
        ]
    with sqlite3.connect(path) as raw:
        assert (
            before
            == raw.execute(
                "SELECT * FROM subscribers WHERE email <> 'new@example.org' ORDER BY id"
            ).fetchall()
        )


def test_the_migration_downgrades_and_upgrades_again(database_url: str) -> None:
    with open_store(database_url) as store:
        store.add([MemberRecord("ann@example.org")], source="test")
    _at_0008(database_url)
    with open_store(database_url) as store, store.engine.connect() as connection:
        assert ["ann@example.org"] == list(connection.scalars(select(SubscriberRow.email)))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/ids.db"
