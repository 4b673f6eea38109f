"""What `mailer validate` refuses before preview or send would (issue 14): a subject on two lines,
an issue over the size budget, a file over MAX_FILE_BYTES (read in bounded memory)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mailer.cli import app
from mailer.issues.check import MAX_FILE_BYTES

WINTER = "issues/2026-12-03-winter-connections.yaml"


@pytest.fixture(autouse=True)
def project(tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the real mailer.toml, templates and sample issues."""
    shutil.copy(project_root / "mailer.toml", tmp_path / "mailer.toml")
    for folder in ("issues", "templates"):
        shutil.copytree(project_root / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILER_CONFIG_PATH", str(tmp_path / "mailer.toml"))
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["validate", *args])


def edit(old: str, new: str, path: str = WINTER) -> str:
    text = Path(path).read_text(encoding="utf-8")
    assert old in text
    Path(path).write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(prefix: str, path: str = WINTER) -> int:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return next(n for n, text in enumerate(lines, 1) if text.startswith(prefix))


class TestSubjectOnOneLine:
    @pytest.mark.parametrize(
        "subject",
        [
            "subject: |\n  Winter connections\n  and more",
            'subject: "Winter connections\\r\\nand more"',
        ],
    )
    def test_a_line_break_in_the_subject_is_refused_at_its_line(self, subject: str) -> None:
        """The editor's guide suggests `|` when in doubt; a quoted CR LF is the same break."""
        original = Path(WINTER).read_text(encoding="utf-8").splitlines()[line_of("subject:") - 1]
        edit(original, subject)
        result = run(WINTER)
        assert 1 == result.exit_code
        assert (
            f"{WINTER}:{line_of('subject:')}: 'subject' must be on one line: a line break would "
            "end the mail header"
        ) in result.output

    def test_send_refuses_it_too_and_leaves_nothing_behind(self, tmp_path: Path) -> None:
        """Before: send failed with a traceback and left a stopped send, shown in the archive."""
        original = Path(WINTER).read_text(encoding="utf-8").splitlines()[line_of("subject:") - 1]
        edit(original, "subject: |\n  Winter connections\n  and more")
        env = {"MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}", "MAILER_OUTBOX_DIR": "out"}
        result = CliRunner(env=env).invoke(app, ["send", WINTER, "--yes"])
        assert 1 == result.exit_code, result.output
        assert f"{WINTER}:{line_of('subject:')}: 'subject' must be on one line" in result.output
        assert 0 == _sends(tmp_path / "m.db")


def _sends(path: Path) -> int:
    """Send rows in the store (none when send never opened it)."""
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        return db.execute("SELECT count(*) FROM sends").fetchone()[0] if "sends" in tables else 0


class TestSizeBudget:
    def test_validate_applies_the_budget_preview_and_send_apply(self) -> None:
        """Before: a 3,000-line body was 'ok (ready)' in validate, then refused by preview."""
        filler = "".join(
            f"      Paragraph {n}: words to make the email large.\n\n" for n in range(3000)
        )
        text = Path(WINTER).read_text(encoding="utf-8")
        at = text.index("body: |", text.index("sections:"))
        at = text.index("\n", at) + 1
        Path(WINTER).write_text(text[:at] + filler + text[at:], encoding="utf-8")
        result = run(WINTER, "--json")
        assert 1 == result.exit_code
        [checked] = json.loads(result.output)["files"]
        messages = [(e["line"], e["message"]) for e in checked["errors"]]
        assert messages and all(line == line_of("sections:") for line, _ in messages)
        assert all("KB of HTML, over the 100 KB limit" in message for _, message in messages)
        assert "variant 'general'" in messages[0][1]
        assert not checked["ok"]

    def test_an_issue_within_the_budget_passes(self) -> None:
        assert 0 == run(WINTER).exit_code


class TestFileSize:
    def test_a_file_over_the_limit_is_refused_at_once(self) -> None:
        Path("issues/2026-12-05-huge.yaml").write_bytes(b"subject: x\n# " + b"y" * MAX_FILE_BYTES)
        result = run("issues/2026-12-05-huge.yaml")
        assert 1 == result.exit_code
        assert "issues/2026-12-05-huge.yaml:1: the file is over 1 MB" in result.output

    def test_a_huge_file_costs_bounded_time_and_memory(self, project: Path) -> None:
        """Before: 53 MB took 64 s and 362 MB to validate."""
        huge = project / "issues" / "2026-12-05-huge.yaml"
        with huge.open("wb") as out:
            out.write(b"subject: x\nsections:\n")
            for _ in range(60):
                out.write(b"  - title: " + b"y" * (1 << 20) + b"\n")
        script = (
            "import sys\n"
            "from pathlib import Path\n"
            "from mailer.config import load_newsletter\n"
            "from mailer.issues.check import check_issue\n"
            "check = check_issue(sys.argv[1], load_newsletter(Path('mailer.toml')))\n"
            "print(check.errors[0].message)\n"
            # VmHWM: this process's peak (ru_maxrss would keep the forking parent's across exec).
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", script, str(huge)], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        assert out[0].startswith("the file is over 1 MB")
        assert int(out[1]) / 1024 < 150, f"peak {int(out[1]) / 1024:.0f} MiB"
