"""Slots: every other Thursday at 09:00 London time, across daylight saving and 53-week years."""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from helpers.scheduling import LONDON, london
from pydantic import ValidationError

from mailer.config import Schedule
from mailer.scheduling.slots import Slot, latest_due, next_after, slot_trigger, upcoming

UTC = dt.UTC


def schedule(**overrides: object) -> Schedule:
    fields: dict[str, object] = {
        "weekday": "thursday",
        "time": "09:00",
        "timezone": "Europe/London",
        "anchor": "2026-12-03",
        "editors": ["editor@example.org"],
        **overrides,
    }
    return Schedule.model_validate(fields)


RULE = schedule()
YEAR = upcoming(RULE, london(2026, 12, 1), 27)  # 2026-12-03 to 2027-12-16


class TestAYearOfSlots:
    def test_every_other_thursday_from_the_anchor(self) -> None:
        """The first slot is the anchor; each next slot is 14 calendar days later."""
        assert dt.date(2026, 12, 3) == YEAR[0].date
        assert {14} == {(b.date - a.date).days for a, b in pairwise(YEAR)}
        assert {"Thursday"} == {slot.at.strftime("%A") for slot in YEAR}

    def test_always_nine_in_the_morning_in_london(self) -> None:
        """Wall-clock 09:00 in every slot, winter and summer."""
        assert {dt.time(9, 0)} == {slot.at.astimezone(LONDON).time() for slot in YEAR}

    def test_daylight_saving_moves_the_utc_time_not_the_local_one(self) -> None:
        """09:00 GMT is 09:00 UTC; 09:00 BST (from 28 March to 31 October 2027) is 08:00 UTC."""
        by_date = {slot.date: slot.utc.time() for slot in YEAR}
        # 25 March is the Thursday before the clocks go forward, 4 November the one after
        # they go back.
        assert dt.time(9, 0) == by_date[dt.date(2027, 3, 25)]
        assert dt.time(8, 0) == by_date[dt.date(2027, 4, 8)]
        assert dt.time(8, 0) == by_date[dt.date(2027, 10, 21)]
        assert dt.time(9, 0) == by_date[dt.date(2027, 11, 4)]

    def test_the_fortnight_across_a_clock_change_is_an_hour_short_or_long(self) -> None:
        """What an IntervalTrigger(weeks=2) would get wrong: the absolute gap is not 14 × 24 h."""
        gaps = {(a.date, b.date): b.utc - a.utc for a, b in pairwise(YEAR)}
        fortnight = dt.timedelta(weeks=2)
        assert (
            fortnight - dt.timedelta(hours=1) == gaps[(dt.date(2027, 3, 25), dt.date(2027, 4, 8))]
        )
        assert (
            fortnight + dt.timedelta(hours=1) == gaps[(dt.date(2027, 10, 21), dt.date(2027, 11, 4))]
        )

    def test_the_turn_of_2026_into_2027_a_53_week_year(self) -> None:
        """2026 has an ISO week 53: slots fall in weeks 51, 53, then 2, a fortnight apart."""
        weeks = [(s.date.isoformat(), s.date.isocalendar().week) for s in YEAR[1:4]]
        assert [("2026-12-17", 51), ("2026-12-31", 53), ("2027-01-14", 2)] == weeks

    def test_cron_every_other_week_would_send_twice_in_a_row(self) -> None:
        """Why not CronTrigger(week='*/2'): odd weeks 53 and 1 are one week apart."""
        cron = CronTrigger(week="*/2", day_of_week="thu", hour=9, timezone=LONDON)
        first = cron.get_next_fire_time(None, london(2026, 12, 25))
        second = cron.get_next_fire_time(first, first + dt.timedelta(seconds=1))
        assert (dt.date(2026, 12, 31), dt.date(2027, 1, 7)) == (first.date(), second.date())
        assert [dt.date(2026, 12, 31), dt.date(2027, 1, 14)] == [s.date for s in YEAR[2:4]]


class TestDueAndNext:
    def test_the_trigger_alone_would_answer_the_old_anchor(self) -> None:
        """CalendarIntervalTrigger with no previous fire time returns the anchor, months ago."""
        now = london(2027, 6, 1)
        assert london(2026, 12, 3) == slot_trigger(RULE).get_next_fire_time(None, now)
        assert Slot(london(2027, 5, 20)) == latest_due(RULE, now)
        assert Slot(london(2027, 6, 3)) == next_after(RULE, now)

    def test_a_slot_is_due_from_its_first_second(self) -> None:
        """At 09:00:00 the slot is due; a second before, the previous one is the latest."""
        at = london(2027, 4, 8)
        assert Slot(at) == latest_due(RULE, at)
        assert Slot(london(2027, 3, 25)) == latest_due(RULE, at - dt.timedelta(seconds=1))
        assert Slot(at) == next_after(RULE, at - dt.timedelta(seconds=1))
        assert Slot(london(2027, 4, 22)) == next_after(RULE, at)

    def test_before_the_anchor_nothing_is_due(self) -> None:
        """A schedule starting in the future has no due slot; its first slot is the anchor."""
        now = dt.datetime(2026, 11, 23, 12, tzinfo=UTC)
        assert latest_due(RULE, now) is None
        assert Slot(london(2026, 12, 3)) == next_after(RULE, now)

    def test_an_anchor_in_the_future_still_fixes_the_weeks_before_it_is_reached(self) -> None:
        """Slots before the anchor do not exist: an anchor is where the schedule starts."""
        later = schedule(anchor="2027-01-14")
        assert Slot(london(2027, 1, 14)) == next_after(later, london(2026, 12, 20))

    def test_the_same_answer_whatever_zone_now_is_given_in(self) -> None:
        """'Now' is an instant: UTC or London, the same slot."""
        instant = dt.datetime(2027, 4, 8, 8, 0, tzinfo=UTC)
        assert latest_due(RULE, instant) == latest_due(RULE, instant.astimezone(LONDON))
        assert Slot(london(2027, 4, 8)) == latest_due(RULE, instant)

    def test_other_time_zones(self) -> None:
        """A New York schedule changes its clocks on other dates than London's."""
        new_york = schedule(timezone="America/New_York", anchor="2027-03-04")
        zone = ZoneInfo("America/New_York")
        slots = upcoming(new_york, dt.datetime(2027, 3, 1, tzinfo=zone), 2)
        # Clocks went forward on 14 March 2027 in New York: 09:00 EST then 09:00 EDT.
        assert [dt.time(14, 0), dt.time(13, 0)] == [s.utc.time() for s in slots]


class TestTheRule:
    def test_defaults(self) -> None:
        """Six hours of lateness and a reminder two days ahead, unless mailer.toml says otherwise."""
        assert (dt.timedelta(hours=6), dt.timedelta(days=2)) == (RULE.lateness, RULE.reminder)

    def test_the_anchor_must_fall_on_the_weekday(self) -> None:
        """A typo in the anchor is caught, not silently moving the slots."""
        with pytest.raises(
            ValidationError, match="the anchor 2026-12-04 is a Friday, but weekday is thursday"
        ):
            schedule(anchor="2026-12-04")

    def test_an_unknown_time_zone_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="'Europe/Londn' is not a time zone name"):
            schedule(timezone="Europe/Londn")

    @pytest.mark.parametrize(
        ("anchor", "what"), [("2027-03-28", "does not exist"), ("2027-10-31", "happens twice")]
    )
    def test_a_time_skipped_or_repeated_by_a_clock_change_is_refused(
        self, anchor: str, what: str
    ) -> None:
        """01:30 on a Sunday slot: the clocks change that night, so the slot would be lost or doubled."""
        with pytest.raises(ValidationError, match=f"01:30 {what} on {anchor} in Europe/London"):
            schedule(weekday="sunday", time="01:30", anchor=anchor)

    def test_the_small_hours_are_fine_on_days_the_clocks_never_change(self) -> None:
        """UK clocks change on Sundays: a Thursday at 01:30 is always there."""
        assert dt.time(1, 30) == schedule(time="01:30").time

    def test_editors_are_needed(self) -> None:
        """Reminders and notices need somebody to go to."""
        with pytest.raises(ValidationError, match="editors"):
            schedule(editors=[])

    def test_lateness_cannot_reach_the_next_slot(self) -> None:
        with pytest.raises(ValidationError, match="lateness_hours"):
            schedule(lateness_hours=24 * 8)
