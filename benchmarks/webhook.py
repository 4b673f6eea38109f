"""How fast SendGrid's Event Webhook is stored and processed, on SQLite and PostgreSQL.

For each database, a store with ``--members`` members (10,000 by default) who
were all sent one issue (their rows in the send ledger), then ``mailer serve``
in a process of its own, exactly as deployed. The client, in this process,
posts ``--batches`` signed batches of ``--events`` events each (1,000 by
default, SendGrid's usual size at volume), one after another, and times each
request: a 200 means the batch was verified, parsed, stored once and applied in
one transaction. The mix is what a send produces: processed, delivered, opens,
clicks, with a few blocks, bounces, complaints and unsubscribes. Then the same
batches again (SendGrid's retries: all duplicates); then the batches once more,
new ids, ``--in-flight`` (16) at a time, as SendGrid and several web instances
post in parallel (every answer counted: on PostgreSQL, SERIALIZABLE batches used
to fail with 503); for comparison, the same work in-process through
:func:`mailer.events.apply_events` without HTTP; and last, the same events saved as
one file and applied as ``mailer send ISSUE --reconcile FILE`` does, with every
member's ledger row ``unknown`` first.

Run it as ``.venv/bin/python benchmarks/webhook.py [--batches N] [--events N]
[--members N] [--postgres-url URL]``. SQLite writes to a temporary file;
PostgreSQL to a scratch schema on the server at 127.0.0.1:5432 (database
``test``), dropped afterwards. Figures are printed and written to
benchmarks/results/webhook.json, with the machine's load average: on a shared
2-core machine, other work skews them.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx
import psycopg
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import make_url

from mailer.events.apply import apply_events
from mailer.events.sendgrid import SendGridEvent
from mailer.mail import Delivery
from mailer.store import MemberRecord, open_store
from mailer.store.ledger import Ledger, new_owner

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ISSUE = "2026-12-03-winter-connections"
SECRET = "benchmark-secret-key-0123456789abcdef"
MIX = [  # (event, extra fields, weight per 100)
    ("processed", {}, 30),
    ("delivered", {}, 29),
    ("open", {}, 24),
    ("click", {"url": "https://connected-communities.example.org/events"}, 10),
    ("deferred", {"response": "421 try again later"}, 2),
    ("bounce", {"type": "blocked", "reason": "550 blocked"}, 2),
    ("bounce", {"type": "bounce", "reason": "550 5.1.1 no such user"}, 1),
    ("spamreport", {}, 1),
    ("unsubscribe", {}, 1),
]


def make_members(url: str, count: int) -> list[tuple[int, str]]:
    """``count`` members, all sent the issue (their ledger rows ``sent``)."""
    with open_store(url) as store:
        records = [MemberRecord(email=f"member{n:06d}@example.org") for n in range(count)]
        members = store.add(records, source="benchmark")
        ledger, owner = Ledger(store.engine), new_owner()
        ledger.acquire(ISSUE, "sendgrid", owner)
        for start in range(0, count, 1000):
            page = members[start : start + 1000]
            claim = ledger.claim(ISSUE, "general", [m.id for m in page], owner)
            ledger.record(
                ISSUE,
                owner,
                [(claim.claimed[m.id], Delivery(email=m.email, state="sent")) for m in page],
            )
        return [(m.id, m.email) for m in members]


def make_batches(
    members: list[tuple[int, str]], batches: int, size: int, seed: int = 2026
) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    kinds = [(event, extra) for event, extra, weight in MIX for _ in range(weight)]
    now = int(time.time()) + 60
    made: list[list[dict[str, Any]]] = []
    for b in range(batches):
        batch = []
        for n in range(size):
            member_id, email = rng.choice(members)
            event, extra = rng.choice(kinds)
            batch.append(
                {
                    "email": email,
                    "timestamp": now + rng.randint(0, 3600),
                    "event": event,
                    "sg_event_id": f"bench-{b:04d}-{n:05d}-{uuid.uuid4().hex[:12]}",
                    "sg_message_id": f"msg{member_id}.filter0001.16648.5515E0B88.0",
                    "smtp-id": f"<{member_id}@ismtpd>",
                    "category": ["newsletter"],
                    "issue": ISSUE,
                    "subscriber": str(member_id),
                    **extra,
                }
            )
        made.append(batch)
    return made


class Signer:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public(self) -> str:
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def headers(self, body: bytes) -> dict[str, str]:
        stamp = str(int(time.time()))
        signature = self.key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(url: str, signer: Signer) -> Iterator[str]:
    """``mailer serve`` on a free port, in its own process, until the block ends."""
    port = free_port()
    env = {
        **os.environ,
        "MAILER_DATABASE_URL": url,
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public,
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
    }
    mailer = str(Path(sys.executable).parent / "mailer")
    process = subprocess.Popen(
        [mailer, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                # /healthz is 503 until a scheduler runs: a static page says it is serving.
                if httpx.get(f"{base}/static/site.css", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("mailer serve did not start")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(10)


def post_all(base: str, signer: Signer, bodies: list[bytes]) -> dict[str, Any]:
    timings: list[float] = []
    stored = duplicates = 0
    with httpx.Client(base_url=base, timeout=60) as client:
        started = time.perf_counter()
        for body in bodies:
            headers = signer.headers(body)
            t0 = time.perf_counter()
            response = client.post("/webhooks/sendgrid", content=body, headers=headers)
            timings.append(time.perf_counter() - t0)
            response.raise_for_status()
            stored += response.json()["stored"]
            duplicates += response.json()["duplicates"]
        seconds = time.perf_counter() - started
    events = sum(len(json.loads(body)) for body in bodies)
    return {
        "events": events,
        "stored": stored,
        "duplicates": duplicates,
        "seconds": round(seconds, 3),
        "events_per_second": round(events / seconds),
        "batch_ms_median": round(statistics.median(timings) * 1000, 1),
        "batch_ms_max": round(max(timings) * 1000, 1),
    }


def post_concurrently(
    base: str, signer: Signer, bodies: list[bytes], in_flight: int
) -> dict[str, Any]:
    """The bodies posted ``in_flight`` at a time; answers counted by status."""
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    def post(body: bytes) -> tuple[int, int]:
        with httpx.Client(base_url=base, timeout=120) as client:
            response = client.post("/webhooks/sendgrid", content=body, headers=signer.headers(body))
            stored = response.json().get("stored", 0) if response.status_code == 200 else 0
            return response.status_code, stored

    started = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        answers = list(pool.map(post, bodies))
    seconds = time.perf_counter() - started
    events = sum(len(json.loads(body)) for body in bodies)
    return {
        "in_flight": in_flight,
        "batches": len(bodies),
        "statuses": {str(k): v for k, v in sorted(Counter(s for s, _ in answers).items())},
        "stored": sum(stored for _, stored in answers),
        "seconds": round(seconds, 3),
        "batches_per_second": round(len(bodies) / seconds, 2),
        "events_per_second": round(events / seconds),
    }


def in_process(url: str, batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """The same work without HTTP or signatures: parse the models, apply_events."""
    with open_store(url) as store:
        started = time.perf_counter()
        for batch in batches:
            apply_events(store, [SendGridEvent.model_validate(e) for e in batch])
        seconds = time.perf_counter() - started
    events = sum(len(b) for b in batches)
    return {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_second": round(events / seconds),
    }


def reconciling(url: str, batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """The same events as one saved file, through what ``mailer send --reconcile FILE``
    runs (read_events, then reconcile), with every member's row ``unknown`` first: what
    it is for (a send whose answers were lost)."""
    from sqlalchemy import text

    from mailer.events.reconcile import read_events, reconcile

    with open_store(url) as store, tempfile.TemporaryDirectory() as folder:
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE deliveries SET state = 'unknown'"))
        path = Path(folder) / "events.json"
        path.write_text(json.dumps([e for batch in batches for e in batch]), encoding="utf-8")
        started = time.perf_counter()
        events = read_events(path)
        done = reconcile(Ledger(store.engine), events)
        seconds = time.perf_counter() - started
    return {
        "events": len(events),
        "members_named": done.events,  # an (issue, member) once, however many events name it
        "rows_now_sent": done.sent,
        "seconds": round(seconds, 3),
        "events_per_second": round(len(events) / seconds),
    }


def fresh_ids(batches: list[list[dict[str, Any]]], tag: str) -> list[list[dict[str, Any]]]:
    return [[{**e, "sg_event_id": f"{e['sg_event_id']}-{tag}"} for e in batch] for batch in batches]


def analyze(url: str) -> None:
    """Table statistics, as autovacuum (or SQLite's optimizer) would have them in production;
    freshly filled tables without any mislead PostgreSQL's planner into scanning the ledger."""
    from sqlalchemy import text

    with open_store(url) as store, store.engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    members = make_members(url, args.members)
    analyze(url)
    batches = make_batches(members, args.batches, args.events)
    bodies = [json.dumps(batch).encode() for batch in batches]
    signer = Signer()
    with serving(url, signer) as base:
        first = post_all(base, signer, bodies)
        replay = post_all(base, signer, bodies)
        parallel = [json.dumps(b).encode() for b in fresh_ids(batches, "parallel")]
        concurrent = post_concurrently(base, signer, parallel, args.in_flight)
    direct = in_process(url, fresh_ids(batches, "direct"))
    return {
        "http": first,
        "http_replayed": replay,
        "http_concurrent": concurrent,
        "in_process": direct,
        "reconcile": reconciling(url, batches),
    }


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres(server: str, args: argparse.Namespace) -> dict[str, Any]:
    schema = f"mailer_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_libpq(server), autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
        return run(url.render_as_string(hide_password=False), args)
    finally:
        with psycopg.connect(_libpq(server), autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument(
        "--postgres-url", default=os.environ.get("MAILER_TEST_POSTGRES_URL", POSTGRES_URL)
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "webhook.json"
    )
    args = parser.parse_args()

    load_before = os.getloadavg()
    results: dict[str, Any] = {
        "batches": args.batches,
        "events_per_batch": args.events,
        "members": args.members,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
        },
    }
    with tempfile.TemporaryDirectory() as folder:
        results["sqlite"] = run(f"sqlite:///{Path(folder) / 'mailer.db'}", args)
    results["postgresql"] = postgres(args.postgres_url, args)
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]

    for backend in ("sqlite", "postgresql"):
        r = results[backend]
        print(
            f"{backend:>10}: {r['http']['events_per_second']:>6} events/s over HTTP "
            f"(median batch of {args.events}: {r['http']['batch_ms_median']} ms), "
            f"{r['http_replayed']['events_per_second']:>6} events/s replayed (duplicates), "
            f"{r['in_process']['events_per_second']:>6} events/s in-process"
        )
        e = r["reconcile"]
        print(
            f"{'':>10}  --reconcile of the same {e['events']} events, rows unknown: "
            f"{e['events_per_second']} events/s ({e['rows_now_sent']} rows now sent)"
        )
        c = r["http_concurrent"]
        print(
            f"{'':>10}  {c['in_flight']} in flight: {c['batches_per_second']} batches/s "
            f"({c['events_per_second']} events/s), answers {c['statuses']}, stored {c['stored']}"
        )
    print(
        f"load average before {load_before[0]:.2f}, after {results['machine']['load_average_after'][0]:.2f} "
        f"({os.cpu_count()} CPUs)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
