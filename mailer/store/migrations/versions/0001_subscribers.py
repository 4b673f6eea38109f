"""The subscriber list: subscribers, their history, suppressed (forgotten) addresses.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written by hand to match mailer.store.schema; tests/store/test_database.py
checks that it does, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_STATUSES = "'active', 'pending', 'unsubscribed', 'bounced', 'complained'"


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subscribers",
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
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("email_key", name="uq_subscribers_email_key"),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name="ck_subscribers_status"),
    )
    op.create_index("ix_subscribers_status", "subscribers", ["status"])
    op.create_table(
        "subscriber_events",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("at", _when(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status_from", sa.String(20), nullable=True),
        sa.Column("status_to", sa.String(20), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscriber_events"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_subscriber_events_subscriber_id_subscribers",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_subscriber_events_subscriber_id_at", "subscriber_events", ["subscriber_id", "at"]
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_hash", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_suppressions"),
        sa.UniqueConstraint("email_hash", name="uq_suppressions_email_hash"),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    op.drop_index("ix_subscriber_events_subscriber_id_at", table_name="subscriber_events")
    op.drop_table("subscriber_events")
    op.drop_index("ix_subscribers_status", table_name="subscribers")
    op.drop_table("subscribers")
