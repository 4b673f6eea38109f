"""What the scheduler does each time it looks at the clock: :meth:`Runner.tick`.

A tick at time *T*, in order:

1. **Heartbeat**: this process is alive and expects the next slot (``/healthz``).
2. **The latest due slot** (the last one at or before *T*), unless dealt with:

   * nobody claimed it and it is later than the lateness allows: recorded as
     ``missed``, the editors told, nothing sent (a slot from before any scheduler
     ran on the database, as on a new installation, is recorded without telling);
   * otherwise **claim** it (a unique row per slot, one transaction): a second
     scheduler, or this one after a restart, finds it taken. A claim left by a
     process that died, or a send stopped by SIGTERM, is taken over and the send
     resumes from the ledger, whatever the time: the decision to send was made
     in time, and half a list without the issue is worse than late. Then send the
     slot's ready issue as ``mailer send --yes`` does, or, with none ready, tell
     the editors and send nothing.
3. **The next slot's reminder**: from ``reminder_hours`` before it, while its
   issue is missing, a draft or invalid, the editors get one reminder (a claimed
   notice row: not repeated by a restart or a second scheduler).

Everything takes *T* from the clock (``datetime.now``), so tests move time with
``time_machine`` and call :meth:`Runner.tick`; the APScheduler shell
(:mod:`mailer.scheduling.service`) only decides when to call it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from mailer.config import Newsletter, Schedule, Settings
from mailer.errors import ConfigError, IssueFileError, MailerError, SendRefused
from mailer.mail import MAX_BATCH
from mailer.scheduling.issues import IssueFiles, IssueState, SlotIssue
from mailer.scheduling.notices import (
    Notice,
    failed_notice,
    incomplete_notice,
    missed_notice,
    no_issue_notice,
    reminder_notice,
    send_notice,
    send_to_channel,
)
from mailer.scheduling.slots import Slot, latest_due, next_after, slots_from
from mailer.sending.run import SendStopped, SendSummary
from mailer.sending.send import send_issue
from mailer.store import SubscriberStore
from mailer.store.leases import Keeper
from mailer.store.ledger import JOIN_WAIT_SECONDS, Ledger, new_owner
from mailer.store.slots import NoticeKind, SlotState, SlotStore, SlotTaken
from mailer.transports import Transport, open_transport

__all__ = ["Action", "Outcome", "Runner", "require_schedule", "utcnow"]

log = logging.getLogger("mailer.scheduler")

# A slot whose send failed (the transport down) is tried again after this, doubling, at most
# RETRY_MAX, for as long as its lateness window lasts.
RETRY_FIRST = dt.timedelta(minutes=1)
RETRY_MAX = dt.timedelta(minutes=30)


def retry_delay(runs: int) -> dt.timedelta:
    """How long after its ``runs``-th failed try a slot is tried again."""
    delay: dt.timedelta = RETRY_FIRST * (2 ** max(runs - 1, 0))
    return min(delay, RETRY_MAX)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def require_schedule(newsletter: Newsletter) -> Schedule:
    """The newsletter's ``[schedule]``, or a ConfigError saying how to add one."""
    if newsletter.schedule is None:
        raise ConfigError(
            "mailer.toml has no [schedule] table, so there are no slots to send on. Add one, "
            'e.g.:\n[schedule]\nweekday = "thursday"\ntime = "09:00"\ntimezone = '
            '"Europe/London"\nanchor = 2026-12-03\neditors = ["editor@example.org"]'
        )
    return newsletter.schedule


class Action(StrEnum):
    """What a tick did about a slot (or its reminder)."""

    sent = "sent"  # the issue went to its whole audience
    incomplete = "incomplete"  # sent, with deliveries failed or unknown left
    interrupted = "interrupted"  # stopped (SIGTERM, or another process is sending): resumed later
    retrying = "retrying"  # the send failed (the transport down): tried again within the lateness
    failed = "failed"  # the send stopped on an error; editors told
    no_issue = "no_issue"  # nothing ready: nothing sent, editors told
    missed = "missed"  # too late: nothing sent, editors told
    taken = "taken"  # another scheduler holds the slot
    joined = "joined"  # another scheduler holds the slot; this one sent shares of its issue too
    reminded = "reminded"  # the editors were reminded


@dataclass(frozen=True)
class Outcome:
    """One thing a tick did."""

    slot: Slot
    action: Action
    issue: str | None = None
    detail: str = ""
    summary: SendSummary | None = None


@dataclass
class Runner:
    """The scheduler's work, one tick at a time. Thread-safe: ticks never overlap."""

    settings: Settings
    newsletter: Newsletter
    store: SubscriberStore
    should_stop: Callable[[], bool] = lambda: False
    owner: str = field(default_factory=new_owner)
    transport: Callable[[], Transport] | None = None  # opens the transport; default: configured
    batch_size: int = MAX_BATCH
    schedule: Schedule = field(init=False)
    slots: SlotStore = field(init=False)
    issue_files: IssueFiles = field(init=False)
    _busy: threading.Lock = field(init=False, default_factory=threading.Lock)
    _seen_taken: set[Slot] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.schedule = require_schedule(self.newsletter)
        self.slots = SlotStore(self.store.engine)
        self.issue_files = IssueFiles(self.newsletter)

    # -- the tick --------------------------------------------------------------------------

    def tick(self, *, wait: bool = False) -> list[Outcome]:
        """Look at the clock and do what is due.

        A tick while another runs only beats the heartbeat, unless ``wait``: the slot's own
        job waits for the check that happens to be running at that second, then sends.
        """
        self.beat()
        if not self._busy.acquire(blocking=wait):
            return []  # a send is running in another thread: the heartbeat is all there is to do
        try:
            now = utcnow()
            upcoming = next_after(self.schedule, now)
            done: list[Outcome] = []
            due = latest_due(self.schedule, now)
            if due is not None and not self.should_stop():
                done += self.report_skipped(due, now)
            if due is not None and not self.should_stop():
                outcome = self.deal_with(due, now)
                if outcome is not None:
                    done.append(outcome)
            if not self.should_stop():
                reminded = self.remind(upcoming, utcnow())
                if reminded is not None:
                    done.append(reminded)
            return done
        finally:
            self._busy.release()

    def beat(self) -> bool:
        """This process is alive and expects the next slot (``/healthz``, ``mailer health``)."""
        now = utcnow()
        self.slots.beat(self.owner, now, next_after(self.schedule, now).utc)
        return True

    def stopped(self) -> None:
        """Record that this process stopped (``/healthz`` then says it is not running)."""
        self.slots.stopped(self.owner, utcnow())

    # -- a due slot --------------------------------------------------------------------------

    def deal_with(self, slot: Slot, now: dt.datetime) -> Outcome | None:
        """Send, report or skip the due slot; None when it was dealt with before."""
        record = self.slots.get(slot.utc)
        if record is not None and record.final:
            return None
        if record is not None and record.retry_at is not None and now < record.retry_at:
            return None  # a failed send waiting for its next try
        late = now - slot.at
        if record is None and late > self.schedule.lateness:
            return self._missed(slot, now)
        try:
            before = self.slots.claim(slot.utc, self.owner, now)
        except SlotTaken as taken:
            if taken.record.final:
                return None
            joined = self._join(slot, taken.record.issue)
            if joined is not None:
                return joined
            if slot not in self._seen_taken:  # once, not on every check while the other sends
                self._seen_taken.add(slot)
                log.info("slot %s: being dealt with by %s; leaving it", slot, taken.record.owner)
            return Outcome(slot, Action.taken, taken.record.issue, taken.record.owner)
        if before is not None:
            log.info(
                "slot %s: taking over from %s (%s): resuming",
                slot,
                before.owner or "a stopped run",
                before.state,
            )
        try:
            return self._send_slot(slot, before.issue if before else None)
        except BaseException as error:
            # Whatever went wrong, the claim must not stay with a live process that gave up.
            self.slots.finish(slot.utc, self.owner, SlotState.interrupted, utcnow(), repr(error))
            raise

    def _join(self, slot: Slot, issue: str | None) -> Outcome | None:
        """Another scheduler sends the slot's issue: on PostgreSQL, send shares of it alongside
        (the slot stays the other's, which records how it went). None when there is nothing
        to join: no issue chosen yet, SQLite, the send finished or not yet cut into shares."""
        if self.store.engine.dialect.name != "postgresql":
            return None
        ledger = Ledger(self.store.engine)
        deadline = time.monotonic() + JOIN_WAIT_SECONDS
        # The slot's holder may not have chosen the issue yet, or be planning its send.
        while issue is None or not ledger.joinable(issue):
            if time.monotonic() >= deadline or self.should_stop():
                return None
            time.sleep(0.25)
            record = self.slots.get(slot.utc)
            if record is None or record.final:
                return None
            issue = record.issue
        found = self.issue_files.catalogue().for_day(slot.date)
        if found.issue is None or found.issue.slug != issue:
            return None
        log.info("slot %s: joining the send of %s, which another scheduler started", slot, issue)
        try:
            with self._open_transport(self.should_stop) as transport:
                summary = send_issue(
                    found.issue,
                    self.newsletter,
                    self.settings,
                    self.store,
                    should_stop=self.should_stop,
                    transport=transport,
                    batch_size=self.batch_size,
                )
        except MailerError as error:  # the slot's owner deals with the send and its failures
            log.warning("slot %s: could not join the send of %s: %s", slot, issue, error)
            return None
        sent = summary.total("sent")
        log.info("slot %s: %d of %s sent from this scheduler", slot, sent, issue)
        return Outcome(slot, Action.joined, issue, f"{sent} sent from here", summary)

    def report_skipped(self, due: Slot, now: dt.datetime) -> list[Outcome]:
        """Slots between the last one dealt with and the due one that nobody dealt with (the
        scheduler was down for weeks): recorded as missed, and the editors told of each."""
        last = self.slots.latest()
        if last is not None:
            if last.slot_at >= due.utc:
                return []
            start = last.slot_at.astimezone(self.schedule.zone).date() + dt.timedelta(days=1)
        else:
            # No slot was ever dealt with: those since a scheduler first ran were its to send.
            first = self.slots.first_started()
            if first is None:
                return []
            start = first.astimezone(self.schedule.zone).date()
        skipped: list[Outcome] = []
        for slot in slots_from(self.schedule, start):
            if slot.at >= due.at:
                break
            outcome = self._missed(slot, now)
            if outcome is not None:
                skipped.append(outcome)
        return skipped

    def _missed(self, slot: Slot, now: dt.datetime) -> Outcome | None:
        if not self.slots.ran_before(slot.utc):
            # A slot from before any scheduler ran on this database (a new installation) was
            # never this scheduler's to send: noted, not reported as missed.
            if self.slots.record_missed(slot.utc, now, "before the scheduler first ran"):
                log.info("slot %s: before the scheduler first ran: not sent", slot)
            return None
        found = self.issue_files.catalogue().for_day(slot.date)
        hours = (now - slot.at).total_seconds() / 3600
        detail = (
            f"found {hours:.1f} hours late (at {now:%Y-%m-%d %H:%M} UTC), more than the "
            f"{self.schedule.lateness_hours:g} hours allowed; issue {found.state}"
        )
        if not self.slots.record_missed(slot.utc, now, detail):
            return None  # another scheduler recorded it first
        log.error("slot %s missed: %s: nothing sent", slot, detail)
        ready = found.path if found.state == IssueState.ready else None
        self._notify(missed_notice(slot, f"{now:%Y-%m-%d %H:%M} UTC", self.schedule, ready), now)
        return Outcome(
            slot, Action.missed, found.issue.slug if ready and found.issue else None, detail
        )

    def _send_slot(self, slot: Slot, resumed_issue: str | None) -> Outcome:
        found = self.issue_files.catalogue().for_day(slot.date)
        if found.state != IssueState.ready or found.issue is None:
            if resumed_issue is not None:
                # The send began, then the file stopped being ready (set back to draft, moved):
                # not this scheduler's to guess; the editors finish it or leave it.
                log.warning(
                    "slot %s: the send of %s began, but it is now %s: not resuming",
                    slot,
                    resumed_issue,
                    found.state,
                )
                return self._finish_unready(slot, found, resumed_issue)
            return self._no_issue(slot, found)
        return self._send(slot, found)

    def _finish_unready(self, slot: Slot, found: SlotIssue, issue: str) -> Outcome:
        detail = (
            f"the send of {issue} began, but it is no longer ready ({found.state}); "
            "once it is, `mailer send` finishes it"
        )
        self.slots.finish(slot.utc, self.owner, SlotState.failed, utcnow(), detail)
        self._notify(failed_notice(slot, self._path_of(issue), detail), utcnow())
        return Outcome(slot, Action.failed, issue, detail)

    def _no_issue(self, slot: Slot, found: SlotIssue) -> Outcome:
        detail = f"no ready issue ({found.state})"
        log.warning("slot %s: %s: nothing sent, telling the editors", slot, detail)
        self._notify(no_issue_notice(slot, found), utcnow())
        self.slots.finish(slot.utc, self.owner, SlotState.no_issue, utcnow(), detail)
        return Outcome(slot, Action.no_issue, None, detail)

    def _send(self, slot: Slot, found: SlotIssue) -> Outcome:
        assert found.issue is not None
        issue = found.issue
        self.slots.choose_issue(slot.utc, self.owner, issue.slug)
        log.info("slot %s: sending %s", slot, issue.slug)

        keeper = Keeper(
            lambda: self.slots.touch(slot.utc, self.owner, utcnow()), name=f"slot-{slot.date}"
        )

        def stop() -> bool:
            return self.should_stop() or keeper.lost.is_set()

        try:
            with keeper, self._open_transport(stop) as transport:
                summary = send_issue(
                    issue,
                    self.newsletter,
                    self.settings,
                    self.store,
                    should_stop=stop,
                    transport=transport,
                    batch_size=self.batch_size,
                )
        except SendStopped as stopped:
            return self._retry_or_fail(slot, issue.slug, str(stopped), stopped.summary)
        except SendRefused as refused:
            # Another process (`mailer send` by hand) holds the issue's lease: it will send it;
            # the slot is looked at again on the next check.
            log.warning("slot %s: %s", slot, refused)
            self.slots.finish(slot.utc, self.owner, SlotState.interrupted, utcnow(), str(refused))
            return Outcome(slot, Action.interrupted, issue.slug, str(refused))
        except (ConfigError, IssueFileError) as error:  # trying again would change nothing
            return self._failed(slot, issue.slug, str(error), None)
        except MailerError as error:  # the transport or the database, down for now
            return self._retry_or_fail(slot, issue.slug, str(error), None)
        return self._sent(slot, issue.slug, summary)

    def _retry_or_fail(
        self, slot: Slot, issue: str, error: str, summary: SendSummary | None
    ) -> Outcome:
        """A send that failed for now: tried again with backoff while the slot's lateness
        window lasts, then failed for good (and the editors told)."""
        now = utcnow()
        record = self.slots.get(slot.utc)
        runs = record.runs if record is not None else 1
        retry_at = now + retry_delay(runs)
        if self.should_stop() or retry_at > slot.at + self.schedule.lateness:
            return self._failed(slot, issue, error, summary, transport_down=True)
        log.warning(
            "slot %s: the send of %s failed (try %d): %s; trying again at %s UTC",
            slot,
            issue,
            runs,
            _one_line(error),
            f"{retry_at:%H:%M:%S}",
        )
        detail = f"try {runs} failed: {_one_line(error)}"
        self.slots.finish(
            slot.utc, self.owner, SlotState.interrupted, now, detail, retry_at=retry_at
        )
        return Outcome(slot, Action.retrying, issue, detail, summary)

    def _sent(self, slot: Slot, issue: str, summary: SendSummary) -> Outcome:
        counts = (
            f"sent={summary.total('sent')} already_sent={summary.total('already_sent')} "
            f"suppressed={summary.total('suppressed')} failed={summary.total('failed')} "
            f"unknown={summary.total('unknown')}"
        )
        if summary.stopped is not None:
            log.info("slot %s: send of %s stopped (%s): %s", slot, issue, summary.stopped, counts)
            self.slots.finish(slot.utc, self.owner, SlotState.interrupted, utcnow(), counts)
            return Outcome(slot, Action.interrupted, issue, counts, summary)
        if not summary.complete or summary.total("failed"):
            log.warning("slot %s: sent %s, with deliveries left over: %s", slot, issue, counts)
            self.slots.finish(slot.utc, self.owner, SlotState.incomplete, utcnow(), counts)
            self._notify(incomplete_notice(slot, self._path_of(issue), summary), utcnow())
            return Outcome(slot, Action.incomplete, issue, counts, summary)
        log.info("slot %s: sent %s: %s", slot, issue, counts)
        self.slots.finish(slot.utc, self.owner, SlotState.sent, utcnow(), counts)
        return Outcome(slot, Action.sent, issue, counts, summary)

    def _failed(
        self,
        slot: Slot,
        issue: str,
        error: str,
        summary: SendSummary | None,
        *,
        transport_down: bool = False,
    ) -> Outcome:
        log.error("slot %s: the send of %s stopped: %s", slot, issue, _one_line(error))
        self.slots.finish(slot.utc, self.owner, SlotState.failed, utcnow(), error)
        notice = failed_notice(slot, self._path_of(issue), error)
        self._notify(notice, utcnow(), transport_down=transport_down)
        return Outcome(slot, Action.failed, issue, error, summary)

    def _path_of(self, issue: str) -> Path:
        return self.newsletter.issues_dir / f"{issue}.yaml"

    # -- reminders ---------------------------------------------------------------------------

    def remind(self, slot: Slot, now: dt.datetime) -> Outcome | None:
        """Remind the editors of the next slot once, inside its reminder window, while its
        issue is not ready."""
        if not self.schedule.reminder_hours or now < slot.at - self.schedule.reminder:
            return None
        if self.slots.notice_sent(slot.utc, NoticeKind.reminder):
            return None
        found = self.issue_files.catalogue().for_day(slot.date)
        if found.state == IssueState.ready:
            return None
        if not self._notify(reminder_notice(slot, found, self.schedule), now):
            return None
        return Outcome(slot, Action.reminded, None, str(found.state))

    # -- notices -----------------------------------------------------------------------------

    def _notify(self, notice: Notice, now: dt.datetime, *, transport_down: bool = False) -> bool:
        """Send a notice once (claimed in the store); whether this call sent it.

        Through the newsletter's transport, unless it is what failed; then, or when it
        does not take the notice, through MAILER_NOTICE_URL, the separate channel.
        """
        if not self.slots.claim_notice(notice.slot.utc, notice.kind, self.owner, now):
            return False
        editors = [str(e) for e in self.schedule.editors]
        problems: list[str] = []
        channel = self.settings.notice_url

        def through_channel() -> bool:
            if channel is None:
                return False
            try:
                send_to_channel(notice, self.newsletter, self.schedule, channel.get_secret_value())
            except MailerError as error:
                problems.append(f"MAILER_NOTICE_URL: {_one_line(str(error))}")
                return False
            return True

        def through_transport() -> bool:
            done, problem = self._through_transport(notice)
            if problem:
                problems.append(f"{self.settings.transport}: {problem}")
            return done

        # The newsletter's transport first, unless it is what failed: then the channel first.
        ways = (
            [through_channel, through_transport]
            if transport_down
            else [through_transport, through_channel]
        )
        sent = any(way() for way in ways)
        problem = "; ".join(problems)
        self.slots.finish_notice(
            notice.slot.utc,
            notice.kind,
            self.owner,
            sent=sent,
            recipients=editors,
            now=utcnow(),
            detail=problem,
        )
        if sent:
            log.info("slot %s: %s notice sent to %s", notice.slot, notice.kind, ", ".join(editors))
        else:
            log.error(
                "slot %s: %s notice not sent: %s%s",
                notice.slot,
                notice.kind,
                problem,
                "" if channel else " (set MAILER_NOTICE_URL for a second way to reach the editors)",
            )
        return sent

    def _through_transport(self, notice: Notice) -> tuple[bool, str]:
        try:
            with self._open_transport() as transport:
                deliveries = send_notice(
                    notice, self.newsletter, self.settings, self.schedule, transport
                )
        except MailerError as error:  # a transport that cannot even be opened
            return False, _one_line(str(error))
        problem = "; ".join(f"{d.email}: {d.error}" for d in deliveries if not d.ok)
        return bool(deliveries) and not problem, problem

    def _open_transport(self, should_stop: Callable[[], bool] | None = None) -> Transport:
        if self.transport:
            return self.transport()
        return open_transport(self.settings, should_stop=should_stop or self.should_stop)


def _one_line(text: str) -> str:
    return " ".join(text.split())
