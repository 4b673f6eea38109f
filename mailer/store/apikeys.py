"""The members API's keys, and the answers kept for its idempotent retries.

A key is ``mlr_<id>_<secret>``: ``id`` finds the row, and only a SHA-256 of the
whole key is stored, so the database never holds a usable key (the secret is 32
random bytes: a fast hash is enough, there is nothing to guess). A key is shown
once, when it is made (``mailer api-keys create``). Revoking it sets
``revoked_at``; every request looks the key up again, so a revoked key stops
working at once.

An answer to a ``POST`` with an ``Idempotency-Key`` header is kept, with a hash of
the request, for :data:`IDEMPOTENCY_HOURS` hours: the same key and request get the
same answer again, without doing anything twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from mailer.errors import StoreError
from mailer.store.schema import Base, BigId, UTCDateTime
from mailer.store.transact import read, run_write

__all__ = [
    "ApiKey",
    "ApiKeyRow",
    "IdempotentAnswerRow",
    "Scope",
    "authenticate",
    "create_key",
    "keep_answer",
    "kept_answer",
    "list_keys",
    "revoke_key",
]

PREFIX = "mlr"
IDEMPOTENCY_HOURS = 24


class Scope(StrEnum):
    """What a key may do."""

    members_read = "members:read"
    members_write = "members:write"
    reports_read = "reports:read"


class ApiKeyRow(Base):
    """One API key: its name, scopes and the hash of the key."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(24), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class IdempotentAnswerRow(Base):
    """The answer to one POST made with an Idempotency-Key, kept for its retries."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("key_id", "idempotency_key"), Index(None, "created_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class ApiKey:
    """A key as listed: never the key itself."""

    id: int
    name: str
    scopes: frozenset[Scope]
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "scopes": sorted(self.scopes),
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


_K = ApiKeyRow
_I = IdempotentAnswerRow


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


_COLUMNS = (_K.id, _K.name, _K.scopes, _K.created_at, _K.last_used_at, _K.revoked_at, _K.key_hash)


def _to_key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        scopes=frozenset(Scope(s) for s in row.scopes.split()),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def create_key(engine: Engine, name: str, scopes: Iterable[Scope]) -> tuple[ApiKey, str]:
    """Make a key; returns it as listed and the key itself, which is shown only now."""
    name = name.strip()
    chosen = frozenset(scopes)
    if not name or len(name) > 100:
        raise StoreError("an API key needs a name of 1 to 100 characters, e.g. 'website'")
    if not chosen:
        raise StoreError("an API key needs at least one scope: " + ", ".join(Scope))
    public_id = secrets.token_hex(6)
    key = f"{PREFIX}_{public_id}_{secrets.token_urlsafe(32)}"

    def work(connection: Connection) -> ApiKey:
        if connection.scalar(select(_K.id).where(_K.name == name)) is not None:
            raise StoreError(f"there is already an API key named {name!r}: choose another name")
        connection.execute(
            insert(_K).values(
                public_id=public_id,
                name=name,
                key_hash=_hash(key),
                scopes=" ".join(sorted(chosen)),
                created_at=_now(),
            )
        )
        row = connection.execute(select(*_COLUMNS).where(_K.public_id == public_id)).one()
        return _to_key(row)

    try:
        return run_write(engine, work), key
    except IntegrityError as error:  # the same name at the same moment
        raise StoreError(f"the API key {name!r} could not be made: {error.orig}") from error


def list_keys(engine: Engine) -> list[ApiKey]:
    with read(engine) as connection:
        rows = connection.execute(select(*_COLUMNS).order_by(_K.created_at, _K.id)).all()
        return [_to_key(row) for row in rows]


def revoke_key(engine: Engine, name: str) -> ApiKey:
    """Revoke the key named ``name`` (again: no change); StoreError if there is none."""

    def work(connection: Connection) -> ApiKey:
        row = connection.execute(select(*_COLUMNS).where(_K.name == name)).first()
        if row is None:
            raise StoreError(
                f"there is no API key named {name!r}; `mailer api-keys list` lists them"
            )
        if row.revoked_at is None:
            connection.execute(update(_K).where(_K.id == row.id).values(revoked_at=_now()))
        return _to_key(connection.execute(select(*_COLUMNS).where(_K.id == row.id)).one())

    return run_write(engine, work)


def authenticate(engine: Engine, key: str) -> ApiKey | None:
    """The live key this is, its use recorded; None for a key that is not ours or revoked."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 12 or len(key) > 200:
        return None

    with read(engine) as connection:
        row = connection.execute(select(*_COLUMNS).where(_K.public_id == parts[1])).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, _hash(key)):
        return None
    when = _now()
    # Once a minute is enough for "last used": most requests only read (no write lock).
    if row.last_used_at is None or when - row.last_used_at > dt.timedelta(minutes=1):

        def note_use(connection: Connection) -> None:
            connection.execute(update(_K).where(_K.id == row.id).values(last_used_at=when))

        run_write(engine, note_use)
    return _to_key(row)


def kept_answer(engine: Engine, key_id: int, idempotency_key: str) -> tuple[str, int, str] | None:
    """(request hash, status, body) kept for this key's Idempotency-Key, if any."""
    since = _now() - dt.timedelta(hours=IDEMPOTENCY_HOURS)
    with read(engine) as connection:
        row = connection.execute(
            select(_I.request_hash, _I.status, _I.body).where(
                _I.key_id == key_id,
                _I.idempotency_key == idempotency_key,
                _I.created_at > since,
            )
        ).first()
    return None if row is None else (row[0], row[1], row[2])


def keep_answer(
    engine: Engine, key_id: int, idempotency_key: str, request_hash: str, status: int, body: str
) -> None:
    """Keep an answer for retries; when two raced, the first kept stays the answer."""
    when = _now()

    def work(connection: Connection) -> None:
        expired = when - dt.timedelta(hours=IDEMPOTENCY_HOURS)
        connection.execute(delete(_I).where(_I.created_at < expired))
        kept = connection.scalar(
            select(_I.id).where(_I.key_id == key_id, _I.idempotency_key == idempotency_key)
        )
        if kept is not None:
            return
        connection.execute(
            insert(_I).values(
                key_id=key_id,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                status=status,
                body=body,
                created_at=when,
            )
        )

    run_write(engine, work)
