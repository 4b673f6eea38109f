"""An issue's date against the fortnightly slots of ``[schedule]``.

Slots fall every other ``weekday``, on the anchor's date and every fourteenth day
after it (the scheduler's ``CalendarIntervalTrigger`` steps by calendar date, so a
slot's date never drifts). A file dated on any other day is never sent by the
scheduler: :func:`off_schedule` says so, naming the slot the editor probably meant.
"""

from __future__ import annotations

import datetime as dt

from mailer.config import Schedule

__all__ = ["describe_day", "nearest_slots", "off_schedule"]

FORTNIGHT = 14


def describe_day(day: dt.date) -> str:
    """For people: 'Thursday 3 December 2026'."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def nearest_slots(day: dt.date, schedule: Schedule) -> tuple[dt.date, ...]:
    """The slot dates nearest to ``day``: itself if it is one, else one (or two, a week either side)."""
    offset = (day - schedule.anchor).days
    if offset <= 0:
        return (schedule.anchor,)  # no slot comes before the anchor
    before = schedule.anchor + dt.timedelta(days=offset - offset % FORTNIGHT)
    after = before + dt.timedelta(days=FORTNIGHT)
    gap_before, gap_after = (day - before).days, (after - day).days
    if gap_before == 0:
        return (day,)
    if gap_before == gap_after:
        return (before, after)
    return (before,) if gap_before < gap_after else (after,)


def off_schedule(day: dt.date, schedule: Schedule) -> str | None:
    """Why no slot would send an issue dated ``day``, naming the nearest slot; None on a slot."""
    slots = nearest_slots(day, schedule)
    if slots == (day,):
        return None
    weekday = schedule.weekday.value.capitalize()
    meant = " or ".join(f"{describe_day(slot)} ({slot.isoformat()})" for slot in slots)
    if day < schedule.anchor:
        return (
            f"the date {day.isoformat()} is before the first slot, {meant}, so the scheduler "
            "would never send it: date the issue for a slot"
        )
    if f"{day:%A}" != weekday:
        return (
            f"the date {day.isoformat()} is a {day:%A}, but issues go out every other {weekday}: "
            f"did you mean the slot on {meant}?"
        )
    return (
        f"the date {day.isoformat()} is a {weekday} between two slots (issues go out every "
        f"other {weekday}): did you mean {meant}?"
    )
