"""How fast `mailer report` is over 1,000,000 stored events for one issue, on SQLite and PostgreSQL.

For each database, a store as a year of a large list would leave it:

* ``--members`` members (100,000 by default), imported through the store
  (``upsert_many``, as `mailer subscribers import` does), spread over variants
  (youth, wales, youth+wales, in-person, general); a few thousand of them
  unsubscribe, bounce or complain between issues (their history and status);
* ``--earlier`` issues sent fortnightly before the one reported (12 by default),
  each to every member: that many ledger rows per member (the report's list health
  counts them);
* the reported issue, sent to every member, and ``--events`` (1,000,000) SendGrid
  events for it in the webhook log: processed, delivered, deferred, bounces,
  drops, about ten opens per opener (Apple Mail's pre-fetching inflates them),
  clicks over 40 links and members' own unsubscribe links, spam reports and
  unsubscribes.

Events, ledger rows and history go in in bulk (executemany on SQLite, COPY on
PostgreSQL). PostgreSQL's tables are then vacuumed and analysed, as autovacuum
would have done on a live server; SQLite's are not analysed, as mailer never
does it. Then, timed:

* ``query``: :func:`mailer.report.build.issue_report` in this process (the whole
  query layer: ledger counts, the events summed per member then per variant,
  unsubscribes, the top links, list health), first run and the median of
  ``--repeat``; and each query on its own;
* ``cli_json`` and ``cli_table``: `mailer report ISSUE --json` and the table, in
  a fresh process each (Python's start-up and imports included);
* ``cli_html``: `mailer report ISSUE --html FILE` (matplotlib imported, charts drawn);
* ``cli_list``: `mailer report --list`.

The report's figures are checked against what was generated.

Run it as ``.venv/bin/python benchmarks/report.py [--events N] [--members N]
[--earlier N] [--repeat N] [--postgres-url URL]``. SQLite writes to a temporary
file; PostgreSQL to a scratch schema on the server at 127.0.0.1:5432 (database
``test``), dropped afterwards. The figures are printed and written to
benchmarks/results/report.json, with the machine's load average: on a shared
2-core machine, other work skews them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg
from sqlalchemy import make_url

from mailer.config import load_newsletter
from mailer.report import queries
from mailer.report.build import issue_report
from mailer.store import MemberRecord, open_store
from mailer.store.transact import read

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ISSUE = "2026-12-03-winter-connections"
BASE_URL = "https://news.example.org"
SITE = "https://connected-communities.example.org"
SENT_AT = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
FORTNIGHT = dt.timedelta(days=14)
# (variant, tags, region, share of members)
VARIANTS = [
    ("general", (), "London", 50),
    ("youth", ("youth-loneliness",), "London", 20),
    ("wales", (), "Wales", 10),
    ("youth+wales", ("youth-loneliness",), "Wales", 5),
    ("in-person", ("in-person",), "London", 15),
]
LINKS = [f"{SITE}/news/{n:02d}-{'x' * (n % 7)}" for n in range(40)]


@dataclass
class Generated:
    """What went in, to check the report against."""

    events: int = 0
    delivered: set[int] = field(default_factory=set)
    opened: set[int] = field(default_factory=set)
    opens: int = 0
    clicks: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


# -- bulk loading -----------------------------------------------------------------------------


class Loader:
    """Rows straight into tables: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")

    def time(self, value: dt.datetime) -> Any:
        """A time as the UTCDateTime column keeps it (text on SQLite)."""
        if self.sqlite:
            return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        return value

    def load(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        names = ", ".join(columns)
        if self.sqlite:
            with closing(sqlite3.connect(make_url(self.url).database or "")) as connection:
                marks = ", ".join("?" * len(columns))
                with connection:
                    connection.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            return
        with (
            psycopg.connect(_libpq(self.url)) as connection,
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def execute(self, sql: str) -> None:
        if self.sqlite:
            with (
                closing(sqlite3.connect(make_url(self.url).database or "")) as connection,
                connection,
            ):
                connection.execute(sql)
            return
        with psycopg.connect(_libpq(self.url), autocommit=True) as connection:
            connection.execute(sql)

    def analyse(self) -> None:
        """PostgreSQL's statistics and visibility map, as autovacuum keeps them on a live server.

        SQLite is left without statistics: mailer never runs ANALYZE there, so the
        report must pick its indexes without them.
        """
        if not self.sqlite:
            with psycopg.connect(_libpq(self.url), autocommit=True) as connection:
                connection.execute("VACUUM ANALYZE")


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def variant_of(member: int) -> tuple[str, tuple[str, ...], str]:
    placeholder = member % 100
    for name, tags, region, share in VARIANTS:
        if placeholder < share:
            return name, tags, region
        placeholder -= share
    raise AssertionError("the shares add up to 100")


def populate(url: str, args: argparse.Namespace) -> tuple[Generated, dict[str, float]]:
    rng = random.Random(2026)
    timings: dict[str, float] = {}
    loader = Loader(url)
    started = time.perf_counter()
    first_sent = SENT_AT - args.earlier * FORTNIGHT
    import time_machine  # the members joined before the first issue, not today

    with (
        time_machine.travel(first_sent - dt.timedelta(days=30), tick=False),
        open_store(url) as store,
    ):
        records = [
            MemberRecord(
                email=f"member{n:06d}@example.org",
                name=f"Member {n}",
                region=variant_of(n)[2],
                tags=variant_of(n)[1],
            )
            for n in range(args.members)
        ]
        store.upsert_many(records, source="benchmark")
    with open_store(url) as store, read(store.engine) as connection:
        ids = [
            row[0] for row in connection.exec_driver_sql("SELECT id FROM subscribers ORDER BY id")
        ]
    timings["members"] = time.perf_counter() - started

    started = time.perf_counter()
    issues = [(f"2026-earlier-{n:02d}", first_sent + n * FORTNIGHT) for n in range(args.earlier)]
    issues.append((ISSUE, SENT_AT))
    _leaving(loader, rng, ids, issues)
    loader.load(
        "sends",
        ("issue", "transport", "status", "owner", "runs", "started_at", "heartbeat_at", "finished_at"),
        [
            (slug, "sendgrid", "finished", "", 1, loader.time(at), loader.time(at), loader.time(at + dt.timedelta(minutes=20)))
            for slug, at in issues
        ],
    )  # fmt: skip
    loader.load(
        "deliveries",
        ("issue", "subscriber_id", "variant", "state", "retryable", "message_id", "attempts", "error", "created_at", "updated_at"),
        (
            (slug, member, variant_of(index)[0], "sent" if index % 500 else "failed", False, None, 1, "", loader.time(at), loader.time(at))
            for slug, at in issues
            for index, member in enumerate(ids)
        ),
    )  # fmt: skip
    timings["ledger_and_history"] = time.perf_counter() - started

    started = time.perf_counter()
    generated = Generated()
    loader.load("webhook_events", EVENT_COLUMNS, _events(loader, rng, ids, args.events, generated))
    timings["events"] = time.perf_counter() - started
    started = time.perf_counter()
    loader.analyse()
    timings["analyse"] = time.perf_counter() - started
    return generated, {name: round(seconds, 2) for name, seconds in timings.items()}


def _leaving(
    loader: Loader, rng: random.Random, ids: list[int], issues: list[tuple[str, dt.datetime]]
) -> None:
    """About 1% of the members leave between each two issues (history, then their status)."""
    changes: list[tuple[int, str, dt.datetime]] = []
    left: set[int] = set()
    for (_, start), (_, end) in itertools.pairwise(issues):
        for member in rng.sample(ids, len(ids) // 100):
            if member in left:
                continue
            left.add(member)
            status = rng.choices(["unsubscribed", "bounced", "complained"], [80, 18, 2])[0]
            when = start + (end - start) * rng.random()
            changes.append((member, status, when))
    loader.load(
        "subscriber_events",
        ("subscriber_id", "at", "kind", "detail", "source", "status_from", "status_to"),
        [
            (m, loader.time(when), "status", "benchmark", "web", "active", s)
            for m, s, when in changes
        ],
    )
    for status in ("unsubscribed", "bounced", "complained"):
        chosen = [str(m) for m, s, _ in changes if s == status]
        for start in range(0, len(chosen), 5000):
            loader.execute(
                f"UPDATE subscribers SET status = '{status}' WHERE id IN ({', '.join(chosen[start : start + 5000])})"
            )


EVENT_COLUMNS = (
    "sg_event_id", "event", "kind", "email", "subscriber_id", "issue", "occurred_at",
    "received_at", "detail", "effect", "url", "test",
)  # fmt: skip


def _events(
    loader: Loader, rng: random.Random, ids: list[int], total: int, generated: Generated
) -> Iterable[tuple[Any, ...]]:
    """``total`` events of the reported issue, as a big send brings them back."""

    def row(
        member: int, event: str, kind: str, minutes: float, detail: str = "", url: str | None = None
    ) -> tuple[Any, ...]:
        generated.events += 1
        generated.by_kind[kind] = generated.by_kind.get(kind, 0) + 1
        at = loader.time(SENT_AT + dt.timedelta(minutes=minutes))
        return (
            f"bench-{generated.events:08d}", event, kind, f"member{member:06d}@example.org",
            member, ISSUE, at, at, detail, "recorded", url, False,
        )  # fmt: skip

    made = 0
    for member in ids:  # what every message brings: processed, then delivered or not
        yield row(member, "processed", "accepted", 1)
        fate = rng.random()
        if fate < 0.97:
            generated.delivered.add(member)
            yield row(member, "delivered", "delivered", 2)
        elif fate < 0.985:
            yield row(member, "bounce", "soft_bounce", 2, "blocked | 550 blocked")
        elif fate < 0.99:
            yield row(member, "bounce", "hard_bounce", 2, "bounce | 550 5.1.1 no such user")
        else:
            yield row(member, "dropped", "dropped", 1, "Invalid")
        if rng.random() < 0.2:
            yield row(member, "deferred", "accepted", 1, "421 try again later")
        made = generated.events
    delivered = sorted(generated.delivered)
    while made < total:
        member = rng.choice(delivered)
        pick = rng.random()
        if pick < 0.78:
            generated.opened.add(member)
            generated.opens += 1
            yield row(member, "open", "open", rng.uniform(3, 20000))
        elif pick < 0.9995:
            generated.clicks += 1
            url = (
                rng.choice(LINKS) if rng.random() < 0.98 else f"{BASE_URL}/unsubscribe/tok{member}"
            )
            yield row(member, "click", "click", rng.uniform(3, 20000), url[:300], url)
        elif pick < 0.9997:
            yield row(member, "spamreport", "complaint", rng.uniform(3, 20000))
        else:
            yield row(member, "unsubscribe", "unsubscribe", rng.uniform(3, 20000))
        made += 1


# -- timing --------------------------------------------------------------------------------------


def timed(work: Callable[[], Any], repeat: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        runs.append(time.perf_counter() - started)
    return {
        "first_seconds": round(runs[0], 3),
        "median_seconds": round(statistics.median(runs), 3),
        "runs": [round(r, 3) for r in runs],
    }


def query_layer(url: str, args: argparse.Namespace, generated: Generated) -> dict[str, Any]:
    newsletter = load_newsletter(ROOT / "mailer.toml")
    with open_store(url) as store:
        engine = store.engine
        report = issue_report(engine, ISSUE, newsletter, base_url=BASE_URL)
        _check(report.model_dump(mode="json"), generated, args)
        whole = timed(
            lambda: issue_report(engine, ISSUE, newsletter, base_url=BASE_URL), args.repeat
        )

        def each(query: Callable[[Any], Any]) -> float:
            with read(engine) as connection:
                started = time.perf_counter()
                query(connection)
                return round(time.perf_counter() - started, 3)

        sends = each(queries.sends)
        with read(engine) as connection:
            moments = [s.started_at for s in queries.sends(connection)][-12:]
        parts = {
            "sends": sends,
            "per_variant_ledger_events_unsubscribes": each(lambda c: queries.tallies(c, ISSUE)),
            "top_links": each(lambda c: queries.top_links(c, ISSUE, BASE_URL, 10)),
            "list_health_12_issues": each(lambda c: queries.status_counts_at(c, moments)),
            "recipients_12_issues": each(
                lambda c: queries.recipients(c, [s.issue for s in queries.sends(c)][-12:])
            ),
        }
    return {"issue_report": whole, "queries_seconds": parts}


def _check(data: dict[str, Any], generated: Generated, args: argparse.Namespace) -> None:
    """The report says what was generated (members in the ledger; every event of theirs)."""
    everyone = data["segments"][0]
    expected = {
        "sent": args.members - len(range(0, args.members, 500)),
        "delivered": len(generated.delivered),
        "opened": len(generated.opened),
        "opens": generated.opens,
        "clicks": generated.clicks,
    }
    actual = {name: everyone[name] for name in expected}
    if expected != actual:
        raise SystemExit(f"the report is wrong: expected {expected}, got {actual}")


def cli(url: str, args: list[str], repeat: int) -> dict[str, Any]:
    env = {
        **os.environ,
        "MAILER_DATABASE_URL": url,
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
        "MAILER_BASE_URL": BASE_URL,
        "COLUMNS": "100",
    }
    mailer = str(Path(sys.executable).parent / "mailer")

    def run() -> None:
        subprocess.run([mailer, "report", *args], env=env, check=True, capture_output=True)

    return timed(run, repeat)


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    generated, building = populate(url, args)
    print(f"  built in {sum(building.values()):.0f} s: {building}", flush=True)
    result: dict[str, Any] = {
        "events_stored": generated.events,
        "events_by_kind": dict(sorted(generated.by_kind.items())),
        "build_seconds": building,
        "query": query_layer(url, args, generated),
    }
    with tempfile.TemporaryDirectory() as folder:
        result["cli_json"] = cli(url, [ISSUE, "--json"], args.repeat)
        result["cli_table"] = cli(url, [ISSUE], args.repeat)
        result["cli_html"] = cli(url, [ISSUE, "--html", str(Path(folder) / "r.html")], args.repeat)
        result["cli_list"] = cli(url, ["--list"], args.repeat)
    return result


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
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument(
        "--earlier", type=int, default=12, help="issues sent before the reported one"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--postgres-url", default=os.environ.get("MAILER_TEST_POSTGRES_URL", POSTGRES_URL)
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "report.json")
    args = parser.parse_args()

    load_before = os.getloadavg()
    results: dict[str, Any] = {
        "events": args.events,
        "members": args.members,
        "earlier_issues": args.earlier,
        "runs": args.repeat,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
        },
    }
    with tempfile.TemporaryDirectory() as folder:
        print("sqlite:", flush=True)
        results["sqlite"] = run(f"sqlite:///{Path(folder) / 'mailer.db'}", args)
    print("postgresql:", flush=True)
    results["postgresql"] = postgres(args.postgres_url, args)
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]

    for backend in ("sqlite", "postgresql"):
        r = results[backend]
        q = r["query"]["issue_report"]
        print(
            f"{backend:>10}: {r['events_stored']:,} events; query layer {q['median_seconds']} s "
            f"(first {q['first_seconds']} s); mailer report --json {r['cli_json']['median_seconds']} s, "
            f"table {r['cli_table']['median_seconds']} s, --html {r['cli_html']['median_seconds']} s, "
            f"--list {r['cli_list']['median_seconds']} s (medians of {args.repeat}, end to end)"
        )
        print(f"{'':>12}each query: {r['query']['queries_seconds']}")
    print(
        f"load average before {load_before[0]:.2f}, after {results['machine']['load_average_after'][0]:.2f} "
        f"({os.cpu_count()} CPUs)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
