"""`mailer bounces fetch` as people and scripts use it: a table, JSON, a dry run, plain errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.bounces import SECRET, dsn, envelope, signer
from helpers.members import add_members
from helpers.project import ROOT
from typer.testing import CliRunner, Result

from mailer.cli import app
from mailer.store import SubscriberStatus, open_store

BOUNCES = "bounces@news.example.org"
CORPUS = Path(__file__).resolve().parent / "corpus"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A store with two members, and a Maildir with a DSN for the first and an auto-reply."""
    url = f"sqlite:///{tmp_path / 'mailer.db'}"
    box = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    with open_store(url) as store:
        ann, _ = add_members(store, 2)
    to = envelope(signer(BOUNCES, SECRET), ann.id, ann.email)
    (box / "new" / "1.host").write_bytes(dsn(to, ann.email, message_id="1@mx"))
    (box / "new" / "2.host").write_bytes((CORPUS / "auto-reply-outlook.eml").read_bytes())
    return {
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
        "MAILER_DATABASE_URL": url,
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_BOUNCE_ADDRESS": BOUNCES,
        "MAILER_BOUNCE_MAILBOX": f"maildir://{box}",
        "COLUMNS": "200",
    }


def mailer(env: dict[str, str], *argv: str) -> Result:
    return CliRunner(env=env).invoke(app, list(argv))


def status(env: dict[str, str]) -> SubscriberStatus:
    with open_store(env["MAILER_DATABASE_URL"]) as store:
        return store.get("member000@example.org").status


class TestTheCommand:
    def test_it_lists_each_new_message_and_what_it_did(self, env: dict[str, str]) -> None:
        """A row per new message (what it is, whose, its effect), then the totals."""
        result = mailer(env, "bounces", "fetch")

        assert 0 == result.exit_code, result.output
        assert "hard bounce" in result.output and "left alone: an automatic reply" in result.output
        assert (
            "2 message(s), 2 new (1 hard bounce, 1 left alone); 0 processed before."
            in result.output
        )
        assert "Members changed: 1 bounced." in result.output

    def test_json_for_scripts(self, env: dict[str, str]) -> None:
        """--json: the counts and every message, for scripts."""
        fetched = json.loads(mailer(env, "bounces", "fetch", "--json").stdout)

        assert ({"bounced": 1}, ["bounce", "other"]) == (
            fetched["status_changes"],
            [m["outcome"] for m in fetched["messages"]],
        )

    def test_a_dry_run_changes_nothing(self, env: dict[str, str]) -> None:
        """--dry-run says what would change, and the member, log and mailbox stay as they were."""
        dry = mailer(env, "bounces", "fetch", "--dry-run")

        assert "Members would be changed: 1 bounced." in dry.output
        assert "Dry run: nothing was changed." in dry.output
        assert SubscriberStatus.active == status(env)
        assert 2 == json.loads(mailer(env, "bounces", "fetch", "--json").stdout)["new"]

    def test_no_mailbox_is_a_plain_error(self, env: dict[str, str]) -> None:
        """Without MAILER_BOUNCE_MAILBOX: a sentence saying what to set, exit status 2."""
        result = mailer({**env, "MAILER_BOUNCE_MAILBOX": ""}, "bounces", "fetch")

        assert 2 == result.exit_code
        assert "MAILER_BOUNCE_MAILBOX is not set" in result.output
