"""Fixtures for the report tests; the story they read is built in reporttools.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from databases import BACKENDS, libpq_url
from reporttools import History, build
from sqlalchemy import make_url


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
    schema = f"mailer_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(server), autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
        yield build(url.render_as_string(hide_password=False), folder)
    finally:
        with psycopg.connect(libpq_url(server), autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
