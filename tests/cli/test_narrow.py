"""Tables at 80 columns and piped (not a TTY): long values shortened, names never cut mid-word."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers.project import ROOT, SAMPLE_ISSUE
from typer.testing import CliRunner, Result

from mailer.cli import app

WIDTH = 80
MEMBERS = ROOT / "subscribers" / "members.csv"


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample members in a store of the test's own; the terminal is 80 columns, piped."""
    monkeypatch.setenv("MAILER_CONFIG_PATH", str(ROOT / "mailer.toml"))
    monkeypatch.setenv("MAILER_DATABASE_URL", f"sqlite:///{tmp_path / 'mailer.db'}")
    monkeypatch.setenv("MAILER_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("MAILER_BASE_URL", "https://news.example.org")
    assert 0 == mailer("subscribers", "import", str(MEMBERS)).exit_code


def mailer(*args: str) -> Result:
    return CliRunner().invoke(
        app, list(args), env={"COLUMNS": str(WIDTH), "TERM": "dumb"}, terminal_width=WIDTH
    )


def first_cells(table: str) -> list[str]:
    """The first column's text of each line of a table's body."""
    cells = []
    for line in table.splitlines():
        if line.startswith("│"):
            cells.append(line.split("│")[1].strip())
    return cells


def variant_names(cells: list[str]) -> list[str]:
    """Stacked names put back together: "youth+" over "wales" is "youth+wales"."""
    names, current = [], ""
    for cell in cells:
        if not cell:
            continue
        current += cell
        if not cell.endswith("+"):
            names.append(current)
            current = ""
    return names


def fits(output: str) -> None:
    assert all(len(line) <= WIDTH for line in output.splitlines()), output


def test_preview_names_every_variant_whole_and_subjects_on_one_line(tmp_path: Path) -> None:
    result = mailer("preview", str(SAMPLE_ISSUE), "--out", str(tmp_path / "preview"))
    assert 0 == result.exit_code, result.output
    table = result.stdout.split("Variants", 1)[1]
    fits(table)
    written = {path.stem for path in (tmp_path / "preview").glob("*.html")} - {"index"}
    names = variant_names(first_cells(table))
    assert written == set(names)  # whole, none cut: "intergene…" would not match a file
    parts = sum(name.count("+") + 1 for name in names)
    assert parts == len([c for c in first_cells(table) if c])  # a subject adds no lines
    assert "│ Winter connect" in table and "…" in table  # shortened, not wrapped


def test_the_dry_run_lists_one_address_a_line_shortened() -> None:
    result = mailer("send", str(SAMPLE_ISSUE), "--dry-run")
    assert 0 == result.exit_code, result.output
    fits(result.stdout)
    names = variant_names(first_cells(result.stdout))
    assert "intergenerational+in-person" in names and "Total" in names
    rows = [line for line in result.stdout.splitlines() if "@" in line]
    assert all(re.search(r"│ \S+ *│$", row) for row in rows)  # one address (or its start) each


def test_the_schedule_shortens_a_long_file_name_instead_of_folding_it(tmp_path: Path) -> None:
    result = mailer("schedule", "--count", "3")
    assert 0 == result.exit_code, result.output
    fits(result.stdout)
    for line in result.stdout.splitlines():
        cells = line.split("│")
        if len(cells) > 2 and cells[2].strip().startswith("issues/"):
            path = cells[2].strip()
            assert path.endswith(".yaml") or path.endswith("…"), path
        elif len(cells) > 2:
            assert not re.fullmatch(r"[\w.-]+\.yaml", cells[2].strip())  # no folded tail


def test_the_member_list_keeps_addresses_whole() -> None:
    result = mailer("subscribers", "list", "--segment", "northern-ireland")
    assert 0 == result.exit_code, result.output
    fits(result.stdout)
    assert "siobhan.kelly@belfast-youth-forum.example.org" in result.stdout


def test_bounces_fetch_shortens_addresses_and_subjects(tmp_path: Path) -> None:
    """A DSN and an auto-reply read from a Maildir: one line each for sender and subject."""
    from helpers.bounces import SECRET, dsn, envelope, signer
    from helpers.members import add_members

    from mailer.store import open_store

    box = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    url = f"sqlite:///{tmp_path / 'bounces.db'}"
    with open_store(url) as store:
        ann, _ = add_members(store, 2)
    bounces = "bounces@news.example.org"
    to = envelope(signer(bounces, SECRET), ann.id, ann.email)
    (box / "new" / "1.host").write_bytes(dsn(to, ann.email, message_id="1@mx"))
    corpus = ROOT / "tests" / "events" / "bounces" / "corpus" / "auto-reply-outlook.eml"
    (box / "new" / "2.host").write_bytes(corpus.read_bytes())
    env = {
        "MAILER_DATABASE_URL": url,
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_BOUNCE_ADDRESS": bounces,
        "MAILER_BOUNCE_MAILBOX": f"maildir://{box}",
        "COLUMNS": str(WIDTH),
    }
    result = CliRunner(env=env).invoke(app, ["bounces", "fetch"], terminal_width=WIDTH)
    assert 0 == result.exit_code, result.output
    fits(result.stdout)
    table = result.stdout.split("─" * 10, 1)[1].split("\nmaildir:", 1)[0]
    senders = [line[:16].strip() for line in table.splitlines()[1:]]
    assert 2 == len([sender for sender in senders if sender])  # one line each, never folded
    assert "│" not in table and "Mail Deliv…" in table  # shortened, not folded
