"""The scheduler's tests: a project folder of their own (mailer.toml with a [schedule],
issue files made from the sample issue), London time, and both databases where it matters.

Members are in :mod:`helpers.members`, the outbox is read with :mod:`helpers.outbox`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from helpers.databases import BACKENDS
from helpers.project import ROOT, SAMPLE_ISSUE

EDITORS = ("editor@example.org", "deputy@example.org")
SECRET = "scheduler-test-secret-key-0123456789"
LONDON = ZoneInfo("Europe/London")

# On SQLite and on PostgreSQL (the ``database`` fixture); unmarked tests use SQLite.
both_databases = pytest.mark.parametrize("database", BACKENDS, indirect=True)


def london(
    year: int, month: int, day: int, hour: int = 9, minute: int = 0, second: int = 0
) -> dt.datetime:
    """A moment in London time (the sample schedule's zone)."""
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=LONDON)


def schedule_toml(
    *,
    weekday: str = "thursday",
    time: str = "09:00",
    timezone: str = "Europe/London",
    anchor: str = "2026-12-03",
    lateness_hours: float = 6,
    reminder_hours: float = 48,
) -> str:
    editors = ", ".join(f'"{e}"' for e in EDITORS)
    return (
        "[schedule]\n"
        f'weekday = "{weekday}"\n'
        f'time = "{time}"\n'
        f'timezone = "{timezone}"\n'
        f"anchor = {anchor}\n"
        f"lateness_hours = {lateness_hours}\n"
        f"reminder_hours = {reminder_hours}\n"
        f"editors = [{editors}]\n"
    )


@dataclass
class Project:
    """A project folder: mailer.toml (the real one, with the schedule given) and issues/."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "mailer.toml"

    @property
    def issues(self) -> Path:
        return self.root / "issues"

    @classmethod
    def make(cls, root: Path, schedule: str | None = None) -> Project:
        """The real mailer.toml with its [schedule] replaced (or removed, with ``""``)."""
        real = (ROOT / "mailer.toml").read_text(encoding="utf-8")
        base = re.sub(r"(?ms)^\[schedule\].*?(?=^\[|\Z)", "", real)
        base = base.replace(
            'templates_dir = "templates"', f'templates_dir = "{ROOT / "templates"}"'
        )
        root.mkdir(parents=True, exist_ok=True)
        (root / "issues").mkdir(exist_ok=True)
        text = base.rstrip("\n") + "\n\n" + (schedule_toml() if schedule is None else schedule)
        (root / "mailer.toml").write_text(text, encoding="utf-8")
        return cls(root)

    def write_issue(
        self, day: dt.date | str, status: str = "ready", title: str = "bulletin"
    ) -> Path:
        """An issue for ``day``: the sample issue with its date and status changed."""
        day = day if isinstance(day, str) else day.isoformat()
        text = SAMPLE_ISSUE.read_text(encoding="utf-8")
        text = re.sub(r"(?m)^date: .*$", f"date: {day}", text)
        text = re.sub(r"(?m)^status: .*$", f"status: {status}", text)
        path = self.issues / f"{day}-{title}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    def write_broken_issue(self, day: str) -> Path:
        path = self.issues / f"{day}-broken.yaml"
        path.write_text(f"subject: Half written\ndate: {day}\nstatus: ready\n", encoding="utf-8")
        return path
