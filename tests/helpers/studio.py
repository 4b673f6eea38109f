"""The studio's tests: a copy of the project (with the sample list imported) and the studio
serving it under a real uvicorn, as `mailer preview --serve` runs it."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from typer.testing import CliRunner

from helpers.web import LiveServer
from mailer.cli import app as cli
from mailer.config import Settings
from mailer.store import SubscriberStore, open_store
from mailer.studio import Workspace, create_studio

WINTER = "2026-12-03-winter-connections"
CHRISTMAS = "2026-12-17-nobody-alone-this-christmas"
EDITOR = "editor@connected-communities.example.org"


def import_sample_list(folder: Path, database_url: str) -> None:
    """The sample members on the list, as `mailer subscribers import` puts them there."""
    result = CliRunner().invoke(
        cli,
        ["subscribers", "import", str(folder / "subscribers" / "members.csv")],
        env={
            "MAILER_CONFIG_PATH": str(folder / "mailer.toml"),
            "MAILER_DATABASE_URL": database_url,
        },
    )
    assert 0 == result.exit_code, result.output


@dataclass
class Studio:
    """A running studio, its project folder and what a test needs to talk to it."""

    url: str
    folder: Path
    settings: Settings
    store: SubscriberStore
    server: LiveServer
    client: httpx.Client
    workspace: Workspace

    @property
    def outbox(self) -> Path:
        return self.settings.outbox_dir

    def issue(self, slug: str = WINTER) -> Path:
        return self.folder / "issues" / f"{slug}.yaml"

    def edit(self, path: Path, old: str, new: str) -> None:
        """Change a file on disk as an editor's save would (old must be in it once)."""
        text = path.read_text(encoding="utf-8")
        assert 1 == text.count(old), f"{old!r} is not in {path.name} exactly once"
        path.write_text(text.replace(old, new), encoding="utf-8")

    def token(self) -> str:
        """The page's token, as its script reads it from the page."""
        page = self.client.get(f"/issues/{WINTER}").text
        found = re.search(r'name="studio-token" content="([^"]+)"', page)
        assert found
        return found[1]

    def stop(self) -> None:
        self.client.close()
        self.server.stop()
        self.store.close()


# SpamAssassin takes seconds of CPU a message: only the tests about the spam score use it.
NO_SPAMASSASSIN = "spamassassin-left-out-of-this-test"


def start_studio(
    folder: Path, *, spamassassin: str = NO_SPAMASSASSIN, **settings: object
) -> Studio:
    """The studio on a project folder, on a free port of 127.0.0.1, with its outbox beside it."""
    database_url = f"sqlite:///{folder / 'subscribers' / 'mailer.db'}"
    fields: dict[str, object] = {
        "config_path": folder / "mailer.toml",
        "database_url": database_url,
        "outbox_dir": folder / "outbox",
        "base_url": "https://news.example.org",
        **settings,
    }
    configured = Settings(**fields)  # type: ignore[arg-type]
    store = open_store(configured.database_url)
    workspace = Workspace(configured, store)
    server = LiveServer.bind()
    app = create_studio(workspace, host="127.0.0.1", port=server.port, spamassassin=spamassassin)
    server.start(app, timeout_graceful_shutdown=1)
    client = httpx.Client(base_url=server.url, timeout=30)
    return Studio(server.url, folder, configured, store, server, client, workspace)


def wait_for(condition: object, timeout: float = 10.0) -> float:
    """Seconds until ``condition()`` is true; fails after ``timeout``."""
    start = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true after {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start
