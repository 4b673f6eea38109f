"""What the schedule looks like now: for ``mailer schedule`` and ``GET /healthz``.

A slot's state is what happened to it, when the scheduler has dealt with it
(``sending``, ``interrupted``, ``sent``, ``incomplete``, ``failed``,
``no_issue``, ``missed``), else that of the issue it would send (``ready``,
``draft``, ``missing``, ``invalid``, ``ambiguous``) or ``sent`` when that issue
was already sent by hand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from mailer.config import Newsletter, Schedule
from mailer.errors import display_path
from mailer.issues.dates import nearest_slots, off_schedule
from mailer.scheduling.issues import Catalogue, read_catalogue
from mailer.scheduling.slots import Slot, latest_due, next_after
from mailer.store.ledger import Ledger, SendStatus
from mailer.store.slots import NoticeKind, SlotRecord, SlotState, SlotStore

__all__ = ["RUNNING_WITHIN", "SlotView", "health_problems", "scheduler_health", "slot_views"]

# A scheduler that wrote its heartbeat within this long is running (it writes every 15 s).
RUNNING_WITHIN = dt.timedelta(minutes=2)
# A slot given up by its owner and not resumed for this long is stuck.
STUCK_AFTER = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class SlotView:
    """One slot as ``mailer schedule`` shows it."""

    slot: Slot
    state: str
    issue: str | None  # the issue's slug
    file: str | None  # its file, as the user would type it
    detail: str
    meant: tuple[str, ...] = ()  # files dated off the schedule whose nearest slot this is

    def to_json(self) -> dict[str, Any]:
        return {
            "slot": self.slot.utc.isoformat(),
            "local": str(self.slot),
            "date": self.slot.date.isoformat(),
            "issue": self.issue,
            "file": self.file,
            "state": self.state,
            "detail": self.detail,
            "probably_meant": list(self.meant),
        }


def slot_views(newsletter: Newsletter, engine: Engine, slots: list[Slot]) -> list[SlotView]:
    """Each slot with its issue and state, from the issue files and the database."""
    if not slots:
        return []
    catalogue = read_catalogue(newsletter)
    store = SlotStore(engine)
    records = store.between(slots[0].utc, slots[-1].utc)
    ledger = Ledger(engine)
    views = [
        _view(slot, records.get(slot.utc), catalogue, ledger, store.notices(slot.utc))
        for slot in slots
    ]
    if newsletter.schedule is None:  # pragma: no cover - slots come from the schedule
        return views
    return [_with_strays(view, catalogue, newsletter.schedule) for view in views]


def _with_strays(view: SlotView, catalogue: Catalogue, schedule: Schedule) -> SlotView:
    """The view, naming the files dated off the schedule whose nearest slot it is."""
    strays = [
        (day, report.path)
        for day, reports in sorted(catalogue.by_day.items())
        for report in reports
        if report.issue is not None
        and off_schedule(day, schedule) is not None
        and view.slot.date in nearest_slots(day, schedule)
    ]
    if not strays:
        return view
    files = tuple(display_path(Path(path)) for _, path in strays)
    said = "; ".join(
        f"{file} is dated {day.isoformat()}, a {day:%A}: was it meant for this slot? "
        f"Change its date to {view.slot.date.isoformat()} if so"
        for (day, _), file in zip(strays, files, strict=True)
    )
    return replace(view, meant=files, detail=f"{view.detail} {said}".strip())


def _told(record: SlotRecord, notices: dict[NoticeKind, str]) -> str:
    """Whether the editors heard about a slot that needed them."""
    kind = {
        SlotState.failed: NoticeKind.failed,
        SlotState.incomplete: NoticeKind.failed,
        SlotState.missed: NoticeKind.missed,
        SlotState.no_issue: NoticeKind.no_issue,
    }.get(record.state)
    if kind is None or record.detail == "before the scheduler first ran":
        return ""
    state = notices.get(kind)
    if state == "sent":
        return "; the editors were told"
    return "; the editors were NOT told (their notice did not go out: see the scheduler's log)"


def _view(
    slot: Slot,
    record: SlotRecord | None,
    catalogue: Catalogue,
    ledger: Ledger,
    notices: dict[NoticeKind, str],
) -> SlotView:
    found = catalogue.for_day(slot.date)
    path = found.path or (found.files[0] if found.files else None)
    file = display_path(path) if path else None
    issue = found.issue.slug if found.issue else None
    if record is not None:
        state = "sending" if record.state == SlotState.claimed else record.state.value
        detail = record.detail
        if record.state == SlotState.interrupted and record.retry_at is not None:
            state = "retrying"
            detail = f"next try at {record.retry_at:%Y-%m-%d %H:%M} UTC; {detail}"
        return SlotView(slot, state, record.issue or issue, file, detail + _told(record, notices))
    if issue is not None and ledger.send_status(issue) == SendStatus.finished:
        return SlotView(slot, "sent", issue, file, "sent before the slot (by hand)")
    return SlotView(slot, found.state.value, issue, file, found.explain())


def scheduler_health(engine: Engine, schedule: Schedule, now: dt.datetime) -> dict[str, Any]:
    """The scheduler's part of ``/healthz``: whether one is running, its last and next run."""
    slots = SlotStore(engine)
    beat = slots.last_beat()
    last = slots.latest()
    due = latest_due(schedule, now)
    running = bool(beat and beat.stopped_at is None and now - beat.beat_at < RUNNING_WITHIN)
    return {
        "running": running,
        "last_check": beat.beat_at.isoformat() if beat else None,
        "last_run": _last_run(last),
        "last_slot": due.utc.isoformat() if due else None,
        "next_run": next_after(schedule, now).utc.isoformat(),
    }


def _last_run(record: SlotRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "slot": record.slot_at.isoformat(),
        "issue": record.issue,
        "outcome": "sending" if record.state == SlotState.claimed else record.state.value,
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "detail": record.detail,
    }


def health_problems(engine: Engine, schedule: Schedule, now: dt.datetime) -> list[str]:
    """Why the newsletter may not go out, as sentences; empty when the scheduler is healthy.

    A scheduler that has not written its heartbeat lately (or never ran), the last slot
    failed or missed and its issue not sent by hand since, or a slot claimed by a
    process that is gone (or given up and not resumed).
    """
    slots = SlotStore(engine)
    problems: list[str] = []
    beat = slots.last_beat()
    if beat is None:
        problems.append("no scheduler has run on this database (start `python scheduler.py`)")
    elif beat.stopped_at is not None:
        problems.append(f"the scheduler stopped at {beat.stopped_at:%Y-%m-%d %H:%M:%S} UTC")
    elif now - beat.beat_at >= RUNNING_WITHIN:
        problems.append(
            f"the scheduler's heartbeat is stale: last at {beat.beat_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    last = slots.latest()
    if last is None:
        return problems
    when = f"{last.slot_at:%Y-%m-%d %H:%M} UTC"
    ledger = Ledger(engine)
    sent_by_hand = bool(last.issue) and ledger.send_status(last.issue or "") == SendStatus.finished
    first_run = last.detail == "before the scheduler first ran"
    if last.state in (SlotState.failed, SlotState.missed) and not sent_by_hand and not first_run:
        problems.append(f"the slot of {when} {last.state.value}: {last.detail}")
    if last.state == SlotState.claimed and not slots.owner_running(last, now):
        problems.append(f"the slot of {when} is stuck: its owner {last.owner} is gone")
    if (
        last.state == SlotState.interrupted
        and last.retry_at is None
        and now - last.heartbeat_at > STUCK_AFTER
    ):
        problems.append(f"the slot of {when} was interrupted and nothing resumed it")
    retry = last.retry_at
    if last.state == SlotState.interrupted and retry is not None and now - retry > STUCK_AFTER:
        problems.append(f"the slot of {when} was to be tried again and was not")
    return problems
