"""Sign-ups: attempts, kept briefly for the form's rate limits, and sign-ups never confirmed.

Each attempt is a row keyed by a hash (of the address, or of the client's IP
address): nothing readable is kept, and rows older than a day are deleted as new
ones arrive. Kept in the database rather than in memory so that limits hold
across restarts and across several web processes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, Index, String, delete, func, insert, select
from sqlalchemy.orm import Mapped, mapped_column

if TYPE_CHECKING:
    from mailer.store.subscribers import SubscriberStore

from mailer.store.schema import Base, BigId, UTCDateTime
from mailer.store.transact import run_write

__all__ = ["CONFIRM_DAYS", "SignupAttemptRow", "attempt", "purge_unconfirmed"]

log = logging.getLogger(__name__)

KEEP = dt.timedelta(days=1)
CONFIRM_DAYS = 7
"""Days a sign-up's confirmation link works; a sign-up still unconfirmed after them is deleted."""


class SignupAttemptRow(Base):
    """One sign-up attempt, counted against a limit."""

    __tablename__ = "signup_attempts"
    __table_args__ = (Index(None, "key", "at"), Index(None, "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


_A = SignupAttemptRow


def limit_key(kind: str, value: str) -> str:
    """The stored form of a rate-limit key: a hash, so no address or IP is kept."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def attempt(
    engine: Engine, limits: dict[str, int], *, window: dt.timedelta, now: dt.datetime
) -> set[str]:
    """Record one attempt under each key, and return the keys now over their limit.

    ``limits`` maps each key (see :func:`limit_key`) to the attempts allowed in
    ``window``; an attempt over the limit is still recorded, so that hammering
    keeps the limit shut.
    """
    if window > KEEP:
        raise ValueError("the window must be at most a day: older attempts are deleted")

    def work(connection: Connection) -> set[str]:
        connection.execute(delete(_A).where(_A.at < now - KEEP))
        over: set[str] = set()
        for key, allowed in limits.items():
            recent = connection.scalar(
                select(func.count()).select_from(_A).where(_A.key == key, _A.at > now - window)
            )
            if int(recent or 0) >= allowed:
                over.add(key)
        connection.execute(insert(_A), [{"key": key, "at": now} for key in limits])
        return over

    return run_write(engine, work)


def purge_unconfirmed(store: SubscriberStore, *, now: dt.datetime | None = None) -> int:
    """Delete sign-ups never confirmed whose link has expired, with their names; how many."""
    before = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=CONFIRM_DAYS)
    removed = store.delete_pending(changed_before=before)
    if removed:
        log.info(
            "sign-up: %d unconfirmed sign-ups older than %d days deleted", removed, CONFIRM_DAYS
        )
    return removed
