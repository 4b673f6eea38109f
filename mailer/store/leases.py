"""Locks that end with their holder: what says whether a send's or a slot's owner still runs.

A lease (an issue's send, a scheduler's slot, a notice being sent) is a row naming its
owner, *and* a lock that only a running owner can hold:

* **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock``) on a
  connection of its own, kept open while the lease is held. PostgreSQL releases it
  when that session ends: the process exits or is killed (the socket closes at
  once), or its machine goes away (the server's TCP keepalive on that session,
  set to :data:`KEEPALIVE_SECONDS`, ends the session within about 25 seconds).
* **SQLite**: ``flock`` on a file in a folder beside the database
  (``mailer.db.leases/``). The kernel releases it when the process exits, however
  it ends, before it is a zombie, whatever its PID is in whatever PID namespace.

So liveness never depends on a host name or a PID (two machines may share a name,
a container restarts as PID 1) nor on a clock (a rate-limited batch may wait for
twenty minutes without losing its lease). Trying the lock *is* the question
"is the owner alive?": whoever gets it knows the previous owner is gone.

A database without a file (SQLite ``:memory:``) has no such lock: there, and only
there, an owner is presumed alive while its heartbeat, which :class:`Keeper`
writes every :data:`HEARTBEAT_SECONDS` during every wait, is younger than
:data:`LEASE_SECONDS`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, text

__all__ = [
    "HEARTBEAT_SECONDS",
    "KEEPALIVE_SECONDS",
    "LEASE_SECONDS",
    "Held",
    "Keeper",
    "LeaseLocks",
    "heartbeat_alive",
]

log = logging.getLogger(__name__)

# How often a lease's holder writes its heartbeat, waits included.
HEARTBEAT_SECONDS = 15.0
# Without a lock (SQLite in memory only), an owner silent this long is presumed dead.
LEASE_SECONDS = 60
# TCP keepalive of a PostgreSQL lock session: idle, then probes every interval, count times.
KEEPALIVE = (10, 5, 3)
KEEPALIVE_SECONDS = KEEPALIVE[0] + KEEPALIVE[1] * KEEPALIVE[2]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def heartbeat_alive(heartbeat: dt.datetime, at: dt.datetime) -> bool:
    """Whether an owner that cannot be asked through a lock is presumed alive."""
    return (at - heartbeat).total_seconds() < LEASE_SECONDS


class Held(Protocol):
    """A lock this process holds; released by :meth:`release` or by the process's end."""

    def alive(self) -> bool:
        """Whether the lock is still this process's (a PostgreSQL session may be cut)."""
        ...

    def release(self) -> None: ...


class _FileLock:
    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd
        self._pid = os.getpid()

    def alive(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        # A forked child shares the descriptor: only the process that took the lock lets go.
        if fd is not None and os.getpid() == self._pid:
            os.close(fd)

    def __del__(self) -> None:  # a holder dropped without release: as if its process ended
        self.release()


class _SessionLock:
    def __init__(self, connection: Connection, key: int) -> None:
        self._connection: Connection | None = connection
        # The driver's own connection, closed for sure: SQLAlchemy's close can fail on a
        # session the server ended (``--release``), and leave it open.
        self._raw = connection.connection.dbapi_connection
        self._key = key
        self._pid = os.getpid()
        self._guard = threading.Lock()

    @property
    def connection(self) -> Connection:
        assert self._connection is not None, "released"
        return self._connection

    def alive(self) -> bool:
        with self._guard:
            if self._connection is None:
                return False
            try:  # the lock lives as long as its session: a session that answers holds it
                self._connection.exec_driver_sql("SELECT 1")
                self._connection.rollback()
            except Exception:
                log.exception("the lease's database session was lost")
                return False
            return True

    def release(self) -> None:
        with self._guard:
            connection, self._connection = self._connection, None
        if connection is None or os.getpid() != self._pid:
            return  # released already, or a forked child's copy: the parent's to release
        with contextlib.suppress(Exception):  # a dead session has released it already
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            connection.commit()
        _close(connection, self._raw)

    def __del__(self) -> None:  # a holder dropped without release: as if its process ended
        with contextlib.suppress(Exception):
            self.release()


class _Session:
    """One PostgreSQL session holding many advisory locks, each let go on its own: a
    sender takes share after share, and a connection of its own for each cost more than
    sending a share's first batch. The locks all end with the session, as with the process."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine  # not the LeaseLocks: no cycle, so it closes as soon as let go
        self._lock: _SessionLock | None = None  # the session, kept by a lock of its own
        self._guard = threading.Lock()

    def try_hold(self, name: str) -> Held | None:
        with self._guard:
            if self._lock is None or not self._lock.alive():
                if self._lock is not None:  # its session ended: close it now, not when collected
                    self._lock.release()
                self._lock = _session_lock(self._engine, f"session-{os.urandom(8).hex()}")
            assert self._lock is not None, "a lock no one else knows is always free"
            connection = self._lock.connection
            key = _key_in(connection, name)
            got = connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
            connection.commit()
        return _HeldInSession(self, self._lock, key) if got else None

    def unlock(self, session: _SessionLock, key: int) -> None:
        with self._guard:
            if session is not self._lock or not session.alive():
                return  # that session ended: its locks with it
            with contextlib.suppress(Exception):
                session.connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                session.connection.commit()

    def close(self) -> None:
        with self._guard:
            lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()


class _HeldInSession:
    def __init__(self, session: _Session, lock: _SessionLock, key: int) -> None:
        self._session, self._lock, self._key = session, lock, key
        self._released = False

    def alive(self) -> bool:
        return not self._released and self._lock.alive()

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._session.unlock(self._lock, self._key)


class LeaseLocks:
    """The locks of one database: :meth:`try_hold` one by name."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._folder = _lock_folder(engine)
        self._session: _Session | None = None

    @property
    def available(self) -> bool:
        """Whether this database has locks that end with their holder."""
        return self.engine.dialect.name == "postgresql" or self._folder is not None

    def try_hold(self, name: str) -> Held | None:
        """The lock ``name``, now held by this process; None when another holder has it.

        Raises nothing for a database without locks: check :attr:`available` first.
        """
        if self.engine.dialect.name == "postgresql":
            return self._session_lock(name)
        if self._folder is None:
            raise RuntimeError("this database has no lease locks")
        return self._file_lock(name)

    def try_hold_many(self, name: str) -> Held | None:
        """As :meth:`try_hold`, for a process that holds many locks one after another (the
        shares of a send): on PostgreSQL, in one session of this process's, not one each."""
        if self.engine.dialect.name != "postgresql":
            return self.try_hold(name)
        if self._session is None:
            self._session = _Session(self.engine)
        return self._session.try_hold(name)

    def taken(self, name: str) -> bool:
        """Whether some running process holds ``name`` (asked by trying it, and letting go)."""
        held = self.try_hold(name)
        if held is None:
            return True
        held.release()
        return False

    def end_holder(self, name: str) -> bool:
        """End the PostgreSQL session holding ``name`` (``--release``): whether one was ended.

        A file lock cannot be taken from its process: on SQLite this does nothing.
        """
        if self.engine.dialect.name != "postgresql":
            return False
        with self.engine.connect() as connection:
            schema = connection.scalar(text("SELECT current_database() || '.' || current_schema()"))
            key = _key(f"{schema}:{name}") & 0xFFFFFFFFFFFFFFFF
            ended = connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database()) AND classid::bigint = :high "
                    "AND objid::bigint = :low AND objsubid = 1 AND granted"
                ),
                {"high": key >> 32, "low": key & 0xFFFFFFFF},
            )
            connection.commit()
        return bool(ended)

    def _file_lock(self, name: str) -> Held | None:
        assert self._folder is not None
        self._folder.mkdir(parents=True, exist_ok=True)
        path = self._folder / _file_name(name)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return _FileLock(fd)

    def _session_lock(self, name: str) -> _SessionLock | None:
        return _session_lock(self.engine, name)


def _session_lock(engine: Engine, name: str) -> _SessionLock | None:
    """The lock ``name`` in a session of its own, now held; None when another holds it."""
    pooled = engine.connect()
    raw = pooled.connection.dbapi_connection
    pooled.detach()  # its own session, closed for real when the lease ends
    try:
        idle, interval, count = KEEPALIVE
        pooled.exec_driver_sql(f"SET tcp_keepalives_idle = {idle}")
        pooled.exec_driver_sql(f"SET tcp_keepalives_interval = {interval}")
        pooled.exec_driver_sql(f"SET tcp_keepalives_count = {count}")
        key = _key_in(pooled, name)
        got = pooled.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        pooled.commit()
    except BaseException:
        _close(pooled, raw)
        raise
    if not got:
        _close(pooled, raw)
        return None
    return _SessionLock(pooled, key)


def _close(connection: Connection, raw: Any) -> None:
    """Close a detached connection, and its driver's for sure: SQLAlchemy's close of a
    session that failed can drop the driver's connection unclosed (a ResourceWarning when
    it is collected, in whatever runs then)."""
    with contextlib.suppress(Exception):
        connection.close()
    with contextlib.suppress(Exception):
        if raw is not None:
            raw.close()


def _key_in(connection: Connection, name: str) -> int:
    """The advisory lock key of ``name`` in the connection's database and schema."""
    schema = connection.scalar(text("SELECT current_database() || '.' || current_schema()"))
    return _key(f"{schema}:{name}")


def _lock_folder(engine: Engine) -> Path | None:
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database).expanduser()
    return path.with_name(path.name + ".leases")


def _file_name(name: str) -> str:
    digest = hashlib.blake2b(name.encode(), digest_size=6).hexdigest()
    return f"{_SAFE.sub('_', name)[:80]}-{digest}.lock"


def _key(name: str) -> int:
    """A signed 64-bit advisory lock key for a name."""
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


class Keeper:
    """Calls ``beat`` every ``interval`` seconds in a thread of its own until stopped.

    What a lease's holder runs while it holds it: the heartbeat is written however
    long a batch, a rate limit or a retry makes the holder wait. ``lost`` is set
    when ``beat`` reports (returns False) that the lease is no longer this process's.
    """

    def __init__(
        self, beat: Callable[[], bool], *, interval: float = HEARTBEAT_SECONDS, name: str = ""
    ) -> None:
        self._beat = beat
        self._interval = interval
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"mailer-heartbeat-{name}", daemon=True
        )

    def __enter__(self) -> Keeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if not self._beat():
                    self.lost.set()
            except Exception:  # a database that is away for a moment: try again next time
                log.warning("could not write the heartbeat", exc_info=True)
