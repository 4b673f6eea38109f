"""The scheduler's tables: one claim row per slot, notices sent once, heartbeats.

Three tables, on the store's metadata (created by migration 0004):

* ``schedule_slots``: one row per fortnightly slot the scheduler has dealt with,
  unique on the slot's instant (UTC). Inserting it is the *claim*: of two
  scheduler processes (or a scheduler and its own restart) only one gets the
  row, and only the owner sends. Its ``state``:

  ``claimed``      a scheduler is dealing with it now (``owner``, ``heartbeat_at``)
  ``interrupted``  its send was stopped (SIGTERM) or refused for now: taken up again
  ``sent``         the issue went to its whole audience
  ``incomplete``   the send ended with deliveries failed or unknown (see ``mailer send``)
  ``failed``       the send could not go on (a transport down, a bad issue); editors told
  ``no_issue``     no issue was ready: nothing sent, editors told
  ``missed``       found later than the lateness allows: nothing sent, editors told

  A ``claimed`` row whose owner has died (``kill -9``, a power cut) may be
  claimed again: the new owner resumes the send from the send ledger, which
  never sends anyone an issue twice. Whether the owner has died is asked of a
  lock it holds while it deals with the slot (:mod:`mailer.store.leases`).
* ``schedule_notices``: one row per (slot, kind) of email to the editors
  (``reminder``, ``no_issue``, ``missed``, ``failed``), claimed the same way
  before sending, so that a restart does not send it again.
* ``scheduler_heartbeats``: one row per scheduler process run: when it started,
  last checked the clock, and which slot it expects next (for ``GET /healthz``).

Every write is one transaction (:func:`mailer.store.transact.run_write`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    CheckConstraint,
    Connection,
    Engine,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from mailer.errors import StoreError
from mailer.store.leases import Held, LeaseLocks, heartbeat_alive
from mailer.store.schema import Base, UTCDateTime
from mailer.store.transact import read, run_write

__all__ = [
    "FINAL_STATES",
    "Heartbeat",
    "NoticeKind",
    "NoticeRow",
    "SchedulerRow",
    "SlotRecord",
    "SlotRow",
    "SlotState",
    "SlotStore",
    "SlotTaken",
    "notice_lock",
    "slot_lock",
]

T = TypeVar("T")
# Heartbeat rows of runs that stopped this long ago are removed.
_KEEP_HEARTBEATS = dt.timedelta(days=30)
# A notice that failed (the transport was down) is tried again on later checks, this often.
NOTICE_ATTEMPTS = 5


class SlotState(StrEnum):
    claimed = "claimed"
    interrupted = "interrupted"
    sent = "sent"
    incomplete = "incomplete"
    failed = "failed"
    no_issue = "no_issue"
    missed = "missed"


# Dealt with for good: the scheduler does not touch the slot again.
FINAL_STATES = frozenset(
    {
        SlotState.sent,
        SlotState.incomplete,
        SlotState.failed,
        SlotState.no_issue,
        SlotState.missed,
    }
)


class NoticeKind(StrEnum):
    reminder = "reminder"
    no_issue = "no_issue"
    missed = "missed"
    failed = "failed"


class NoticeState(StrEnum):
    sending = "sending"
    sent = "sent"
    failed = "failed"


def _check(column: str, values: Iterable[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


class SlotRow(Base):
    """One fortnightly slot the scheduler has claimed, and what became of it."""

    __tablename__ = "schedule_slots"
    __table_args__ = (CheckConstraint(_check("state", SlotState), name="state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, unique=True)
    issue: Mapped[str | None] = mapped_column(String(100), nullable=True)
    state: Mapped[str] = mapped_column(String(20))
    # "host:pid:nonce" of the scheduler dealing with it; "" when none is.
    owner: Mapped[str] = mapped_column(String(300), default="")
    runs: Mapped[int] = mapped_column(Integer, default=1)
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    # When a slot whose send failed is tried again (within its lateness); None: not to be.
    retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class NoticeRow(Base):
    """One email to the editors about one slot, sent once."""

    __tablename__ = "schedule_notices"
    __table_args__ = (
        UniqueConstraint("slot_at", "kind"),
        CheckConstraint(_check("kind", NoticeKind), name="kind"),
        CheckConstraint(_check("state", NoticeState), name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str] = mapped_column(String(300), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    recipients: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class SchedulerRow(Base):
    """One run of a scheduler process: alive while it keeps checking the clock."""

    __tablename__ = "scheduler_heartbeats"

    owner: Mapped[str] = mapped_column(String(300), primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    next_slot_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


_SLOT = SlotRow
_NOTICE = NoticeRow
_BEAT = SchedulerRow


@dataclass(frozen=True, slots=True)
class SlotRecord:
    """A slot's row as read."""

    slot_at: dt.datetime
    issue: str | None
    state: SlotState
    owner: str
    runs: int
    claimed_at: dt.datetime
    heartbeat_at: dt.datetime
    finished_at: dt.datetime | None
    detail: str
    retry_at: dt.datetime | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The latest word from a scheduler process."""

    owner: str
    started_at: dt.datetime
    beat_at: dt.datetime
    next_slot_at: dt.datetime | None
    stopped_at: dt.datetime | None


def _slot_record(row: Any) -> SlotRecord:
    return SlotRecord(
        slot_at=row.slot_at,
        issue=row.issue,
        state=SlotState(row.state),
        owner=row.owner,
        runs=row.runs,
        claimed_at=row.claimed_at,
        heartbeat_at=row.heartbeat_at,
        finished_at=row.finished_at,
        detail=row.detail,
        retry_at=row.retry_at,
    )


class SlotStore:
    """Reads and writes the scheduler's tables, on the subscriber store's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.locks = LeaseLocks(engine)
        self._held: dict[str, Held] = {}

    # -- locks --------------------------------------------------------------------------

    def _hold(self, name: str) -> tuple[bool, Held | None]:
        """(whether to go on, the lock if there are locks): False when a running process has it."""
        if not self.locks.available:
            return True, None
        held = self.locks.try_hold(name)
        return held is not None, held

    def _let_go(self, name: str) -> None:
        held = self._held.pop(name, None)
        if held is not None:
            held.release()

    def holding(self, slot_at: dt.datetime) -> bool:
        """Whether this process holds the slot's lock, and it is still its own."""
        held = self._held.get(slot_lock(slot_at))
        return held is None or held.alive()

    def owner_running(self, record: SlotRecord, now: dt.datetime) -> bool:
        """Whether the process named by a claimed slot still runs (for health and status)."""
        if not record.owner:
            return False
        name = slot_lock(record.slot_at)
        if name in self._held:
            return True
        if self.locks.available:
            return self.locks.taken(name)
        return heartbeat_alive(record.heartbeat_at, now)

    # -- slots ------------------------------------------------------------------------

    def get(self, slot_at: dt.datetime) -> SlotRecord | None:
        with read(self.engine) as connection:
            row = connection.execute(select(_SLOT).where(_SLOT.slot_at == slot_at)).first()
        return None if row is None else _slot_record(row)

    def between(self, start: dt.datetime, end: dt.datetime) -> dict[dt.datetime, SlotRecord]:
        """Slot rows with start <= slot_at <= end, by slot instant."""
        query = select(_SLOT).where(_SLOT.slot_at >= start, _SLOT.slot_at <= end)
        with read(self.engine) as connection:
            return {row.slot_at: _slot_record(row) for row in connection.execute(query)}

    def latest(self) -> SlotRecord | None:
        """The most recent slot any scheduler dealt with."""
        query = select(_SLOT).order_by(_SLOT.slot_at.desc()).limit(1)
        with read(self.engine) as connection:
            row = connection.execute(query).first()
        return None if row is None else _slot_record(row)

    def claim(self, slot_at: dt.datetime, owner: str, now: dt.datetime) -> SlotRecord | None:
        """Claim the slot for ``owner``: the row as it was before (None if new), or raise
        :class:`SlotTaken` when it is final or a live process holds it."""

        name = slot_lock(slot_at)
        free, held = self._hold(name)

        def work(connection: Connection) -> SlotRecord | None:
            row = connection.execute(select(_SLOT).where(_SLOT.slot_at == slot_at)).first()
            if row is None:
                if not free:  # a process holding the lock is about to claim it
                    raise SlotTaken(_pending(slot_at))
                connection.execute(
                    insert(_SLOT),
                    {
                        "slot_at": slot_at,
                        "issue": None,
                        "state": SlotState.claimed,
                        "owner": owner,
                        "runs": 1,
                        "claimed_at": now,
                        "heartbeat_at": now,
                        "finished_at": None,
                        "detail": "",
                    },
                )
                return None
            before = _slot_record(row)
            if before.final:
                raise SlotTaken(before)
            if before.state == SlotState.claimed and before.owner not in ("", owner):
                if self.locks.available:
                    alive = not free
                else:  # no locks here: the heartbeat decides
                    alive = heartbeat_alive(before.heartbeat_at, now)
                if alive:
                    raise SlotTaken(before)
            elif not free:
                raise SlotTaken(before)
            connection.execute(
                update(_SLOT)
                .where(_SLOT.id == row.id)
                .values(
                    state=SlotState.claimed,
                    owner=owner,
                    runs=_SLOT.runs + 1,
                    claimed_at=now,
                    heartbeat_at=now,
                )
            )
            return before

        try:
            before = _insert_race(self.engine, work)
        except BaseException:
            if held is not None:
                held.release()
            raise
        if held is not None:
            self._held[name] = held
        return before

    def record_missed(self, slot_at: dt.datetime, now: dt.datetime, detail: str) -> bool:
        """Mark a slot nobody claimed in time as missed; False when another process did first."""

        def work(connection: Connection) -> bool:
            exists = connection.scalar(select(_SLOT.id).where(_SLOT.slot_at == slot_at))
            if exists is not None:
                return False
            connection.execute(
                insert(_SLOT),
                {
                    "slot_at": slot_at,
                    "issue": None,
                    "state": SlotState.missed,
                    "owner": "",
                    "runs": 0,
                    "claimed_at": now,
                    "heartbeat_at": now,
                    "finished_at": now,
                    "detail": detail,
                },
            )
            return True

        return _insert_race(self.engine, work)

    def ran_before(self, at: dt.datetime) -> bool:
        """Whether a scheduler was running before ``at`` (it started, or dealt with a slot)."""
        started = select(_BEAT.owner).where(_BEAT.started_at < at).limit(1)
        slot = select(_SLOT.id).where(_SLOT.slot_at < at).limit(1)
        with read(self.engine) as connection:
            return connection.scalar(started) is not None or connection.scalar(slot) is not None

    def choose_issue(self, slot_at: dt.datetime, owner: str, issue: str) -> None:
        """Record which issue the claimed slot sends (so a resumed send keeps to it)."""
        self._update_owned(slot_at, owner, {"issue": issue})

    def touch(self, slot_at: dt.datetime, owner: str, now: dt.datetime) -> bool:
        """The owner is still at it (its heartbeat, during a send); whether it still holds it."""
        if not self.holding(slot_at):
            return False
        return self._update_owned(slot_at, owner, {"heartbeat_at": now})

    def finish(
        self,
        slot_at: dt.datetime,
        owner: str,
        state: SlotState,
        now: dt.datetime,
        detail: str,
        *,
        retry_at: dt.datetime | None = None,
    ) -> None:
        """Record what became of the slot and give the claim back.

        ``interrupted`` leaves it to be taken up again (not before ``retry_at``, if
        given); every other state is final.
        """
        values: dict[str, Any] = {
            "state": state,
            "owner": "",
            "heartbeat_at": now,
            "detail": detail,
            "finished_at": None if state == SlotState.interrupted else now,
            "retry_at": retry_at,
        }
        try:
            self._update_owned(slot_at, owner, values)
        finally:
            self._let_go(slot_lock(slot_at))

    def release_issue(self, issue: str, now: dt.datetime) -> list[SlotRecord]:
        """``mailer send ISSUE --release``: slots claimed to send the issue become
        ``interrupted`` and name no owner; the claims as they were."""

        def work(connection: Connection) -> list[SlotRecord]:
            rows = [
                _slot_record(row)
                for row in connection.execute(
                    select(_SLOT).where(_SLOT.issue == issue, _SLOT.state == SlotState.claimed)
                )
            ]
            for record in rows:
                connection.execute(
                    update(_SLOT)
                    .where(_SLOT.slot_at == record.slot_at)
                    .values(
                        state=SlotState.interrupted,
                        owner="",
                        heartbeat_at=now,
                        detail=f"released by hand (mailer send --release) from {record.owner}",
                    )
                )
            return rows

        released = run_write(self.engine, work)
        for record in released:
            self.locks.end_holder(slot_lock(record.slot_at))
        return released

    def _update_owned(self, slot_at: dt.datetime, owner: str, values: dict[str, Any]) -> bool:
        def work(connection: Connection) -> bool:
            result = connection.execute(
                update(_SLOT).where(_SLOT.slot_at == slot_at, _SLOT.owner == owner).values(values)
            )
            return bool(result.rowcount == 1)

        return run_write(self.engine, work)

    # -- notices ------------------------------------------------------------------------

    def notice_sent(self, slot_at: dt.datetime, kind: NoticeKind) -> bool:
        """Whether this notice went out already (a cheap check before building it)."""
        query = select(_NOTICE.state).where(_NOTICE.slot_at == slot_at, _NOTICE.kind == kind)
        with read(self.engine) as connection:
            return connection.scalar(query) == NoticeState.sent

    def claim_notice(
        self, slot_at: dt.datetime, kind: NoticeKind, owner: str, now: dt.datetime
    ) -> bool:
        """Claim the right to send this notice; False when it was sent or is being sent,
        or failed too often."""

        name = notice_lock(slot_at, kind)
        free, held = self._hold(name)
        if not free:
            return False

        def work(connection: Connection) -> bool:
            row = connection.execute(
                select(_NOTICE).where(_NOTICE.slot_at == slot_at, _NOTICE.kind == kind)
            ).first()
            if row is None:
                connection.execute(
                    insert(_NOTICE),
                    {
                        "slot_at": slot_at,
                        "kind": kind,
                        "state": NoticeState.sending,
                        "owner": owner,
                        "attempts": 1,
                        "recipients": "",
                        "created_at": now,
                        "sent_at": None,
                        "detail": "",
                    },
                )
                return True
            if row.state == NoticeState.sent or row.attempts >= NOTICE_ATTEMPTS:
                return False
            # Without locks, a process that died while sending it: its heartbeat is its creation time.
            if (
                held is None
                and row.state == NoticeState.sending
                and heartbeat_alive(row.created_at, now)
            ):
                return False
            connection.execute(
                update(_NOTICE)
                .where(_NOTICE.id == row.id)
                .values(
                    state=NoticeState.sending,
                    owner=owner,
                    attempts=_NOTICE.attempts + 1,
                    created_at=now,
                )
            )
            return True

        try:
            claimed = _insert_race(self.engine, work)
        except BaseException:
            if held is not None:
                held.release()
            raise
        if held is not None:
            if claimed:
                self._held[name] = held
            else:
                held.release()
        return claimed

    def finish_notice(
        self,
        slot_at: dt.datetime,
        kind: NoticeKind,
        owner: str,
        *,
        sent: bool,
        recipients: Iterable[str],
        now: dt.datetime,
        detail: str = "",
    ) -> None:
        values: dict[str, Any] = {
            "state": NoticeState.sent if sent else NoticeState.failed,
            "owner": "",
            "recipients": ", ".join(recipients),
            "sent_at": now if sent else None,
            "detail": detail,
        }

        def work(connection: Connection) -> None:
            connection.execute(
                update(_NOTICE)
                .where(_NOTICE.slot_at == slot_at, _NOTICE.kind == kind, _NOTICE.owner == owner)
                .values(values)
            )

        try:
            run_write(self.engine, work)
        finally:
            self._let_go(notice_lock(slot_at, kind))

    def notices(self, slot_at: dt.datetime) -> dict[NoticeKind, str]:
        """The notices of a slot and their state."""
        query = select(_NOTICE.kind, _NOTICE.state).where(_NOTICE.slot_at == slot_at)
        with read(self.engine) as connection:
            return {NoticeKind(kind): state for kind, state in connection.execute(query)}

    # -- heartbeats ------------------------------------------------------------------------

    def beat(self, owner: str, now: dt.datetime, next_slot_at: dt.datetime | None) -> None:
        """This scheduler process is alive and expects ``next_slot_at`` next."""

        def work(connection: Connection) -> None:
            changed = connection.execute(
                update(_BEAT)
                .where(_BEAT.owner == owner)
                .values(beat_at=now, next_slot_at=next_slot_at, stopped_at=None)
            ).rowcount
            if not changed:
                connection.execute(
                    insert(_BEAT),
                    {
                        "owner": owner,
                        "started_at": now,
                        "beat_at": now,
                        "next_slot_at": next_slot_at,
                        "stopped_at": None,
                    },
                )
                # Old runs' rows would only pile up: a new run is the time to tidy. The first
                # run's row stays: it says since when slots are the scheduler's to send (and
                # to report as missed after weeks of downtime, see Runner.report_skipped).
                first = select(func.min(_BEAT.started_at)).scalar_subquery()
                connection.execute(
                    delete(_BEAT).where(
                        _BEAT.stopped_at.is_not(None),
                        _BEAT.stopped_at < now - _KEEP_HEARTBEATS,
                        _BEAT.started_at > first,
                    )
                )

        run_write(self.engine, work)

    def stopped(self, owner: str, now: dt.datetime) -> None:
        def work(connection: Connection) -> None:
            connection.execute(
                update(_BEAT).where(_BEAT.owner == owner).values(beat_at=now, stopped_at=now)
            )

        run_write(self.engine, work)

    def first_started(self) -> dt.datetime | None:
        """When a scheduler first ran on this database; None if none ever did."""
        with read(self.engine) as connection:
            first: dt.datetime | None = connection.scalar(select(func.min(_BEAT.started_at)))
        return first

    def last_beat(self) -> Heartbeat | None:
        """The scheduler process that checked the clock most recently."""
        query = select(_BEAT).order_by(_BEAT.beat_at.desc()).limit(1)
        with read(self.engine) as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        return Heartbeat(row.owner, row.started_at, row.beat_at, row.next_slot_at, row.stopped_at)


def slot_lock(slot_at: dt.datetime) -> str:
    """The name of the lock a scheduler dealing with a slot holds."""
    return f"slot-{slot_at.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"


def notice_lock(slot_at: dt.datetime, kind: NoticeKind) -> str:
    return f"notice-{slot_at.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{kind.value}"


def _pending(slot_at: dt.datetime) -> SlotRecord:
    """A slot a process has locked and not yet written: as taken as a claimed one."""
    return SlotRecord(
        slot_at, None, SlotState.claimed, "a process claiming it", 0, slot_at, slot_at, None, ""
    )


class SlotTaken(Exception):
    """The slot is final, or a live scheduler holds it: not this process's to deal with."""

    def __init__(self, record: SlotRecord) -> None:
        self.record = record
        super().__init__(f"slot {record.slot_at.isoformat()} is {record.state}")


def _insert_race(engine: Engine, work: Callable[[Connection], T]) -> T:
    """``work`` in a write transaction; once more if another process inserted the same
    unique row in between (PostgreSQL then reports a unique violation rather than waiting),
    so that the second run reads the row the winner wrote."""
    try:
        return run_write(engine, work)
    except StoreError as error:
        if not isinstance(error.__cause__, IntegrityError):
            raise
        return run_write(engine, work)
