"""Rejected webhook events, and member ids that SQLite never hands out twice.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

Written by hand to match mailer.store.eventlog and mailer.store.schema.

* ``webhook_rejected``: the items of a verified webhook batch that are not events
  we can apply, kept once each for ``mailer events rejected``.
* SQLite only: ``subscribers`` is rebuilt with ``AUTOINCREMENT``. Without it SQLite
  gives a new member the id of the forgotten member who had the highest one, and
  the forgotten person's links named that id. SQLite cannot add AUTOINCREMENT to a
  table, so the table is copied; :func:`mailer.store.database.migrate` runs SQLite
  migrations with foreign keys off (dropping the old table would otherwise delete
  every member's history with it) and checks them before committing. The counter
  starts past every id the store can have issued: the highest id left plus one per
  suppressed (forgotten) address. PostgreSQL's sequences never go back already.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_STATUSES = "'active', 'pending', 'unsubscribed', 'bounced', 'complained'"
_COLUMNS = (
    "id, email, email_key, name, organisation, region, tags, attributes, status, "
    "status_changed_at, status_reason, created_at, updated_at, link_version"
)


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_rejected",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("received_at", _when(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_rejected"),
        sa.UniqueConstraint("fingerprint", name="uq_webhook_rejected_fingerprint"),
    )
    op.create_index("ix_webhook_rejected_received_at", "webhook_rejected", ["received_at"])
    op.create_index("ix_webhook_rejected_email_key", "webhook_rejected", ["email_key"])
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_autoincrement(autoincrement=True)


def _sqlite_autoincrement(*, autoincrement: bool) -> None:
    op.create_table(
        "_subscribers_new",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("organisation", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("tags", _JSON, nullable=False),
        sa.Column("attributes", _JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_changed_at", _when(), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("link_version", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("email_key", name="uq_subscribers_email_key"),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name="ck_subscribers_status"),
        sqlite_autoincrement=autoincrement,
    )
    op.execute(f"INSERT INTO _subscribers_new ({_COLUMNS}) SELECT {_COLUMNS} FROM subscribers")
    op.drop_index("ix_subscribers_status", table_name="subscribers")
    op.drop_table("subscribers")
    op.rename_table("_subscribers_new", "subscribers")
    op.create_index("ix_subscribers_status", "subscribers", ["status"])
    if autoincrement:
        op.execute("DELETE FROM sqlite_sequence WHERE name = 'subscribers'")
        op.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'subscribers', "
            "(SELECT coalesce(max(id), 0) FROM subscribers) + (SELECT count(*) FROM suppressions)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_autoincrement(autoincrement=False)
    op.drop_index("ix_webhook_rejected_email_key", table_name="webhook_rejected")
    op.drop_index("ix_webhook_rejected_received_at", table_name="webhook_rejected")
    op.drop_table("webhook_rejected")
