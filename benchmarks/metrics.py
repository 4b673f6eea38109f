"""How long `GET /metrics` takes on a store with a year of sends, through a real `mailer serve`.

The figures that come from the database (recipients by transport and state, sends in
progress, members by status, the next slot, the health problems) are read at every
scrape, so a scrape's time grows with the send ledger. A store (SQLite in a temporary
file) with ``--members`` members (2,100, the charity's list, and 10,000 by default)
who were each sent ``--issues`` issues (26: a year of fortnightly slots), one in 50
copies failed; then ``mailer serve`` in its own process is scraped ``--scrapes`` times.

Run it as ``.venv/bin/python benchmarks/metrics.py [--members 2100 10000] [--issues 26]``.
Figures are printed and written to benchmarks/results/metrics.json, with the machine's
load average: on a shared 2-core machine, other work skews them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailer.mail import Delivery, DeliveryState
from mailer.store import MemberRecord, open_store
from mailer.store.ledger import Ledger, SendStatus, new_owner

SECRET = "benchmark-secret-key-0123456789abcdef"
MAILER = str(Path(sys.executable).with_name("mailer"))


def make_store(url: str, members: int, issues: int) -> int:
    """The members, and ``issues`` finished sends to all of them; the ledger's row count."""
    rows = 0
    with open_store(url) as store:
        added = store.add(
            [MemberRecord(email=f"member{n:06d}@example.org") for n in range(members)],
            source="benchmark",
        )
        ledger = Ledger(store.engine)
        for number in range(issues):
            issue, owner = f"2026-issue-{number:02d}", new_owner()
            ledger.acquire(issue, "sendgrid", owner)
            for start in range(0, members, 1000):
                page = added[start : start + 1000]
                claim = ledger.claim(issue, "general", [m.id for m in page], owner)
                outcomes = [
                    (
                        claim.claimed[m.id],
                        Delivery(
                            email=m.email,
                            state=DeliveryState.failed if m.id % 50 == 0 else DeliveryState.sent,
                            error="refused" if m.id % 50 == 0 else None,
                        ),
                    )
                    for m in page
                ]
                ledger.record(issue, owner, outcomes)
                rows += len(page)
            ledger.release(issue, owner, SendStatus.finished)
    return rows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape_times(url: str, scrapes: int) -> dict[str, Any]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILER_")},
        "MAILER_DATABASE_URL": url,
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_TRANSPORT": "outbox",
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
        "MAILER_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [MAILER, "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("mailer serve did not start") from None
                time.sleep(0.1)
        timings, size = [], 0
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(scrapes):
                started = time.perf_counter()
                response = client.get("/metrics")
                timings.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                size = len(response.content)
        return {
            "scrapes": scrapes,
            "ms_median": round(statistics.median(timings), 1),
            "ms_max": round(max(timings), 1),
            "bytes": size,
        }
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[2100, 10000])
    parser.add_argument("--issues", type=int, default=26)
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "issues": args.issues,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        },
        "sqlite": {},
    }
    for members in args.members:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{Path(folder) / 'mailer.db'}"
            started = time.perf_counter()
            rows = make_store(url, members, args.issues)
            built = time.perf_counter() - started
            figures = {"ledger_rows": rows, **scrape_times(url, args.scrapes)}
        results["sqlite"][str(members)] = figures
        print(
            f"sqlite, {members} members x {args.issues} issues ({rows} ledger rows, built in "
            f"{built:.0f} s): GET /metrics median {figures['ms_median']} ms, "
            f"max {figures['ms_max']} ms, {figures['bytes']} bytes"
        )
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    out = ROOT / "benchmarks" / "results" / "metrics.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
