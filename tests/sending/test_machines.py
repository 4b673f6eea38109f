"""Several machines on one send, on PostgreSQL: each takes shares of the audience, together once.

Each "machine" is a real `mailer send ISSUE --yes` in a folder of its own, under a host
name of its own (a UTS namespace, where ``unshare`` can make one), on one PostgreSQL
database, sending through the SendGrid double, which answers each request after
250 ms as the real API does across the internet. Each sender has one process with one
request in flight, so that one machine's speed is the round trip's, as a machine's
share of a real send is; three of them must then take a third of the time each.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from doubles.sendgrid import SendGridDouble
from helpers.members import bulk_members
from helpers.project import BASE_URL, ROOT, SAMPLE_ISSUE
from helpers.sending import SECRET, SG_KEY
from sqlalchemy import select

from mailer.store import open_store
from mailer.store.ledger import Ledger
from mailer.store.shares import ShareRow, ShareState

pytestmark = pytest.mark.postgres

ISSUE = "2026-12-03-winter-connections"
LATENCY = 0.25
MAILER = str(Path(sys.executable).with_name("mailer"))
UNSHARE = shutil.which("unshare") if os.geteuid() == 0 else None


@dataclass
class Machine:
    name: str
    process: subprocess.Popen[bytes]
    output: Path

    def summary(self, *, codes: tuple[int, ...] = (0,)) -> dict[str, object]:
        """What its `mailer send --json` printed, once it ended with one of ``codes``."""
        assert self.process.wait(timeout=300) in codes, self.output.read_text()
        text = self.output.read_text()
        return json.loads(text[text.index("{") :])  # type: ignore[no-any-return]


@pytest.fixture
def double() -> Iterator[SendGridDouble]:
    with SendGridDouble(api_key=SG_KEY, latency=LATENCY, keep_bodies=False) as running:
        yield running


def environment(url: str, double: SendGridDouble, folder: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "SENDGRID_"))},
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
        "MAILER_DATABASE_URL": url,
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_BASE_URL": BASE_URL,
        "MAILER_TRANSPORT": "sendgrid",
        "SENDGRID_API_KEY": SG_KEY,
        "MAILER_SENDGRID_API_URL": double.url,
        "MAILER_SEND_PROCESSES": "1",
        "MAILER_SENDGRID_CONCURRENCY": "1",
        "MAILER_OUTBOX_DIR": str(folder / "outbox"),
    }


def start(name: str, url: str, double: SendGridDouble, tmp_path: Path) -> Machine:
    """`mailer send ISSUE --yes --json` on machine ``name``: its own folder and host name."""
    folder = tmp_path / name
    folder.mkdir()
    command = [MAILER, "send", str(SAMPLE_ISSUE), "--yes", "--json"]
    if UNSHARE is not None:
        command = [UNSHARE, "--uts", "sh", "-c", f'hostname {name} && exec "$@"', "sh", *command]
    output = folder / "send.log"
    with output.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=environment(url, double, folder),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Machine(name, process, output)


def share_owners(url: str) -> dict[int, tuple[str, str]]:
    """Share id -> (state, owner)."""
    with open_store(url) as store, store.engine.connect() as connection:
        rows = connection.execute(select(ShareRow.id, ShareRow.state, ShareRow.owner))
        return {row.id: (row.state, row.owner) for row in rows}


def states(url: str) -> dict[str, int]:
    with open_store(url) as store:
        counts: dict[str, int] = {}
        for row in Ledger(store.engine).counts(ISSUE):
            counts[row.state] = counts.get(row.state, 0) + row.count
        return counts


def test_three_machines_share_a_send_of_200000_members(
    postgres_schema_url: str, double: SendGridDouble, tmp_path: Path
) -> None:
    """Each machine sends at least a fifth of the list, and every member gets the issue once.

    How long three take against one is measured by benchmarks/machines.py, not here: on
    this suite's two cores, three senders and the stand-in share the CPU that three
    machines would each have (docs/sending.md gives the figures).
    """
    members = 200_000
    with open_store(postgres_schema_url):
        pass  # the tables
    bulk_members(postgres_schema_url, members)
    machines = [start(name, postgres_schema_url, double, tmp_path) for name in ("a", "b", "c")]
    summaries = {machine.name: machine.summary() for machine in machines}

    sent = {name: summary["totals"]["sent"] for name, summary in summaries.items()}  # type: ignore[index]
    assert members == sum(sent.values()), sent
    assert all(count >= members / 5 for count in sent.values()), sent
    counts = double.delivery_counts()
    assert members == len(counts) and {1} == set(counts.values())
    assert {"sent": members} == states(postgres_schema_url)
    if UNSHARE is not None:  # each share names the machine that sent it
        owners = {owner.split(":")[0] for _, owner in share_owners(postgres_schema_url).values()}
        assert {"a", "b", "c"} == owners


def test_when_a_machine_dies_the_others_take_its_share_over(
    postgres_schema_url: str, double: SendGridDouble, tmp_path: Path
) -> None:
    """kill -9 of one machine mid-send: the others take over its share within 60 s and finish
    the send; what the dead one had in flight is unknown, and nothing else."""
    members = 60_000
    with open_store(postgres_schema_url):
        pass
    bulk_members(postgres_schema_url, members)
    machines = [start(name, postgres_schema_url, double, tmp_path) for name in ("a", "b", "c")]
    victim = machines[0]
    deadline = time.monotonic() + 60
    while sum(double.delivery_counts().values()) < members // 6:
        assert time.monotonic() < deadline, victim.output.read_text()
        time.sleep(0.05)
    os.killpg(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    killed = time.monotonic()
    dead_shares = {
        share
        for share, (state, owner) in share_owners(postgres_schema_url).items()
        if state == ShareState.taken and owner.startswith("a:" if UNSHARE else "")
    }
    while True:  # the dead machine's share goes to another
        owners = share_owners(postgres_schema_url)
        if UNSHARE is None or all(not owners[s][1].startswith("a:") for s in dead_shares):
            break
        assert time.monotonic() - killed < 60, owners
        time.sleep(0.2)
    taken_over = time.monotonic() - killed
    for machine in machines[1:]:
        machine.summary(codes=(0, 3))  # 3: some members are unknown

    ledger = states(postgres_schema_url)
    assert members == ledger.get("sent", 0) + ledger.get("unknown", 0), ledger
    assert ledger.get("unknown", 0) <= 1000  # one request in flight: at most one batch
    assert set(ledger) <= {"sent", "unknown"}
    counts = double.delivery_counts()
    assert {1} == set(counts.values())  # nobody twice
    assert ledger["sent"] <= len(counts) <= members
    assert taken_over < 60
