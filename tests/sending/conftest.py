"""Fixtures for the sending tests; the helpers they use are in tests/helpers/sending.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.project import BASE_URL, ROOT, SAMPLE_ISSUE
from helpers.sending import SECRET, SG_KEY, Sending
from pydantic import SecretStr

from mailer.config import Newsletter, Settings, load_newsletter
from mailer.issues.check import load_issue
from mailer.issues.model import Issue
from mailer.store import SubscriberStore, open_store


@pytest.fixture(scope="session")
def newsletter() -> Newsletter:
    return load_newsletter(ROOT / "mailer.toml")


@pytest.fixture(scope="session")
def issue(newsletter: Newsletter) -> Issue:
    loaded = load_issue(SAMPLE_ISSUE, newsletter)
    assert "ready" == loaded.status
    return loaded


@pytest.fixture
def store(database_url: str) -> Iterator[SubscriberStore]:
    """An empty store, on SQLite and on PostgreSQL."""
    with open_store(database_url) as opened:
        yield opened


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SubscriberStore]:
    """An empty store on SQLite only, for tests about transports rather than databases."""
    with open_store(f"sqlite:///{tmp_path / 'mailer.db'}") as opened:
        yield opened


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test: outbox in tmp_path, a real key, https links; overrides by field."""

    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path / 'mailer.db'}",
            "outbox_dir": tmp_path / "outbox",
            "base_url": BASE_URL,
            "secret_key": SecretStr(SECRET),
            "sendgrid_api_key": SecretStr(SG_KEY),
            "send_timeout": 5.0,
        }
        return Settings(**{**fields, **overrides})

    return make


@pytest.fixture
def sending(
    sqlite_store: SubscriberStore,
    issue: Issue,
    newsletter: Newsletter,
    make_settings: Callable[..., Settings],
) -> Sending:
    return Sending(sqlite_store, issue, newsletter, make_settings())
