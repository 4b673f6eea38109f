"""Shares of a send: parts of the audience that sending processes take one at a time.

When a send starts, its audience is cut into *shares*: ranges of member ids, rows
of ``send_shares`` (:meth:`Shares.open`). Every sending process (each child of a
``mailer send``, and on PostgreSQL every ``mailer send`` of the same issue on other
machines) takes the next share, sends it batch by batch through the ledger, and
marks it done; the send is over when the last share is done. Exactly-once stays
the ledger's (claims are per member): shares only say who walks which part of the
list, so that several machines add up instead of walking the same members.

* Taking an open share is one short transaction whose ``SELECT … FOR UPDATE SKIP
  LOCKED`` passes over the rows other senders are taking at that moment, so that
  senders never queue behind each other (SQLite, one writer at a time, needs none).
* While it sends a share, its process holds the share's lock
  (:mod:`mailer.store.leases`: a PostgreSQL advisory lock in a session of its own,
  or ``flock`` beside SQLite), which ends with the process, however it ends.
* A share still ``taken`` whose lock anyone can take belongs to a process that is
  gone: the next sender to look takes it over (:meth:`Shares.take` looks at those
  first). Rows such a process left ``in_flight`` are in its share's id range, and
  nobody else sends in that range: the new owner settles them
  (:func:`mailer.sending.run.settle_interrupted`) and sends the rest.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Connection,
    Engine,
    ForeignKey,
    Index,
    String,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from mailer.store.leases import Held, LeaseLocks, heartbeat_alive
from mailer.store.schema import Base, BigId, UTCDateTime
from mailer.store.transact import READ_COMMITTED, run_write

__all__ = ["LAST_ID", "Share", "ShareRow", "ShareState", "Shares", "share_bounds", "share_size"]

T = TypeVar("T")
log = logging.getLogger(__name__)

# The last share runs to here: members who join during the send are in it.
LAST_ID = 2**62
# Shares per send when the list is long enough: enough that a sender that joins late,
# or takes over a dead one's part, finds work, and that the processes of a send end
# within a small share of each other; few enough that taking and finishing each (two
# commits) stays a small part of the send's commits (one per batch): 96 shares made a
# send of 100,000 members 13 % slower than 24. Batches fill across shares.
SHARES = 24
MAX_SHARE = 50_000


class ShareState(StrEnum):
    open = "open"  # nobody sends it: the next sender takes it
    taken = "taken"  # ``owner`` sends it (or did, until it died: then it is taken over)
    done = "done"  # every member in it dealt with


class ShareRow(Base):
    """One part of a send's audience: the active members with ids from first_id to last_id."""

    __tablename__ = "send_shares"
    __table_args__ = (
        CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in ShareState) + ")", name="state"),
        Index(None, "issue", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    issue: Mapped[str] = mapped_column(ForeignKey("sends.issue", ondelete="CASCADE"))
    first_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(20))
    # The sending process that has it ("host:pid:nonce"), and the `mailer send` it is part of.
    owner: Mapped[str] = mapped_column(String(300), default="")
    sender: Mapped[str] = mapped_column(String(300), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


_SH = ShareRow


@dataclass(frozen=True, slots=True)
class Share:
    """A share this process has taken."""

    id: int
    issue: str
    first_id: int
    last_id: int
    # Who had it before: "" for a share nobody had; else a process that died or stopped
    # with it, whose rows left in_flight in the range are the new owner's to settle.
    previous_owner: str = ""

    @property
    def span(self) -> tuple[int, int]:
        return self.first_id, self.last_id


def share_size(members: int, batch_size: int) -> int:
    """Members per share for an audience of ``members``: about :data:`SHARES` shares."""
    return max(batch_size, min(MAX_SHARE, -(-members // SHARES)))


def share_bounds(connection: Connection, size: int) -> list[tuple[int, int]]:
    """(first_id, last_id) of shares of about ``size`` active members each, covering every id.

    Cut by counting members (every ``size``-th active id), not by dividing the id
    range: ids left by forgotten members or other imports would leave shares empty.
    """
    cuts = connection.scalars(
        text(
            "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM subscribers "
            "WHERE status = 'active') AS ranked WHERE n % :size = 0 ORDER BY id"
        ),
        {"size": size},
    ).all()
    bounds, first = [], 0
    for cut in cuts:
        bounds.append((first, int(cut)))
        first = int(cut) + 1
    bounds.append((first, LAST_ID))  # the rest, and members who join during the send
    return bounds


class Shares:
    """The shares of sends, on the ledger's database (see the module's text)."""

    def __init__(
        self, engine: Engine, locks: LeaseLocks, writes: AbstractContextManager[Any]
    ) -> None:
        self.engine = engine
        self.locks = locks
        self._writes = writes  # the ledger's: several processes of a send write in turn
        self._held: dict[int, Held] = {}

    def _write(self, work: Callable[[Connection], T]) -> T:
        with self._writes:  # as the ledger's writes (see Ledger._write)
            return run_write(self.engine, work, isolation=READ_COMMITTED)

    @staticmethod
    def lock_name(share_id: int) -> str:
        return f"send-share-{share_id}"

    # -- a run's shares ------------------------------------------------------------------

    def open(self, issue: str, batch_size: int) -> int:
        """Cut the audience into shares for a new run of the issue's send (the previous
        run's shares go): how many. Call holding the send's lease."""
        when = dt.datetime.now(dt.UTC)

        def work(connection: Connection) -> int:
            self.clear(connection, issue)
            members = connection.scalar(
                text("SELECT count(*) FROM subscribers WHERE status = 'active'")
            )
            bounds = share_bounds(connection, share_size(int(members or 0), batch_size))
            connection.execute(
                insert(_SH),
                [
                    {
                        "issue": issue,
                        "first_id": first,
                        "last_id": last,
                        "state": ShareState.open,
                        "owner": "",
                        "sender": "",
                        "updated_at": when,
                    }
                    for first, last in bounds
                ],
            )
            return len(bounds)

        return int(self._write(work))

    def clear(self, connection: Connection, issue: str) -> None:
        """Forget the issue's shares (a new run of its send starts)."""
        connection.execute(delete(_SH).where(_SH.issue == issue))

    def unfinished(self, connection: Connection, issue: str) -> int:
        """Shares of the issue's current run not done yet."""
        return int(
            connection.scalar(
                select(func.count())
                .select_from(_SH)
                .where(_SH.issue == issue, _SH.state != ShareState.done)
            )
            or 0
        )

    def senders(self, issue: str) -> set[str]:
        """The ``mailer send`` runs that took part in the issue's current run."""
        with self.engine.connect() as connection:
            found = connection.scalars(
                select(_SH.sender).where(_SH.issue == issue, _SH.sender != "").distinct()
            )
            return set(found)

    # -- taking, finishing, giving back ------------------------------------------------

    def take(self, issue: str, owner: str, sender: str) -> Share | bool | None:
        """The next share for ``owner`` to send: one a dead process left, else an open one.

        Returns False when none is free but others are still sending some (wait and
        ask again: one of them may die), None when every share is done.
        """
        abandoned = self._take_abandoned(issue, owner, sender)
        if abandoned is not None:
            return abandoned
        row = self._write(lambda c: self._take_open(c, issue, owner, sender))
        if row is not None:
            return Share(row.id, issue, row.first_id, row.last_id, row.owner)
        with self.engine.connect() as connection:
            return None if self.unfinished(connection, issue) == 0 else False

    def _take_open(self, connection: Connection, issue: str, owner: str, sender: str) -> Any:
        query = (
            select(_SH.id, _SH.first_id, _SH.last_id, _SH.owner)
            .where(_SH.issue == issue, _SH.state == ShareState.open)
            .order_by(_SH.id)
            .limit(1)
        )
        if connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = connection.execute(query).first()
        # Its lock before the row says it is taken: nobody may see it taken and unlocked.
        # (Its last owner may have given it back and not yet let go: it is left for later.)
        if row is not None and self._hold(row.id) is False:
            return None
        if row is not None:
            connection.execute(
                update(_SH)
                .where(_SH.id == row.id)
                .values(state=ShareState.taken, owner=owner, sender=sender, updated_at=_now())
            )
        return row

    def _take_abandoned(self, issue: str, owner: str, sender: str) -> Share | None:
        """A share whose owner is gone (its lock is free), now ``owner``'s."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_SH.id, _SH.first_id, _SH.last_id, _SH.owner, _SH.updated_at)
                .where(_SH.issue == issue, _SH.state == ShareState.taken, _SH.owner != owner)
                .order_by(_SH.id)
            ).all()
        for row in rows:
            if row.id in self._held:  # this process has it (and was told it lost it)
                continue
            if not self.locks.available and heartbeat_alive(row.updated_at, _now()):
                continue
            held = self._hold(row.id)
            if held is False:
                continue  # its owner runs

            def work(connection: Connection, row: Any = row) -> bool:
                result = connection.execute(
                    update(_SH)
                    .where(_SH.id == row.id, _SH.owner == row.owner, _SH.state == ShareState.taken)
                    .values(owner=owner, sender=sender, updated_at=_now())
                )
                return bool(result.rowcount == 1)

            if self._write(work):
                log.info(
                    "taking over share %d of %s (ids %d-%d) from %s, which is gone",
                    row.id,
                    issue,
                    row.first_id,
                    row.last_id,
                    row.owner,
                )
                return Share(row.id, issue, row.first_id, row.last_id, row.owner)
            self._let_go(row.id)
        return None

    def _hold(self, share_id: int) -> Held | bool | None:
        """The share's lock, now this process's (None on a database without locks); False
        when a running process holds it."""
        if not self.locks.available:
            return None
        if share_id in self._held:  # this process's already (a transaction run again)
            return self._held[share_id]
        held = self.locks.try_hold_many(self.lock_name(share_id))
        if held is None:
            return False
        self._held[share_id] = held
        return held

    def _let_go(self, share_id: int) -> None:
        held = self._held.pop(share_id, None)
        if held is not None:
            held.release()

    def done(self, share: Share, owner: str) -> bool:
        """Mark the share done (every member in it dealt with): whether the send is over."""

        def work(connection: Connection) -> bool:
            connection.execute(
                update(_SH)
                .where(_SH.id == share.id, _SH.owner == owner)
                .values(state=ShareState.done, updated_at=_now())
            )
            return self.unfinished(connection, share.issue) == 0

        try:
            return bool(self._write(work))
        finally:
            self._let_go(share.id)

    def give_back(self, share: Share, owner: str) -> None:
        """This process stops before the share is done: it is open for the next sender, who
        settles what this one may have left in flight (it still names this owner)."""
        try:
            self._write(
                lambda connection: connection.execute(
                    update(_SH)
                    .where(_SH.id == share.id, _SH.owner == owner)
                    .values(state=ShareState.open, updated_at=_now())
                )
            )
        finally:
            self._let_go(share.id)

    def alive(self, share: Share) -> bool:
        """Whether this process still holds the share's lock (a PostgreSQL session may be cut)."""
        held = self._held.get(share.id)
        return held is None or held.alive()

    def live(self, issue: str) -> list[str]:
        """Owners of the issue's taken shares that still run (whose locks are held)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_SH.id, _SH.owner, _SH.updated_at).where(
                    _SH.issue == issue, _SH.state == ShareState.taken
                )
            ).all()
        running = []
        for row in rows:
            if row.id in self._held:
                running.append(row.owner)
            elif self.locks.available:
                if self.locks.taken(self.lock_name(row.id)):
                    running.append(row.owner)
            elif heartbeat_alive(row.updated_at, _now()):
                running.append(row.owner)
        return running

    def release_all(self, connection: Connection, issue: str) -> list[int]:
        """``--release``: every taken share of the issue is open again, its owner named
        nobody-who-may-claim (their claims fail); the ids, whose lock holders to end."""
        ids = list(
            connection.scalars(
                select(_SH.id).where(_SH.issue == issue, _SH.state == ShareState.taken)
            )
        )
        if ids:
            connection.execute(
                update(_SH)
                .where(_SH.id.in_(ids))
                .values(state=ShareState.open, owner="released", updated_at=_now())
            )
        return ids


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
