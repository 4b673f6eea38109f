"""A send's time grows with the list, not faster: the guard against quadratic work.

The whole pipeline of a send (import a members CSV, send the issue to the SendGrid
double, run the send again with nothing left to send, plan a dry run) is timed at
2,500 members and at four times as many, on SQLite and PostgreSQL. Its time per
member at the larger size may be at most 1.5 times the smaller size's: work that
grows with the square of the list (a page read from the start of an index, a
list searched per member) is four times as much per member at 4N, and fails it.

Wall time, not CPU time: the CPU time of this process leaves out PostgreSQL's own
work, where a bad plan costs. On a shared machine wall time is noisy, so each size
is run twice and the quicker run kept (noise only ever adds time). Fixed costs
(opening the store, compiling the variants) weigh more at the smaller size, which
errs on the side of passing; the per-page statements are checked on their own, by
the rows PostgreSQL reads for them (tests/audience/test_query_plans.py and
tests/store/test_ledger_plans.py), whatever the size.

benchmarks/scale.py measures the same steps, as commands, at up to a million members.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from doubles.sendgrid import SendGridDouble
from helpers.databases import BACKENDS, postgres_schema
from helpers.members import member
from pydantic import SecretStr

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
        yield url


def pipeline_seconds(
    count: int,
    url: str,
    folder: Path,
    settings: Callable[[str], Settings],
    issue: Issue,
    newsletter: Newsletter,
) -> float:
    """Import, send, re-run and dry run of ``count`` members into an empty store: seconds."""
    path = members_csv(folder / "members.csv", count)
    with SendGridDouble(api_key="SG.growth", keep_bodies=False) as double:
        start = time.perf_counter()
        with open_store(url) as store:
            import_members(store, path)
            sent = send_issue(issue, newsletter, settings(double.url), store)
            again = send_issue(issue, newsletter, settings(double.url), store)
            planned = plan(store, issue, newsletter)
        seconds = time.perf_counter() - start
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
