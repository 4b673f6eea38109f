"""The scheduler as a service: APScheduler calling :meth:`Runner.tick`, until a signal.

Two jobs on a ``BackgroundScheduler`` in the schedule's time zone, both calling
the same tick (which never overlaps itself):

* ``slot``: ``CalendarIntervalTrigger(weeks=2, ...)``, so a slot is sent on the
  second. Its first run time is the next slot computed from the clock, never the
  trigger's own first answer (the anchor, possibly months ago).
* ``check``: every minute, and once at start-up: catches up a slot missed while
  the scheduler was down (within the lateness), sends reminders, keeps the
  heartbeat that ``GET /healthz`` shows.
* ``bounces``, with ``MAILER_BOUNCE_MAILBOX`` set: reads the bounce mailbox at
  start-up and every ``MAILER_BOUNCE_POLL_INTERVAL`` seconds
  (:mod:`mailer.scheduling.bounces`); a mailbox that is down is logged and tried
  again next time, never fatal. It runs beside a send, never two at once.

No APScheduler job store is shared or persisted: what was sent lives in the
database (the slot claims and the send ledger), so any number of schedulers on one
database, and any restart, send each slot once.

SIGTERM or SIGINT: no new work starts; a send in progress finishes the batch in
hand, records it in the ledger and stops (its slot is resumed on the next start).
A second signal exits at once, like ``kill -9``: the next start settles that too.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from mailer.config import Newsletter, Settings
from mailer.events.bounces.fetch import mailbox_url
from mailer.scheduling.bounces import BouncePoller
from mailer.scheduling.runner import Runner, require_schedule, utcnow
from mailer.scheduling.slots import latest_due, next_after, slot_trigger
from mailer.store import open_store
from mailer.store.leases import Keeper
from mailer.store.slots import SlotStore

__all__ = ["CHECK_SECONDS", "build_scheduler", "serve"]

log = logging.getLogger("mailer.scheduler")

CHECK_SECONDS = 30
# Exit status after a second signal cut the batch in hand short.
INTERRUPTED = 130


def build_scheduler(
    runner: Runner,
    *,
    check_seconds: float = CHECK_SECONDS,
    bounces: BouncePoller | None = None,
) -> BackgroundScheduler:
    """The APScheduler set-up: the slot job, the check job and the bounce job, not started."""
    schedule = runner.schedule
    scheduler = BackgroundScheduler(
        timezone=schedule.zone,
        # Workers enough for a send, the slot job waiting for it, a check that only beats
        # the heartbeat meanwhile (ticks never overlap: see Runner.tick), and the bounce job.
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    now = utcnow()
    scheduler.add_job(
        runner.tick,
        slot_trigger(schedule),
        kwargs={"wait": True},
        id="slot",
        name="fortnightly slot",
        next_run_time=next_after(schedule, now).at,
    )
    scheduler.add_job(
        runner.tick,
        IntervalTrigger(seconds=check_seconds, timezone=schedule.zone),
        id="check",
        name="catch-up, reminders and heartbeat",
        next_run_time=now,
        # While one check sends a catch-up slot, the next ones only beat the heartbeat (the
        # tick never overlaps itself) instead of being skipped with a warning every time.
        max_instances=2,
    )
    if bounces is not None:
        scheduler.add_job(
            bounces.poll,
            IntervalTrigger(seconds=bounces.settings.bounce_poll_interval, timezone=schedule.zone),
            id="bounces",
            name="bounce mailbox",
            next_run_time=now,
        )
    return scheduler


def serve(
    settings: Settings, newsletter: Newsletter, *, check_seconds: float = CHECK_SECONDS
) -> int:
    """Run the scheduler until SIGTERM or SIGINT; the exit status."""
    schedule = require_schedule(newsletter)
    stop = threading.Event()
    with open_store(settings.database_url) as store:
        runner = Runner(settings, newsletter, store, should_stop=stop.is_set)
        _announce(runner)
        bounces = None
        if mailbox_url(settings) is not None:
            bounces = BouncePoller(settings, store, should_stop=stop.is_set)
            log.info("bounce mailbox read every %d s", settings.bounce_poll_interval)
        scheduler = build_scheduler(runner, check_seconds=check_seconds, bounces=bounces)
        # The heartbeat /healthz and `mailer health` read, written whatever the jobs are doing.
        keeper = Keeper(runner.beat, interval=check_seconds / 2, name="scheduler")
        with _stop_on_signals(stop), keeper:
            scheduler.start()
            stop.wait()
            scheduler.shutdown(wait=True)
        runner.stopped()
    log.info("scheduler stopped (%s)", schedule.timezone)
    return 0


def _announce(runner: Runner) -> None:
    schedule, now = runner.schedule, utcnow()
    latest = latest_due(schedule, now)
    record = SlotStore(runner.store.engine).get(latest.utc) if latest else None
    log.info(
        "scheduler started (%s): every other %s at %s %s; last slot %s (%s); next slot %s; "
        "lateness %gh, reminders %gh ahead, transport %s",
        runner.owner,
        schedule.weekday.value,
        schedule.time.strftime("%H:%M"),
        schedule.timezone,
        latest or "none yet",
        record.state if record else "not dealt with",
        next_after(schedule, now),
        schedule.lateness_hours,
        schedule.reminder_hours,
        runner.settings.transport,
    )


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (the send finishes its batch); a second one exits now."""

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("%s again: exiting now; the next start settles the batch in hand", name)
            logging.shutdown()
            os._exit(INTERRUPTED)
        log.info("%s: stopping; a send in progress finishes its current batch first", name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
