"""Database fixtures for any test that needs a real store: a pytest plugin, registered by
tests/conftest.py as ``helpers.databases``.

Available to the whole suite:

* ``database_url``: parametrised over SQLite (a file in tmp_path) and PostgreSQL
  (a fresh schema on the server at 127.0.0.1:5432, database ``test``, or
  MAILER_TEST_POSTGRES_URL), dropped after the test. An unreachable server fails
  the tests; it never skips them.
* ``postgres_server``, ``postgres_schema_url``: the pieces, for tests that want
  one database only.

And for fixtures of other scopes or parameters: ``BACKENDS`` (the two, PostgreSQL
marked ``postgres``), :func:`backend_url` and :func:`postgres_schema`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

# Read when the module is imported, before clean_environ empties MAILER_* for each test.
POSTGRES_URL = os.environ.get(
    "MAILER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def libpq_url(url: str) -> str:
    """The URL as psycopg itself takes it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL URL, once it is known to answer."""
    try:
        with psycopg.connect(libpq_url(POSTGRES_URL), connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL is not answering at {POSTGRES_URL} ({error}). These tests need it: "
            "run scripts/services (or .ci/run), or set MAILER_TEST_POSTGRES_URL.",
            pytrace=False,
        )
    return POSTGRES_URL


@contextmanager
def postgres_schema(server: str) -> Iterator[str]:
    """A URL whose search_path is a fresh, empty schema on ``server``, dropped after."""
    schema = f"mailer_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(server), autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_url(server), autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def backend_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on ``backend``: a SQLite file in a folder that does not exist yet,
    or a PostgreSQL schema (``postgres_schema_url``, dropped after the test)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'subscribers' / 'mailer.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def postgres_schema_url(postgres_server: str) -> Iterator[str]:
    """A URL whose search_path is a fresh, empty schema, dropped after the test."""
    with postgres_schema(postgres_server) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file in a folder that does not exist yet, or a PostgreSQL schema."""
    return backend_url(request.param, request, tmp_path)
