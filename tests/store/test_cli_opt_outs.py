"""`mailer subscribers show` lists the segments a member opted out of, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers.project import ROOT
from typer.testing import CliRunner, Result

from mailer.cli import app
from mailer.store import open_store
from mailer.store.preferences import set_opted_out

SAMPLE = ROOT / "subscribers" / "members.csv"
ADDRESS = "aled.pritchard@bridgend-youth-connect.example.org"


@pytest.fixture(autouse=True)
def environment(
    database_url: str, project_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILER_DATABASE_URL", database_url)
    monkeypatch.setenv("MAILER_CONFIG_PATH", str(project_root / "mailer.toml"))
    monkeypatch.chdir(tmp_path)
    assert 0 == ok("import", str(SAMPLE)).exit_code


def ok(*args: str) -> Result:
    result = CliRunner().invoke(app, ["subscribers", *args])
    assert 0 == result.exit_code, result.output + result.stderr
    return result


def test_show_lists_the_segments_a_member_opted_out_of(database_url: str) -> None:
    """Unticked in the preference centre: `show` says so, in the table and the JSON."""
    with open_store(database_url) as store:
        member = store.find(ADDRESS)
        assert member is not None
        set_opted_out(store.engine, member.id, ["wales", "youth"], source="test")
    assert re.search(r"opted out\s+wales, youth *\n", ok("show", ADDRESS).stdout)
    assert ["wales", "youth"] == json.loads(ok("show", ADDRESS, "--json").stdout)["opted_out"]


def test_none_when_there_are_none() -> None:
    assert re.search(r"opted out\s+none *\n", ok("show", ADDRESS).stdout)
    assert [] == json.loads(ok("show", ADDRESS, "--json").stdout)["opted_out"]
