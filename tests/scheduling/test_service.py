"""The service's APScheduler jobs under the real clock: quiet while a long send runs.

A check fires every few seconds here (every 30 s in production) while a catch-up
send takes many times that: APScheduler must not log "maximum number of running
instances reached" at every check (it once did, every minute of a long send), and
the heartbeat must keep being written.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import time
from pathlib import Path

import pytest
from helpers.members import add_members
from helpers.scheduling import SECRET, Project, schedule_toml
from pydantic import SecretStr

from mailer.config import Settings, TransportName, load_newsletter
from mailer.mail import Batch, Delivery
from mailer.scheduling.runner import Runner
from mailer.scheduling.service import build_scheduler
from mailer.store import open_store
from mailer.store.slots import SlotStore
from mailer.transports import Transport
from mailer.transports.base import TransportBase
from mailer.transports.outbox import OutboxTransport

CHECK_SECONDS = 0.5
BATCH_SECONDS = 1.5


class Slow(TransportBase):
    """The outbox, taking a while over each of the issue's batches (a rate-limited relay)."""

    def __init__(self, transport: Transport) -> None:
        self.transport, self.name = transport, transport.name

    def send(self, batch: Batch) -> list[Delivery]:
        if not batch.issue.startswith("scheduler-"):
            time.sleep(BATCH_SECONDS)
        return self.transport.send(batch)


def test_a_long_send_under_apscheduler_logs_no_skipped_runs_and_keeps_beating(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    slot = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).replace(microsecond=0)
    project = Project.make(
        tmp_path / "project",
        schedule_toml(
            weekday=slot.strftime("%A").lower(),
            time=slot.strftime("%H:%M:%S"),
            timezone="UTC",
            anchor=slot.date().isoformat(),
        ),
    )
    project.write_issue(slot.date())
    settings = Settings(
        config_path=project.config,
        database_url=f"sqlite:///{tmp_path / 'mailer.db'}",
        transport=TransportName.outbox,
        outbox_dir=tmp_path / "outbox",
        base_url="https://news.example.org",
        secret_key=SecretStr(SECRET),
    )
    with open_store(settings.database_url) as store:
        add_members(store, 60)  # three variants: three batches, 4.5 s in all
        outbox = OutboxTransport(settings.outbox_dir)
        runner = Runner(
            settings, load_newsletter(project.config), store, transport=lambda: Slow(outbox)
        )
        scheduler = build_scheduler(runner, check_seconds=CHECK_SECONDS)
        slots = SlotStore(store.engine)
        beats: list[dt.datetime] = []

        def sent() -> bool:
            record = slots.get(slot)
            return record is not None and record.final

        with caplog.at_level(logging.DEBUG, logger="apscheduler"):
            scheduler.start()
            try:
                deadline = time.monotonic() + 60
                while not sent():
                    assert time.monotonic() < deadline, "the slot was not sent"
                    beat = slots.last_beat()
                    if beat is not None:
                        beats.append(beat.beat_at)
                    time.sleep(0.2)
            finally:
                scheduler.shutdown(wait=True)
    skipped = [r.getMessage() for r in caplog.records if "maximum number" in r.getMessage()]
    assert [] == skipped
    assert [] == [r for r in caplog.records if r.levelno >= logging.WARNING]
    # The check kept writing the heartbeat while the send ran: never more than two checks apart.
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(beats) if b != a]
    assert gaps and max(gaps) <= 3 * CHECK_SECONDS + 1, gaps
    assert len(set(beats)) >= (3 * BATCH_SECONDS) / CHECK_SECONDS / 2
