"""What the schedule looks like now: for ``mailer schedule`` and ``GET /healthz``.

A slot's state is what happened to it, when the scheduler has dealt with it
(``sending``, ``interrupted``, ``sent``, ``incomplete``, ``failed``,
``no_issue``, ``missed``), else that of the issue it would send (``ready``,
``draft``, ``missing``, ``invalid``, ``ambiguous``) or ``sent`` when that issue
was already sent by hand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from mailer.config import Newsletter, Schedule
from mailer.errors import display_path
from mailer.scheduling.issues import Catalogue, read_catalogue
from mailer.scheduling.slots import Slot, latest_due, next_after
from mailer.store.ledger import Ledger, SendStatus
from mailer.store.slots import SlotRecord, SlotState, SlotStore

__all__ = ["RUNNING_WITHIN", "SlotView", "scheduler_health", "slot_views"]

# A scheduler that checked the clock within this long is running (it checks every minute).
RUNNING_WITHIN = dt.timedelta(minutes=3)


@dataclass(frozen=True)
class SlotView:
    """One slot as ``mailer schedule`` shows it."""

    slot: Slot
    state: str
    issue: str | None  # the issue's slug
    file: str | None  # its file, as the user would type it
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "slot": self.slot.utc.isoformat(),
            "local": str(self.slot),
            "date": self.slot.date.isoformat(),
            "issue": self.issue,
            "file": self.file,
            "state": self.state,
            "detail": self.detail,
        }


def slot_views(newsletter: Newsletter, engine: Engine, slots: list[Slot]) -> list[SlotView]:
    """Each slot with its issue and state, from the issue files and the database."""
    if not slots:
        return []
    catalogue = read_catalogue(newsletter)
    records = SlotStore(engine).between(slots[0].utc, slots[-1].utc)
    ledger = Ledger(engine)
    return [_view(slot, records.get(slot.utc), catalogue, ledger) for slot in slots]


def _view(slot: Slot, record: SlotRecord | None, catalogue: Catalogue, ledger: Ledger) -> SlotView:
    found = catalogue.for_day(slot.date)
    path = found.path or (found.files[0] if found.files else None)
    file = display_path(path) if path else None
    issue = found.issue.slug if found.issue else None
    if record is not None:
        state = "sending" if record.state == SlotState.claimed else record.state.value
        return SlotView(slot, state, record.issue or issue, file, record.detail)
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
