"""The send ledger: an index by member that names the issue, and room on its pages for each row's second version.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

Written by hand to match mailer.store.ledger (``DeliveryRow``'s indexes and table
options); tests/store/test_database.py checks that it does.

``ix_deliveries_subscriber_id_issue`` (subscriber_id, issue) takes the place of
``ix_deliveries_subscriber_id`` (subscriber_id): it serves the same lookups by member
(a forgotten member's rows go with them, ON DELETE CASCADE). The audience reads each
page's ledger rows with ``issue = ? AND subscriber_id BETWEEN ? AND ?``; with the
member-only index PostgreSQL chose it or the unique index on (issue, subscriber_id)
by the sample its last ANALYZE drew (4 times in 6 with two issues sent), and through
it read every issue's rows of the page, from the table, to keep one issue's: per
page, work in proportion to the issues ever sent. With the issue in this index too,
it can cost no less than the unique one, and when chosen it reads the other issues'
entries from the index alone (tests/audience/test_query_plans.py). Building it
reads the ledger once, holding off sends meanwhile: 2 s for 558,000 rows on a
2-core machine with a load average of 9 (a year of fortnightly issues to a million
members is 26 million rows: a minute or two).

Every ``deliveries`` row is written twice: inserted ``in_flight`` by the claim, then
updated by the record (``sent``, with SendGrid's message id). PostgreSQL writes an
update as a new version of the row; when it fits on the same page and no indexed
column changed (the record changes none), it is a heap-only (HOT) update and none
of the table's three indexes is touched. With pages filled to the brim it rarely
fits: the record wrote three index entries per row and left them for VACUUM.
Pages filled to 45 % leave room for every row's second version, the message id
included (tests/store/test_ledger_plans.py checks it): the record of a batch of
1,000 took 7 ms of the server's CPU instead of 18 (see docs/scale.md). The table
is not larger for it once its rows are recorded: the old versions took that room
before, until VACUUM. SQLite updates rows in place; nothing changes there.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_deliveries_subscriber_id_issue", "deliveries", ["subscriber_id", "issue"])
    op.drop_index("ix_deliveries_subscriber_id", table_name="deliveries")
    if op.get_bind().dialect.name == "postgresql":
        # New pages only: rows already there stay where they are, as they are.
        op.execute("ALTER TABLE deliveries SET (fillfactor = 45)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deliveries RESET (fillfactor)")
    op.create_index("ix_deliveries_subscriber_id", "deliveries", ["subscriber_id"])
    op.drop_index("ix_deliveries_subscriber_id_issue", table_name="deliveries")
