"""The bounce mailbox's log: each message read from it, once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

Written by hand to match mailer.store.bouncelog; tests/store/test_bouncelog.py
checks that it does, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bounce_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("mailbox", sa.String(300), nullable=False),
        sa.Column("uid", sa.String(200), nullable=False),
        sa.Column("message_key", sa.String(300), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("handled", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bounce_messages"),
        sa.UniqueConstraint("mailbox", "uid", name="uq_bounce_messages_mailbox_uid"),
    )
    op.create_index("ix_bounce_messages_message_key", "bounce_messages", ["message_key"])


def downgrade() -> None:
    op.drop_index("ix_bounce_messages_message_key", table_name="bounce_messages")
    op.drop_table("bounce_messages")
