"""The promise a move from Mailchimp rests on: nobody who left there is mailed from here."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.outbox import recipients
from helpers.project import ROOT, SAMPLE_ISSUE
from typer.testing import CliRunner, Result

from mailer.cli import app

EXPORT = ROOT / "tests" / "data" / "mailchimp-audience-export.zip"
ISSUE = "2026-12-03-winter-connections"
SUBSCRIBED = {
    "gwen.parry@llandudno-cafe.example.org",
    "tomasz@leeds-lunch-club.example.org",
    "aisha@glasgow-befrienders.example.net",
    "morag@inverness-shed.example.org",
}
LEFT = {
    "rhys@swansea-youth.example.org",  # the unsubscribed file
    "priya@bradford-carers.example.org",  # the unsubscribed file
    "chidi@old-youth-trust.example.net",  # the cleaned file
}


def mailer(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert 0 == result.exit_code, result.output + result.stderr
    return result


@pytest.fixture(autouse=True)
def environment(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's mailer.toml, a store on SQLite or PostgreSQL, and an outbox in tmp_path."""
    monkeypatch.setenv("MAILER_CONFIG_PATH", str(ROOT / "mailer.toml"))
    monkeypatch.setenv("MAILER_DATABASE_URL", database_url)
    monkeypatch.setenv("MAILER_OUTBOX_DIR", str(tmp_path / "outbox"))


def test_after_a_mailchimp_import_nobody_who_left_gets_the_issue(tmp_path: Path) -> None:
    """Import the whole audience export, send the sample issue: only the subscribed get it."""
    mailer("subscribers", "import", str(EXPORT))
    mailer("send", str(SAMPLE_ISSUE), "--yes")
    sent = recipients(tmp_path / "outbox" / ISSUE)
    assert SUBSCRIBED == set(sent)
    assert set() == LEFT & set(sent)
    assert {1} == set(sent.values())


def test_an_old_spreadsheet_imported_after_the_export_brings_nobody_back(tmp_path: Path) -> None:
    """The people who left on Mailchimp, listed as active in an older spreadsheet, stay out."""
    mailer("subscribers", "import", str(EXPORT))
    old = tmp_path / "old-members.csv"
    old.write_text(
        "email,name,status\n" + "".join(f"{address},Someone,active\n" for address in sorted(LEFT)),
        encoding="utf-8",
    )
    mailer("subscribers", "import", str(old))
    mailer("send", str(SAMPLE_ISSUE), "--yes")
    assert SUBSCRIBED == set(recipients(tmp_path / "outbox" / ISSUE))
