"""The subscriber store on both databases it supports.

``database_url`` comes from tests/databases.py (registered for the whole suite):
parametrised over SQLite (a file in the test's tmp_path) and PostgreSQL (a schema
of its own per test on 127.0.0.1:5432, dropped after, so the suite can run twice
in a row, or twice at once). An unreachable server fails the tests: it never skips them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailer.store import SubscriberStore, open_store


@pytest.fixture
def store(database_url: str) -> Iterator[SubscriberStore]:
    """A migrated, empty subscriber store."""
    with open_store(database_url) as opened:
        yield opened
