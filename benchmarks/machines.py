"""Several machines on one send: one sender against three, on one PostgreSQL database.

Each "machine" is a real ``mailer send ISSUE --yes --json`` in a folder of its own, with
one sending process and one request in flight (``MAILER_SEND_PROCESSES=1``,
``MAILER_SENDGRID_CONCURRENCY=1``), so that its speed is the round trip's, as one
machine's share of a real send across the internet is: the SendGrid double (in its own
process) answers each request after 250 ms (``--latency``). The members (200,000 by
default, ``--members``) are written straight into a fresh schema of the ``test``
database on 127.0.0.1:5432 (``--database``), which is dropped after.

For 1 and then 3 machines (``--machines 1,3``), on a fresh list each time: the wall
time from the start of the first to the end of the last, what each machine sent (its
summary's ``sent``), and that every member got the issue once (the double's count).

Run: ``.venv/bin/python benchmarks/machines.py [--members N] [--machines 1,3]``.
Figures are printed and written to benchmarks/results/machines.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers.databases import POSTGRES_URL, postgres_schema
from helpers.members import bulk_members
from helpers.project import BASE_URL, SAMPLE_ISSUE
from helpers.sending import SECRET, SG_KEY

from mailer.store import open_store

RESULTS = ROOT / "benchmarks" / "results" / "machines.json"
MAILER = str(Path(sys.executable).with_name("mailer"))


def serve_double(latency: float) -> None:
    """The SendGrid double until SIGTERM: prints its URL, then what it took."""
    from doubles.sendgrid import SendGridDouble

    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
    with SendGridDouble(api_key=SG_KEY, latency=latency, keep_bodies=False) as double:
        print(double.url, flush=True)
        signal.sigwait([signal.SIGTERM])
        counts = double.delivery_counts()
        print(json.dumps({"members": len(counts), "most_to_one": max(counts.values(), default=0)}))


def send_with(machines: int, members: int, latency: float, database: str) -> dict[str, Any]:
    """``machines`` senders of one send of ``members``, started together; their figures."""
    with postgres_schema(database) as url:
        with open_store(url):
            pass  # the tables
        bulk_members(url, members)
        double = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(latency)], stdout=subprocess.PIPE, text=True
        )
        assert double.stdout is not None
        address = double.stdout.readline().strip()
        with tempfile.TemporaryDirectory(prefix="mailer-machines-") as work:
            began = time.monotonic()
            senders = [_start(Path(work) / f"m{n}", url, address) for n in range(machines)]
            sent = [_sent(process, log) for process, log in senders]
            seconds = time.monotonic() - began
        double.send_signal(signal.SIGTERM)
        took = json.loads(double.communicate(timeout=120)[0].strip().splitlines()[-1])
    return {
        "machines": machines,
        "members": members,
        "seconds": round(seconds, 1),
        "sent_by_each": sent,
        "members_reached": took["members"],
        "most_to_one_member": took["most_to_one"],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _start(folder: Path, url: str, address: str) -> tuple[subprocess.Popen[bytes], Path]:
    folder.mkdir(parents=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "SENDGRID_"))},
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
        "MAILER_DATABASE_URL": url,
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_BASE_URL": BASE_URL,
        "MAILER_TRANSPORT": "sendgrid",
        "SENDGRID_API_KEY": SG_KEY,
        "MAILER_SENDGRID_API_URL": address,
        "MAILER_SEND_PROCESSES": "1",
        "MAILER_SENDGRID_CONCURRENCY": "1",
        "MAILER_LOG_LEVEL": "WARNING",
    }
    log = folder / "send.log"
    with log.open("wb") as output:
        command = [MAILER, "send", str(SAMPLE_ISSUE), "--yes", "--json"]
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=output, stderr=output)
    return process, log


def _sent(process: subprocess.Popen[bytes], log: Path) -> int:
    code = process.wait()
    text = log.read_text()
    if code not in (0, 3):
        raise SystemExit(f"a sender failed ({code}):\n{text}")
    return int(json.loads(text[text.index("{") :])["totals"]["sent"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=200_000, help="members in the list")
    parser.add_argument("--machines", default="1,3", help="how many senders, e.g. 1,3")
    parser.add_argument("--latency", type=float, default=0.25, help="the double's, in seconds")
    parser.add_argument("--database", default=POSTGRES_URL, help="the PostgreSQL server")
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        return serve_double(args.serve)
    runs = []
    for machines in (int(n) for n in args.machines.split(",")):
        print(f"{machines} machine(s), {args.members:,} members...", file=sys.stderr)
        runs.append(send_with(machines, args.members, args.latency, args.database))
        print(json.dumps(runs[-1]), flush=True)
    if len(runs) > 1:
        print(f"ratio of the last to the first: {runs[-1]['seconds'] / runs[0]['seconds']:.2f}")
    RESULTS.write_text(
        json.dumps(
            {"machine": f"{platform.platform()}, {os.cpu_count()} cores", "runs": runs}, indent=2
        )
        + "\n"
    )
    return None


if __name__ == "__main__":
    main()
