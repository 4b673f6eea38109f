"""Fixtures for the report tests; the story they read is built in tests/helpers/history.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers.databases import BACKENDS, postgres_schema
from helpers.history import History, build


@pytest.fixture(scope="session", params=BACKENDS)
def history(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[History]:
    """The known history, built once per run on SQLite and once on PostgreSQL.

    The tests only read it: building it (two sends, three batches of events)
    once instead of per test keeps them quick.
    """
    folder = tmp_path_factory.mktemp(f"history-{request.param}")
    if request.param == "sqlite":
        yield build(f"sqlite:///{folder / 'mailer.db'}", folder)
        return
    server: str = request.getfixturevalue("postgres_server")
    with postgres_schema(server) as url:
        yield build(url, folder)
