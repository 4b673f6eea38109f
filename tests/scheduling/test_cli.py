"""`mailer schedule`: the next slots, the issue each would send, and its state; --json too."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from helpers.members import add_members
from helpers.scheduling import Project, london, schedule_toml
from time_machine import TimeMachineFixture
from typer.testing import CliRunner, Result

from mailer.cli import app
from mailer.config import Settings, load_newsletter
from mailer.issues.check import load_issue
from mailer.scheduling.runner import Runner
from mailer.sending.send import send_issue
from mailer.store import SubscriberStore
from mailer.store.ledger import new_owner
from mailer.store.slots import SlotStore


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, store: SubscriberStore) -> Any:
    """Runs `mailer schedule ...` in the test's project folder, on its database."""
    monkeypatch.chdir(settings.config_path.parent)
    monkeypatch.setenv("MAILER_CONFIG_PATH", str(settings.config_path))
    monkeypatch.setenv("MAILER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MAILER_OUTBOX_DIR", str(settings.outbox_dir))

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, ["schedule", *args])

    return run


def slots_json(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("--json", *args)
    assert 0 == result.exit_code, result.output + result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture
def issues(project: Project) -> Project:
    """Ready on 3 December, a draft on the 17th, nothing on the 31st, a broken file on 14 January."""
    project.write_issue("2026-12-03")
    project.write_issue("2026-12-17", status="draft")
    project.write_broken_issue("2027-01-14")
    return project


class TestListing:
    def test_the_next_slots_with_their_issues_and_states(
        self, cli: Any, issues: Project, time_machine: TimeMachineFixture
    ) -> None:
        """Each slot, the file that would be sent, and what state it is in, in a table."""
        time_machine.move_to(london(2026, 11, 30), tick=False)
        result = cli("--count", "5")
        assert 0 == result.exit_code, result.stderr
        lines = [line for line in result.stdout.splitlines() if "│" in line and "Thu" in line]
        cells = [[cell.strip() for cell in line.strip("│").split("│")] for line in lines]
        assert [
            ["Thu 2026-12-03 09:00 GMT", "issues/2026-12-03-bulletin.yaml", "ready"],
            ["Thu 2026-12-17 09:00 GMT", "issues/2026-12-17-bulletin.yaml", "draft"],
            ["Thu 2026-12-31 09:00 GMT", "-", "missing"],
            ["Thu 2027-01-14 09:00 GMT", "issues/2027-01-14-broken.yaml", "invalid"],
            ["Thu 2027-01-28 09:00 GMT", "-", "missing"],
        ] == cells
        assert "Every other Thursday at 09:00 (Europe/London)" in result.stdout
        assert "draft: still `status: draft`" in result.stdout

    def test_json(self, cli: Any, issues: Project, time_machine: TimeMachineFixture) -> None:
        """--json: the rule, and for each slot its instant, local time, issue, file and state."""
        time_machine.move_to(london(2026, 11, 30), tick=False)
        data = slots_json(cli, "--count", "3")
        assert {
            "weekday": "thursday",
            "time": "09:00:00",
            "timezone": "Europe/London",
            "anchor": "2026-12-03",
            "lateness_hours": 6.0,
            "reminder_hours": 48.0,
            "editors": ["editor@example.org", "deputy@example.org"],
        } == data["schedule"]
        assert data["last"] is None  # before the first slot
        first = data["slots"][0]
        assert {
            "slot": "2026-12-03T09:00:00+00:00",
            "local": "2026-12-03 09:00 GMT",
            "date": "2026-12-03",
            "issue": "2026-12-03-bulletin",
            "state": "ready",
            "probably_meant": [],
        } == {k: v for k, v in first.items() if k not in ("file", "detail")}
        assert "issues/2026-12-03-bulletin.yaml is ready." == first["detail"]
        assert "issues/2026-12-03-bulletin.yaml" == first["file"]
        assert ["ready", "draft", "missing"] == [s["state"] for s in data["slots"]]

    def test_a_file_dated_off_the_schedule_is_shown_by_the_slot_it_probably_meant(
        self, cli: Any, issues: Project, time_machine: TimeMachineFixture
    ) -> None:
        """An issue dated a Wednesday is named beside the Thursday slot next to it."""
        time_machine.move_to(london(2026, 11, 30), tick=False)
        issues.write_issue("2026-12-30", title="new-year")

        data = slots_json(cli, "--count", "3")
        table = cli("--count", "3").stdout

        missing = data["slots"][2]
        assert ("missing", ["issues/2026-12-30-new-year.yaml"]) == (
            missing["state"],
            missing["probably_meant"],
        )
        assert missing["detail"].endswith(
            "issues/2026-12-30-new-year.yaml is dated 2026-12-30, a Wednesday: was it meant for "
            "this slot? Change its date to 2026-12-31 if so"
        )
        lines = table.splitlines()
        start = next(n for n, line in enumerate(lines) if "2026-12-31" in line)
        cell = " ".join(line.strip("│").split("│")[1].strip() for line in lines[start : start + 3])
        assert "- (dated off the schedule: issues/2026-12-30-new-year.yaml?)" == cell

    def test_summer_slots_show_british_summer_time(
        self, cli: Any, time_machine: TimeMachineFixture
    ) -> None:
        time_machine.move_to(london(2027, 3, 20), tick=False)
        data = slots_json(cli, "--count", "2")
        assert [
            ("2027-03-25 09:00 GMT", "2027-03-25T09:00:00+00:00"),
            ("2027-04-08 09:00 BST", "2027-04-08T08:00:00+00:00"),
        ] == [(s["local"], s["slot"]) for s in data["slots"]]


class TestStatesFromTheDatabase:
    def test_the_last_slot_says_what_the_scheduler_did(
        self,
        cli: Any,
        issues: Project,
        settings: Settings,
        store: SubscriberStore,
        time_machine: TimeMachineFixture,
    ) -> None:
        """After the scheduler sent 3 December's issue, that slot is listed as sent."""
        add_members(store, 3)
        time_machine.move_to(london(2026, 12, 3), tick=False)
        Runner(settings, load_newsletter(issues.config), store).tick()
        time_machine.move_to(london(2026, 12, 5), tick=False)
        data = slots_json(cli, "--count", "1")
        assert ("2026-12-03", "2026-12-03-bulletin", "sent") == (
            data["last"]["date"],
            data["last"]["issue"],
            data["last"]["state"],
        )
        assert "sent=3" in data["last"]["detail"]
        assert ["2026-12-17"] == [s["date"] for s in data["slots"]]

    def test_an_issue_sent_by_hand_before_its_slot_is_sent(
        self,
        cli: Any,
        issues: Project,
        settings: Settings,
        store: SubscriberStore,
        time_machine: TimeMachineFixture,
    ) -> None:
        add_members(store, 3)
        newsletter = load_newsletter(issues.config)
        issue = load_issue(issues.issues / "2026-12-03-bulletin.yaml", newsletter)
        time_machine.move_to(london(2026, 12, 1), tick=False)
        send_issue(issue, newsletter, settings, store)
        assert "sent" == slots_json(cli, "--count", "1")["slots"][0]["state"]

    def test_a_slot_being_sent_says_so(
        self, cli: Any, issues: Project, store: SubscriberStore, time_machine: TimeMachineFixture
    ) -> None:
        at = london(2026, 12, 3).astimezone(dt.UTC)
        SlotStore(store.engine).claim(at, new_owner(), at)
        time_machine.move_to(london(2026, 12, 3, 9, 1), tick=False)
        assert "sending" == slots_json(cli)["last"]["state"]


class TestErrors:
    def test_without_a_schedule_it_says_how_to_add_one(self, cli: Any, project: Project) -> None:
        text = project.config.read_text().replace(schedule_toml(), "")
        project.config.write_text(text)
        result = cli()
        assert 2 == result.exit_code
        assert "mailer.toml has no [schedule] table" in result.stderr

    def test_a_wrong_schedule_is_a_configuration_error(self, cli: Any, project: Project) -> None:
        text = project.config.read_text().replace('weekday = "thursday"', 'weekday = "friday"')
        project.config.write_text(text)
        result = cli()
        assert 2 == result.exit_code
        assert "the anchor 2026-12-03 is a Thursday, but weekday is friday" in result.stderr


def test_the_help_names_the_schedule_table() -> None:
    """`[schedule]` in the help is text, not rich markup that would vanish."""
    result = CliRunner().invoke(app, ["schedule", "--help"], terminal_width=100)
    assert 0 == result.exit_code
    assert "Slots come from [schedule] in mailer.toml" in " ".join(result.output.split())
