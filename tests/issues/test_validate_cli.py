"""`mailer validate`: each problem as PATH:LINE: message, an ok line per good file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mailer.cli import app

GOOD = """\
subject: Winter connections
preheader: Warm spaces and a new youth toolkit
date: 2026-12-03
status: ready
intro: Hello {{ first_name | there }},
sections:
  - title: Put your warm space on the map
    body: Add your opening times by 18 December.
  - title: Carols across the generations
    audience: [intergenerational]
    body: Our guide to a joint carol session.
"""
BAD = GOOD.replace("status: ready", "status: sent").replace("    audience:", "    audeince:")
WINTER = "2026-12-03-winter-connections.yaml"
CHRISTMAS = "2026-12-17-nobody-alone-this-christmas.yaml"


@pytest.fixture(autouse=True)
def project(tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder, the working directory, with the real mailer.toml and sample issues."""
    shutil.copy(project_root / "mailer.toml", tmp_path / "mailer.toml")
    shutil.copytree(project_root / "issues", tmp_path / "issues")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["validate", *args])


def write(name: str, content: str) -> str:
    Path(name).parent.mkdir(parents=True, exist_ok=True)
    Path(name).write_text(content, encoding="utf-8")
    return name


class TestValidate:
    def test_good_files_pass(self) -> None:
        """Files without problems get an ok line each and exit status 0."""
        result = run(f"issues/{WINTER}", f"issues/{CHRISTMAS}")

        assert 0 == result.exit_code
        assert [
            f"issues/{WINTER}: ok (ready, 3 December 2026, 10 sections): Winter connections: "
            "warm spaces, Christmas support and your January invitation",
            f"issues/{CHRISTMAS}: ok (draft, 17 December 2026, 8 sections): Nobody alone this "
            "Christmas: who is open, who to call, and a thank you",
            "2 files checked, 0 problems",
        ] == result.stdout.splitlines()

    def test_problems_are_printed_as_path_line_message(self) -> None:
        """Each problem is one PATH:LINE: message line on stdout, and the exit status is 1."""
        write("drafts/2026-12-03-bad.yaml", BAD)

        result = run("drafts/2026-12-03-bad.yaml")

        assert 1 == result.exit_code
        assert [
            "drafts/2026-12-03-bad.yaml:4: 'sent' is not a choice for 'status': use 'draft' or "
            "'ready'",
            "drafts/2026-12-03-bad.yaml:10: 'audeince' is not a field of section 2; did you "
            "mean 'audience'?",
            "1 file checked, 2 problems",
        ] == result.stdout.splitlines()

    def test_good_and_bad_files_together(self) -> None:
        """Every file is checked even when an earlier one has problems."""
        write("2026-12-03-bad.yaml", BAD)
        write("2026-12-03-good.yaml", GOOD)

        result = run("2026-12-03-bad.yaml", "2026-12-03-good.yaml")

        assert 1 == result.exit_code
        assert "2026-12-03-good.yaml: ok (ready, 3 December 2026, 2 sections): Winter " in (
            result.stdout
        )
        assert "1 file checked" not in result.stdout
        assert result.stdout.endswith("2 files checked, 2 problems\n")

    def test_a_folder_means_its_yaml_files(self) -> None:
        """A folder argument checks every *.yaml file in it, in name order, and nothing else."""
        write("issues/notes.txt", "not an issue")
        write("issues/.#2026-12-03-winter-connections.yaml", "an editor's lock file")

        result = run("issues")

        assert 0 == result.exit_code
        assert [f"issues/{WINTER}", f"issues/{CHRISTMAS}"] == [
            line.split(": ok ")[0] for line in result.stdout.splitlines()[:-1]
        ]

    def test_a_file_named_twice_is_checked_once(self) -> None:
        """A file given both by name and through its folder is checked once."""
        result = run(f"issues/{WINTER}", "issues")

        assert result.stdout.endswith("2 files checked, 0 problems\n")

    def test_an_empty_folder_fails(self) -> None:
        """A folder without issue files is said on stderr and fails the check."""
        Path("empty").mkdir()

        result = run("empty")

        assert (1, "empty: no issue files (*.yaml) in this folder\n") == (
            result.exit_code,
            result.stderr,
        )

    def test_a_missing_file_is_a_problem(self) -> None:
        """A file that does not exist is reported like any other problem."""
        result = run("issues/2026-12-31-typo.yaml")

        assert 1 == result.exit_code
        assert (
            "issues/2026-12-31-typo.yaml:1: no such file: check the name and the folder "
            "(issue files end in .yaml)\n"
        ) in result.stdout

    def test_warnings_are_shown_but_do_not_fail(self) -> None:
        """Warnings are printed as PATH:LINE: warning: message, and the exit status stays 0."""
        write("2026-12-17-early.yaml", GOOD)

        result = run("2026-12-17-early.yaml")

        assert 0 == result.exit_code
        assert [
            "2026-12-17-early.yaml:3: warning: the date is 2026-12-03 but the file name starts "
            "with 2026-12-17: make them agree",
            "2026-12-17-early.yaml: ok (ready, 3 December 2026, 2 sections): Winter connections",
            "1 file checked, 0 problems, 1 warning",
        ] == result.stdout.splitlines()

    def test_no_traceback_for_a_broken_file(self) -> None:
        """Even a file that is not YAML at all gives problems, not a traceback."""
        write("2026-12-03-broken.yaml", 'subject: "Winter\n\tstatus: [\n')

        result = run("2026-12-03-broken.yaml")

        assert (1, "") == (result.exit_code, result.stderr)
        assert isinstance(result.exception, SystemExit)  # the command's own exit, not a crash
        assert [
            "2026-12-03-broken.yaml:1: a quote opens here but never closes: add the closing quote",
            "1 file checked, 1 problem",
        ] == result.stdout.splitlines()

    def test_without_mailer_toml(self, project: Path) -> None:
        """Without mailer.toml the command says so on stderr and exits 2."""
        (project / "mailer.toml").unlink()

        result = run("issues")

        assert 2 == result.exit_code
        assert "mailer.toml: no such file" in result.stderr
        assert "" == result.stdout

    def test_the_config_path_can_be_set(
        self, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """MAILER_CONFIG_PATH points at mailer.toml from elsewhere."""
        (project / "config").mkdir()
        (project / "mailer.toml").rename(project / "config" / "mailer.toml")
        monkeypatch.setenv("MAILER_CONFIG_PATH", str(project / "config" / "mailer.toml"))

        assert 0 == run("issues").exit_code

    def test_paths_are_required(self) -> None:
        """With no path, the usage is shown and the exit status is 2."""
        result = run()

        assert 2 == result.exit_code
        assert "Missing argument 'PATH'" in result.stderr


class TestValidateJson:
    def test_json_output(self) -> None:
        """--json prints totals and one entry per file, with each problem's line and message."""
        write("2026-12-03-bad.yaml", BAD)

        result = run("--json", "2026-12-03-bad.yaml", f"issues/{WINTER}")

        assert 1 == result.exit_code
        data = json.loads(result.stdout)
        assert {
            "ok": False,
            "checked": 2,
            "errors": 2,
            "warnings": 0,
            "empty_folders": [],
        } == {key: value for key, value in data.items() if key != "files"}
        assert {
            "path": "2026-12-03-bad.yaml",
            "ok": False,
            "issue": None,
            "errors": [
                {
                    "line": 4,
                    "message": "'sent' is not a choice for 'status': use 'draft' or 'ready'",
                },
                {
                    "line": 10,
                    "message": "'audeince' is not a field of section 2; did you mean 'audience'?",
                },
            ],
            "warnings": [],
        } == data["files"][0]
        assert {
            "slug": "2026-12-03-winter-connections",
            "subject": "Winter connections: warm spaces, Christmas support and your January "
            "invitation",
            "date": "2026-12-03",
            "status": "ready",
            "sections": 10,
            "segments": [
                "in-person",
                "intergenerational",
                "northern-ireland",
                "scotland",
                "wales",
                "youth",
            ],
        } == data["files"][1]["issue"]

    def test_json_for_good_files(self) -> None:
        """--json exits 0 when every file is good."""
        result = run("--json", "issues")

        assert (0, True, 2) == (
            result.exit_code,
            json.loads(result.stdout)["ok"],
            json.loads(result.stdout)["checked"],
        )


class TestHelp:
    def test_help_explains_the_command(self) -> None:
        """`mailer validate --help` says what it does and what its options are."""
        result = run("--help")

        assert 0 == result.exit_code
        assert "PATH:LINE: message" in result.stdout
        assert "--json" in result.stdout
