"""Members' link versions: revoking a member's links makes every link sent before stop working.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

Written by hand to match mailer.store.schema. ``link_version`` is part of the
opaque reference every link token carries (mailer.tokens); links made before this
revision read as version 0, so they keep working until the member's links are
revoked (``mailer subscribers revoke-links``), which moves the member to version 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "subscribers",
        sa.Column("link_version", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("link_version")
