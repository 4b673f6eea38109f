"""A send's time grows with the list, not faster: the guard against quadratic work.

The whole pipeline of a send (import a members CSV, send the issue to the SendGrid
double, run the send again with nothing left to send, plan a dry run) is timed at
2,500 members and at four times as many, on SQLite and PostgreSQL. Its time per
member at the larger size may be at most 1.5 times the smaller size's: work that
grows with the square of the list (a page read from the start of an index, a
list searched per member) is four times as much per member at 4N, and fails it.

CPU time, not wall time: the suite runs on several workers (pytest-xdist) on a shared
machine, where another worker's burst of work could double one size's wall time and
none of its CPU time. The CPU time counted is this process's (the pipeline and the
SendGrid double's threads) and, on PostgreSQL, that of the server's backends serving
the store's connections (found by their application_name, read from /proc), where a
bad plan costs; on a server whose processes cannot be read (MAILER_TEST_POSTGRES_URL
elsewhere) it is wall time, as before. Each size is still run twice and the quicker
run kept (noise only ever adds time). Fixed costs
(opening the store, compiling the variants) weigh more at the smaller size, which
errs on the side of passing; the per-page statements are checked on their own, by
the rows PostgreSQL reads for them (tests/audience/test_query_plans.py and
tests/store/test_ledger_plans.py), whatever the size.

benchmarks/scale.py measures the same steps, as commands, at up to a million members.
"""

from __future__ import annotations

import csv
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from doubles.sendgrid import SendGridDouble
from helpers.databases import BACKENDS, libpq_url, postgres_schema
from helpers.members import member
from pydantic import SecretStr
from sqlalchemy import make_url

from mailer.audience.plan import plan
from mailer.config import Newsletter, Settings, TransportName
from mailer.issues.model import Issue
from mailer.sending.send import send_issue
from mailer.store import open_store
from mailer.store.csvio import import_members

SMALL = 2_500
LARGE = 4 * SMALL
# The time per member at LARGE may be at most this many times SMALL's.
GROWTH = 1.5


def members_csv(path: Path, count: int) -> Path:
    """``count`` members over the sample issue's three variants (see helpers.members)."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["email", "name", "organisation", "region", "tags"])
        for n in range(count):
            record = member(n)
            writer.writerow(
                [
                    record.email,
                    record.name,
                    record.organisation,
                    record.region,
                    "; ".join(record.tags),
                ]
            )
    return path


@contextmanager
def empty_database(backend: str, folder: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'mailer.db'}"
        return
    with postgres_schema(request.getfixturevalue("postgres_server")) as url:
        # A name of its own, by which backends_cpu finds the server processes serving it.
        name = f"mailer-growth-{uuid.uuid4().hex[:12]}"
        yield (
            make_url(url)
            .update_query_dict({"application_name": name})
            .render_as_string(hide_password=False)
        )


def backends_cpu(url: str) -> float | None:
    """CPU seconds so far of the PostgreSQL backends serving ``url``'s application_name;
    None when their processes cannot be read here (a server on another machine)."""
    name = make_url(url).query["application_name"]
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        pids = [
            pid
            for (pid,) in connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
            )
            if pid != connection.info.backend_pid
        ]
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        ticks += int(fields[11]) + int(fields[12])  # utime and stime (stat's 14th and 15th)
    return ticks / os.sysconf("SC_CLK_TCK") if pids else None


def cpu_seconds(url: str) -> float | None:
    """CPU seconds so far of this process and, on PostgreSQL, of the store's backends."""
    if url.startswith("sqlite"):
        return time.process_time()
    server = backends_cpu(url)
    return None if server is None else time.process_time() + server


def pipeline_seconds(
    count: int,
    url: str,
    folder: Path,
    settings: Callable[[str], Settings],
    issue: Issue,
    newsletter: Newsletter,
) -> float:
    """Import, send, re-run and dry run of ``count`` members into an empty store: CPU
    seconds (wall seconds where the PostgreSQL server's CPU time cannot be read)."""
    path = members_csv(folder / "members.csv", count)
    with SendGridDouble(api_key="SG.growth", keep_bodies=False) as double:
        start, cpu_start = time.perf_counter(), time.process_time()
        with open_store(url) as store:
            import_members(store, path)
            sent = send_issue(issue, newsletter, settings(double.url), store)
            again = send_issue(issue, newsletter, settings(double.url), store)
            planned = plan(store, issue, newsletter)
            cpu = cpu_seconds(url)  # before the store closes: its backends end with it
        seconds = time.perf_counter() - start if cpu is None else cpu - cpu_start
        assert (sent.total("sent"), again.total("sent")) == (count, 0)
        assert (planned.sent, planned.to_send) == (count, 0)
        assert sum(double.delivery_counts().values()) == count
    return seconds


@pytest.mark.parametrize("backend", BACKENDS)
def test_time_per_member_at_four_times_the_list_is_at_most_half_again_as_much(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    issue: Issue,
    newsletter: Newsletter,
) -> None:
    """Import, send, re-run and dry run: per member, 4N members take at most 1.5x N's time."""

    def settings(api_url: str) -> Settings:
        return Settings(
            transport=TransportName.sendgrid,
            sendgrid_api_url=api_url,
            sendgrid_api_key=SecretStr("SG.growth"),
            secret_key=SecretStr("growth-test-secret-key-0123456789abcdef"),
            base_url="https://news.example.org",
            outbox_dir=tmp_path / "outbox",
            send_processes=1,  # the path's growth, not the start of processes
        )

    per_member: dict[int, float] = {}
    for count in (SMALL, LARGE):
        runs = []
        for run in range(2):
            folder = tmp_path / f"{count}-{run}"
            folder.mkdir()
            with empty_database(backend, folder, request) as url:
                runs.append(pipeline_seconds(count, url, folder, settings, issue, newsletter))
        per_member[count] = min(runs) / count
    assert per_member[LARGE] <= GROWTH * per_member[SMALL], (
        f"{per_member[LARGE] * 1e6:.0f} µs a member at {LARGE:,}, "
        f"{per_member[SMALL] * 1e6:.0f} µs at {SMALL:,}"
    )
