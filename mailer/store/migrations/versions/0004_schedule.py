"""The scheduler's tables: slot claims, notices to the editors, heartbeats.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Written by hand to match mailer.store.slots; tests/scheduling/test_store.py
checks that it does, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SLOT_STATES = ("claimed", "interrupted", "sent", "incomplete", "failed", "no_issue", "missed")
NOTICE_KINDS = ("reminder", "no_issue", "missed", "failed")
NOTICE_STATES = ("sending", "sent", "failed")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _check(column: str, values: Sequence[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def upgrade() -> None:
    op.create_table(
        "schedule_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slot_at", _when(), nullable=False),
        sa.Column("issue", sa.String(100), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("claimed_at", _when(), nullable=False),
        sa.Column("heartbeat_at", _when(), nullable=False),
        sa.Column("finished_at", _when(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedule_slots"),
        sa.UniqueConstraint("slot_at", name="uq_schedule_slots_slot_at"),
        sa.CheckConstraint(_check("state", SLOT_STATES), name="ck_schedule_slots_state"),
    )
    op.create_table(
        "schedule_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slot_at", _when(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("sent_at", _when(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedule_notices"),
        sa.UniqueConstraint("slot_at", "kind", name="uq_schedule_notices_slot_at_kind"),
        sa.CheckConstraint(_check("kind", NOTICE_KINDS), name="ck_schedule_notices_kind"),
        sa.CheckConstraint(_check("state", NOTICE_STATES), name="ck_schedule_notices_state"),
    )
    op.create_table(
        "scheduler_heartbeats",
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("started_at", _when(), nullable=False),
        sa.Column("beat_at", _when(), nullable=False),
        sa.Column("next_slot_at", _when(), nullable=True),
        sa.Column("stopped_at", _when(), nullable=True),
        sa.PrimaryKeyConstraint("owner", name="pk_scheduler_heartbeats"),
    )


def downgrade() -> None:
    op.drop_table("scheduler_heartbeats")
    op.drop_table("schedule_notices")
    op.drop_table("schedule_slots")
