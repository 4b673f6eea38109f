"""Fixtures shared by the whole suite. Feature-specific fixtures live beside their tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.project import ROOT
from hypothesis import HealthCheck, settings

# Real databases (SQLite, and a PostgreSQL schema per test): database_url, ...; headless
# Chromium: browser; real servers standing in for SendGrid and an SMTP relay:
# sendgrid_double, smtp_server, ...
pytest_plugins = ["helpers.databases", "helpers.browser", "doubles.fixtures"]

# Property tests judge correctness, not speed (benchmarks do that): no per-example
# deadline, which a loaded 2-core machine would turn into flaky failures. CI runs
# the same examples every time, so a red build is always reproducible.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


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
