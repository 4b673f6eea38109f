"""How mailer's commands grow with the list: a million members on SQLite and PostgreSQL.

For each size N (``--members``, 1,000,000 by default; a list such as
``100000,300000`` measures each) and each database (``--databases
sqlite,postgresql``), a fresh store goes through what an operator does, each step
the real ``mailer`` command in a child process of its own:

1. ``mailer subscribers import members.csv``: a generated members CSV (members at
   a few thousand organisations over the UK's nations and regions, with tags; the
   generator of benchmarks/import.py), into an empty store;
2. ``mailer send ISSUE --yes``: the first sample issue to every active member,
   through the SendGrid double (tests/doubles/sendgrid, in its own process, as
   benchmarks/send.py starts it) answering at once (``--latency``, 0 s);
3. the same again, with nothing left to send (the re-run);
4. ``mailer send ISSUE --dry-run``, after the send;
5. ``mailer report ISSUE``;
6. ``mailer subscribers export members-out.csv``;
7. ``mailer subscribers list --segment wales`` (a twelfth of the list), to a file.

Each step is timed in wall-clock seconds and in CPU seconds of the command and the
processes it waited for (a send forks its sending processes). PostgreSQL's own work
runs in its server's processes: ``server_cpu_seconds`` is the CPU time of the server's
processes that ended during the step (the command's backends end with it; on a
shared server other users' backends count too, so it is an upper bound). Peak memory is the
highest proportional set size of the command's whole process tree, sampled every
0.25 s while it runs (benchmarks/send.py's ``peak_memory``: forked children share
pages, which PSS counts once); ``max_rss_mb`` beside it is the largest single
process's peak resident set (what ``/usr/bin/time`` reports). The load average of
the machine is recorded with each step: other work on the same cores slows it.

SQLite writes to a file in a temporary folder; PostgreSQL to a fresh schema of the
``test`` database on 127.0.0.1:5432 (``--postgres-url``), dropped afterwards.

A million members take about 10 minutes a database on a quiet 2-core machine and
1 GB of disk. Ten million is a run by hand (``--members 10000000 --databases
postgresql``): about 10 GB of disk for the CSV, the export and the database, and
over an hour; run it under ``nice -n 5`` on a shared machine.

Run: ``.venv/bin/python benchmarks/scale.py [--members N[,N...]] [--databases sqlite,postgresql]
[--steps import,send,...]``.
Figures are printed and written to benchmarks/results/scale.json (sizes and
databases not measured keep the figures they had there).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent


def _sibling(name: str) -> ModuleType:
    """Another benchmark's module (benchmarks/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass in it looks its module up there
    spec.loader.exec_module(module)
    return module


send_bench = _sibling("send")  # the SendGrid double's process, the process tree's memory
import_bench = _sibling("import")  # the members CSV

import psycopg
from sqlalchemy import make_url

ISSUE = send_bench.ISSUE
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
MAILER = str(Path(sys.executable).with_name("mailer"))
STEPS = ["import", "send", "re-run", "dry-run", "report", "export", "list --segment wales"]


def command(step: str, work: Path) -> list[str]:
    """The mailer command line of a step."""
    return {
        "import": [MAILER, "subscribers", "import", str(work / "members.csv")],
        "send": [MAILER, "send", str(ISSUE), "--yes"],
        "re-run": [MAILER, "send", str(ISSUE), "--yes"],
        "dry-run": [MAILER, "send", str(ISSUE), "--dry-run"],
        "report": [MAILER, "report", ISSUE.stem],
        "export": [MAILER, "subscribers", "export", str(work / "members-out.csv")],
        "list --segment wales": [MAILER, "subscribers", "list", "--segment", "wales"],
    }[step]


def environment(database_url: str, sendgrid_url: str, work: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILER_")},
        "MAILER_DATABASE_URL": database_url,
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
        "MAILER_TRANSPORT": "sendgrid",
        "MAILER_SENDGRID_API_URL": sendgrid_url,
        "MAILER_SENDGRID_API_KEY": send_bench.SG_KEY,
        "MAILER_SECRET_KEY": send_bench.SECRET,
        "MAILER_BASE_URL": send_bench.BASE_URL,
        "MAILER_SEND_TIMEOUT": "120",
        "MAILER_OUTBOX_DIR": str(work / "outbox"),
        "COLUMNS": "200",
    }


def server_cpu_seconds(postmaster: int | None) -> float | None:
    """CPU seconds of the PostgreSQL server's processes that have ended (its backends end
    with their connections, so with each command): the postmaster's children's times."""
    if postmaster is None:
        return None
    try:
        fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # cutime and cstime, the 16th and 17th fields (the 14th and 15th after the name).
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def find_postmaster(url: str) -> int | None:
    """The PostgreSQL server's main process, when it runs on this machine and /proc shows it."""
    libpq = make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(libpq, autocommit=True) as connection:
        row = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'"
        ).fetchone()
    try:
        stat = Path(f"/proc/{row[0]}/stat").read_text() if row else ""
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1]) if stat else None


def run_step(
    step: str, env: dict[str, str], work: Path, postmaster: int | None = None
) -> dict[str, Any]:
    """One command, timed, with its process tree's memory sampled; fails loudly."""
    out = (work / f"{step.split()[0]}.out").open("w")
    load_before = send_bench.load()
    server_before = server_cpu_seconds(postmaster)
    start = time.perf_counter()
    process = subprocess.Popen(
        command(step, work), env=env, cwd=work, stdout=out, stderr=subprocess.PIPE, text=True
    )
    with send_bench.peak_memory(root=process.pid) as peak:
        stderr = process.stderr.read() if process.stderr else ""
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    out.close()
    if process.returncode != 0:
        raise SystemExit(f"{step} exited with {process.returncode}:\n{stderr[-3000:]}")
    server = None
    if server_before is not None:
        time.sleep(0.2)  # for the command's backends to end
        server_after = server_cpu_seconds(postmaster)
        server = None if server_after is None else round(server_after - server_before, 2)
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        # Every backend that ended meanwhile, other users' too: an upper bound on a shared server.
        "server_cpu_seconds": server,
        "peak_memory_mb": round(peak.peak / 1e6, 1),
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "load_average": {"before": load_before, "after": send_bench.load()},
    }


@contextmanager
def database(kind: str, folder: Path, postgres_url: str) -> Iterator[str]:
    """An empty store's URL: a SQLite file, or a fresh PostgreSQL schema dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'mailer.db'}"
        return
    schema = f"mailer_scale_{uuid.uuid4().hex[:8]}"
    libpq = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def measure(kind: str, members: int, csv_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Every step on one database, in order, in a fresh store."""
    work = Path(tempfile.mkdtemp(prefix=f"mailer-scale-{kind}-"))
    os.link(csv_path, work / "members.csv")
    steps: dict[str, Any] = {}
    double = ["--latency", str(args.latency), "--jitter", "0"]
    postmaster = find_postmaster(args.postgres_url) if kind == "postgresql" else None
    try:
        with database(kind, work, args.postgres_url) as url:
            for step in args.steps:
                if step == "send":
                    with send_bench.server("sendgrid", *double) as (address, received):
                        figures = run_step(step, environment(url, address, work), work, postmaster)
                    figures["double_took"] = received.get("messages")
                    figures["recipients_per_second"] = round(
                        (received.get("messages") or 0) / figures["seconds"]
                    )
                else:
                    # Nothing reaches the transport but the send: a closed port says so.
                    figures = run_step(
                        step, environment(url, "http://127.0.0.1:9", work), work, postmaster
                    )
                figures["seconds_per_million"] = round(figures["seconds"] * 1e6 / members, 1)
                steps[step] = figures
                print(
                    f"{kind:>10} {members:>10,} {step:>21}: {figures['seconds']:8.2f} s "
                    f"({figures['cpu_seconds']:.1f} CPU s"
                    + (
                        f", server {figures['server_cpu_seconds']:.1f}"
                        if figures["server_cpu_seconds"] is not None
                        else ""
                    )
                    + f"), peak {figures['peak_memory_mb']:,.0f} MB"
                    f" (largest process {figures['max_rss_mb']:,.0f} MB); load "
                    f"{figures['load_average']['before'][0]}-{figures['load_average']['after'][0]}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"database": kind, "members": members, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", default="1000000", help="list size, or several: 100000,300000")
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="sqlite, postgresql or both"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("MAILER_TEST_POSTGRES_URL", import_bench.POSTGRES_URL),
        help="the server (and database) in which a scratch schema is made",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="the double's, in seconds")
    parser.add_argument(
        "--steps",
        default=",".join(STEPS),
        help="the steps to run, in their order (import always runs): e.g. import,send,re-run",
    )
    args = parser.parse_args()
    args.steps = [step for step in STEPS if step == "import" or step in args.steps.split(",")]
    sizes = [int(size) for size in str(args.members).split(",")]
    kinds = [kind for kind in args.databases.split(",") if kind]
    if unknown := set(kinds) - {"sqlite", "postgresql"}:
        parser.error(f"unknown database {', '.join(sorted(unknown))}")
    results = []
    folder = Path(tempfile.mkdtemp(prefix="mailer-scale-"))
    try:
        for members in sizes:
            csv_path = folder / f"members-{members}.csv"
            import_bench.generate(csv_path, members)
            print(f"members CSV of {members:,} rows written", file=sys.stderr, flush=True)
            results += [measure(kind, members, csv_path, args) for kind in kinds]
            csv_path.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _table(results)
    _write(results)


def _table(results: list[dict[str, Any]]) -> None:
    """The figures on stdout: one line per step, seconds (CPU s) and peak MB per run."""
    head = f"{'step':<21}" + "".join(
        f"{r['database'] + ' ' + format(r['members'], ','):>32}" for r in results
    )
    print(head)
    for step in STEPS:
        if not all(step in r["steps"] for r in results):
            continue
        cells = [r["steps"][step] for r in results]
        print(
            f"{step:<21}"
            + "".join(
                f"{c['seconds']:>10.1f} s ({c['cpu_seconds']:>6.1f}) {c['peak_memory_mb']:>6,.0f} MB"
                for c in cells
            )
        )


def _write(results: list[dict[str, Any]]) -> None:
    earlier = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    measured = {(r["database"], r["members"]) for r in results}
    kept = [r for r in earlier.get("results", []) if (r["database"], r["members"]) not in measured]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "issue": ISSUE.name,
                "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "results": sorted([*results, *kept], key=lambda r: (r["database"], r["members"])),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"written to {RESULTS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
