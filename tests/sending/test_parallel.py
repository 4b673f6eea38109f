"""Sending from several processes: the audience shared out by id, each member still sent once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from doubles.sendgrid import SendGridDouble
from helpers.members import add_members
from helpers.outbox import outbox_files
from helpers.sending import SG_KEY
from pydantic import SecretStr
from sqlalchemy import update

from mailer.config import Newsletter, Settings, TransportName
from mailer.errors import SendRefused
from mailer.issues.model import Issue
from mailer.sending.personalise import link_signer
from mailer.sending.run import Progress, SendRun, SendStopped, SendSummary
from mailer.store import SubscriberStore
from mailer.store.ledger import Ledger
from mailer.store.shares import ShareRow
from mailer.transports import open_transport

MEMBERS = 23


def send(
    store: SubscriberStore,
    issue: Issue,
    newsletter: Newsletter,
    settings: Settings,
    *,
    processes: int,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[Progress], None] | None = None,
) -> SendSummary:
    with open_transport(settings) as transport:
        run = SendRun(
            issue,
            newsletter,
            settings,
            store,
            Ledger(store.engine),
            transport,
            link_signer(settings),
            batch_size=2,
            processes=processes,
        )
        run.start()
        return run.run(should_stop=should_stop, on_progress=on_progress)


def ledger_states(store: SubscriberStore, issue: Issue) -> dict[str, int]:
    counts = Counter[str]()
    for row in Ledger(store.engine).counts(issue.slug):
        counts[row.state] += row.count
    return dict(counts)


def test_each_member_gets_the_issue_once_through_sendgrid(
    store: SubscriberStore,
    database_url: str,
    issue: Issue,
    newsletter: Newsletter,
    make_settings: Callable[..., Settings],
    sendgrid_double: SendGridDouble,
) -> None:
    """Three processes, one store (SQLite and PostgreSQL): everyone once, counted once."""
    members = add_members(store, MEMBERS)
    settings = make_settings(
        database_url=database_url,
        transport=TransportName.sendgrid,
        sendgrid_api_url=sendgrid_double.url,
        sendgrid_api_key=SecretStr(SG_KEY),
    )
    seen: list[Progress] = []
    summary = send(store, issue, newsletter, settings, processes=3, on_progress=seen.append)
    assert {m.email: 1 for m in members} == dict(sendgrid_double.delivery_counts())
    assert (MEMBERS, True) == (summary.total("sent"), summary.complete)
    assert {"youth", "wales", "general"} == set(summary.variants)
    assert {"sent": MEMBERS} == ledger_states(store, issue)
    assert MEMBERS == seen[-1].done == seen[-1].sent
    assert [p.done for p in seen] == sorted(p.done for p in seen)  # progress only grows


def test_each_member_gets_one_file_in_the_outbox(
    sqlite_store: SubscriberStore,
    issue: Issue,
    newsletter: Newsletter,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    """Two processes writing one outbox: a file per member, none twice; a rerun sends nothing."""
    members = add_members(sqlite_store, MEMBERS)
    settings = make_settings()
    first = send(sqlite_store, issue, newsletter, settings, processes=2)
    again = send(sqlite_store, issue, newsletter, settings, processes=2)
    files = outbox_files(tmp_path / "outbox" / issue.slug)
    assert {m.email for m in members} == set(files)
    assert (MEMBERS, 0, MEMBERS) == (
        first.total("sent"),
        again.total("sent"),
        again.total("already_sent"),
    )


def test_asked_to_stop_every_process_records_its_batch_and_ends(
    sqlite_store: SubscriberStore,
    issue: Issue,
    newsletter: Newsletter,
    make_settings: Callable[..., Settings],
    sendgrid_double: SendGridDouble,
) -> None:
    """SIGTERM's stop reaches every process: what went out is recorded, nothing is in flight."""
    add_members(sqlite_store, MEMBERS)
    sendgrid_double.slow_next(0.2, times=100)
    settings = make_settings(
        transport=TransportName.sendgrid,
        sendgrid_api_url=sendgrid_double.url,
        sendgrid_concurrency=1,  # else the small list is in flight at once
    )
    progress: list[Progress] = []
    summary = send(
        sqlite_store,
        issue,
        newsletter,
        settings,
        processes=2,
        on_progress=progress.append,
        should_stop=lambda: bool(progress),
    )
    accepted = len(sendgrid_double.deliveries())
    assert "asked to stop" == summary.stopped
    assert 0 < accepted < MEMBERS
    assert {"sent": accepted} == ledger_states(sqlite_store, issue)


def test_a_batch_failing_as_a_whole_stops_every_process(
    sqlite_store: SubscriberStore,
    issue: Issue,
    newsletter: Newsletter,
    make_settings: Callable[..., Settings],
    sendgrid_double: SendGridDouble,
) -> None:
    """A wrong API key fails the first batches; the send stops, and nothing is left in flight."""
    add_members(sqlite_store, MEMBERS)
    settings = make_settings(
        transport=TransportName.sendgrid,
        sendgrid_api_url=sendgrid_double.url,
        sendgrid_api_key=SecretStr("SG.wrong-key"),
    )
    with pytest.raises(SendStopped, match="SENDGRID_API_KEY") as stopped:
        send(sqlite_store, issue, newsletter, settings, processes=2)
    assert 0 == stopped.value.summary.total("sent")
    states = ledger_states(sqlite_store, issue)
    assert "in_flight" not in states
    assert [] == sendgrid_double.accepted


def test_a_process_that_fails_stops_the_send_with_its_error(
    sqlite_store: SubscriberStore,
    issue: Issue,
    newsletter: Newsletter,
    make_settings: Callable[..., Settings],
) -> None:
    """A process whose share was taken from it reports it; the send ends with that error."""
    add_members(sqlite_store, MEMBERS)
    settings = make_settings()
    with open_transport(settings) as transport:
        run = _LosesItsShare(
            issue,
            newsletter,
            settings,
            sqlite_store,
            Ledger(sqlite_store.engine),
            transport,
            link_signer(settings),
            batch_size=2,
            processes=2,
        )
        run.start()
        with pytest.raises(SendRefused, match="no longer holds the send"):
            run.run()
    states = ledger_states(sqlite_store, issue)
    assert "in_flight" not in states and states.get("sent", 0) < MEMBERS


class _LosesItsShare(SendRun):
    """A send whose share another process takes over (as ``--release`` does) as soon as
    it hands its first batch over: its next claim must fail."""

    def _hand_over(self, claimed: Any) -> Any:
        with self.store.engine.begin() as connection:
            connection.execute(
                update(ShareRow)
                .where(ShareRow.id.in_(claimed.shares))
                .values(owner="elsewhere:1:0")
            )
        return super()._hand_over(claimed)
