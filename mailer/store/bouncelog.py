"""The bounce mailbox's log: every message read from it, once, and what it was taken for.

One row per message (migration 0008), unique on (``mailbox``, ``uid``): the
mailbox as the URL names it without the password (or the Maildir's path), and the
message's id in it (an IMAP ``UIDVALIDITY:UID``, a POP3 UIDL, a Maildir file's
unique name). ``message_key`` is its Message-ID (or, without one, a hash of its
bytes): the same message delivered twice, or met again under a new UID after the
server renumbered the folder, is known by it.

A row is written in the transaction that applies what the message says
(:func:`mailer.events.bounces.fetch.fetch_bounces`), so a message is either
processed and recorded, or neither: a crash reprocesses nothing and skips
nothing. ``handled`` says where it goes on the server afterwards: bounces,
complaints and unsubscribe mails to the processed folder (or away), the rest to
the other folder (or left where it is).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Connection, Index, String, Text, UniqueConstraint, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from mailer.store.schema import Base, BigId, UTCDateTime

__all__ = ["BounceMessageRow", "Recorded", "known_keys", "record", "recorded"]

_CHUNK = 500


class BounceMessageRow(Base):
    """One message read from the bounce mailbox, and what it was taken for."""

    __tablename__ = "bounce_messages"
    __table_args__ = (UniqueConstraint("mailbox", "uid"), Index(None, "message_key"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(300))
    uid: Mapped[str] = mapped_column(String(200))
    message_key: Mapped[str] = mapped_column(String(300))
    # bounce, soft_bounce, complaint, unsubscribe, unknown_address, duplicate, other
    outcome: Mapped[str] = mapped_column(String(20))
    handled: Mapped[bool] = mapped_column(Boolean)
    # One line for people: who it was from, its subject, what it said and did.
    summary: Mapped[str] = mapped_column(Text, default="")
    processed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True, slots=True)
class Recorded:
    """A message already processed: what it was taken for, and where it goes on the server."""

    outcome: str
    handled: bool


_B = BounceMessageRow


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[start : start + _CHUNK] for start in range(0, len(values), _CHUNK)]


def recorded(connection: Connection, mailbox: str, uids: Sequence[str]) -> dict[str, Recorded]:
    """Which of these messages of the mailbox were processed already, by uid."""
    found: dict[str, Recorded] = {}
    for chunk in _chunks(uids):
        query = select(_B.uid, _B.outcome, _B.handled).where(
            _B.mailbox == mailbox, _B.uid.in_(chunk)
        )
        found.update(
            (uid, Recorded(outcome, handled)) for uid, outcome, handled in connection.execute(query)
        )
    return found


def known_keys(connection: Connection, keys: Sequence[str]) -> set[str]:
    """Which of these message keys (Message-IDs) belong to a message processed already."""
    found: set[str] = set()
    for chunk in _chunks(sorted(set(keys))):
        found.update(connection.scalars(select(_B.message_key).where(_B.message_key.in_(chunk))))
    return found


def record(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Record processed messages (keys: mailbox, uid, message_key, outcome, handled, summary,
    processed_at). Plain INSERT: a message another process recorded meanwhile fails the
    transaction, which is then run again and finds it recorded."""
    if rows:
        connection.execute(insert(_B), list(rows))
