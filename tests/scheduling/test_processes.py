"""Real `python scheduler.py` processes: exactly once with two of them, signals, crashes.

No test hook moves their clock: each test writes a mailer.toml whose slot was a
minute ago by the real clock (in UTC, so no clock change can get in the way), so
the scheduler finds it due at start-up, within the lateness, as after a reboot.
Mail goes to a real SMTP server (aiosmtpd), which counts what each member got, or
to the outbox.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from doubles.sendgrid import SendGridDouble
from doubles.smtp import SmtpServer
from helpers.members import add_members, bulk_members, member_emails
from helpers.project import BASE_URL, ROOT
from helpers.scheduling import SECRET, Project, both_databases, schedule_toml
from helpers.sending import SG_KEY
from sqlalchemy import select

from mailer.store import open_store
from mailer.store.ledger import DeliveryRow
from mailer.store.slots import Heartbeat, SlotRecord, SlotState, SlotStore

SCHEDULER = [sys.executable, str(ROOT / "scheduler.py")]
MEMBERS = 60  # 20 in each of the sample issue's three variants: three batches


def project_due_now(tmp_path: Path) -> tuple[Project, dt.datetime, str]:
    """A project whose slot was a minute ago (UTC), and its ready issue."""
    slot = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).replace(microsecond=0)
    project = Project.make(
        tmp_path / "project",
        schedule_toml(
            weekday=slot.strftime("%A").lower(),
            time=slot.strftime("%H:%M:%S"),
            timezone="UTC",
            anchor=slot.date().isoformat(),
        ),
    )
    return project, slot, project.write_issue(slot.date()).stem


@pytest.fixture
def due(tmp_path: Path, database: str) -> Iterator[tuple[Project, dt.datetime, str]]:
    """A project whose slot was a minute ago (UTC), its ready issue, and MEMBERS members."""
    project, slot, issue = project_due_now(tmp_path)
    with open_store(database) as store:
        add_members(store, MEMBERS)
    yield project, slot, issue


def environment(project: Project, database_url: str, **extra: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "SENDGRID_"))}
    return {
        **inherited,
        "MAILER_CONFIG_PATH": str(project.config),
        "MAILER_DATABASE_URL": database_url,
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_BASE_URL": BASE_URL,
        **extra,
    }


def smtp(server: SmtpServer) -> dict[str, str]:
    return {"MAILER_TRANSPORT": "smtp", "MAILER_SMTP_URL": server.url()}


class Scheduler:
    """One `python scheduler.py` process, its log in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                SCHEDULER, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=log.parent
            )

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()  # reaped: its pid is gone, so its claim is seen as dead at once

    @property
    def text(self) -> str:
        return self.log.read_text(encoding="utf-8")


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Scheduler]]:
    started: list[Scheduler] = []

    def start(env: dict[str, str]) -> Scheduler:
        started.append(Scheduler(env, tmp_path / f"scheduler-{len(started)}.log"))
        return started[-1]

    yield start
    for process in started:
        if process.process.poll() is None:
            process.kill()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def slot_record(database_url: str, slot: dt.datetime) -> SlotRecord | None:
    with open_store(database_url) as store:
        return SlotStore(store.engine).get(slot)


def ledger_states(database_url: str, issue: str) -> Counter[str]:
    with open_store(database_url) as store, store.engine.connect() as connection:
        return Counter(
            connection.scalars(select(DeliveryRow.state).where(DeliveryRow.issue == issue))
        )


def final(database_url: str, slot: dt.datetime) -> Callable[[], bool]:
    def check() -> bool:
        record = slot_record(database_url, slot)
        return record is not None and record.final

    return check


def per_member(server: SmtpServer) -> Counter[str]:
    return Counter(rcpt for message in server.messages for rcpt in message.rcpt_tos)


@both_databases
def test_two_schedulers_on_one_database_send_the_slot_once(
    due: tuple[Project, dt.datetime, str],
    database: str,
    smtp_server: SmtpServer,
    scheduler: Callable[[dict[str, str]], Scheduler],
) -> None:
    """Two processes start together on the same SQLite file / PostgreSQL schema: one claims the
    slot and sends; every member gets the issue exactly once."""
    project, slot, issue = due
    env = environment(project, database, **smtp(smtp_server))
    first, second = scheduler(env), scheduler(env)
    wait_for(final(database, slot), "the slot to be dealt with")
    assert (0, 0) == (first.stop(), second.stop())

    assert {email: 1 for email in sorted(member_emails(MEMBERS))} == per_member(smtp_server)
    assert Counter({"sent": MEMBERS}) == ledger_states(database, issue)
    record = slot_record(database, slot)
    assert record is not None
    assert (SlotState.sent, issue, 1) == (record.state, record.issue, record.runs)
    logs = first.text + second.text
    assert 1 == logs.count(f"sending {issue}"), logs
    assert 2 == logs.count("scheduler stopped"), logs


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_two_schedulers_on_postgresql_send_the_slot_together(
    tmp_path: Path, database: str, scheduler: Callable[[dict[str, str]], Scheduler]
) -> None:
    """On PostgreSQL, the scheduler that does not hold the slot joins its send: each sends
    shares of the list, every member gets the issue once, and the slot is recorded once."""
    members = 20_000
    project, slot, issue = project_due_now(tmp_path)
    with open_store(database):
        pass  # the tables
    bulk_members(database, members)
    with SendGridDouble(api_key=SG_KEY, latency=0.25, keep_bodies=False) as double:
        env = environment(
            project,
            database,
            MAILER_TRANSPORT="sendgrid",
            SENDGRID_API_KEY=SG_KEY,
            MAILER_SENDGRID_API_URL=double.url,
            MAILER_SEND_PROCESSES="1",
            MAILER_SENDGRID_CONCURRENCY="1",
        )
        first, second = scheduler(env), scheduler(env)
        wait_for(final(database, slot), "the slot to be dealt with", timeout=120)
        assert (0, 0) == (first.stop(), second.stop())
        counts = double.delivery_counts()

    assert members == len(counts) and {1} == set(counts.values())
    assert Counter({"sent": members}) == ledger_states(database, issue)
    record = slot_record(database, slot)
    assert record is not None
    assert (SlotState.sent, issue, 1) == (record.state, record.issue, record.runs)
    logs = first.text + second.text
    assert 1 == logs.count(f"sending {issue}"), logs
    joined = [int(n) for n in re.findall(rf"(\d+) of {issue} sent from this scheduler", logs)]
    assert joined and 0 < sum(joined) < members, logs


def test_sigterm_mid_send_finishes_the_batch_and_a_restart_resumes(
    due: tuple[Project, dt.datetime, str],
    database: str,
    smtp_server: SmtpServer,
    scheduler: Callable[[dict[str, str]], Scheduler],
) -> None:
    """SIGTERM while sending: the batch in hand is delivered and recorded, the process exits 0,
    and the next scheduler resumes the slot from the ledger: nobody gets the issue twice."""
    project, slot, issue = due
    slow = environment(project, database, MAILER_SEND_RATE="10", **smtp(smtp_server))
    first = scheduler(slow)
    wait_for(lambda: len(smtp_server.messages) > 0, "the send to start")
    assert 0 == first.stop(signal.SIGTERM)
    assert "SIGTERM: stopping; a send in progress finishes its current batch first" in first.text

    delivered = per_member(smtp_server)
    states = ledger_states(database, issue)
    assert 0 < len(delivered) == states["sent"] < MEMBERS
    # The rate limit's wait ends on the signal: the rest of the batch in hand is left for
    # the next run (failed, to be retried), never handed over after the stop.
    assert states["sent"] + states["failed"] <= 20 * -(-states["sent"] // 20)
    assert {1} == set(delivered.values())
    assert 0 == states["in_flight"]
    record = slot_record(database, slot)
    assert record is not None
    assert (SlotState.interrupted, "") == (record.state, record.owner)

    second = scheduler(environment(project, database, **smtp(smtp_server)))
    wait_for(final(database, slot), "the resumed send to finish")
    assert 0 == second.stop()
    assert {email: 1 for email in sorted(member_emails(MEMBERS))} == per_member(smtp_server)
    assert Counter({"sent": MEMBERS}) == ledger_states(database, issue)
    assert "taking over from a stopped run (interrupted): resuming" in second.text


def unit_stop_timeout() -> int:
    """TimeoutStopSec of deploy/'s scheduler unit: how long systemd waits before SIGKILL."""
    unit = (ROOT / "deploy" / "systemd" / "mailer-scheduler.service").read_text()
    found = re.search(r"(?m)^TimeoutStopSec=(\d+)$", unit)
    assert found, "the unit gives no TimeoutStopSec"
    return int(found[1])


def test_a_slow_rate_limited_send_stops_well_within_the_units_stop_timeout(
    due: tuple[Project, dt.datetime, str],
    database: str,
    smtp_server: SmtpServer,
    scheduler: Callable[[dict[str, str]], Scheduler],
) -> None:
    """One message every 20 s: the 20-member batch in hand alone would take 400 s, past the
    unit's TimeoutStopSec (300), whose SIGKILL would leave it unknown. After SIGTERM the wait
    ends and nothing more is handed over: the stop takes seconds, and nothing is left unknown."""
    project, _, issue = due
    rate = 0.05
    timeout = unit_stop_timeout()
    assert 20 / rate > timeout  # without the stop ending the wait, systemd would kill it
    process = scheduler(
        environment(project, database, MAILER_SEND_RATE=str(rate), **smtp(smtp_server))
    )
    wait_for(lambda: len(smtp_server.messages) > 0, "the first message", timeout=60)
    asked = time.monotonic()
    assert 0 == process.stop(signal.SIGTERM, timeout=timeout)
    took = time.monotonic() - asked
    assert took < 15, f"the stop took {took:.1f} s"
    states = ledger_states(database, issue)
    assert 0 == states["in_flight"] == states["unknown"]
    assert len(per_member(smtp_server)) == states["sent"] < 20


def test_kill_9_mid_send_is_resumed_by_the_next_start_through_the_outbox(
    due: tuple[Project, dt.datetime, str],
    database: str,
    tmp_path: Path,
    scheduler: Callable[[dict[str, str]], Scheduler],
) -> None:
    """A scheduler killed outright mid-send: the next one takes the dead process's claim,
    settles the ledger from the outbox's files, and sends the rest; no file is written twice."""
    project, slot, issue = due
    outbox = tmp_path / "outbox"
    # The scheduler never falls back to the outbox: it is chosen on purpose here.
    env = environment(project, database, MAILER_TRANSPORT="outbox", MAILER_OUTBOX_DIR=str(outbox))
    first = scheduler({**env, "MAILER_SEND_RATE": "10"})
    folder = outbox / issue
    wait_for(lambda: len(list(folder.glob("*.eml"))) >= 3, "the send to start")
    first.kill()
    written = {path.name: path.stat().st_ino for path in folder.glob("*.eml")}
    assert 0 < len(written) < MEMBERS

    second = scheduler(env)
    wait_for(final(database, slot), "the resumed send to finish")
    assert 0 == second.stop()
    assert MEMBERS == len(list(folder.glob("*.eml")))
    assert written == {name: (folder / name).stat().st_ino for name in written}
    assert Counter({"sent": MEMBERS}) == ledger_states(database, issue)
    assert "taking over from" in second.text


def test_sigint_mid_send_stops_cleanly_too(
    due: tuple[Project, dt.datetime, str],
    database: str,
    smtp_server: SmtpServer,
    scheduler: Callable[[dict[str, str]], Scheduler],
) -> None:
    """Ctrl+C is SIGTERM's twin: the batch in hand is delivered and recorded, exit 0, and the
    heartbeat says the scheduler stopped."""
    project, _, issue = due
    process = scheduler(environment(project, database, MAILER_SEND_RATE="10", **smtp(smtp_server)))
    wait_for(lambda: len(smtp_server.messages) > 0, "the send to start")
    assert 0 == process.stop(signal.SIGINT)
    assert "SIGINT: stopping" in process.text
    states = ledger_states(database, issue)
    assert 0 < len(per_member(smtp_server)) == states["sent"] < MEMBERS
    assert 0 == states["in_flight"]
    beat = _last_beat(database)
    assert beat is not None
    assert beat.stopped_at is not None


def test_a_configuration_error_exits_2_with_the_reason(
    tmp_path: Path, database: str, scheduler: Callable[[dict[str, str]], Scheduler]
) -> None:
    """No [schedule] in mailer.toml: one clear line on stderr, exit status 2, nothing sent."""
    project = Project.make(tmp_path / "project", schedule="")
    process = scheduler(environment(project, database, MAILER_TRANSPORT="outbox"))
    assert 2 == process.process.wait(30)
    assert "ERROR mailer.scheduler: mailer.toml has no [schedule] table" in process.text


def _last_beat(database_url: str) -> Heartbeat | None:
    with open_store(database_url) as store:
        return SlotStore(store.engine).last_beat()


@both_databases
def test_a_crashed_sender_is_taken_over_by_the_other_scheduler_within_60_seconds(
    due: tuple[Project, dt.datetime, str],
    database: str,
    tmp_path: Path,
    scheduler: Callable[[dict[str, str]], Scheduler],
) -> None:
    """Two schedulers running; the one sending is killed outright mid-send. The other one
    notices at its next check (every 30 s) and finishes the slot: within the 60 s that
    docs/deploying.md gives, and nobody gets the issue twice (the outbox is settled from its
    files; through SMTP the batch in hand would be left unknown, and the editors told)."""
    project, slot, issue = due
    outbox = tmp_path / "outbox"
    env = environment(
        project,
        database,
        MAILER_TRANSPORT="outbox",
        MAILER_OUTBOX_DIR=str(outbox),
        MAILER_SEND_RATE="10",
    )
    first, second = scheduler(env), scheduler(env)
    folder = outbox / issue
    wait_for(lambda: len(list(folder.glob("*.eml"))) >= 3, "the send to start")
    sender, other = (first, second) if f"sending {issue}" in first.text else (second, first)
    assert f"sending {issue}" in sender.text
    sender.kill()
    killed = time.monotonic()
    assert 0 < len(list(folder.glob("*.eml"))) < MEMBERS
    wait_for(lambda: "taking over from" in other.text, "the takeover", timeout=60)
    took = time.monotonic() - killed
    wait_for(final(database, slot), "the slot to be finished")
    assert 0 == other.stop()
    assert took <= 60, f"taken over after {took:.0f} s"
    assert MEMBERS == len(list(folder.glob("*.eml")))
    assert Counter({"sent": MEMBERS}) == ledger_states(database, issue)


def test_json_logs_one_object_a_line_with_a_time(
    due: tuple[Project, dt.datetime, str],
    database: str,
    tmp_path: Path,
    scheduler: Callable[[dict[str, str]], Scheduler],
) -> None:
    """MAILER_LOG_FORMAT=json: every line the scheduler writes, from start to stop, is one
    JSON object, the send's batches included."""
    project, slot, issue = due
    env = environment(
        project,
        database,
        MAILER_TRANSPORT="outbox",
        MAILER_OUTBOX_DIR=str(tmp_path / "outbox"),
        MAILER_LOG_FORMAT="json",
    )
    process = scheduler(env)
    wait_for(final(database, slot), "the slot to be sent")
    assert 0 == process.stop()
    entries = [json.loads(line) for line in process.text.splitlines()]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]) for e in entries)
    messages = [e["message"] for e in entries]
    assert any(m.startswith("scheduler started") for m in messages)
    assert any(m.startswith(f"batch handed over: issue={issue}") for m in messages)
    assert "scheduler stopped" in messages[-1]
