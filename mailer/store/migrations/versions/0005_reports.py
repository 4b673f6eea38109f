"""What `mailer report` needs of the webhook event log: whole click URLs, test events, an index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

Written by hand to match mailer.store.eventlog; tests/report/test_migration.py
checks that it does, on SQLite and PostgreSQL.

* ``url``: a click's URL in full. ``detail`` keeps only 300 characters, so two
  long links that differ at the end would count as one. Clicks stored before
  this revision get their ``detail`` (their URL, as far as it was kept).
* ``test``: the event is of a test send (``custom_args`` ``test: "true"``);
  reports leave those out. Events stored before are taken as real.
* Two partial indexes the report reads instead of the table: (issue,
  subscriber_id, kind, event) of real sends' events, to sum an issue's events
  member by member; (issue, url, subscriber_id) of their clicks, to count links.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUMS = "ix_webhook_events_issue_subscriber_id_kind_event"
LINKS = "ix_webhook_events_issue_url_subscriber_id"


# Each partial index's condition, as PostgreSQL and SQLite (which has no ``false``) spell it.
SUMS_WHERE = ("test = false", "test = 0")
LINKS_WHERE = ("kind = 'click' AND test = false", "kind = 'click' AND test = 0")


def upgrade() -> None:
    # Plain ADD COLUMN works on both databases (nullable, or with a server default).
    op.add_column("webhook_events", sa.Column("url", sa.Text(), nullable=True))
    op.add_column(
        "webhook_events",
        sa.Column("test", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute("UPDATE webhook_events SET url = detail WHERE kind = 'click' AND detail <> ''")
    op.create_index(
        SUMS,
        "webhook_events",
        ["issue", "subscriber_id", "kind", "event"],
        postgresql_where=sa.text(SUMS_WHERE[0]),
        sqlite_where=sa.text(SUMS_WHERE[1]),
    )
    op.create_index(
        LINKS,
        "webhook_events",
        ["issue", "url", "subscriber_id"],
        postgresql_where=sa.text(LINKS_WHERE[0]),
        sqlite_where=sa.text(LINKS_WHERE[1]),
    )


def downgrade() -> None:
    op.drop_index(LINKS, table_name="webhook_events")
    op.drop_index(SUMS, table_name="webhook_events")
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_column("test")
        batch.drop_column("url")
