"""kill -9 at random moments, again and again: nobody gets the issue twice, nobody is skipped.

Each test runs `mailer send ISSUE --yes --batch-size 3` as a real subprocess, waits
until it has handed over a random number of further messages (so that every kill
lands mid-send, not during start-up), lets a random few milliseconds pass, and
SIGKILLs it. After the last kill, runs finish the send, and every active member
is counted:

* outbox: exactly one .eml per member, and no file that existed after a kill was
  ever written again (a rewrite would be a second delivery, invisible in a count);
* SendGrid: the double's records hold exactly one message per member. The double
  holds each request ~20 ms after accepting it, so many kills land between
  "SendGrid took it" and "mailer heard so": those members are ``unknown`` after
  the next run, and are settled the way an operator would, from ``processed``
  events built from what the double accepted (``--reconcile``), the rest resent
  (``--resolve-unknown=resend``).

The seed is printed, so a failure can be replayed. The last test sends SIGTERM
instead, as a scheduler would: the send records the batch in hand and stops.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from doubles.sendgrid import SendGridDouble
from doubles.smtp import SmtpServer
from helpers.members import add_members
from helpers.outbox import read_eml
from helpers.project import BASE_URL, ROOT, SAMPLE_ISSUE
from helpers.sending import SECRET, SG_KEY

from mailer.store import open_store
from mailer.store.ledger import Ledger

ISSUE = "2026-12-03-winter-connections"
MEMBERS = 360
KILLS = 6
BATCH = 3
MAILER = [str(Path(sys.executable).with_name("mailer"))]


@pytest.fixture
def project(tmp_path: Path) -> dict[str, str]:
    """A store with MEMBERS active members and two who left; the environment to send with."""
    database = f"sqlite:///{tmp_path / 'mailer.db'}"
    with open_store(database) as store:
        members = add_members(store, MEMBERS + 2)
        for gone in members[-2:]:
            store.unsubscribe(gone.id, reason="left", source="test")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "SENDGRID_"))},
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
        "MAILER_DATABASE_URL": database,
        "MAILER_OUTBOX_DIR": str(tmp_path / "outbox"),
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_BASE_URL": BASE_URL,
    }


def send(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [*MAILER, "send", str(SAMPLE_ISSUE), "--yes", "--batch-size", str(BATCH)],
            env=env,
            stdout=output,
            stderr=output,
        )


def kill_mid_send(
    env: dict[str, str], progress: Callable[[], int], rng: random.Random, *, timeout: float = 30
) -> bool:
    """Start a send, SIGKILL it once `progress` has grown by 1 to 5 and a few ms passed.

    Returns whether the kill landed (False: the send finished first).
    """
    target = progress() + rng.randint(1, 5)
    process = send(env, Path(env["MAILER_OUTBOX_DIR"]).parent / "killed-runs.log")
    deadline = time.monotonic() + timeout
    while progress() < target and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(rng.uniform(0, 0.03))
    landed = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()  # reaped: its pid is free, so the next run takes the lease over at once
    assert [] == survivors(env), "a sending process outlived the killed send"
    return landed


def survivors(env: dict[str, str], wait: float = 5.0) -> list[int]:
    """Processes still running with this test's database in their environment."""
    marker = f"MAILER_DATABASE_URL={env['MAILER_DATABASE_URL']}".encode()
    deadline = time.monotonic() + wait
    while True:
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and marker in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                continue  # gone meanwhile, or not ours to read
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def finish(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*MAILER, "send", str(SAMPLE_ISSUE), "--yes", "--batch-size", str(BATCH), *extra],
        env=env,
        capture_output=True,
        timeout=60,
    )


def active_emails() -> set[str]:
    return {f"member{n:03d}@example.org" for n in range(MEMBERS)}


def left_in_flight(env: dict[str, str]) -> int:
    """Members a killed send left claimed but not recorded (the next run makes them unknown)."""
    with open_store(env["MAILER_DATABASE_URL"]) as store:
        return len(Ledger(store.engine).in_flight(ISSUE))


def test_outbox_survives_kill_9(project: dict[str, str], tmp_path: Path, seed: int) -> None:
    """Killed mid-send again and again, the outbox still ends with one message per member."""
    rng = random.Random(seed)
    folder = tmp_path / "outbox" / ISSUE

    def written() -> int:
        return len(list(folder.glob("*.eml"))) if folder.is_dir() else 0

    seen: dict[str, str] = {}  # file -> Message-ID, as it was after a kill
    landed = 0
    for _ in range(KILLS):
        landed += kill_mid_send(project, written, rng)
        for path in folder.glob("*.eml"):
            seen.setdefault(path.name, str(read_eml(path)["Message-ID"]))
    done = finish(project)
    assert 0 == done.returncode, done.stderr.decode()
    messages = {path.name: read_eml(path) for path in folder.glob("*.eml")}
    assert active_emails() == {str(m["To"].addresses[0].addr_spec) for m in messages.values()}
    assert seen == {name: str(messages[name]["Message-ID"]) for name in seen}  # none rewritten
    assert [] == list(folder.glob(".*.tmp"))
    assert KILLS == landed, (tmp_path / "killed-runs.log").read_text()


@pytest.mark.parametrize(("processes", "in_flight"), [(1, 1), (1, 8), (2, 4)])
def test_sendgrid_survives_kill_9(
    project: dict[str, str], tmp_path: Path, seed: int, processes: int, in_flight: int
) -> None:
    """Killed mid-request again and again, SendGrid ends with one message per member.

    With two sending processes, the kill takes both down at once (the kernel kills
    the children with their parent), and the next run finds exactly what one killed
    process would leave. With several requests in flight, a kill leaves at most
    those requests' members claimed and not recorded.
    """
    rng = random.Random(seed)
    most_in_flight = processes * in_flight * BATCH
    env = {
        **project,
        "MAILER_SEND_PROCESSES": str(processes),
        "MAILER_SENDGRID_CONCURRENCY": str(in_flight),
        "MAILER_TRANSPORT": "sendgrid",
        "SENDGRID_API_KEY": SG_KEY,
        "MAILER_SEND_TIMEOUT": "10",
    }
    with SendGridDouble() as double:
        env["MAILER_SENDGRID_API_URL"] = double.url
        double.slow_next(0.02, times=10_000)  # widen "accepted, not yet answered"

        def requests() -> int:
            return len(double.received)

        landed = seen_in_flight = 0
        for _ in range(KILLS):
            landed += kill_mid_send(env, requests, rng)
            left = left_in_flight(env)
            assert left <= most_in_flight, f"{left} members left in flight"
            seen_in_flight = max(seen_in_flight, left)
        first = finish(env)  # sends the rest; what the kills left in flight is now unknown
        assert first.returncode in (0, 3), first.stderr.decode()
        events = tmp_path / "events.json"
        events.write_text(
            json.dumps(
                [
                    {
                        "event": "processed",
                        "email": d.email,
                        "sg_message_id": f"{d.message_id}.0",
                        **d.custom_args,
                    }
                    for d in double.deliveries()
                ]
            )
        )
        final = finish(env, "--reconcile", str(events), "--resolve-unknown", "resend")
        assert 0 == final.returncode, final.stdout.decode() + final.stderr.decode()
        counts = double.delivery_counts()
    assert {email: 1 for email in active_emails()} == dict(counts)
    assert KILLS == landed, (tmp_path / "killed-runs.log").read_text()
    if in_flight > 1:  # the kills did catch several requests in flight at once
        assert seen_in_flight > BATCH


@pytest.mark.parametrize("processes", [1, 2])
def test_an_smtp_pool_survives_kill_9(
    project: dict[str, str], tmp_path: Path, seed: int, processes: int
) -> None:
    """Killed while four connections per process were sending, again and again: at most the
    batch in hand per process is left in flight; settled from what the relay took (as an
    operator would from its log) and the rest resent, each member has one message."""
    rng = random.Random(seed)
    env = {
        **project,
        "MAILER_SEND_PROCESSES": str(processes),
        "MAILER_SMTP_CONNECTIONS": "4",
        "MAILER_TRANSPORT": "smtp",
    }
    with SmtpServer(delay=0.02) as server:
        env["MAILER_SMTP_URL"] = server.url()

        def taken() -> int:
            return len(server.messages)

        landed = 0
        for _ in range(KILLS):
            landed += kill_mid_send(env, taken, rng)
            left = left_in_flight(env)
            assert left <= processes * BATCH, f"{left} members left in flight"
        first = finish(env)  # sends the rest; what the kills left in flight is now unknown
        assert first.returncode in (0, 3), first.stderr.decode()
        time.sleep(0.1)  # a message cut off by a kill during the relay's delay is in by now
        with open_store(env["MAILER_DATABASE_URL"]) as store:
            relay_log = {address for m in server.messages for address in m.rcpt_tos}
            found = [store.find(email) for email in sorted(relay_log)]
            Ledger(store.engine).mark_accepted([(ISSUE, m.id, None) for m in found if m])
        final = finish(env, "--resolve-unknown", "resend")
        assert 0 == final.returncode, final.stdout.decode() + final.stderr.decode()
        received = Counter(address for m in server.messages for address in m.rcpt_tos)
    assert {email: 1 for email in active_emails()} == dict(received)
    assert KILLS == landed, (tmp_path / "killed-runs.log").read_text()


def test_sigterm_finishes_the_batches_in_hand_and_stops(
    project: dict[str, str], tmp_path: Path
) -> None:
    """SIGTERM (as a scheduler or systemd sends it) stops after recording the batches in hand:
    the four requests in flight are answered and recorded, nothing more is claimed."""
    env = {
        **project,
        "MAILER_TRANSPORT": "sendgrid",
        "SENDGRID_API_KEY": SG_KEY,
        "MAILER_SENDGRID_CONCURRENCY": "4",
    }
    with SendGridDouble() as double:
        env["MAILER_SENDGRID_API_URL"] = double.url
        double.slow_next(0.3, times=10_000)  # each batch takes a while: time to signal mid-batch
        process = send(env, tmp_path / "sigterm.log")
        double.wait_for_accepted(4, timeout=30)
        process.send_signal(signal.SIGTERM)
        assert 3 == process.wait(timeout=30), (tmp_path / "sigterm.log").read_text()
        accepted = len(double.deliveries())
    output = (tmp_path / "sigterm.log").read_text()
    assert "SIGTERM: stopping after the batches in hand" in output
    with open_store(project["MAILER_DATABASE_URL"]) as store:
        counts = Counter[str]()
        for row in Ledger(store.engine).counts(ISSUE):
            counts[row.state] += row.count
    assert 4 * BATCH <= accepted < MEMBERS
    assert {"sent": accepted} == dict(counts)  # each batch handed over recorded; none in flight


def test_sigterm_ends_a_slow_rate_limits_wait_within_the_units_stop_timeout(
    project: dict[str, str], tmp_path: Path, smtp_server: SmtpServer
) -> None:
    """`mailer send` at one message every 20 s (a batch of 3 would take a minute): after
    SIGTERM it stops in seconds, with nothing handed over after the signal nor left unknown,
    well within the TimeoutStopSec that deploy/'s units give a stop."""
    unit = (ROOT / "deploy" / "systemd" / "mailer-scheduler.service").read_text()
    stop_timeout = int(re.search(r"(?m)^TimeoutStopSec=(\d+)$", unit)[1])  # type: ignore[index]
    env = {
        **project,
        "MAILER_TRANSPORT": "smtp",
        "MAILER_SMTP_URL": smtp_server.url(),
        "MAILER_SEND_RATE": "0.05",
    }
    log = tmp_path / "slow.log"
    process = send(env, log)
    deadline = time.monotonic() + 60
    while not smtp_server.messages:
        assert time.monotonic() < deadline and process.poll() is None, log.read_text()
        time.sleep(0.05)
    asked = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert 3 == process.wait(timeout=stop_timeout), log.read_text()
    took = time.monotonic() - asked
    assert took < 15, f"the stop took {took:.1f} s"
    with open_store(project["MAILER_DATABASE_URL"]) as store:
        counts = Counter[str]()
        for row in Ledger(store.engine).counts(ISSUE):
            counts[row.state] += row.count
    assert 0 == counts["in_flight"] == counts["unknown"]
    assert len(smtp_server.messages) == counts["sent"] < 3
