"""`mailer report` as editors run it: the tables' every number, --json, --list, --html, errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.history import (
    EXPECTED_FIRST,
    EXPECTED_SECOND,
    FIRST,
    HEALTH_AT_FIRST,
    HEALTH_AT_SECOND,
    HEALTH_NOW,
    SECOND,
    SITE,
    History,
)
from helpers.project import BASE_URL, ROOT
from typer.testing import CliRunner, Result

from mailer.cli import app, reporting
from mailer.report import build
from mailer.report.models import DENOMINATORS, IssueReport, ListReport, rate

Rows = dict[str, tuple[list[str], list[str]]]


def mailer_report(history: History, *args: str) -> Result:
    return CliRunner().invoke(app, ["report", *args], env=history.env)


def table_rows(output: str, title: str, *, two_lines: bool = True) -> Rows:
    """The rows of the table titled ``title``: first cell -> (the rest of its line, the line below).

    Most rows are of two lines (a count and its rate; an issue and when it went out)
    with a blank line after; the links' rows are of one line (and get an empty second).
    """
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rule = next(i for i in range(start, len(lines)) if "───" in lines[i])
    body: list[list[str]] = []
    for line in lines[rule + 1 :]:
        if line and not line.startswith(" "):
            break  # the text after the table
        if line.strip():
            body.append(line.split())
    if not two_lines:
        return {cells[0]: (cells[1:], []) for cells in body}
    return {
        first[0]: (first[1:], second) for first, second in zip(body[::2], body[1::2], strict=True)
    }


def percent(part: int, whole: int) -> str:
    share = rate(part, whole)
    return "–" if share is None else f"{share * 100:.1f}%"


def expected_tables(expected: dict[str, dict[str, int]]) -> tuple[Rows, Rows]:
    """What the Delivery and Response tables must show for these counts."""
    delivery: Rows = {}
    response: Rows = {}
    for name, c in expected.items():
        delivery[name] = (
            [str(c[m]) for m in ("sent", "delivered", "bounced", "dropped")],
            [percent(c[m], c["sent"]) for m in ("delivered", "bounced", "dropped")],
        )
        measures = ("opened", "clicked", "complained", "unsubscribed")
        response[name] = (
            [str(c["delivered"]), *(str(c[m]) for m in measures)],
            [percent(c[m], c["delivered"]) for m in measures],
        )
    return delivery, response


class TestTheTables:
    @pytest.mark.parametrize(
        ("issue", "expected"), [(FIRST, EXPECTED_FIRST), (SECOND, EXPECTED_SECOND)]
    )
    def test_every_count_and_rate_in_both_tables(
        self, history: History, issue: str, expected: dict[str, dict[str, int]]
    ) -> None:
        """Delivery (rates of sent) and Response (rates of delivered): each row's counts, rates below."""
        result = mailer_report(history, issue)
        assert 0 == result.exit_code, result.output + result.stderr
        delivery, response = expected_tables(expected)
        assert delivery == table_rows(result.output, "Delivery (rates: shares of sent)")
        assert response == table_rows(result.output, "Response (rates: shares of delivered)")

    def test_totals_caveat_list_and_links_under_the_tables(self, history: History) -> None:
        """Opens and clicks in all, click-to-open, the opens caveat, the list at the send, the links."""
        output = mailer_report(history, FIRST).output
        assert "All members: 8 opens and 6 clicks, every one counted; click-to-open 80.0%" in output
        assert "* Opens are approximate. Apple Mail Privacy Protection" in " ".join(output.split())
        assert (
            "The list when it went out: 10 active, 1 pending, 1 unsubscribed, 0 bounced, 0 complained"
            in " ".join(output.split())
        )
        links = table_rows(output, "Most-clicked links", two_lines=False)
        assert {
            f"{SITE}/plans": (["3", "4"], []),
            f"{SITE}/youth-toolkit": (["1", "1"], []),
            f"{BASE_URL}/unsubscribe/…": (["1", "1"], []),
        } == links

    def test_the_issue_may_be_named_by_its_file(self, history: History) -> None:
        """The path of the issue file names the same issue as its name does."""
        by_path = mailer_report(history, str(history.issue_path(FIRST)))
        assert 0 == by_path.exit_code, by_path.stderr
        assert by_path.output.startswith(f"{FIRST}: sent 2026-01-08 09:00 UTC, finished")
        assert table_rows(by_path.output, "Delivery") == table_rows(
            mailer_report(history, FIRST).output, "Delivery"
        )

    def test_list_shows_each_issue_then_now(self, history: History) -> None:
        result = mailer_report(history, "--list")
        assert 0 == result.exit_code, result.output + result.stderr
        rows = table_rows(result.output, "List health")
        assert {
            FIRST: ([str(n) for n in HEALTH_AT_FIRST], ["2026-01-08,", "to", "10"]),
            SECOND: ([str(n) for n in HEALTH_AT_SECOND], ["2026-01-22,", "to", "8"]),
            "now": ([str(n) for n in HEALTH_NOW], rows["now"][1]),
        } == rows


class TestJson:
    @pytest.mark.parametrize(
        ("issue", "expected"), [(FIRST, EXPECTED_FIRST), (SECOND, EXPECTED_SECOND)]
    )
    def test_the_same_figures_as_the_tables(
        self, history: History, issue: str, expected: dict[str, dict[str, int]]
    ) -> None:
        """Every count, every rate over its stated denominator, and the notes."""
        result = mailer_report(history, issue, "--json")
        assert 0 == result.exit_code, result.output + result.stderr
        data = json.loads(result.output)
        assert issue == data["issue"]
        assert DENOMINATORS == data["denominators"]
        for row in data["segments"]:
            assert expected[row["name"]] == {name: row[name] for name in expected[row["name"]]}
            for name, share in row["rates"].items():
                part = row["clicked"] if name == "click_to_open" else row[name]
                assert rate(part, row[DENOMINATORS[name]]) == share
        assert list(expected) == [row["name"] for row in data["segments"]]
        assert any("Apple Mail Privacy Protection" in note for note in data["notes"])

    def test_links_and_list_health(self, history: History) -> None:
        data = json.loads(mailer_report(history, SECOND, "--json", "--links", "5").output)
        assert [{"url": f"{SITE}/spring", "clicked": 1, "clicks": 1}] == data["links"]
        assert [
            {"issue": FIRST, "recipients": 10, "joined_later": 0, "active": 10, "pending": 1, "unsubscribed": 1, "bounced": 0, "complained": 0},
            {"issue": SECOND, "recipients": 8, "joined_later": 0, "active": 8, "pending": 0, "unsubscribed": 3, "bounced": 1, "complained": 1},
        ] == [{k: v for k, v in point.items() if k != "at"} for point in data["list_health"]]  # fmt: skip

    def test_it_reads_back_as_the_report_model(self, history: History) -> None:
        """The JSON is the pydantic model's dump: scripts can validate it with the same model."""
        report = IssueReport.model_validate_json(mailer_report(history, FIRST, "--json").output)
        assert 4 == report.segments[0].clicked

    def test_list_json(self, history: History) -> None:
        report = ListReport.model_validate_json(mailer_report(history, "--list", "--json").output)
        assert [FIRST, SECOND] == [point.issue for point in report.issues]
        assert HEALTH_NOW == (
            report.now.active,
            report.now.pending,
            report.now.unsubscribed,
            report.now.bounced,
            report.now.complained,
        )


class TestHtmlFile:
    def test_writes_a_self_contained_page_and_says_where(
        self, history: History, tmp_path: Path
    ) -> None:
        """The tables still print; the page has both charts and asks nothing of the network."""
        page = tmp_path / "report.html"
        result = mailer_report(history, FIRST, "--html", str(page))
        assert 0 == result.exit_code, result.output + result.stderr
        assert "Report written to" in result.output
        text = page.read_text(encoding="utf-8")
        assert 2 == text.count('role="img"')
        assert "default-src 'none'" in text
        assert [] == re.findall(r'(?:src|href)="(?!#)[^"]*"', text)  # in-page references only
        assert "<script" not in text

    def test_with_json_the_message_goes_to_stderr(self, history: History, tmp_path: Path) -> None:
        """stdout stays pure JSON."""
        result = mailer_report(history, "--list", "--json", "--html", str(tmp_path / "list.html"))
        assert 0 == result.exit_code, result.stderr
        json.loads(result.stdout)
        assert "Report written to" in result.stderr

    def test_a_folder_that_does_not_exist_is_a_clear_error(
        self, history: History, tmp_path: Path
    ) -> None:
        result = mailer_report(history, FIRST, "--html", str(tmp_path / "nowhere" / "r.html"))
        assert 1 == result.exit_code
        assert "cannot write the report to" in result.stderr


class TestMistakes:
    def test_an_unknown_issue(self, history: History) -> None:
        result = mailer_report(history, "2026-13-01-nothing")
        assert 1 == result.exit_code
        assert "error: there is no issue '2026-13-01-nothing'" in result.stderr
        assert "mailer report --list" in " ".join(result.stderr.split())

    def test_an_issue_file_never_sent(self, history: History, tmp_path: Path) -> None:
        """A ready issue not sent yet: the message says how to send it."""
        draft = history.folder / "issues" / "2026-02-05-not-yet.yaml"
        draft.write_text("subject: not yet\n", encoding="utf-8")
        result = CliRunner().invoke(
            app,
            ["report", str(draft)],
            env={**history.env, "MAILER_CONFIG_PATH": _config_with_issues(tmp_path, draft.parent)},
        )
        assert 1 == result.exit_code
        message = " ".join(result.stderr.split())
        assert "issue 2026-02-05-not-yet has not been sent" in message
        assert "Send it with `mailer send" in message

    @pytest.mark.parametrize("args", [[], [FIRST, "--list"]])
    def test_an_issue_or_list_exactly(self, history: History, args: list[str]) -> None:
        result = mailer_report(history, *args)
        assert 2 == result.exit_code
        assert "give an ISSUE, or --list" in " ".join(result.stderr.split())


def _config_with_issues(tmp_path: Path, issues: Path) -> str:
    """A copy of mailer.toml whose issues_dir is ``issues``."""
    text = (ROOT / "mailer.toml").read_text(encoding="utf-8")
    text = text.replace('issues_dir = "issues"', f'issues_dir = "{issues}"')
    text = text.replace('templates_dir = "templates"', f'templates_dir = "{ROOT / "templates"}"')
    config = tmp_path / "mailer.toml"
    config.write_text(text, encoding="utf-8")
    return str(config)


def test_the_default_number_of_links_is_the_reports() -> None:
    """reporting.LINKS is written out so that `mailer --help` need not import the report."""
    assert build.LINKS == reporting.LINKS


def test_help_names_every_option() -> None:
    result = CliRunner().invoke(app, ["report", "--help"], env={"COLUMNS": "100"})
    for option in ("--list", "--json", "--html", "--links"):
        assert option in result.output


def test_charts_are_drawn_only_for_html(history: History) -> None:
    """matplotlib takes half a second to import: a report without --html does without it."""
    code = (
        "import sys; from typer.testing import CliRunner; from mailer.cli import app;"
        f"result = CliRunner().invoke(app, ['report', {FIRST!r}, '--json']);"
        "assert result.exit_code == 0, result.output;"
        "print('matplotlib' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **history.env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "False" == done.stdout.strip()
