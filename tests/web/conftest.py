"""The web app under a real uvicorn server, with a real store on SQLite and PostgreSQL.

* ``web``: the app on a fresh database, parametrised over SQLite and PostgreSQL,
  for every test whose rule touches the store.
* ``sqlite_web``: the same on SQLite only, for tests about HTTP rather than databases.
* ``make_web(**settings)``: another app (other settings, limits, clock) on SQLite.

Each has ``.url``, an httpx ``.client``, its own ``.store`` for looking at the
database, ``.tokens`` to make members' link tokens, and ``.signer`` to sign
webhook bodies with a key generated for the test session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.events import Signer
from helpers.serving import Served
from helpers.web import SECRET, LiveServer, Web
from pydantic import SecretStr

from mailer.config import Newsletter, Settings
from mailer.store import open_store
from mailer.web import create_app
from mailer.web.context import SignupLimits


@pytest.fixture(scope="session")
def webhook_signer() -> Signer:
    return Signer()


@pytest.fixture
def make_web(
    tmp_path: Path, newsletter: Newsletter, webhook_signer: Signer
) -> Iterator[Callable[..., Web]]:
    started: list[Web] = []

    def make(
        database_url: str | None = None,
        *,
        limits: SignupLimits | None = None,
        app_options: dict[str, Any] | None = None,
        server_options: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> Web:
        server = LiveServer.bind()
        outbox = tmp_path / f"outbox-{len(started)}"
        fields: dict[str, Any] = {
            "database_url": database_url or f"sqlite:///{tmp_path / f'web-{len(started)}.db'}",
            "outbox_dir": outbox,
            "base_url": server.url,
            "secret_key": SecretStr(SECRET),
            "sendgrid_webhook_public_key": webhook_signer.public_key,
        }
        settings = Settings(**{**fields, **overrides})
        app = create_app(settings, newsletter, limits=limits, **(app_options or {}))
        server.start(app, **(server_options or {}))
        client = httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)
        web = Web(
            url=server.url,
            client=client,
            store=open_store(settings.database_url),
            settings=settings,
            signer=webhook_signer,
            server=server,
            outbox=outbox,
            app=app,
        )
        started.append(web)
        return web

    yield make
    for web in started:
        web.client.close()
        web.server.stop()
        web.store.close()


@pytest.fixture
def web(database_url: str, make_web: Callable[..., Web]) -> Web:
    """The app on an empty database: SQLite, and PostgreSQL."""
    return make_web(database_url)


@pytest.fixture
def sqlite_web(make_web: Callable[..., Web]) -> Web:
    """The app on an empty SQLite database."""
    return make_web()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """``serve(*args, **env)``: `mailer serve` in a subprocess on a free port, stopped after."""
    started: list[Served] = []

    def start(*args: str, **env: str) -> Served:
        served = Served(tmp_path, *args, **env)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()
