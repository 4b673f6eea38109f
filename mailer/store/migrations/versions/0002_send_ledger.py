"""The send ledger: one row per issue sent (with its lease), one per (issue, subscriber).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Written by hand to match the tables in mailer.store.ledger, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_SEND_STATUSES = "'sending', 'stopped', 'finished'"
_STATES = "'queued', 'in_flight', 'sent', 'failed', 'unknown'"


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue", sa.String(100), nullable=False),
        sa.Column("transport", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("started_at", _when(), nullable=False),
        sa.Column("heartbeat_at", _when(), nullable=False),
        sa.Column("finished_at", _when(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sends"),
        sa.UniqueConstraint("issue", name="uq_sends_issue"),
        sa.CheckConstraint(f"status IN ({_SEND_STATUSES})", name="ck_sends_status"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("issue", sa.String(100), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(300), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.UniqueConstraint("issue", "subscriber_id", name="uq_deliveries_issue_subscriber_id"),
        sa.CheckConstraint(f"state IN ({_STATES})", name="ck_deliveries_state"),
        sa.ForeignKeyConstraint(
            ["issue"], ["sends.issue"], name="fk_deliveries_issue_sends", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_deliveries_subscriber_id_subscribers",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_deliveries_subscriber_id", "deliveries", ["subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_subscriber_id", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("sends")
