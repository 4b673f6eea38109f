"""How fast a whole send goes, and how much memory it takes, against the naive way.

For the first sample issue and synthetic members spread evenly over 8 variants,
this measures a send end to end (the audience walk, rendering each variant once,
tokens, the ledger's claim and record per batch, the transport) through:

* the SendGrid double (tests/doubles/sendgrid), in its own process: 100,000 members;
* the outbox (one .eml per member, fsync'd): 100,000 members;
* SMTP to an aiosmtpd server in its own process: 10,000 members.

Each send runs in a fresh child process; its peak memory (the proportional set
size of it and the processes it forks, so shared pages count once) is sampled
while it runs, and reported above the memory it had before the send started.
Running the SendGrid send again with three times the members shows whether
memory grows with the list.

The naive way renders (Jinja + MJML) and sends one message per recipient: one
request, file or SMTP transaction each. It is timed on a sample of recipients and
scaled up, as running it for 100,000 would take hours.

The double checks every request against SendGrid's JSON Schema and its other
rules, as in the tests (the schema with jsonschema-rs first, see
tests/doubles/sendgrid/rules.py). It runs in its own process, on the same two
cores as mailer: its work counts against the figures.

Each send shares its list between two processes, as ``MAILER_SEND_PROCESSES=2``
does (set MAILER_BENCH_PROCESSES to measure another number; 1 is one process).

Run: ``.venv/bin/python benchmarks/send.py [--members N] [--smtp-members N] [--only sendgrid]``.
Figures are printed and written to benchmarks/results/send.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pydantic import SecretStr

from mailer.audience.plan import plan
from mailer.audience.segments import segments_of
from mailer.config import Newsletter, Settings, TransportName, load_newsletter
from mailer.issues.check import load_issue
from mailer.issues.model import Issue
from mailer.mail import Batch, Recipient
from mailer.render import render_issue, variant_key
from mailer.sending.personalise import link_signer, links, member_values
from mailer.sending.run import SendRun
from mailer.store import MemberRecord, Subscriber, open_store
from mailer.store.ledger import Ledger
from mailer.transports import Transport, open_transport
from mailer.transports.message import list_id
from mailer.transports.variant import content_of, values_of

ISSUE = sorted((ROOT / "issues").glob("*.yaml"))[0]
SECRET = "benchmark-secret-key-0123456789abcdef"
SG_KEY = "SG.benchmark-key"
BASE_URL = "https://news.example.org"
RESULTS = ROOT / "benchmarks" / "results" / "send.json"
PROCESSES = int(os.environ.get("MAILER_BENCH_PROCESSES", "2"))
MEMORY_CHECK_TIMES = 3  # the SendGrid send is run again with this many times the members

# Eight member profiles, one per variant of the sample issue.
PROFILES: list[tuple[tuple[str, ...], str]] = [
    ((), "Yorkshire and the Humber"),
    (("youth-loneliness",), "London"),
    (("intergenerational",), "North East"),
    (("in-person",), "South West"),
    ((), "Wales"),
    ((), "Scotland"),
    ((), "Northern Ireland"),
    (("youth-loneliness", "in-person"), "Wales"),
]


def records(count: int) -> Iterator[MemberRecord]:
    for n in range(count):
        tags, region = PROFILES[n % len(PROFILES)]
        yield MemberRecord(
            email=f"member{n:06d}@example.org",
            name=f"Member{n} Example",
            organisation=f"Group {n % 977} & Friends",
            region=region,
            tags=tags,
        )


def make_database(folder: Path, count: int) -> Path:
    path = folder / f"members-{count}.db"
    with open_store(f"sqlite:///{path}") as store:
        batch = list(records(count))
        store.upsert_many(batch, source="benchmark")
    return path


# -- memory ------------------------------------------------------------------------------


def memory_bytes() -> int:
    """What this process and its descendants use: the sum of their proportional set sizes.

    A send in several processes forks children that share the parent's pages; PSS
    counts a shared page once, split between the processes sharing it.
    """
    total = 0
    for pid in _process_tree(os.getpid()):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                total += next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue  # ended meanwhile
    return total * 1024


def _process_tree(pid: int) -> Iterator[int]:
    yield pid
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = task.read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for child in children:
            yield from _process_tree(int(child))


@contextmanager
def peak_memory(every: float = 0.02) -> Iterator[Callable[[], int]]:
    """The highest memory_bytes() seen while the block runs (sampled), readable afterwards."""
    peak = [memory_bytes()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            peak[0] = max(peak[0], memory_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0]
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], memory_bytes())


# -- child processes ---------------------------------------------------------------------


def _hold_sigterm() -> None:
    """Block SIGTERM (before any thread starts, so all inherit it) for sigwait to take."""
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])


def serve_sendgrid_double() -> None:
    """Run the SendGrid double until SIGTERM; print its URL, then how many messages it took."""
    from doubles.sendgrid import SendGridDouble

    _hold_sigterm()
    with SendGridDouble(api_key=SG_KEY) as double:
        print(double.url, flush=True)
        signal.sigwait([signal.SIGTERM])
        counts = double.delivery_counts()
        print(
            json.dumps(
                {"messages": sum(counts.values()), "most_to_one": max(counts.values(), default=0)}
            ),
            flush=True,
        )


def serve_smtp_sink() -> None:
    """An aiosmtpd server that counts what it takes (keeping 10,000 parsed emails would
    measure the server's memory, not mailer's); prints its port, then the count."""
    from aiosmtpd.controller import Controller
    from doubles.smtp import free_port

    taken = [0]

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            taken[0] += len(envelope.rcpt_tos)
            return "250 2.0.0 queued"

    _hold_sigterm()
    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    signal.sigwait([signal.SIGTERM])
    controller.stop()
    print(json.dumps({"messages": taken[0]}), flush=True)


def settings_for(transport: str, database: Path, work: Path, target: str) -> Settings:
    fields: dict[str, Any] = {
        "database_url": f"sqlite:///{database}",
        "transport": TransportName(transport),
        "outbox_dir": work / "outbox",
        "base_url": BASE_URL,
        "secret_key": SecretStr(SECRET),
        "sendgrid_api_key": SecretStr(SG_KEY),
        "send_timeout": 120.0,
    }
    if transport == "sendgrid":
        fields["sendgrid_api_url"] = target
    if transport == "smtp":
        fields["smtp_url"] = SecretStr(f"smtp://127.0.0.1:{target}")
    return Settings(**fields)


def child_send(transport: str, database: Path, work: Path, target: str) -> dict[str, Any]:
    """One whole send, as `mailer send --yes` does it, timed and with its memory sampled."""
    newsletter = load_newsletter(ROOT / "mailer.toml")
    issue = load_issue(ISSUE, newsletter)
    settings = settings_for(transport, database, work, target)
    before = memory_bytes()
    with open_store(settings.database_url) as store, peak_memory() as peak:
        ledger = Ledger(store.engine)
        start = time.perf_counter()
        audience = plan(store, issue, newsletter)
        planned = time.perf_counter()
        with open_transport(settings) as transport_:
            run = SendRun(
                issue,
                newsletter,
                settings,
                store,
                ledger,
                transport_,
                link_signer(settings),
                processes=PROCESSES,
            )
            run.start()
            summary = run.run(keys=[v.key for v in audience.variants.values() if v.to_send])
        seconds = time.perf_counter() - start
    return {
        "recipients": summary.total("sent"),
        "failed": summary.total("failed") + summary.total("unknown"),
        "variants": len(summary.variants),
        "seconds": seconds,
        "plan_seconds": planned - start,
        "recipients_per_second": summary.total("sent") / seconds,
        "memory_before_mb": before / 1e6,
        "peak_memory_mb": peak() / 1e6,
        "peak_memory_above_start_mb": (peak() - before) / 1e6,
    }


def child_naive(
    transport: str, database: Path, work: Path, target: str, sample: int
) -> dict[str, Any]:
    """The naive way for `sample` members: render the issue and send it, one recipient at a time."""
    newsletter = load_newsletter(ROOT / "mailer.toml")
    issue = load_issue(ISSUE, newsletter)
    settings = settings_for(transport, database, work, target)
    signer = link_signer(settings)
    with open_store(settings.database_url) as store, open_transport(settings) as transport_:
        members = list(itertools.islice(store.active(), sample))
        start = time.perf_counter()
        for member in members:
            _send_one_naively(issue, newsletter, settings, signer, transport_, member)
        seconds = time.perf_counter() - start
    return {"sample": len(members), "seconds_per_recipient": seconds / len(members)}


def _send_one_naively(
    issue: Issue,
    newsletter: Newsletter,
    settings: Settings,
    signer: Any,
    transport: Transport,
    member: Subscriber,
) -> None:
    key = variant_key(issue, segments_of(member, newsletter))
    [variant] = render_issue(
        issue, newsletter, [key], archive_url=f"{BASE_URL}/archive/{issue.slug}"
    )
    member_links = links(member.id, signer, settings.base_url)
    recipient = Recipient(
        email=member.email,
        name=member.name,
        values=values_of(variant, member_values(member, member_links)),
        unsubscribe_url=member_links["unsubscribe_url"],
        custom_args={"issue": issue.slug, "subscriber": str(member.id)},
    )
    batch = Batch(
        issue=f"{issue.slug}-naive",
        sender=newsletter.sender,
        content=content_of(variant),
        list_id=list_id(newsletter.name, newsletter.list_id),
        recipients=[recipient],
    )
    transport.send(batch)


# -- orchestration -------------------------------------------------------------------------


def _python(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


@contextmanager
def server(kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """A double in its own process; yields its address, and after it stops, what it took."""
    args = ["--serve", kind]
    process = subprocess.Popen(_python(*args), stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    address = process.stdout.readline().strip()
    report: dict[str, Any] = {}
    try:
        yield address, report
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=120)
        if out.strip():
            report.update(json.loads(out.strip().splitlines()[-1]))


def run_child(*args: str) -> dict[str, Any]:
    done = subprocess.run(_python(*args), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child {args} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(
    transport: str,
    count: int,
    folder: Path,
    databases: dict[int, Path],
    naive_sample: int,
) -> dict[str, Any]:
    """The send and the naive sample through one transport, each in fresh processes."""
    work = Path(tempfile.mkdtemp(prefix=f"{transport}-", dir=folder))
    database = work / "mailer.db"
    shutil.copy(databases[count], database)
    kind = {"sendgrid": "sendgrid", "smtp": "smtp"}.get(transport)
    if kind is None:
        result = run_child("--child", transport, str(database), str(work), "-")
        naive = run_child("--naive", transport, str(database), str(work), "-", str(naive_sample))
    else:
        with server(kind) as (address, received):
            result = run_child("--child", transport, str(database), str(work), address)
        with server(kind) as (address, _):
            naive = run_child(
                "--naive", transport, str(database), str(work), address, str(naive_sample)
            )
        result["server_received"] = received
        if received.get("messages") != result["recipients"]:
            raise SystemExit(
                f"{transport}: the server took {received}, mailer sent {result['recipients']}"
            )
    shutil.rmtree(work, ignore_errors=True)  # 100,000 .eml files are ~6 GB
    naive_total = naive["seconds_per_recipient"] * result["recipients"]
    return {
        **result,
        "transport": transport,
        "members": count,
        "naive_seconds_per_recipient": naive["seconds_per_recipient"],
        "naive_sample": naive["sample"],
        "naive_seconds_estimated": naive_total,
        "speedup_over_naive": naive_total / result["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--smtp-members", type=int, default=10_000)
    parser.add_argument("--naive-sample", type=int, default=100)
    parser.add_argument("--only", default="sendgrid,outbox,smtp")
    # Internal: the child processes.
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--naive", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "sendgrid":
        return serve_sendgrid_double()
    if args.serve == "smtp":
        return serve_smtp_sink()
    if args.child:
        transport, database, work, target = args.child
        print(json.dumps(child_send(transport, Path(database), Path(work), target)))
        return None
    if args.naive:
        transport, database, work, target, sample = args.naive
        print(json.dumps(child_naive(transport, Path(database), Path(work), target, int(sample))))
        return None
    orchestrate(args)
    return None


def orchestrate(args: argparse.Namespace) -> None:
    wanted = args.only.split(",")
    sizes = {"sendgrid": args.members, "outbox": args.members, "smtp": args.smtp_members}
    folder = Path(tempfile.mkdtemp(prefix="mailer-bench-send-"))
    try:
        counts = sorted(
            {sizes[t] for t in wanted}
            | ({args.members * MEMORY_CHECK_TIMES} if "sendgrid" in wanted else set())
        )
        databases: dict[int, Path] = {}
        for count in counts:
            start = time.perf_counter()
            databases[count] = make_database(folder, count)
            print(
                f"store with {count:,} members built in {time.perf_counter() - start:.1f} s",
                flush=True,
            )
        results = []
        for transport in wanted:
            result = measure(transport, sizes[transport], folder, databases, args.naive_sample)
            results.append(result)
            _print(result)
        memory = None
        if "sendgrid" in wanted:
            memory = _memory_check(args.members, folder, databases, results)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # A run with --only keeps the figures of the transports it did not measure.
    earlier = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    kept = [r for r in earlier.get("results", []) if r["transport"] not in wanted]
    RESULTS.write_text(
        json.dumps(
            {
                "issue": ISSUE.name,
                "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "processes": PROCESSES,
                "results": [*results, *kept],
                "memory_does_not_grow": memory or earlier.get("memory_does_not_grow"),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"written to {RESULTS.relative_to(ROOT)}")


def _memory_check(
    members: int, folder: Path, databases: dict[int, Path], results: list[dict[str, Any]]
) -> dict[str, Any]:
    """The SendGrid send again with MEMORY_CHECK_TIMES as many members: the same peak
    memory means that memory does not grow with the list. (A smaller list would end
    before the send's buffers reach their steady size, and so would prove nothing.)"""
    larger = measure("sendgrid", members * MEMORY_CHECK_TIMES, folder, databases, 10)
    first = next(r for r in results if r["transport"] == "sendgrid")
    peaks = [round(r["peak_memory_above_start_mb"], 1) for r in (first, larger)]
    print(
        f"memory: peak above start {peaks[0]} MB at {members:,} members, "
        f"{peaks[1]} MB at {larger['members']:,} "
        f"({larger['recipients_per_second']:,.0f} recipients/s)"
    )
    return {
        "members": [members, larger["members"]],
        "peak_memory_above_start_mb": peaks,
        "recipients_per_second": [
            round(first["recipients_per_second"]),
            round(larger["recipients_per_second"]),
        ],
    }


def _print(result: dict[str, Any]) -> None:
    print(
        f"{result['transport']:>8}: {result['recipients']:,} recipients in {result['seconds']:.1f} s "
        f"= {result['recipients_per_second']:,.0f}/s end to end "
        f"(audience plan {result['plan_seconds']:.1f} s); peak memory {result['peak_memory_mb']:.0f} MB "
        f"({result['peak_memory_above_start_mb']:.0f} MB above start); naive way "
        f"{1 / result['naive_seconds_per_recipient']:,.0f}/s, so {result['speedup_over_naive']:,.0f}x faster",
        flush=True,
    )


if __name__ == "__main__":
    main()
