"""Fixtures for the scheduler's tests; the helpers they use are in
tests/helpers/scheduling.py.

* ``project``: a project folder of the test's own (mailer.toml with the sample
  [schedule]: every other Thursday 09:00 Europe/London from 2026-12-03; an empty
  issues/ folder).
* ``database``: SQLite, or, in tests marked ``@both_databases``, SQLite and PostgreSQL
  (a fresh schema each): only where the database's behaviour is what is tested
  (claims, the migration, exactly-once), to keep the suite fast.
* ``project_newsletter``: that project's mailer.toml, loaded (``newsletter`` is the
  repository's).
* ``settings``: the outbox in tmp_path, on ``database``.
* ``store``, ``runner(...)``: an open store, and a :class:`Runner` on it (a
  second call is a second scheduler process, with its own owner id). ``store``
  here stands in for the suite's (tests/conftest.py), which is always on both
  databases: it is on ``database``.
* Time is moved with time-machine's ``time_machine`` fixture (``move_to``): the
  runner reads the clock like the real service does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.databases import backend_url
from helpers.project import BASE_URL
from helpers.scheduling import SECRET, Project
from pydantic import SecretStr

from mailer.config import Newsletter, Settings, load_newsletter
from mailer.scheduling.runner import Runner
from mailer.store import SubscriberStore, open_store


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite, unless a test asks for both (``@both_databases``)."""
    return backend_url(getattr(request, "param", "sqlite"), request, tmp_path)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.make(tmp_path / "project")


@pytest.fixture
def project_newsletter(project: Project) -> Newsletter:
    """The test's project's mailer.toml (not the repository's: its [schedule] is the sample's)."""
    return load_newsletter(project.config)


@pytest.fixture
def settings(tmp_path: Path, database: str, project: Project) -> Settings:
    return Settings(
        config_path=project.config,
        database_url=database,
        outbox_dir=tmp_path / "outbox",
        base_url=BASE_URL,
        secret_key=SecretStr(SECRET),
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[SubscriberStore]:
    """An empty store on ``database``: SQLite, or both where a test is ``@both_databases``."""
    with open_store(settings.database_url) as opened:
        yield opened


@pytest.fixture
def runner(settings: Settings, project: Project, store: SubscriberStore) -> Callable[..., Runner]:
    """A scheduler on the store; mailer.toml is read afresh, as a restarted process would."""

    def make(**options: Any) -> Runner:
        return Runner(settings, load_newsletter(project.config), store, **options)

    return make
