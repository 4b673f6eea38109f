"""How fast a whole send goes, and how much memory it takes, against the naive way and a client that does no work.

For the first sample issue and synthetic members spread evenly over 8 variants,
this measures a send end to end (the audience walk, rendering each variant once,
tokens, the ledger's claim and record per batch, the transport) through:

* the SendGrid double (tests/doubles/sendgrid), in its own process, answering each
  accepted request after 250 ms (``--latency``), as the real API does across the
  internet: 100,000 members (``--members``; a list such as ``100000,1000000``
  measures each);
* the outbox (one .eml per member, fsync'd), at the first of those sizes;
* SMTP to an aiosmtpd server in its own process that takes 20 ms per message
  (``--smtp-delay``): 10,000 members, with the default settings and again over
  one connection (``MAILER_SMTP_CONNECTIONS=1``).

Each send runs with the default settings (``auto``: see docs/sending.md) in a fresh
child process; its peak memory (the proportional set size of it and the
processes it forks, so shared pages count once) is sampled while it runs, and
reported above the memory it had before the send started. The load average of
the machine is recorded with each figure: other work on the same cores slows it.

The send runs as ``mailer send --yes`` does: the audience plan, then ``run_send``.

For SendGrid, a no-work client then posts the same requests again (as many, with
as many personalizations each, in the same order; built before the clock starts)
to a fresh double with the same latency, with as many in flight as the send had
(processes times requests in flight per process), through the same HTTP client:
the fastest the double and the network allow. The send's time against its time is
the cost of mailer's own work.

``--repeat N`` measures each send N times (a fresh copy of the store each time) and
reports the run with the median ratio (or time), every run's figures beside it.

The naive way renders (Jinja + MJML) and sends one message per recipient: one
request, file or SMTP transaction each. It is timed on a sample of recipients and
scaled up (``--naive-sample 0`` skips it).

The double checks every request against SendGrid's JSON Schema and its other
rules, as in the tests (the schema with jsonschema-rs first, see
tests/doubles/sendgrid/rules.py). It runs in its own process, on the same cores
as mailer: its work counts against the figures.

MAILER_BENCH_PROCESSES, MAILER_BENCH_CONCURRENCY and MAILER_BENCH_CONNECTIONS set
MAILER_SEND_PROCESSES, MAILER_SENDGRID_CONCURRENCY and MAILER_SMTP_CONNECTIONS for
the sends, to measure other values than the defaults.

Run: ``.venv/bin/python benchmarks/send.py [--members N[,N...]] [--smtp-members N] [--only sendgrid] [--repeat N]``.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
from mailer.mail import MAX_BATCH, Batch, Content, Recipient
from mailer.render import render_issue, variant_key
from mailer.sending.personalise import link_signer, links, member_values
from mailer.sending.send import run_send
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
SWEEP_RESULTS = ROOT / "benchmarks" / "results" / "send-settings.json"
SWEEP_IN_FLIGHT = (1, 2, 4, 8, 16)
SWEEP_PROCESSES = (2, 3, 4)
# Settings for the sends other than the defaults (see the module's docstring).
OVERRIDES = {
    field: os.environ[variable]
    for field, variable in (
        ("send_processes", "MAILER_BENCH_PROCESSES"),
        ("sendgrid_concurrency", "MAILER_BENCH_CONCURRENCY"),
        ("smtp_connections", "MAILER_BENCH_CONNECTIONS"),
    )
    if variable in os.environ
}

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


def memory_bytes(root: int | None = None) -> int:
    """What a process (this one by default) and its descendants use: the sum of their
    proportional set sizes.

    A send in several processes forks children that share the parent's pages; PSS
    counts a shared page once, split between the processes sharing it.
    """
    total = 0
    for pid in _process_tree(os.getpid() if root is None else root):
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


@dataclass
class Sampled:
    """What the memory sampler saw: the peak so far, and the CPU time it took itself."""

    peak: int
    cpu_seconds: float = 0.0


@contextmanager
def peak_memory(every: float = 0.25, root: int | None = None) -> Iterator[Sampled]:
    """The highest memory_bytes(root) seen while the block runs (sampled), readable afterwards.

    Reading the proportional set sizes walks every page table of the tree, some
    milliseconds a time: sampling every 50 ms took a tenth of the CPU the send was
    measured with, and as a thread of the sending process it was counted as mailer's.
    Memory grows and shrinks over seconds, so four samples a second find the peak; the
    sampler's CPU time is reported apart (``cpu_seconds``).
    """
    sampled = Sampled(memory_bytes(root))
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            sampled.peak = max(sampled.peak, memory_bytes(root))
        sampled.cpu_seconds = time.thread_time()

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield sampled
    finally:
        stop.set()
        thread.join()
        sampled.peak = max(sampled.peak, memory_bytes(root))


# -- child processes ---------------------------------------------------------------------


def _hold_sigterm() -> None:
    """Block SIGTERM (before any thread starts, so all inherit it) for sigwait to take."""
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])


def serve_sendgrid_double(latency: float, jitter: float) -> None:
    """Run the SendGrid double until SIGTERM; print its URL, then what it took."""
    from doubles.sendgrid import SendGridDouble

    _hold_sigterm()
    double = SendGridDouble(api_key=SG_KEY, latency=latency, jitter=jitter, keep_bodies=False)
    with double:
        print(double.url, flush=True)
        signal.sigwait([signal.SIGTERM])
        counts = double.delivery_counts()
        print(
            json.dumps(
                {
                    "messages": sum(counts.values()),
                    "most_to_one": max(counts.values(), default=0),
                    "requests": len(double.received),
                    "request_sizes": double.request_sizes,
                    "most_in_flight": double.most_in_flight,
                    "cpu_seconds": _cpu_seconds(),
                }
            ),
            flush=True,
        )


def serve_smtp_sink(delay: float) -> None:
    """An aiosmtpd server that takes ``delay`` seconds per message and counts what it takes
    (keeping 10,000 parsed emails would measure the server's memory, not mailer's);
    prints its port, then the count."""
    import asyncio

    from aiosmtpd.controller import Controller
    from doubles.smtp import free_port

    taken = [0]
    at_once = [0, 0]  # now, most

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            at_once[0] += 1
            at_once[1] = max(at_once)
            await asyncio.sleep(delay)
            at_once[0] -= 1
            taken[0] += len(envelope.rcpt_tos)
            return "250 2.0.0 queued"

    _hold_sigterm()
    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    signal.sigwait([signal.SIGTERM])
    controller.stop()
    print(
        json.dumps(
            {"messages": taken[0], "most_at_once": at_once[1], "cpu_seconds": _cpu_seconds()}
        ),
        flush=True,
    )


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
    return Settings(**{**fields, **OVERRIDES})


def child_send(transport: str, database: Path, work: Path, target: str) -> dict[str, Any]:
    """One whole send, as `mailer send --yes` does it (the plan, then ``run_send``), timed
    and with its memory sampled."""
    newsletter = load_newsletter(ROOT / "mailer.toml")
    issue = load_issue(ISSUE, newsletter)
    settings = settings_for(transport, database, work, target)
    before = memory_bytes()
    cpu_before = _cpu_seconds()
    with open_store(settings.database_url) as store, peak_memory() as sampled:
        ledger = Ledger(store.engine)
        start = time.perf_counter()
        audience = plan(store, issue, newsletter)
        planned = time.perf_counter()
        with open_transport(settings) as transport_:
            summary = run_send(
                issue,
                newsletter,
                settings,
                store,
                ledger,
                transport_,
                link_signer(settings),
                audience,
            )
        seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_before
    sampler = sampled.cpu_seconds
    return {
        "cpu_seconds": cpu,  # of the send's processes, the memory sampler's included
        "memory_sampler_cpu_seconds": sampler,
        "mailer_cpu_seconds": cpu - sampler,
        "mailer_cpu_seconds_per_100k": (cpu - sampler) / max(1, summary.total("sent")) * 1e5,
        "processes": settings.processes_for(audience.to_send + audience.interrupted),
        "in_flight_per_process": settings.sendgrid_requests_in_flight
        if transport == "sendgrid"
        else 1,
        "connections_per_process": settings.smtp_connection_count if transport == "smtp" else 0,
        "recipients": summary.total("sent"),
        "failed": summary.total("failed") + summary.total("unknown"),
        "variants": len(summary.variants),
        "seconds": seconds,
        "plan_seconds": planned - start,
        "recipients_per_second": summary.total("sent") / seconds,
        "memory_before_mb": before / 1e6,
        "peak_memory_mb": sampled.peak / 1e6,
        "peak_memory_above_start_mb": (sampled.peak - before) / 1e6,
    }


def _cpu_seconds() -> float:
    """CPU time (user and system) of this process and the children it waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


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


def child_nowork(database: Path, target: str, sizes_file: Path, in_flight: int) -> dict[str, Any]:
    """Post the send's requests again, ``in_flight`` at a time, doing no other work: as many
    requests as the send made, with as many personalizations each, in the same order (the
    sizes the double counted, in ``sizes_file``). The bodies (one per size, of the store's
    first members of a variant, built as mailer builds them) are made before the clock
    starts, and posted through the same HTTP client as mailer's."""
    from mailer.transports.sendgrid import SendGridTransport, _Encoded, request_body

    sizes: list[int] = json.loads(sizes_file.read_text(encoding="utf-8"))
    newsletter = load_newsletter(ROOT / "mailer.toml")
    issue = load_issue(ISSUE, newsletter)
    settings = settings_for("sendgrid", database, database.parent, target)
    signer = link_signer(settings)
    by_variant: dict[Any, list[Subscriber]] = {}
    with open_store(settings.database_url) as store:
        for member in itertools.islice(store.active(), 8 * MAX_BATCH):
            key = variant_key(issue, segments_of(member, newsletter))
            by_variant.setdefault(key, []).append(member)
    recipients: list[tuple[Content, list[Recipient]]] = []
    for key, members in by_variant.items():
        [variant] = render_issue(
            issue, newsletter, [key], archive_url=f"{BASE_URL}/archive/{issue.slug}"
        )
        people = []
        for member in members:
            member_links = links(member.id, signer, settings.base_url)
            people.append(
                Recipient(
                    email=member.email,
                    name=member.name,
                    values=values_of(variant, member_values(member, member_links)),
                    unsubscribe_url=member_links["unsubscribe_url"],
                    custom_args={"issue": issue.slug, "subscriber": str(member.id)},
                )
            )
        recipients.append((content_of(variant), people))
    bodies: dict[int, _Encoded] = {}
    for turn, size in enumerate(sorted(set(sizes))):  # the variants taken in turn
        content, people = recipients[turn % len(recipients)]
        if len(people) < size:  # a smaller request would flatter the no-work client
            raise SystemExit(
                f"the no-work client has {len(people)} members for a request of {size}"
            )
        batch = Batch(
            issue=issue.slug,
            sender=newsletter.sender,
            content=content,
            list_id=list_id(newsletter.name, newsletter.list_id),
            recipients=people[:size],
        )
        bodies[size] = _Encoded(request_body(batch).encode())
    transport = SendGridTransport(SecretStr(SG_KEY), api_url=target, timeout=120.0)
    taken = itertools.count()
    failures: list[str] = []

    def post() -> None:
        try:
            while (index := next(taken)) < len(sizes):
                outcome = transport._post(bodies[sizes[index]])
                if outcome.kind != "accepted":
                    failures.append(str(outcome.error))
        except Exception as error:  # reported below, not lost with the thread
            failures.append(repr(error))

    threads = [threading.Thread(target=post) for _ in range(in_flight)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if failures:
        raise SystemExit(f"the no-work client's requests failed: {failures[:3]}")
    return {
        "cpu_seconds": _cpu_seconds(),
        "requests": len(sizes),
        "recipients": sum(sizes),
        "in_flight": in_flight,
        "seconds": seconds,
        "recipients_per_second": sum(sizes) / seconds,
    }


# -- orchestration -------------------------------------------------------------------------


def _python(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


@contextmanager
def server(kind: str, *options: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """A double in its own process; yields its address, and after it stops, what it took."""
    process = subprocess.Popen(
        _python("--serve", kind, *options), stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    address = process.stdout.readline().strip()
    report: dict[str, Any] = {}
    try:
        yield address, report
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=300)
        if out.strip():
            report.update(json.loads(out.strip().splitlines()[-1]))


def run_child(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        _python(*args), capture_output=True, text=True, check=False, env=env or None
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark child {args} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def load() -> list[float]:
    """The machine's load average over 1, 5 and 15 minutes (as `uptime` shows it)."""
    return [round(figure, 2) for figure in os.getloadavg()]


def measure(
    name: str,
    transport: str,
    count: int,
    folder: Path,
    databases: dict[int, Path],
    args: argparse.Namespace,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The send (and the naive sample, the no-work client) through one transport, each in
    fresh processes."""
    work = Path(tempfile.mkdtemp(prefix=f"{transport}-", dir=folder))
    database = work / "mailer.db"
    shutil.copy(databases[count], database)
    options = {
        "sendgrid": ["--latency", str(args.latency), "--jitter", str(args.jitter)],
        "smtp": ["--delay", str(args.smtp_delay)],
    }.get(transport)
    naive: dict[str, Any] | None = None
    nowork: dict[str, Any] | None = None
    load_before = load()
    if options is None:
        result = run_child("--child", transport, str(database), str(work), "-", env=env)
        load_after = load()
        if args.naive_sample:
            naive = run_child(
                "--naive", transport, str(database), str(work), "-", str(args.naive_sample)
            )
    else:
        with server(transport, *options) as (address, received):
            result = run_child("--child", transport, str(database), str(work), address, env=env)
        load_after = load()
        result["server_received"] = received
        if received.get("messages") != result["recipients"]:
            raise SystemExit(
                f"{transport}: the server took {received}, mailer sent {result['recipients']}"
            )
        if transport == "sendgrid":
            sizes = received.pop("request_sizes")
            received["mean_request_size"] = sum(sizes) / max(1, len(sizes))
            sizes_file = work / "request-sizes.json"
            sizes_file.write_text(json.dumps(sizes), encoding="utf-8")
            in_flight = result["processes"] * result["in_flight_per_process"]
            with server(transport, *options) as (address, _):
                nowork = run_child(
                    "--nowork", str(database), address, str(sizes_file), str(in_flight)
                )
            nowork["load_average"] = load()
        if args.naive_sample:
            with server(transport, *options) as (address, _):
                naive = run_child(
                    "--naive", transport, str(database), str(work), address, str(args.naive_sample)
                )
    shutil.rmtree(work, ignore_errors=True)  # 100,000 .eml files are ~6 GB
    figures: dict[str, Any] = {
        **result,
        "name": name,
        "transport": transport,
        "members": count,
        "load_average": {"before": load_before, "after": load_after},
    }
    if transport == "sendgrid":
        figures["latency_seconds"] = [args.latency, args.jitter]
    if transport == "smtp":
        figures["server_delay_seconds"] = args.smtp_delay
    if nowork is not None:
        figures["nowork_client"] = nowork
        # The same requests, so the same recipients: the ratio of the times.
        figures["nowork_ratio"] = result["seconds"] / nowork["seconds"]
    if naive is not None:
        naive_total = naive["seconds_per_recipient"] * result["recipients"]
        figures.update(
            naive_seconds_per_recipient=naive["seconds_per_recipient"],
            naive_sample=naive["sample"],
            naive_seconds_estimated=naive_total,
            speedup_over_naive=naive_total / result["seconds"],
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", default="100000", help="a number, or several: 100000,1000000")
    parser.add_argument("--smtp-members", type=int, default=10_000)
    parser.add_argument("--naive-sample", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.25, help="the double's, in seconds")
    parser.add_argument("--jitter", type=float, default=0.0, help="up to this much more, at random")
    parser.add_argument("--smtp-delay", type=float, default=0.02, help="per message, in seconds")
    parser.add_argument("--only", default="sendgrid,outbox,smtp")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="measure the settings behind the defaults instead (SendGrid, the first --members): "
        "one process with 1 to 16 requests in flight, then 2 to 4 processes; to "
        "results/send-settings.json",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each send this many times; the run with the median figure is reported",
    )
    # Internal: the child processes.
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--naive", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--nowork", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "sendgrid":
        return serve_sendgrid_double(args.latency, args.jitter)
    if args.serve == "smtp":
        return serve_smtp_sink(args.delay)
    if args.child:
        transport, database, work, target = args.child
        print(json.dumps(child_send(transport, Path(database), Path(work), target)))
        return None
    if args.naive:
        transport, database, work, target, sample = args.naive
        print(json.dumps(child_naive(transport, Path(database), Path(work), target, int(sample))))
        return None
    if args.nowork:
        database, target, sizes, in_flight = args.nowork
        print(json.dumps(child_nowork(Path(database), target, Path(sizes), int(in_flight))))
        return None
    orchestrate(args)
    return None


def orchestrate(args: argparse.Namespace) -> None:
    wanted = [] if args.sweep else args.only.split(",")
    sizes = [int(size) for size in str(args.members).split(",")]
    runs: list[tuple[str, str, int, dict[str, str] | None]] = []
    if args.sweep:
        runs += sweep_runs(sizes[0])
    if "sendgrid" in wanted:
        runs += [("sendgrid", "sendgrid", size, None) for size in sizes]
    if "outbox" in wanted:
        runs.append(("outbox", "outbox", sizes[0], None))
    if "smtp" in wanted:
        one = {**os.environ, "MAILER_BENCH_CONNECTIONS": "1"}
        runs += [
            ("smtp", "smtp", args.smtp_members, None),
            ("smtp, one connection", "smtp", args.smtp_members, one),
        ]
    folder = Path(tempfile.mkdtemp(prefix="mailer-bench-send-"))
    try:
        databases: dict[int, Path] = {}
        for count in sorted({count for _, _, count, _ in runs}):
            start = time.perf_counter()
            databases[count] = make_database(folder, count)
            print(
                f"store with {count:,} members built in {time.perf_counter() - start:.1f} s",
                flush=True,
            )
        results = []
        for name, transport, count, env in runs:
            repeats = []
            for _ in range(max(1, args.repeat)):
                repeats.append(measure(name, transport, count, folder, databases, args, env))
                _print(repeats[-1])
            result = median_run(repeats)
            results.append(result)
            if len(repeats) > 1:
                print(f"{'median':>20}: ", end="")
                _print(result)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.sweep:
        write_results(SWEEP_RESULTS, results, "per send: processes, in_flight_per_process")
    else:
        write_results(RESULTS, results, OVERRIDES or "defaults (auto)")


def sweep_runs(members: int) -> list[tuple[str, str, int, dict[str, str] | None]]:
    """The sends behind the defaults: one process with 1 to 16 requests in flight, then 2 to
    4 processes with the default number in flight each."""
    settings = [
        (
            f"1 process x {n} in flight",
            {"MAILER_BENCH_PROCESSES": "1", "MAILER_BENCH_CONCURRENCY": str(n)},
        )
        for n in SWEEP_IN_FLIGHT
    ] + [
        (f"{n} processes x auto in flight", {"MAILER_BENCH_PROCESSES": str(n)})
        for n in SWEEP_PROCESSES
    ]
    return [(name, "sendgrid", members, {**os.environ, **env}) for name, env in settings]


def write_results(path: Path, results: list[dict[str, Any]], settings: Any) -> None:
    """The figures to ``path``; those of sends not measured this time are kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    earlier = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    measured = {(r["name"], r["members"]) for r in results}
    kept = [
        {"name": r["transport"], **r}
        for r in earlier.get("results", [])
        if (r.get("name", r["transport"]), r["members"]) not in measured
    ]
    path.write_text(
        json.dumps(
            {
                "issue": ISSUE.name,
                "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "settings": settings,
                "results": sorted(
                    [*results, *kept], key=lambda r: (r["transport"], r["name"], r["members"])
                ),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"written to {path.relative_to(ROOT)}")


def median_run(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median figure (the ratio to the no-work client where there is one,
    else the time), with every run's main figures beside it."""
    ranked = sorted(repeats, key=lambda r: r.get("nowork_ratio", r["seconds"]))
    chosen = dict(ranked[(len(ranked) - 1) // 2])
    if len(repeats) > 1:
        chosen["repeats"] = [
            {
                "seconds": r["seconds"],
                "recipients_per_second": r["recipients_per_second"],
                "nowork_ratio": r.get("nowork_ratio"),
                "peak_memory_mb": r["peak_memory_mb"],
                "mailer_cpu_seconds": r["mailer_cpu_seconds"],
                "load_average": r["load_average"],
            }
            for r in repeats
        ]
    return chosen


def _print(result: dict[str, Any]) -> None:
    line = (
        f"{result['name']:>20}: {result['recipients']:,} recipients in {result['seconds']:.1f} s "
        f"= {result['recipients_per_second']:,.0f}/s ({result['processes']} processes"
    )
    if result["transport"] == "sendgrid":
        line += f", {result['in_flight_per_process']} requests in flight each"
    if result["transport"] == "smtp":
        line += f", {result['connections_per_process']} connections each"
    line += (
        f"; {result['mailer_cpu_seconds']:.1f} CPU s (+{result['memory_sampler_cpu_seconds']:.1f} "
        f"the memory sampler's), the server {result['server_received'].get('cpu_seconds', 0):.1f}"
        if "server_received" in result
        else f"; {result['mailer_cpu_seconds']:.1f} CPU s"
    )
    line += (
        f"); peak memory {result['peak_memory_mb']:.0f} MB "
        f"({result['peak_memory_above_start_mb']:.0f} MB above start); "
        f"load average {result['load_average']['before'][0]}-{result['load_average']['after'][0]}"
    )
    if "nowork_client" in result:
        line += (
            f"; no-work client {result['nowork_client']['recipients_per_second']:,.0f}/s "
            f"({result['nowork_ratio']:.2f}x)"
        )
    if "speedup_over_naive" in result:
        line += (
            f"; naive way {1 / result['naive_seconds_per_recipient']:,.0f}/s, "
            f"so {result['speedup_over_naive']:,.0f}x faster"
        )
    print(line, flush=True)


if __name__ == "__main__":
    main()
