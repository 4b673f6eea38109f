"""Migration 0005 matches the event log's model, keeps clicks stored before it, and reverts."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from mailer.store import open_store
from mailer.store.database import alembic_config, make_engine, write_connection
from mailer.store.eventlog import WebhookEventRow
from mailer.store.schema import Base

INDEXES = {
    "ix_webhook_events_issue_subscriber_id_kind_event",
    "ix_webhook_events_issue_url_subscriber_id",
}


def _differences(url: str) -> list[object]:
    with open_store(url) as store, store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    # Other engineers' tables are checked by their own tests.
    return [d for d in diffs if "webhook_events" in repr(d)]


def _migrate_to(url: str, revision: str, *, down: bool = False) -> None:
    engine = make_engine(url)
    try:
        config = alembic_config()
        with write_connection(engine) as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def test_the_migration_matches_the_model(database_url: str) -> None:
    assert [] == _differences(database_url)


def test_clicks_stored_before_it_keep_their_url(database_url: str) -> None:
    """A click logged under 0004 (URL only in detail) gets it as its url; other events none."""
    _migrate_to(database_url, "0004")
    engine = make_engine(database_url)
    when = "2026-01-08 00:00:00.000000"  # as UTCDateTime keeps it on SQLite; PostgreSQL reads it
    try:
        with write_connection(engine) as connection:
            for number, (event, detail) in enumerate(
                [("click", "https://example.org/a"), ("bounce", "bounce | 550 no such user")]
            ):
                connection.execute(
                    text(
                        "INSERT INTO webhook_events (sg_event_id, event, kind, email, issue, "
                        "occurred_at, received_at, detail, effect) VALUES (:id, :event, :event, "
                        "'a@example.org', 'x', :when, :when, :detail, 'recorded')"
                    ),
                    {"id": f"e{number}", "event": event, "when": when, "detail": detail},
                )
    finally:
        engine.dispose()
    with open_store(database_url) as store, store.engine.connect() as connection:
        W = WebhookEventRow
        rows = connection.execute(select(W.event, W.url, W.test).order_by(W.sg_event_id)).all()
    assert [("click", "https://example.org/a", False), ("bounce", None, False)] == [
        tuple(row) for row in rows
    ]


def test_it_downgrades_and_upgrades_again(database_url: str) -> None:
    with open_store(database_url) as store:
        assert INDEXES <= {ix["name"] for ix in inspect(store.engine).get_indexes("webhook_events")}
    _migrate_to(database_url, "0004", down=True)
    engine = make_engine(database_url)
    try:
        columns = {column["name"] for column in inspect(engine).get_columns("webhook_events")}
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("webhook_events")}
    finally:
        engine.dispose()
    assert not {"url", "test"} & columns
    assert not INDEXES & indexes
    assert [] == _differences(database_url)
