"""Fixtures shared by the whole suite; a folder's conftest.py adds what only its tests use.

* ``project_root``: the project folder (``helpers.project.ROOT``).
* ``newsletter``: the project's mailer.toml, loaded once for the run.
* ``issue``: the sample issue (issues/2026-12-03-winter-connections.yaml), ready.
* ``store``: a migrated, empty store on SQLite and on PostgreSQL (over ``database_url``).
* ``sqlite_store``: the same on SQLite only, for tests about anything but the database.
* ``in_tmp``: the test's tmp_path as the working folder (``pytest.mark.usefixtures``).
* ``seed``: a random seed for the kill -9 tests, printed (``MAILER_CRASH_SEED`` replays one).

Registered as plugins: ``database_url`` and the PostgreSQL pieces (helpers/databases.py),
``browser`` (helpers/browser.py), the doubles' fixtures (doubles/fixtures.py), the real
mail servers' ``mail_servers`` and ``bounce_mailbox`` (servers/fixtures.py). Plain
helpers to import are in tests/helpers/ (its __init__ lists them).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.nodeid import coerce_node_id
from helpers.project import ROOT, SAMPLE_ISSUE
from hypothesis import HealthCheck, settings

from mailer.config import Newsletter, load_newsletter
from mailer.issues.check import load_issue
from mailer.issues.model import Issue
from mailer.store import SubscriberStore, open_store

# Real databases (SQLite, and a PostgreSQL schema per test): database_url, ...; headless
# Chromium: browser; real servers standing in for SendGrid and an SMTP relay:
# sendgrid_double, smtp_server, ...
pytest_plugins = ["helpers.databases", "helpers.browser", "doubles.fixtures", "servers.fixtures"]

# Property tests judge correctness, not speed (benchmarks do that): no per-example
# deadline, which a loaded 2-core machine would turn into flaky failures. CI runs
# the same examples every time, so a red build is always reproducible.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# The terminal pytest was started from is no test's business: rich's consoles (the
# module-level ones in mailer.cli.common) take their width from COLUMNS once, when
# created, and pytest-xdist starts its workers with COLUMNS=80 and LINES=24 set, which
# wrapped the tables the tests read (the CLI tests set COLUMNS themselves when they care).
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)

# The suite runs on several pytest-xdist workers (pyproject.toml's addopts, --dist
# loadgroup). Tests in one group run on one worker, one after another: the tests on the
# real Postfix and Dovecot, so that ``mail_servers`` starts once for the run.
XDIST_GROUPS = {"mail_servers": "mail-servers"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    in_a_worker_by_group = bool(getattr(config.option, "loadgroup", False))
    for item in items:
        for fixture, group in XDIST_GROUPS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(group))
                if in_a_worker_by_group and hasattr(item, "_id") and "@" not in item.nodeid:
                    # pytest-xdist 3.8 schedules by the group it appends to the node id, as
                    # item._nodeid, which pytest 9.2 no longer reads (it keeps item._id):
                    # without this the group's tests went to every worker.
                    item._id = coerce_node_id(f"{item.nodeid}@{group}")
                break


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts without MAILER_* or SendGrid settings from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("MAILER_") or name.startswith("SENDGRID_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def newsletter() -> Newsletter:
    """The project's mailer.toml (the tests only read it)."""
    return load_newsletter(ROOT / "mailer.toml")


@pytest.fixture(scope="session")
def issue(newsletter: Newsletter) -> Issue:
    """The sample issue, as `mailer send` loads it: ready, sections for youth and wales."""
    loaded = load_issue(SAMPLE_ISSUE, newsletter)
    assert "ready" == loaded.status
    return loaded


@pytest.fixture
def store(database_url: str) -> Iterator[SubscriberStore]:
    """A migrated, empty subscriber store, on SQLite and on PostgreSQL.

    ``database_url`` is parametrised over SQLite (a file in the test's tmp_path) and
    PostgreSQL (a schema of its own per test on 127.0.0.1:5432, dropped after, so the
    suite can run twice in a row, or twice at once). An unreachable server fails the
    tests: it never skips them.
    """
    with open_store(database_url) as opened:
        yield opened


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SubscriberStore]:
    """An empty store on SQLite only, for tests about transports or queries rather than databases."""
    with open_store(f"sqlite:///{tmp_path / 'mailer.db'}") as opened:
        yield opened


@pytest.fixture
def seed() -> int:
    """A random seed for the kill -9 tests, printed so that a failure can be replayed."""
    value = int(os.environ.get("MAILER_CRASH_SEED", random.randrange(1_000_000)))
    print(f"crash test seed: {value} (replay with MAILER_CRASH_SEED={value})")
    return value


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test works in its own folder, so that paths read as an editor would type them."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
