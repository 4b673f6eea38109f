"""The web app's tables: the webhook event log, segment opt-outs, sign-up attempts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Written by hand to match mailer.store.eventlog, mailer.store.preferences and
mailer.store.signups; tests/web/test_migration.py checks that it does, on SQLite
and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("sg_event_id", sa.String(128), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("issue", sa.String(100), nullable=True),
        sa.Column("occurred_at", _when(), nullable=False),
        sa.Column("received_at", _when(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("effect", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_events"),
        sa.UniqueConstraint("sg_event_id", name="uq_webhook_events_sg_event_id"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_webhook_events_subscriber_id_subscribers",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_webhook_events_subscriber_id_kind_occurred_at",
        "webhook_events",
        ["subscriber_id", "kind", "occurred_at"],
    )
    op.create_index("ix_webhook_events_issue_kind", "webhook_events", ["issue", "kind"])
    op.create_table(
        "segment_opt_outs",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(40), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("subscriber_id", "segment", name="pk_segment_opt_outs"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_segment_opt_outs_subscriber_id_subscribers",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "signup_attempts",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signup_attempts"),
    )
    op.create_index("ix_signup_attempts_key_at", "signup_attempts", ["key", "at"])
    op.create_index("ix_signup_attempts_at", "signup_attempts", ["at"])


def downgrade() -> None:
    op.drop_index("ix_signup_attempts_at", table_name="signup_attempts")
    op.drop_index("ix_signup_attempts_key_at", table_name="signup_attempts")
    op.drop_table("signup_attempts")
    op.drop_table("segment_opt_outs")
    op.drop_index("ix_webhook_events_issue_kind", table_name="webhook_events")
    op.drop_index("ix_webhook_events_subscriber_id_kind_occurred_at", table_name="webhook_events")
    op.drop_table("webhook_events")
