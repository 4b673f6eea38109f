"""Fixtures for the sending tests; the helpers they use are in tests/helpers/sending.py.

``newsletter``, ``issue``, ``store`` and ``sqlite_store`` come from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.project import BASE_URL
from helpers.sending import SECRET, SG_KEY, Sending
from pydantic import SecretStr

from mailer.config import Newsletter, Settings
from mailer.issues.model import Issue
from mailer.store import SubscriberStore


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
