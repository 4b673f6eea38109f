"""What the scheduler tests share (imported by name, like tests/sending/sendtools.py):
a project folder of their own (mailer.toml with a [schedule], issue files made from the
sample issue), members in three variants, and reading what the outbox holds.

Members: number ``n`` is in ``youth`` when n % 3 == 0, in ``wales`` when n % 3 == 1,
and in no segment of the sample issue otherwise, so a send has three variants.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import socket
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from databases import BACKENDS

from mailer.store import MemberRecord, Subscriber, SubscriberStore

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLE = ROOT / "issues" / "2026-12-03-winter-connections.yaml"
EDITORS = ("editor@example.org", "deputy@example.org")
SECRET = "scheduler-test-secret-key-0123456789"
BASE_URL = "https://news.example.org"
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
        text = SAMPLE.read_text(encoding="utf-8")
        text = re.sub(r"(?m)^date: .*$", f"date: {day}", text)
        text = re.sub(r"(?m)^status: .*$", f"status: {status}", text)
        path = self.issues / f"{day}-{title}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    def write_broken_issue(self, day: str) -> Path:
        path = self.issues / f"{day}-broken.yaml"
        path.write_text(f"subject: Half written\ndate: {day}\nstatus: ready\n", encoding="utf-8")
        return path


def member(n: int) -> MemberRecord:
    tags: tuple[str, ...] = ("youth-loneliness",) if n % 3 == 0 else ()
    region = "Wales" if n % 3 == 1 else "Yorkshire and the Humber"
    return MemberRecord(
        email=f"member{n:03d}@example.org", name=f"Member{n:03d} Tester", region=region, tags=tags
    )


def add_members(store: SubscriberStore, count: int) -> list[Subscriber]:
    return store.add([member(n) for n in range(count)], source="test")


def member_emails(count: int) -> set[str]:
    return {f"member{n:03d}@example.org" for n in range(count)}


def read_eml(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def outbox_folders(outbox: Path) -> dict[str, int]:
    """Each folder of the outbox (an issue, or a notice) and how many .eml files it has."""
    if not outbox.is_dir():
        return {}
    return {d.name: len(list(d.glob("*.eml"))) for d in sorted(outbox.iterdir()) if d.is_dir()}


def recipients(folder: Path) -> Counter[str]:
    """How many messages each address has in an outbox folder."""
    return Counter(
        str(read_eml(path)["To"].addresses[0].addr_spec) for path in sorted(folder.glob("*.eml"))
    )


def dead_owner() -> str:
    """A claim owner on this host whose process has exited, as after a kill -9."""
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return f"{socket.gethostname()}:{finished.stdout.strip()}:0"
