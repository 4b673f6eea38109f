"""The scheduler's tick, driven through time with time-machine: what is sent, when, and once.

Each test moves the clock (``time_machine.move_to``) and calls :meth:`Runner.tick`,
as the service's jobs do, on SQLite and on PostgreSQL, sending through the outbox.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable

import pytest
from doubles.smtp import SmtpServer
from helpers.catcher import catcher
from helpers.members import add_members, member_emails
from helpers.outbox import outbox_folders, read_eml, recipients
from helpers.owners import dead_slot_owner
from helpers.scheduling import EDITORS, Project, both_databases, london
from pydantic import SecretStr
from sqlalchemy import select
from time_machine import TimeMachineFixture
from typer.testing import CliRunner

from mailer.cli import app
from mailer.config import Settings, load_newsletter
from mailer.mail import Batch, Delivery, DeliveryState
from mailer.scheduling.runner import Action, Outcome, Runner
from mailer.scheduling.slots import upcoming
from mailer.store import SubscriberStore
from mailer.store.ledger import DeliveryRow
from mailer.store.slots import NoticeKind, SlotState, SlotStore
from mailer.transports import Transport
from mailer.transports.base import TransportBase
from mailer.transports.outbox import OutboxTransport

MEMBERS = 6
Make = Callable[..., Runner]


def once(count: int) -> dict[str, int]:
    """Each of the first ``count`` members, once."""
    return {email: 1 for email in sorted(member_emails(count))}


def actions(outcomes: list[Outcome]) -> list[tuple[str, Action]]:
    return [(o.slot.date.isoformat(), o.action) for o in outcomes]


def slot_state(store: SubscriberStore, at: dt.datetime) -> SlotState | None:
    record = SlotStore(store.engine).get(at.astimezone(dt.UTC))
    return None if record is None else record.state


def delivered(store: SubscriberStore, issue: str) -> dict[str, int]:
    """Ledger rows per state for an issue."""
    with store.engine.connect() as connection:
        states = connection.scalars(select(DeliveryRow.state).where(DeliveryRow.issue == issue))
        counts: dict[str, int] = {}
        for state in states:
            counts[state] = counts.get(state, 0) + 1
    return counts


class TestAYearOfSlots:
    @both_databases
    def test_a_year_of_slots_across_daylight_saving_and_the_new_year(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """Fifty-two weeks from 3 December 2026: ready issues go out at 09:00 London time, once;
        every other slot gets a reminder two days ahead and a 'nothing sent' notice at 09:00."""
        add_members(store, MEMBERS)
        ready = ["2026-12-03", "2027-01-14", "2027-03-25", "2027-04-08", "2027-10-21", "2027-11-04"]
        for day in ready:
            project.write_issue(day)
        project.write_issue("2026-12-17", status="draft")
        year = upcoming(load_newsletter(project.config).schedule, london(2026, 12, 1), 26)  # type: ignore[arg-type]
        assert ("2026-12-03", "2027-11-18") == (year[0].date.isoformat(), year[-1].date.isoformat())

        scheduler = runner()
        seen: list[tuple[str, Action]] = []
        for slot in year:
            time_machine.move_to(slot.at - dt.timedelta(hours=48), tick=False)
            seen += actions(scheduler.tick())
            time_machine.move_to(slot.at - dt.timedelta(seconds=1), tick=False)
            seen += actions(scheduler.tick())  # not due yet; the reminder is not repeated
            time_machine.move_to(slot.at, tick=False)
            seen += actions(scheduler.tick())
            time_machine.move_to(slot.at + dt.timedelta(hours=1), tick=False)
            seen += actions(scheduler.tick())  # dealt with: nothing more

        expected: list[tuple[str, Action]] = []
        for slot in year:
            day = slot.date.isoformat()
            if day in ready:
                expected.append((day, Action.sent))
            else:
                expected += [(day, Action.reminded), (day, Action.no_issue)]
        assert expected == seen

        folders = outbox_folders(settings.outbox_dir)
        for day in ready:
            assert MEMBERS == folders.pop(f"{day}-bulletin")
        reminders = {k: v for k, v in folders.items() if k.endswith("-reminder")}
        notices = {k: v for k, v in folders.items() if k.endswith("-no-issue")}
        assert 26 - len(ready) == len(reminders) == len(notices)
        assert {len(EDITORS)} == set(reminders.values()) | set(notices.values())
        assert {} == {k: v for k, v in folders.items() if k not in reminders | notices}

        # Every slot's row is at its UTC instant: 09:00 in winter, 08:00 in summer.
        rows = SlotStore(store.engine).between(year[0].utc, year[-1].utc)
        assert [s.utc for s in year] == sorted(rows)
        summer = rows[london(2027, 4, 8).astimezone(dt.UTC)]
        assert (dt.time(8, 0), SlotState.sent) == (summer.slot_at.time(), summer.state)
        for day in ready:
            assert {DeliveryState.sent: MEMBERS} == delivered(store, f"{day}-bulletin")

    def test_one_log_line_per_action(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        time_machine: TimeMachineFixture,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The log says which slot, which issue, and what came of it, once per action."""
        add_members(store, 3)
        project.write_issue("2026-12-03")
        time_machine.move_to(london(2026, 12, 3), tick=False)
        with caplog.at_level(logging.INFO, logger="mailer.scheduler"):
            runner().tick()
        lines = [r.getMessage() for r in caplog.records if r.name == "mailer.scheduler"]
        assert [
            "slot 2026-12-03 09:00 GMT: sending 2026-12-03-bulletin",
            "slot 2026-12-03 09:00 GMT: sent 2026-12-03-bulletin: sent=3 already_sent=0 "
            "suppressed=0 failed=0 unknown=0",
        ] == lines


class TestMissedSlots:
    def test_a_slot_missed_within_the_lateness_is_sent_on_start_up(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """Down at 09:00, started at 14:59: still within the six hours, so the issue goes out."""
        add_members(store, MEMBERS)
        project.write_issue("2026-12-03")
        time_machine.move_to(london(2026, 12, 3, 14, 59), tick=False)
        assert [("2026-12-03", Action.sent)] == actions(runner().tick())
        assert MEMBERS == len(recipients(settings.outbox_dir / "2026-12-03-bulletin"))

    def test_a_slot_missed_beyond_the_lateness_is_reported_not_sent(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """Down from 08:00, started at 15:01, six hours and a minute late: nothing is sent, the
        editors hear why."""
        add_members(store, MEMBERS)
        project.write_issue("2026-12-03")
        ran_until(runner, time_machine, london(2026, 12, 3, 8))
        time_machine.move_to(london(2026, 12, 3, 15, 1), tick=False)
        assert [("2026-12-03", Action.missed)] == actions(runner().tick())
        assert {"scheduler-2026-12-03-missed": len(EDITORS)} == outbox_folders(settings.outbox_dir)
        notice = read_eml(settings.outbox_dir / "scheduler-2026-12-03-missed" / f"{EDITORS[0]}.eml")
        assert "Missed: nothing was sent on Thursday 3 December" == notice["Subject"]
        body = notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "more than 6 hours late" in body
        assert "2026-12-03-bulletin.yaml` sends it now" in body
        assert SlotState.missed == slot_state(store, london(2026, 12, 3))
        assert {} == delivered(store, "2026-12-03-bulletin")

        time_machine.move_to(london(2026, 12, 3, 16), tick=False)
        assert [] == runner().tick()  # a restart does not report it again, nor send it
        assert {"scheduler-2026-12-03-missed": len(EDITORS)} == outbox_folders(settings.outbox_dir)

    def test_after_a_missed_slot_the_next_one_goes_out_as_usual(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """Down for a week: the old slot is reported, the next is sent on time."""
        add_members(store, MEMBERS)
        project.write_issue("2026-12-03")
        project.write_issue("2026-12-17")
        ran_until(runner, time_machine, london(2026, 12, 2))
        time_machine.move_to(london(2026, 12, 10), tick=False)
        scheduler = runner()
        assert [("2026-12-03", Action.missed)] == actions(scheduler.tick())
        time_machine.move_to(london(2026, 12, 17), tick=False)
        assert [("2026-12-17", Action.sent)] == actions(scheduler.tick())

    def test_a_slot_before_the_scheduler_ever_ran_is_not_reported(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """A new installation, started a week after a slot: that slot was never its to send."""
        project.write_issue("2026-12-03")
        time_machine.move_to(london(2026, 12, 10), tick=False)
        assert [] == runner().tick()
        assert {} == outbox_folders(settings.outbox_dir)
        assert SlotState.missed == slot_state(store, london(2026, 12, 3))


class TestNoReadyIssue:
    def test_a_draft_at_the_slot_sends_nothing_and_tells_the_editors_once(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """Still a draft at 09:00: no member gets anything; each editor gets one email."""
        add_members(store, MEMBERS)
        draft = project.write_issue("2026-12-17", status="draft")
        time_machine.move_to(london(2026, 12, 17), tick=False)
        assert [("2026-12-17", Action.no_issue)] == actions(runner().tick())
        folder = settings.outbox_dir / "scheduler-2026-12-17-no-issue"
        assert {"scheduler-2026-12-17-no-issue": len(EDITORS)} == outbox_folders(
            settings.outbox_dir
        )
        assert {e: 1 for e in EDITORS} == recipients(folder)
        notice = read_eml(folder / f"{EDITORS[1]}.eml")
        assert "Nothing was sent on Thursday 17 December: no issue was ready" == notice["Subject"]
        body = notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert f"{draft.name} still says `status: draft`" in body
        assert "auto-generated" == notice["Auto-Submitted"]

        # Made ready after the slot: the slot is over; a restart neither sends nor tells again.
        project.write_issue("2026-12-17", status="ready")
        time_machine.move_to(london(2026, 12, 17, 10), tick=False)
        assert [] == runner().tick()
        assert {"scheduler-2026-12-17-no-issue": len(EDITORS)} == outbox_folders(
            settings.outbox_dir
        )
        assert SlotState.no_issue == slot_state(store, london(2026, 12, 17))

    @pytest.mark.parametrize("kind", ["missing", "invalid", "ambiguous"])
    def test_missing_invalid_or_ambiguous_issues_are_not_sent(
        self,
        kind: str,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """No file, a file that does not validate, or two ready issues for one slot: nothing sent."""
        add_members(store, MEMBERS)
        if kind == "invalid":
            project.write_broken_issue("2026-12-17")
        if kind == "ambiguous":
            project.write_issue("2026-12-17", title="one")
            project.write_issue("2026-12-17", title="other")
        time_machine.move_to(london(2026, 12, 17), tick=False)
        [outcome] = runner().tick()
        assert (Action.no_issue, f"no ready issue ({kind})") == (outcome.action, outcome.detail)
        assert ["scheduler-2026-12-17-no-issue"] == list(outbox_folders(settings.outbox_dir))
        body = read_eml(
            settings.outbox_dir / "scheduler-2026-12-17-no-issue" / f"{EDITORS[0]}.eml"
        ).get_body(("plain",))
        text = body.get_content()  # type: ignore[union-attr]
        expected = {
            "missing": "No file in the issues folder has `date: 2026-12-17`",
            "invalid": "2026-12-17-broken.yaml:1: ",
            "ambiguous": "More than one issue with `date: 2026-12-17` says `status: ready`",
        }[kind]
        assert expected in text


class TestReminders:
    def test_a_reminder_two_days_ahead_of_a_draft_slot_once(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """From 09:00 two days before, while the issue is a draft: one reminder, never repeated,
        even by a restarted scheduler."""
        draft = project.write_issue("2026-12-17", status="draft")
        time_machine.move_to(london(2026, 12, 15, 8, 59), tick=False)
        assert [] == runner().tick()  # before the window: nothing
        time_machine.move_to(london(2026, 12, 15, 9, 0), tick=False)
        assert [("2026-12-17", Action.reminded)] == actions(runner().tick())
        folder = settings.outbox_dir / "scheduler-2026-12-17-reminder"
        assert {e: 1 for e in EDITORS} == recipients(folder)
        notice = read_eml(folder / f"{EDITORS[0]}.eml")
        assert "Reminder: the issue for Thursday 17 December is not ready yet" == notice["Subject"]
        body = notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Thursday 17 December 2026 at 09:00 GMT" in body
        assert f"{draft.name} still says `status: draft`" in body
        stamps = {p.name: os.stat(p).st_ino for p in folder.iterdir()}

        for moment in (london(2026, 12, 15, 9, 1), london(2026, 12, 16, 12)):
            time_machine.move_to(moment, tick=False)
            assert [] == runner().tick()  # a new runner each time: a restarted process
        assert stamps == {p.name: os.stat(p).st_ino for p in folder.iterdir()}
        assert {NoticeKind.reminder: "sent"} == SlotStore(store.engine).notices(
            london(2026, 12, 17).astimezone(dt.UTC)
        )

    def test_no_reminder_when_the_issue_is_ready(
        self,
        project: Project,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        project.write_issue("2026-12-17")
        time_machine.move_to(london(2026, 12, 16), tick=False)
        assert [] == runner().tick()
        assert {} == outbox_folders(settings.outbox_dir)

    def test_a_missing_issue_is_reminded_of_too(
        self,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        time_machine.move_to(london(2026, 12, 16), tick=False)
        assert [("2026-12-17", Action.reminded)] == actions(runner().tick())
        body = read_eml(
            settings.outbox_dir / "scheduler-2026-12-17-reminder" / f"{EDITORS[0]}.eml"
        ).get_body(("plain",))
        assert "No file in the issues folder has `date: 2026-12-17`" in body.get_content()  # type: ignore[union-attr]

    def test_reminders_can_be_turned_off(
        self, runner: Make, project: Project, time_machine: TimeMachineFixture
    ) -> None:
        text = project.config.read_text().replace("reminder_hours = 48", "reminder_hours = 0")
        project.config.write_text(text)
        time_machine.move_to(london(2026, 12, 16, 12), tick=False)
        assert [] == runner().tick()


def ran_until(runner: Make, time_machine: TimeMachineFixture, moment: dt.datetime) -> None:
    """A scheduler was running until ``moment``, then stopped (a crash, a reboot)."""
    time_machine.move_to(moment, tick=False)
    earlier = runner()
    earlier.tick()
    earlier.stopped()


class Hook(TransportBase):
    """A real transport, with a hook run after each batch it sends (not after notices)."""

    def __init__(self, transport: Transport, hook: Callable[[int], None]) -> None:
        self.transport, self.hook, self.name = transport, hook, transport.name
        self.batches = 0

    def send(self, batch: Batch) -> list[Delivery]:
        deliveries = self.transport.send(batch)
        if not batch.issue.startswith("scheduler-"):
            self.batches += 1
            self.hook(self.batches)
        return deliveries


@both_databases
class TestExactlyOnce:
    def test_a_second_scheduler_finds_the_slot_claimed_while_the_first_sends(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """Between two batches of the first scheduler's send, the second one's tick sends nothing."""
        add_members(store, MEMBERS)
        project.write_issue("2026-12-03")
        time_machine.move_to(london(2026, 12, 3), tick=False)
        second = runner()
        seen: list[list[Outcome]] = []
        outbox = OutboxTransport(settings.outbox_dir)
        first = runner(
            transport=lambda: Hook(outbox, lambda n: seen.append(second.tick())), batch_size=2
        )
        assert [("2026-12-03", Action.sent)] == actions(first.tick())
        assert [[Action.taken]] * 3 == [[o.action for o in ticks] for ticks in seen]
        assert [] == second.tick()  # and once it is sent, there is nothing to take
        assert once(MEMBERS) == recipients(settings.outbox_dir / "2026-12-03-bulletin")

    def test_a_check_while_this_scheduler_sends_only_beats_the_heartbeat(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """The service checks every minute, also during a long send: such a tick does nothing
        but say the scheduler is alive."""
        add_members(store, MEMBERS)
        project.write_issue("2026-12-03")
        time_machine.move_to(london(2026, 12, 3), tick=False)
        during: list[list[Outcome]] = []
        outbox = OutboxTransport(settings.outbox_dir)

        def check(batch: int) -> None:
            time_machine.move_to(london(2026, 12, 3, 9, batch), tick=False)
            during.append(scheduler.tick())

        scheduler = runner(transport=lambda: Hook(outbox, check), batch_size=2)
        assert [("2026-12-03", Action.sent)] == actions(scheduler.tick())
        assert [[], [], []] == during
        beat = SlotStore(store.engine).last_beat()
        assert beat is not None
        assert london(2026, 12, 3, 9, 3) == beat.beat_at

    def test_a_restart_in_the_middle_of_a_send_resumes_and_sends_nobody_twice(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """Stopped after its first batch (SIGTERM), the send is resumed by the next scheduler,
        late as it is, from the ledger: the first batch's messages are not written again."""
        add_members(store, MEMBERS)
        project.write_issue("2026-12-03")
        time_machine.move_to(london(2026, 12, 3), tick=False)
        stop: list[bool] = []
        outbox = OutboxTransport(settings.outbox_dir)
        first = runner(
            transport=lambda: Hook(outbox, lambda n: stop.append(True)),
            should_stop=lambda: bool(stop),
            batch_size=2,
        )
        [outcome] = first.tick()
        assert Action.interrupted == outcome.action
        assert SlotState.interrupted == slot_state(store, london(2026, 12, 3))
        folder = settings.outbox_dir / "2026-12-03-bulletin"
        written = {p.name: os.stat(p).st_ino for p in folder.glob("*.eml")}
        # The batches handed over were recorded (the send works one batch ahead, so the stop
        # may come after the second); nothing is left in flight.
        ledger = delivered(store, "2026-12-03-bulletin")
        assert 0 < len(written) == ledger[DeliveryState.sent] < MEMBERS
        assert DeliveryState.in_flight not in ledger

        # Restarted at 20:00, beyond the lateness: a send that began in time is finished.
        time_machine.move_to(london(2026, 12, 3, 20), tick=False)
        [outcome] = runner().tick()
        assert outcome.summary is not None
        assert (Action.sent, len(written)) == (
            outcome.action,
            outcome.summary.total("already_sent"),
        )
        assert once(MEMBERS) == recipients(folder)
        assert written == {name: os.stat(folder / name).st_ino for name in written}  # not rewritten
        assert {DeliveryState.sent: MEMBERS} == delivered(store, "2026-12-03-bulletin")
        assert 2 == SlotStore(store.engine).get(london(2026, 12, 3).astimezone(dt.UTC)).runs  # type: ignore[union-attr]

    def test_a_claim_left_by_a_dead_process_is_taken_over(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """A scheduler killed with its claim on the slot: the next one takes it and sends."""
        add_members(store, MEMBERS)
        project.write_issue("2026-12-03")
        time_machine.move_to(london(2026, 12, 3), tick=False)
        at = london(2026, 12, 3).astimezone(dt.UTC)
        dead_slot_owner(settings.database_url, at)
        time_machine.move_to(london(2026, 12, 3, 9, 1), tick=False)
        assert [("2026-12-03", Action.sent)] == actions(runner().tick())
        assert {DeliveryState.sent: MEMBERS} == delivered(store, "2026-12-03-bulletin")

    def test_a_live_claim_is_left_alone(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """Another live scheduler (here: another Runner, holding its claim's lock) has the slot."""
        project.write_issue("2026-12-03")
        time_machine.move_to(london(2026, 12, 3), tick=False)
        at = london(2026, 12, 3).astimezone(dt.UTC)
        other = runner()
        other.slots.claim(at, other.owner, at)
        [outcome] = runner().tick()
        assert Action.taken == outcome.action
        assert {} == outbox_folders(settings.outbox_dir)


class Refusing(TransportBase):
    """A transport whose every issue batch fails as a whole (a relay that is down); notices
    pass, unless ``notices_too``."""

    def __init__(self, notices: Transport, *, notices_too: bool = False) -> None:
        self.notices, self.name, self.notices_too = notices, "smtp", notices_too

    def send(self, batch: Batch) -> list[Delivery]:
        if batch.issue.startswith("scheduler-") and not self.notices_too:
            return self.notices.send(batch)
        error = "cannot connect to the SMTP server: Connection refused"
        return [Delivery(email=r.email, state="failed", error=error) for r in batch.recipients]


class TestFailures:
    def test_a_transport_down_at_the_slot_is_tried_again_until_it_comes_back(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """A relay down at 09:00 and back a minute later: the slot is tried again, with
        backoff, and goes out to everyone once; nobody needs to do anything."""
        add_members(store, MEMBERS)
        project.write_issue("2026-12-03")
        outbox = OutboxTransport(settings.outbox_dir)
        down = [True]
        scheduler = runner(transport=lambda: Refusing(outbox) if down[0] else outbox)
        time_machine.move_to(london(2026, 12, 3), tick=False)
        [outcome] = scheduler.tick()
        assert Action.retrying == outcome.action
        assert "Connection refused" in outcome.detail
        time_machine.move_to(london(2026, 12, 3, 9, 0, 30), tick=False)
        assert [] == scheduler.tick()  # the next try is a minute after the first
        down[0] = False
        time_machine.move_to(london(2026, 12, 3, 9, 1), tick=False)
        assert [("2026-12-03", Action.sent)] == actions(scheduler.tick())
        assert {DeliveryState.sent: MEMBERS} == delivered(store, "2026-12-03-bulletin")
        assert ["2026-12-03-bulletin"] == list(outbox_folders(settings.outbox_dir))

    def test_down_for_the_whole_lateness_it_fails_and_the_editors_hear_another_way(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """Down all morning: tries back off, stop at the end of the six hours' lateness, and
        the failure reaches the editors through MAILER_NOTICE_URL, since the transport is
        what failed."""
        add_members(store, MEMBERS)
        project.write_issue("2026-12-03")
        outbox = OutboxTransport(settings.outbox_dir)
        with catcher() as webhook:
            settings.notice_url = SecretStr(webhook.url)
            scheduler = runner(transport=lambda: Refusing(outbox))
            at = london(2026, 12, 3)
            seen: list[Action] = []
            while not seen or seen[-1] == Action.retrying:
                time_machine.move_to(at, tick=False)
                seen += [o.action for o in scheduler.tick()]
                at += dt.timedelta(minutes=1)
            time_machine.move_to(london(2026, 12, 3, 16), tick=False)
            assert [] == scheduler.tick()
        assert Action.failed == seen[-1]
        assert 5 < len(seen) < 20  # backing off: not a try a minute for six hours
        assert at < london(2026, 12, 3, 15, 1)
        assert SlotState.failed == slot_state(store, london(2026, 12, 3))
        [posted] = webhook.posted
        assert "The send of 2026-12-03-bulletin stopped" == posted["subject"]
        assert "Connection refused" in posted["text"]
        assert {} == outbox_folders(settings.outbox_dir)  # nothing through the broken relay

    def test_a_send_whose_issue_went_back_to_draft_is_not_resumed(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """Stopped mid-send, then the editor set the issue back to draft: the next scheduler
        does not finish it on its own; the editors hear how to."""
        add_members(store, MEMBERS)
        project.write_issue("2026-12-03")
        time_machine.move_to(london(2026, 12, 3), tick=False)
        stop: list[bool] = []
        outbox = OutboxTransport(settings.outbox_dir)
        first = runner(
            transport=lambda: Hook(outbox, lambda n: stop.append(True)),
            should_stop=lambda: bool(stop),
            batch_size=2,
        )
        assert [("2026-12-03", Action.interrupted)] == actions(first.tick())
        sent = delivered(store, "2026-12-03-bulletin")[DeliveryState.sent]
        project.write_issue("2026-12-03", status="draft")
        time_machine.move_to(london(2026, 12, 3, 9, 5), tick=False)
        [outcome] = runner().tick()
        assert (Action.failed, "2026-12-03-bulletin") == (outcome.action, outcome.issue)
        assert sent == delivered(store, "2026-12-03-bulletin")[DeliveryState.sent]
        assert SlotState.failed == slot_state(store, london(2026, 12, 3))
        assert len(EDITORS) == outbox_folders(settings.outbox_dir)["scheduler-2026-12-03-failed"]


class Unanswered(TransportBase):
    """A real transport whose answer about each batch's first member never arrived."""

    def __init__(self, transport: Transport) -> None:
        self.transport, self.name = transport, transport.name

    def send(self, batch: Batch) -> list[Delivery]:
        deliveries = self.transport.send(batch)
        if batch.issue.startswith("scheduler-"):
            return deliveries
        first = deliveries[0]
        return [Delivery(email=first.email, state="unknown", error="timed out"), *deliveries[1:]]


class TestTheEditorsAreTold:
    """Every outcome the editors must know reaches them, and `mailer schedule` shows it."""

    def test_a_send_left_with_unknown_deliveries_is_reported_as_incomplete(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        add_members(store, MEMBERS)
        project.write_issue("2026-12-03")
        outbox = OutboxTransport(settings.outbox_dir)
        time_machine.move_to(london(2026, 12, 3), tick=False)
        [outcome] = runner(transport=lambda: Unanswered(outbox)).tick()
        assert Action.incomplete == outcome.action
        assert SlotState.incomplete == slot_state(store, london(2026, 12, 3))
        folder = settings.outbox_dir / "scheduler-2026-12-03-failed"  # one notice per slot
        assert {f"{e}.eml" for e in EDITORS} == {p.name for p in folder.iterdir()}
        notice = read_eml(folder / f"{EDITORS[0]}.eml")
        assert "The send of 2026-12-03-bulletin did not reach everyone" == notice["Subject"]
        body = notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "0 failed and 3 are unknown" in body
        assert "settle unknown ones" in body

    def test_slots_skipped_while_the_scheduler_was_down_for_weeks_are_each_reported(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
    ) -> None:
        """Started on 1 December (before any slot), then down until 14 January: three slots
        passed, two of them more than a fortnight ago, one with a ready issue; each is
        recorded as missed and told, and the due one goes out. (None was reported: with no
        slot dealt with yet, nothing said since when slots were the scheduler's.)"""
        add_members(store, 3)
        for day in ("2026-12-03", "2027-01-14"):
            project.write_issue(day)
        ran_until(runner, time_machine, london(2026, 12, 1))
        time_machine.move_to(london(2027, 1, 14, 10), tick=False)
        seen = actions(runner().tick())
        assert [
            ("2026-12-03", Action.missed),
            ("2026-12-17", Action.missed),
            ("2026-12-31", Action.missed),
            ("2027-01-14", Action.sent),
        ] == seen
        told = {name for name in outbox_folders(settings.outbox_dir) if name.startswith("sched")}
        assert {
            "scheduler-2026-12-03-missed",
            "scheduler-2026-12-17-missed",
            "scheduler-2026-12-31-missed",
        } <= told
        for day in ("2026-12-03", "2026-12-17", "2026-12-31"):
            assert SlotState.missed == slot_state(store, london(*map(int, day.split("-"))))

    def test_a_failed_slot_reaches_them_through_a_second_relay(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
        smtp_server: SmtpServer,
    ) -> None:
        """MAILER_NOTICE_URL=smtp://...: the newsletter's relay is down, the second one is not."""
        add_members(store, 3)
        project.write_issue("2026-12-03")
        settings.notice_url = SecretStr(smtp_server.url())
        outbox = OutboxTransport(settings.outbox_dir)
        scheduler = runner(transport=lambda: Refusing(outbox))
        at = london(2026, 12, 3)
        seen: list[Action] = []
        while not seen or seen[-1] == Action.retrying:
            time_machine.move_to(at, tick=False)
            seen += [o.action for o in scheduler.tick()]
            at += dt.timedelta(minutes=1)
        assert Action.failed == seen[-1]
        assert sorted(EDITORS) == sorted(r for m in smtp_server.messages for r in m.rcpt_tos)
        assert {} == outbox_folders(settings.outbox_dir)  # nothing through the broken relay

    def test_mailer_schedule_says_whether_they_were_told(
        self,
        project: Project,
        store: SubscriberStore,
        runner: Make,
        settings: Settings,
        time_machine: TimeMachineFixture,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A failed slot told through the webhook, then one that nobody could be told of."""
        add_members(store, 3)
        project.write_issue("2026-12-03")
        project.write_issue("2026-12-17")
        outbox = OutboxTransport(settings.outbox_dir)
        for name, value in (
            ("MAILER_CONFIG_PATH", str(settings.config_path)),
            ("MAILER_DATABASE_URL", settings.database_url),
            ("MAILER_OUTBOX_DIR", str(settings.outbox_dir)),
        ):
            monkeypatch.setenv(name, value)

        def fail_all_morning(
            day: int, down: Callable[[], Transport] = lambda: Refusing(outbox)
        ) -> None:
            scheduler = runner(transport=down)
            at = london(2026, 12, day)
            seen: list[Action] = []
            while not seen or seen[-1] == Action.retrying:
                time_machine.move_to(at, tick=False)
                seen += [o.action for o in scheduler.tick()]
                at += dt.timedelta(minutes=1)
            assert Action.failed == seen[-1]

        def last_slot(day: int) -> dict[str, str]:
            time_machine.move_to(london(2026, 12, day, 12), tick=False)
            result = CliRunner().invoke(app, ["schedule", "--json", "--count", "1"])
            assert 0 == result.exit_code, result.output
            last: dict[str, str] = json.loads(result.stdout)["last"]
            return last

        with catcher() as webhook:
            settings.notice_url = SecretStr(webhook.url)
            fail_all_morning(3)
        told = last_slot(5)
        assert ("2026-12-03", "failed") == (told["date"], told["state"])
        assert told["detail"].endswith("; the editors were told"), told
        # Then the relay refuses the notices too, and nothing listens at the notice URL.
        settings.notice_url = SecretStr("http://127.0.0.1:9/")
        fail_all_morning(17, down=lambda: Refusing(Refusing(outbox), notices_too=True))
        untold = last_slot(18)
        assert ("2026-12-17", "failed") == (untold["date"], untold["state"])
        assert "the editors were NOT told" in untold["detail"], untold
