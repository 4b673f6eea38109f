"""Shares of a send: parts of its audience that senders, on one machine or several, take in turn.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

Written by hand to match mailer.store.shares; tests/store/test_ledger.py checks that
the migrated tables are the declared ones, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "send_shares",
        sa.Column("id", _ID, nullable=False),
        sa.Column("issue", sa.String(100), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("sender", sa.String(300), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_send_shares"),
        sa.CheckConstraint("state IN ('open', 'taken', 'done')", name="ck_send_shares_state"),
        sa.ForeignKeyConstraint(
            ["issue"], ["sends.issue"], name="fk_send_shares_issue_sends", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_send_shares_issue_state", "send_shares", ["issue", "state"])


def downgrade() -> None:
    op.drop_index("ix_send_shares_issue_state", table_name="send_shares")
    op.drop_table("send_shares")
