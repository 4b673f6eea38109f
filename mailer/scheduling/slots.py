"""The fortnightly slots, from the ``[schedule]`` rule and the clock.

Slots come from APScheduler 3.11's ``CalendarIntervalTrigger(weeks=2, ...)`` in
the schedule's time zone: each slot is the previous one's *date* plus 14 days,
at the same wall-clock time, so a slot stays at 09:00 local across
daylight-saving changes (an ``IntervalTrigger`` would drift by an hour) and
across 53-week years (``CronTrigger(week="*/2")`` fires in ISO weeks 53 and 1,
a week apart).

The trigger alone cannot say which slot is due now: with no previous fire time,
``get_next_fire_time(None, now)`` answers the anchor date itself, however far in
the past. So :func:`latest_due` and :func:`next_after` start the trigger from a
slot date computed from the clock (the fortnights since the anchor) and step it
forward; the lateness window then decides what a due slot means.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger

from mailer.config import Schedule

__all__ = ["Slot", "latest_due", "next_after", "slot_trigger", "slots_from", "upcoming"]

FORTNIGHT = dt.timedelta(weeks=2)


@dataclass(frozen=True, order=True)
class Slot:
    """One fortnightly slot: an instant, shown in the schedule's time zone."""

    at: dt.datetime  # aware, in the schedule's zone

    @property
    def utc(self) -> dt.datetime:
        return self.at.astimezone(dt.UTC)

    @property
    def date(self) -> dt.date:
        """The slot's local date: what an issue's ``date:`` names."""
        return self.at.date()

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.at.tzname()}"

    def describe(self) -> str:
        """For people: 'Thursday 17 December 2026 at 09:00 GMT'."""
        return f"{self.at:%A} {self.at.day} {self.at:%B %Y at %H:%M} {self.at.tzname()}"


def slot_trigger(schedule: Schedule) -> CalendarIntervalTrigger:
    """The APScheduler trigger that fires at every slot."""
    return CalendarIntervalTrigger(
        weeks=2,
        hour=schedule.time.hour,
        minute=schedule.time.minute,
        second=schedule.time.second,
        start_date=schedule.anchor,
        timezone=schedule.zone,
    )


def slots_from(schedule: Schedule, day: dt.date) -> Iterator[Slot]:
    """Every slot on or after ``day``, in order (none before the anchor)."""
    trigger = slot_trigger(schedule)
    fortnights = -(-(day - schedule.anchor).days // 14)  # ceiling: the first slot date >= day
    previous: dt.datetime | None = None
    if fortnights > 0:
        # The trigger only reads the previous fire time's date: start from the slot
        # date before the one wanted, and let it add the fortnight (and skip a date
        # whose time does not exist, as it would have done itself).
        before = schedule.anchor + (fortnights - 1) * FORTNIGHT
        previous = dt.datetime.combine(before, schedule.time, schedule.zone)
    while True:
        fire = trigger.get_next_fire_time(previous, previous or _start(schedule))
        if fire is None:  # pragma: no cover - the trigger has no end date
            return
        yield Slot(fire)
        previous = fire


def _start(schedule: Schedule) -> dt.datetime:
    return dt.datetime.combine(schedule.anchor, schedule.time, schedule.zone)


def latest_due(schedule: Schedule, now: dt.datetime) -> Slot | None:
    """The last slot at or before ``now``; None before the first slot."""
    today = now.astimezone(schedule.zone).date()
    latest: Slot | None = None
    # A slot at or before now is at most a fortnight (plus a skipped date) back.
    for slot in slots_from(schedule, today - 2 * FORTNIGHT):
        if slot.at > now:
            return latest
        latest = slot
    raise AssertionError("unreachable")  # pragma: no cover


def next_after(schedule: Schedule, now: dt.datetime) -> Slot:
    """The first slot strictly after ``now``."""
    return upcoming(schedule, now, 1)[0]


def upcoming(schedule: Schedule, now: dt.datetime, count: int) -> list[Slot]:
    """The next ``count`` slots strictly after ``now``."""
    today = now.astimezone(schedule.zone).date()
    found: list[Slot] = []
    for slot in slots_from(schedule, today - FORTNIGHT):
        if slot.at > now:
            found.append(slot)
            if len(found) == count:
                break
    return found
