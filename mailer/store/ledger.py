"""The send ledger: one row per (issue, subscriber), what makes a send exactly-once.

Two tables, on the store's metadata (created by migration 0002):

* ``sends``: one row per issue ever sent: when it started and finished, its
  status (``sending``, ``stopped``, ``finished``), and the *lease*: which process
  is sending it now (``owner``, ``heartbeat_at``), so that two ``mailer send``
  of one issue never run at once.
* ``deliveries``: one row per (issue, subscriber), unique, with its state:

  ``in_flight``  claimed and being handed to the transport right now
  ``sent``       the transport took it (SMTP 250, SendGrid 202, the file written)
  ``failed``     not sent; ``retryable`` unless the address itself was refused
  ``unknown``    handed over, no answer: it may have gone out; never resent
                 until reconciled (SendGrid events) or resolved by the operator
  ``queued``     reserved for a planned, not yet claimed, delivery (unused today)

The protocol for each batch, in :class:`Ledger`:

1. :meth:`Ledger.claim`, one transaction: the batch's members who are still
   active and have no row (or a retryable ``failed`` one) get an ``in_flight``
   row. Committed *before* the transport is called.
2. The transport sends.
3. :meth:`Ledger.record`, one transaction: each row becomes ``sent``,
   ``failed`` or ``unknown``.

A process killed between 1 and 3 leaves ``in_flight`` rows: the next send
settles them first (:meth:`Ledger.settle`), from the outbox's files or as
``unknown``.

Every write is one transaction, run again if PostgreSQL reports a conflict with
another writer (the webhook marks rows sent while a send records its own):
:func:`mailer.store.transact.run_write`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, mapped_column

from mailer.errors import SendRefused, StoreError
from mailer.mail import Delivery, DeliveryState
from mailer.store.leases import Held, LeaseLocks, heartbeat_alive
from mailer.store.schema import Base, BigId, SubscriberRow, UTCDateTime
from mailer.store.shares import Shares
from mailer.store.transact import READ_COMMITTED, driver_rows, run_write

__all__ = [
    "Claim",
    "DeliveryRow",
    "InFlight",
    "Ledger",
    "SendRow",
    "SendStatus",
    "StateCount",
    "new_owner",
    "send_lock",
]

T = TypeVar("T")
log = logging.getLogger(__name__)
# How long a `mailer send` that finds the issue being sent waits for its shares to be cut
# (the first sender settles an interrupted send before it cuts them), to join the send.
JOIN_WAIT_SECONDS = 5.0
# Bind parameters per IN (...): batches are at most 1000, well under every limit.
_CHUNK = 1000
_GROUPED = 50  # rows per outcome, on average, from which _record updates them by outcome
# PostgreSQL fills the ledger's pages to 45 % (see migration 0011).
DELIVERIES_FILLFACTOR = 45


class SendStatus(StrEnum):
    sending = "sending"
    stopped = "stopped"
    finished = "finished"


def _check(column: str, values: Iterable[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


class SendRow(Base):
    """One issue's send: its status, and which process holds the lease on it."""

    __tablename__ = "sends"
    __table_args__ = (CheckConstraint(_check("status", SendStatus), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue: Mapped[str] = mapped_column(String(100), unique=True)
    transport: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    # "host:pid:nonce" of the process sending; "" when none is.
    owner: Mapped[str] = mapped_column(String(300), default="")
    runs: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The outbox folder the send writes to (absolute), for settling it; "" for other transports.
    outbox_dir: Mapped[str] = mapped_column(Text, default="", server_default="")


class DeliveryRow(Base):
    """One member's copy of one issue."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("issue", "subscriber_id"),
        CheckConstraint(_check("state", DeliveryState), name="state"),
        # For ON DELETE CASCADE when a member is forgotten: their deliveries go too. With
        # the issue, so that it never looks cheaper than the unique index to PostgreSQL
        # for one issue's rows of a page of members (migration 0011).
        Index(None, "subscriber_id", "issue"),
        # Room on each page for a row's second version, written by the record: a HOT
        # update, which touches no index (migration 0011).
        {"postgresql_with": {"fillfactor": DELIVERIES_FILLFACTOR}},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    issue: Mapped[str] = mapped_column(ForeignKey("sends.issue", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False
    )
    variant: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(20))
    retryable: Mapped[bool] = mapped_column(Boolean, default=False)
    message_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


_D = DeliveryRow
_S = SubscriberRow
_SEND = SendRow


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_owner() -> str:
    """An owner id for this process's lease: host, pid, and a nonce for this run."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def send_lock(issue: str) -> str:
    """The name of the lock the owner of an issue's send holds."""
    return f"send-{issue}"


@dataclass(frozen=True, slots=True)
class Claim:
    """What :meth:`Ledger.claim` made of a batch's members."""

    claimed: Mapping[int, int]  # subscriber id -> delivery row id, now in_flight
    inactive: frozenset[int]  # no longer active (unsubscribed, bounced, forgotten...)
    already: frozenset[int]  # active, but a row that may not be retried exists


@dataclass(frozen=True)
class UnknownDelivery:
    """A delivery handed over with no answer: to match against the relay's log."""

    email: str
    message_id: str | None
    since: dt.datetime
    error: str


@dataclass(frozen=True, slots=True)
class InFlight:
    """A row left in_flight by a process that died while sending."""

    delivery_id: int
    subscriber_id: int
    email: str


@dataclass(frozen=True, slots=True)
class StateCount:
    variant: str
    state: DeliveryState
    retryable: bool
    count: int


@dataclass(frozen=True, slots=True)
class Previous:
    """The issue's send as it was before this run took the lease."""

    transport: str | None  # None: never sent before
    status: SendStatus | None
    outbox_dir: str = ""  # where that send's outbox files are, when it went through the outbox
    # The send is going on (another machine sends shares of it): this run takes shares of
    # it too, and neither settles nor cuts the audience again.
    joined: bool = False


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds an issue's send, as ``mailer send --release`` shows it."""

    issue: str
    owner: str  # "" when nobody does
    status: SendStatus
    heartbeat_at: dt.datetime
    running: bool  # a running process holds the lease's lock


class Ledger:
    """Reads and writes the send ledger, on the subscriber store's database."""

    def __init__(
        self, engine: Engine, *, writes: AbstractContextManager[Any] | None = None
    ) -> None:
        self.engine = engine
        self._writes = writes or nullcontext()
        self.locks = LeaseLocks(engine)
        self._held: dict[str, Held] = {}
        self.shares = Shares(engine, self.locks, self._writes)

    def taking_turns(self, lock: AbstractContextManager[Any]) -> Ledger:
        """This ledger, writing only while holding ``lock`` (shared by a send's processes).

        SQLite makes a writer that finds the database locked sleep and try again, for
        up to 100 ms at a time; two sending processes spent a fifth of their time so.
        Waiting on a lock they share wakes the next one as soon as it is free.
        """
        return Ledger(self.engine, writes=lock)

    def _write(self, work: Callable[[Connection], T]) -> T:
        # READ COMMITTED on PostgreSQL: each statement takes the row locks it needs (a claim
        # inserts under the unique key; a record, a share's CAS, update only rows in the
        # state they expect), and senders on several machines write side by side all the
        # time, where SERIALIZABLE's predicate locks failed their claims as conflicts.
        with self._writes:
            return run_write(self.engine, work, isolation=READ_COMMITTED)

    # -- the lease -------------------------------------------------------------------

    def acquire(self, issue: str, transport: str, owner: str, *, outbox_dir: str = "") -> Previous:
        """Take the lease on an issue's send, creating its row on the first run.

        Raises SendRefused when a running process holds it. Holds the lease's lock
        until :meth:`release` (or until this process ends, however it ends).
        """
        when = now()
        held = self.locks.try_hold(send_lock(issue)) if self.locks.available else None
        if self.locks.available and held is None:
            return self._join(issue, transport)
        # Senders on other machines may still be sending shares of a run whose first sender
        # is gone: this run joins them rather than settling and cutting the audience anew.
        joining = bool(held is not None and self.shares.live(issue))

        def work(connection: Connection) -> Previous:
            row = connection.execute(select(_SEND).where(_SEND.issue == issue)).first()
            if row is None:
                connection.execute(
                    insert(_SEND),
                    {
                        "issue": issue,
                        "transport": transport,
                        "status": SendStatus.sending,
                        "owner": owner,
                        "runs": 1,
                        "started_at": when,
                        "heartbeat_at": when,
                        "finished_at": None,
                        "outbox_dir": outbox_dir,
                    },
                )
                return Previous(None, None)
            if (
                held is None
                and row.owner not in ("", owner)
                and heartbeat_alive(row.heartbeat_at, when)
            ):
                self._refuse(issue, row)
            if joining and row.transport != transport:
                self._refuse_transport(issue, row.transport, transport)
            if not joining:  # a new run: nobody sends shares of the last one any more
                self.shares.clear(connection, issue)
            connection.execute(
                update(_SEND)
                .where(_SEND.id == row.id)
                .values(
                    transport=transport,
                    status=SendStatus.sending,
                    owner=owner,
                    runs=_SEND.runs + (0 if joining else 1),
                    heartbeat_at=when,
                    outbox_dir=row.outbox_dir if joining else outbox_dir,
                )
            )
            return Previous(row.transport, SendStatus(row.status), row.outbox_dir, joining)

        try:
            previous = self._write(work)
        except BaseException:
            if held is not None:
                held.release()
            raise
        if held is not None:
            self._held[issue] = held
        return previous

    def _join(self, issue: str, transport: str) -> Previous:
        """Another running process holds the issue's send: take shares of it alongside.

        Only on PostgreSQL, the database several machines share; on SQLite one
        ``mailer send`` (with its own processes) sends an issue, and another is refused.
        An outbox send stays on its machine: its folder is there.
        """
        if self.engine.dialect.name != "postgresql":
            self._refuse(issue)
        deadline = time.monotonic() + JOIN_WAIT_SECONDS
        while True:
            with self._read() as connection:
                row = connection.execute(select(_SEND).where(_SEND.issue == issue)).first()
                unfinished = self.shares.unfinished(connection, issue)
            if row is not None and row.status == SendStatus.sending and unfinished:
                if row.transport != transport:
                    self._refuse_transport(issue, row.transport, transport)
                if transport == "outbox":
                    self._refuse(issue, row)
                log.info("joining the send of %s: %d shares still to send", issue, unfinished)
                return Previous(row.transport, SendStatus(row.status), row.outbox_dir, True)
            if time.monotonic() >= deadline:
                self._refuse(issue, row)
            time.sleep(0.25)  # its first sender is settling an interrupted send, or cutting

    def _refuse_transport(self, issue: str, theirs: str, ours: str) -> None:
        raise SendRefused(
            f"issue {issue} is being sent through {theirs} by another process; this one "
            f"would send through {ours}. Join that send with the same MAILER_TRANSPORT, or "
            "wait for it to finish"
        )

    def _refuse(self, issue: str, row: Any = None) -> None:
        if row is None:
            with self._read() as connection:
                row = connection.execute(select(_SEND).where(_SEND.issue == issue)).first()
        who = (
            f"{row.owner.rsplit(':', 1)[0]}, last active {row.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
            if row is not None and row.owner
            else "a process that is starting it"
        )
        raise SendRefused(
            f"issue {issue} is being sent by another process ({who}); wait for it to "
            "finish, or stop it (it finishes its current batch and exits). A process that "
            "ends, however it ends, gives the send up at once; `mailer send ISSUE --release` "
            "shows who holds it"
        )

    def heartbeat(self, issue: str, owner: str) -> bool:
        """Note that the owner is alive (the :class:`~mailer.store.leases.Keeper` calls this
        during every wait); whether it still holds the lease, lock and row."""
        held = self._held.get(issue)
        if held is None and self.locks.available:
            return True  # joined another's send: each claim checks this process's share
        if held is not None and not held.alive():
            return False

        def work(connection: Connection) -> bool:
            return self._heartbeat(connection, issue, owner, now())

        return self._write(work)

    def release(self, issue: str, owner: str, status: SendStatus) -> None:
        """Give the lease back, marking the send finished (everyone done) or stopped."""
        when = now()
        if status is SendStatus.stopped and self.shares.live(issue):
            status = SendStatus.sending  # other machines send on
        values: dict[str, Any] = {"status": status, "owner": "", "heartbeat_at": when}
        if status is SendStatus.finished:
            values["finished_at"] = when

        def work(connection: Connection) -> None:
            connection.execute(
                update(_SEND).where(_SEND.issue == issue, _SEND.owner == owner).values(values)
            )

        try:
            self._write(work)
        finally:
            held = self._held.pop(issue, None)
            if held is not None:
                held.release()

    def holder(self, issue: str) -> Holder | None:
        """Who holds the issue's send now, and whether a running process does; None: never sent."""
        with self._read() as connection:
            row = connection.execute(select(_SEND).where(_SEND.issue == issue)).first()
        if row is None:
            return None
        if self.locks.available:
            running = issue not in self._held and self.locks.taken(send_lock(issue))
        else:
            running = bool(row.owner) and heartbeat_alive(row.heartbeat_at, now())
        owner = row.owner
        if not running:  # its first sender is gone; others may still send shares of it
            senders = self.shares.live(issue)
            running, owner = bool(senders), owner or (senders[0] if senders else "")
        return Holder(issue, owner, SendStatus(row.status), row.heartbeat_at, running)

    def force_release(self, issue: str) -> str:
        """End the issue's lease by hand (``mailer send --release``): the owner it named.

        The row names nobody from now on, so the old owner claims nothing more. A
        running holder of the lock on PostgreSQL has its lock session ended; on SQLite
        the lock ends only with its process.
        """

        shares: list[int] = []

        def work(connection: Connection) -> str:
            row = connection.execute(select(_SEND).where(_SEND.issue == issue)).first()
            if row is None:
                return ""
            connection.execute(
                update(_SEND)
                .where(_SEND.id == row.id)
                .values(owner="", status=SendStatus.stopped, heartbeat_at=now())
            )
            shares[:] = self.shares.release_all(connection, issue)
            return str(row.owner)

        owner = self._write(work)
        self.locks.end_holder(send_lock(issue))
        for share in shares:
            self.locks.end_holder(self.shares.lock_name(share))
        return owner

    def joinable(self, issue: str) -> bool:
        """Whether a send of the issue goes on that another ``mailer send`` could join: on
        PostgreSQL, marked sending, with shares not done."""
        if self.engine.dialect.name != "postgresql":
            return False
        with self._read() as connection:
            status = connection.scalar(select(_SEND.status).where(_SEND.issue == issue))
            return status == SendStatus.sending and self.shares.unfinished(connection, issue) > 0

    def send_status(self, issue: str) -> SendStatus | None:
        with self._read() as connection:
            status = connection.scalar(select(_SEND.status).where(_SEND.issue == issue))
        return None if status is None else SendStatus(status)

    # -- settling what a dead process left ----------------------------------------------

    def in_flight(self, issue: str, span: tuple[int, int] | None = None) -> list[InFlight]:
        """Rows left in_flight (by a process that died: call this holding the lease, or
        the share of the audience ``span`` is, first and last member id)."""
        query = (
            select(_D.id, _D.subscriber_id, _S.email)
            .join(_S, _S.id == _D.subscriber_id)
            .where(_D.issue == issue, _D.state == DeliveryState.in_flight)
            .order_by(_D.id)
        )
        if span is not None:
            query = query.where(_D.subscriber_id.between(*span))
        with self._read() as connection:
            return [InFlight(*row) for row in connection.execute(query)]

    def settle(
        self,
        *,
        sent: Sequence[int] = (),
        unsent: Sequence[int] = (),
        unknown: Sequence[int] = (),
        unknown_reason: str = "",
    ) -> None:
        """Resolve in_flight rows (by delivery id): sent, never sent (to retry), or unknown."""
        when = now()

        def work(connection: Connection) -> None:
            for ids, values in (
                (sent, {"state": DeliveryState.sent, "error": ""}),
                (
                    unsent,
                    {
                        "state": DeliveryState.failed,
                        "retryable": True,
                        "error": "the send was interrupted before this message was handed over",
                    },
                ),
                (unknown, {"state": DeliveryState.unknown, "error": unknown_reason}),
            ):
                for chunk in _chunks(list(ids)):
                    connection.execute(
                        update(_D)
                        .where(_D.id.in_(chunk), _D.state == DeliveryState.in_flight)
                        .values(updated_at=when, **values)
                    )

        self._write(work)

    def unknown(self, issue: str) -> list[UnknownDelivery]:
        """The issue's unknown deliveries, oldest first, with the Message-ID each was sent with."""
        query = (
            select(_S.email, _D.message_id, _D.updated_at, _D.error)
            .join(_S, _S.id == _D.subscriber_id)
            .where(_D.issue == issue, _D.state == DeliveryState.unknown)
            .order_by(_D.updated_at, _D.id)
        )
        with self._read() as connection:
            return [UnknownDelivery(*row) for row in connection.execute(query)]

    def resolve_unknown(self, issue: str, decision: Literal["sent", "resend"]) -> int:
        """The operator's word on ``unknown`` rows: they did go out, or they should be resent."""
        if decision == "sent":
            values: dict[str, Any] = {
                "state": DeliveryState.sent,
                "error": "marked sent by the operator (--resolve-unknown=sent)",
            }
        else:
            values = {
                "state": DeliveryState.failed,
                "retryable": True,
                "error": "to be resent, as the operator asked (--resolve-unknown=resend)",
            }

        def work(connection: Connection) -> int:
            result = connection.execute(
                update(_D)
                .where(_D.issue == issue, _D.state == DeliveryState.unknown)
                .values(updated_at=now(), **values)
            )
            return int(result.rowcount)

        return self._write(work)

    def mark_accepted(self, accepted: Sequence[tuple[str, int, str | None]]) -> int:
        """Mark (issue, subscriber id, message id) sent: the provider says it took them.

        Rows already ``sent`` are left alone; returns how many rows changed.
        """
        return self._mark(accepted, {"state": DeliveryState.sent})

    def mark_dropped(self, dropped: Sequence[tuple[str, int, str]]) -> int:
        """Mark (issue, subscriber id, reason) failed for good: the provider took the request
        but will not deliver (a suppressed address). Rows already settled are left alone."""
        return self._mark(
            [(issue, subscriber_id, None, reason) for issue, subscriber_id, reason in dropped],
            {"state": DeliveryState.failed, "retryable": False},
            only_unfinished=True,
        )

    def _mark(
        self,
        keys: Sequence[tuple[str, int, str | None] | tuple[str, int, str | None, str]],
        values: Mapping[str, Any],
        *,
        only_unfinished: bool = False,
    ) -> int:
        """One statement per chunk of keys (executemany), not one round trip per key:
        ``--reconcile`` and the webhook settle thousands of rows at a time."""
        when = now()
        skip = (
            [DeliveryState.sent, DeliveryState.failed] if only_unfinished else [DeliveryState.sent]
        )
        statement = (
            update(_D)
            .where(
                _D.issue == bindparam("k_issue"),
                _D.subscriber_id == bindparam("k_subscriber"),
                *(_D.state != state for state in skip),  # NOT IN cannot be executemany'd
            )
            .values(
                updated_at=when,
                # A key without a message id keeps the one the row has.
                message_id=func.coalesce(bindparam("k_message_id", type_=Text), _D.message_id),
                error=bindparam("k_error", type_=Text),
                **values,
            )
        )
        rows = [
            {
                "k_issue": key[0],
                "k_subscriber": key[1],
                "k_message_id": key[2] or None,
                "k_error": key[3] if len(key) > 3 else "",
            }
            for key in keys
        ]

        def work(connection: Connection) -> int:
            changed = 0
            for start in range(0, len(rows), _CHUNK):
                result = connection.execute(statement, rows[start : start + _CHUNK])
                changed += int(result.rowcount)
            return changed

        return self._write(work) if rows else 0

    # -- the batch protocol ---------------------------------------------------------------

    def states_of(self, issue: str, subscriber_ids: Sequence[int]) -> dict[int, tuple[str, bool]]:
        """(state, retryable) of the rows these members have for the issue; absent: no row."""
        found: dict[int, tuple[str, bool]] = {}
        with self._read() as connection:
            sql = _Sql(connection)
            for chunk in _chunks(list(subscriber_ids)):
                among, values = sql.among(chunk)
                rows = sql.run(
                    "SELECT subscriber_id, state, retryable FROM deliveries "
                    f"WHERE issue = {sql.mark} AND subscriber_id {among}",
                    (issue, *values),
                )
                found.update((sid, (state, bool(retryable))) for sid, state, retryable in rows)
        return found

    def claim(
        self,
        issue: str,
        variant: str,
        subscriber_ids: Sequence[int],
        owner: str,
        *,
        recording: Sequence[tuple[int, Delivery]] = (),
        message_ids: Mapping[int, str] | None = None,
        shares: Collection[int] = (),
    ) -> Claim:
        """Mark the batch's members in_flight, in one transaction, before they are sent.

        Only members still active (re-checked here, so that a member who left
        during the send gets nothing more) with no row, or a retryable failed
        one, are claimed. Raises SendRefused if this process lost the lease.

        ``recording`` is what the transport said of the batch before, written in the
        same transaction (see :meth:`record`) and kept even when the lease was lost:
        one commit per batch instead of two.

        ``message_ids`` (subscriber id -> Message-ID) go on the claimed rows: a row a
        dead process leaves in flight, settled as unknown, still says which message
        to look for in the relay's log.

        ``shares``: the shares of the audience (:mod:`mailer.store.shares`) the batch's
        members are in, which this process must still have; without, the send's lease.
        """
        ids = list(subscriber_ids)
        if not 0 < len(ids) <= _CHUNK:
            raise ValueError(f"a batch has from 1 to {_CHUNK} members")
        when = now()

        def work(connection: Connection) -> Claim | None:
            sql = _Sql(connection)
            if recording:
                _record(sql, recording, when)
            if not self._heartbeat(connection, issue, owner, when, shares=shares):
                return None
            claim = _claim(sql, issue, variant, ids, when)
            if message_ids:
                m = sql.mark
                sql.run_many(
                    f"UPDATE deliveries SET message_id = {m} WHERE id = {m}",
                    [
                        (message_ids[member], row)
                        for member, row in claim.claimed.items()
                        if member in message_ids
                    ],
                )
            return claim

        claim = self._write(work)
        if claim is None:
            raise SendRefused(
                f"this process no longer holds the send of {issue}: another process took it "
                "over (it was thought dead). Stopping here; nothing was sent twice."
            )
        return claim

    def record(self, issue: str, owner: str, outcomes: Sequence[tuple[int, Delivery]]) -> None:
        """Write what the transport said of each claimed row (delivery id, Delivery), at once.

        Only rows still in_flight change: a row reconciliation already marked sent stays so.
        """
        when = now()

        def work(connection: Connection) -> None:
            self._heartbeat(connection, issue, owner, when)
            if outcomes:
                _record(_Sql(connection), outcomes, when)

        self._write(work)

    def _heartbeat(
        self,
        connection: Connection,
        issue: str,
        owner: str,
        when: dt.datetime,
        *,
        shares: Collection[int] = (),
    ) -> bool:
        """Note that the owner is alive; whether it still holds the lease (or the shares)."""
        if shares:
            sql = _Sql(connection)
            m = sql.mark
            among, values = sql.among(list(shares))
            changed = sql.rowcount(
                f"UPDATE send_shares SET updated_at = {m} WHERE owner = {m} "
                f"AND state = 'taken' AND id {among}",
                (sql.time(when), owner, *values),
            )
            return changed == len(shares)
        result = connection.execute(
            update(_SEND)
            .where(_SEND.issue == issue, _SEND.owner == owner)
            .values(heartbeat_at=when)
        )
        return bool(result.rowcount == 1)

    # -- reports -------------------------------------------------------------------------

    def counts(self, issue: str) -> list[StateCount]:
        """Rows per (variant, state, retryable) for an issue."""
        query = (
            select(_D.variant, _D.state, _D.retryable, func.count())
            .where(_D.issue == issue)
            .group_by(_D.variant, _D.state, _D.retryable)
            .order_by(_D.variant, _D.state)
        )
        with self._read() as connection:
            return [
                StateCount(variant, DeliveryState(state), bool(retryable), count)
                for variant, state, retryable, count in connection.execute(query)
            ]

    def failures(self, issue: str, *, limit: int = 20) -> list[tuple[str, str, int]]:
        """The commonest (variant, error, count) among failed and unknown rows."""
        query = (
            select(_D.variant, _D.error, func.count().label("n"))
            .where(
                _D.issue == issue,
                _D.state.in_([DeliveryState.failed, DeliveryState.unknown]),
            )
            .group_by(_D.variant, _D.error)
            .order_by(func.count().desc())
            .limit(limit)
        )
        with self._read() as connection:
            return [(v, e, n) for v, e, n in connection.execute(query)]

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._translated(), self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def _translated(self) -> Iterator[None]:
        where = self.engine.url.render_as_string(hide_password=True)
        try:
            yield
        except DBAPIError as error:
            raise StoreError(f"the send ledger at {where} failed: {error.orig}") from error


def _claim(sql: _Sql, issue: str, variant: str, ids: list[int], when: dt.datetime) -> Claim:
    """The claim's statements, in the caller's transaction (see :meth:`Ledger.claim`).

    The common case, members with no row yet, is one statement; members it left
    out cost one more for retryable failures, and one to tell who left the list.
    """
    stamp, m = sql.time(when), sql.mark
    among, values = sql.among(ids)
    # The WHERE in the SELECT also keeps SQLite from reading ON CONFLICT as a join.
    claimed: dict[int, int] = dict(
        sql.run(
            "INSERT INTO deliveries (issue, subscriber_id, variant, state, retryable, "
            "attempts, error, created_at, updated_at) "
            f"SELECT {m}, id, {m}, 'in_flight', {m}, 1, '', {m}, {m} FROM subscribers "
            f"WHERE status = 'active' AND id {among} "
            "ON CONFLICT (issue, subscriber_id) DO NOTHING RETURNING subscriber_id, id",
            (issue, variant, False, stamp, stamp, *values),
        )
    )
    rest = [i for i in ids if i not in claimed]
    if rest:
        among, values = sql.among(rest)
        claimed.update(
            sql.run(
                f"UPDATE deliveries SET state = 'in_flight', variant = {m}, "
                f"attempts = attempts + 1, retryable = {m}, error = '', updated_at = {m} "
                f"WHERE issue = {m} AND state = 'failed' AND retryable = {m} "
                f"AND subscriber_id {among} AND subscriber_id IN "
                f"(SELECT id FROM subscribers WHERE status = 'active' AND id {among}) "
                "RETURNING subscriber_id, id",
                (variant, False, stamp, issue, True, *values, *values),
            )
        )
        rest = [i for i in rest if i not in claimed]
    if not rest:
        return Claim(claimed=claimed, inactive=frozenset(), already=frozenset())
    among, values = sql.among(rest)
    active = {
        row[0]
        for row in sql.run(
            f"SELECT id FROM subscribers WHERE status = 'active' AND id {among}", values
        )
    }
    return Claim(
        claimed=claimed,
        inactive=frozenset(i for i in rest if i not in active),
        already=frozenset(i for i in rest if i in active),
    )


def _record(sql: _Sql, outcomes: Sequence[tuple[int, Delivery]], when: dt.datetime) -> None:
    """The record's statements, in the caller's transaction (see :meth:`Ledger.record`)."""
    stamp, m = sql.time(when), sql.mark
    outcome: dict[tuple[Any, ...], list[int]] = {}
    for delivery_id, d in outcomes:
        retry = d.state == "failed" and not d.permanent
        outcome.setdefault((d.state, d.message_id, d.error or "", retry), []).append(delivery_id)
    assign = f"state = {m}, message_id = {m}, error = {m}, retryable = {m}, updated_at = {m}"
    # SendGrid: one outcome (and message id) for a whole request, so one statement per
    # request recorded (several, with requests in flight), not one per row.
    if len(outcome) <= 3 or len(outcomes) >= _GROUPED * len(outcome):
        for values, ids in outcome.items():
            for chunk in _chunks(ids):
                among, chosen = sql.among(chunk)
                sql.run(
                    f"UPDATE deliveries SET {assign} WHERE state = 'in_flight' AND id {among}",
                    (*values, stamp, *chosen),
                )
        return
    sql.run_many(  # a message id each (SMTP, the outbox)
        f"UPDATE deliveries SET {assign} WHERE id = {m} AND state = 'in_flight'",
        [(*values, stamp, i) for values, ids in outcome.items() for i in ids],
    )


class _Sql:
    """The per-batch statements as the driver's own SQL.

    At 1000 rows a batch, SQLAlchemy's per-parameter and per-row processing took
    several times longer than the database's work, and the claim and the record are
    on the path of every recipient. The SQL is plain enough for SQLite and
    PostgreSQL alike; only the placeholder and the timestamp's form differ.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.sqlite = connection.dialect.name == "sqlite"
        self.mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"

    def among(self, ids: Sequence[int]) -> tuple[str, tuple[Any, ...]]:
        """``IN`` these ids: the SQL after the column, and its parameters.

        On PostgreSQL, one array parameter: the statement's text is the same for every
        batch, so psycopg prepares it once and the server plans it once, where a list
        of 1,000 parameters was parsed and planned anew for every batch.
        """
        if self.sqlite:
            return f"IN ({', '.join(['?'] * len(ids))})", tuple(ids)
        return "= ANY(%s::bigint[])", (list(ids),)

    def time(self, when: dt.datetime) -> Any:
        """A time as the UTCDateTime column stores it (SQLAlchemy's SQLite text form)."""
        utc = when.astimezone(dt.UTC)
        return utc.replace(tzinfo=None).isoformat(" ", "microseconds") if self.sqlite else utc

    def run(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return driver_rows(self.connection, sql, params)

    def run_many(self, sql: str, params: list[tuple[Any, ...]]) -> None:
        self.connection.exec_driver_sql(sql, params)

    def rowcount(self, sql: str, params: Sequence[Any]) -> int:
        """Rows a statement changed."""
        return int(self.connection.exec_driver_sql(sql, tuple(params)).rowcount)


def _chunks(items: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
