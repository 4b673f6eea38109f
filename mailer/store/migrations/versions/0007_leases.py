"""Operations: where an outbox send's files are, and when a failed slot is tried again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

Written by hand to match mailer.store.ledger and mailer.store.slots;
tests/store/test_database.py checks that it does, on SQLite and PostgreSQL.

* ``sends.outbox_dir``: the folder an outbox send writes to, so that settling an
  interrupted send looks in that folder, not the settling process's own. Sends
  recorded before this revision have ``""``: settled from the current folder, as before.
* ``schedule_slots.retry_at``: when a slot whose send failed (SendGrid down, say) is
  tried again, within its lateness window; none when it is not to be.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sends", sa.Column("outbox_dir", sa.Text(), server_default="", nullable=False))
    op.add_column(
        "schedule_slots", sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("schedule_slots") as batch:
        batch.drop_column("retry_at")
    with op.batch_alter_table("sends") as batch:
        batch.drop_column("outbox_dir")
