"""Sign-up attempts, kept briefly, for the sign-up form's rate limits.

Each attempt is a row keyed by a hash (of the address, or of the client's IP
address): nothing readable is kept, and rows older than a day are deleted as new
ones arrive. Kept in the database rather than in memory so that limits hold
across restarts and across several web processes.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import Connection, Engine, Index, String, delete, func, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from mailer.store.schema import Base, BigId, UTCDateTime
from mailer.store.transact import run_write

__all__ = ["SignupAttemptRow", "attempt"]

KEEP = dt.timedelta(days=1)


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
