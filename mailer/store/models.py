"""What the subscriber store hands out and takes in, free of SQLAlchemy.

* :class:`Subscriber` and :class:`SubscriberEvent` are read-only snapshots: the
  rest of mailer (audience, events, web) gets these, never a database row.
* :class:`MemberRecord` is one member as an import (or ``add``) describes them;
  a field left as ``None`` means "not given", so an upsert leaves it alone.
* :class:`ImportCounts` is what an import reports.

Plain dataclasses and enums, no pydantic: the command line loads this module to
build its options (``--status``), and ``mailer --help`` should stay quick.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple

# Column names read as another: the spellings spreadsheets use for our fields.
ALIASES = {
    "e_mail": "email",
    "email_address": "email",
    "e_mail_address": "email",
    "organization": "organisation",
    "tag": "tags",
}


class SubscriberStatus(StrEnum):
    """Where a member stands. Every status but ``active`` is sticky."""

    active = "active"
    pending = "pending"  # signed up, not yet confirmed
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"

    @property
    def sticky(self) -> bool:
        """Only an explicit, logged re-subscription moves a member out of a sticky status."""
        return self is not SubscriberStatus.active


class EventKind(StrEnum):
    """What happened to a subscriber, as kept in their history."""

    added = "added"
    updated = "updated"
    status = "status"  # moved to a sticky status (unsubscribed, bounced, ...)
    links_revoked = "links_revoked"  # every link sent before stopped working
    resubscribed = "resubscribed"  # explicitly back to active
    prior = "prior"  # recorded by the tool the list came from (opt-in, confirmation), at its time


@dataclass(frozen=True, slots=True)
class SubscriberEvent:
    """One entry in a subscriber's history."""

    at: dt.datetime
    kind: EventKind
    detail: str
    source: str
    status_from: SubscriberStatus | None = None
    status_to: SubscriberStatus | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind.value,
            "detail": self.detail,
            "source": self.source,
            "status_from": self.status_from.value if self.status_from else None,
            "status_to": self.status_to.value if self.status_to else None,
        }


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A member of the list as stored: the address is normalised, the rest as the editors wrote it."""

    id: int
    email: str
    name: str
    organisation: str
    region: str
    tags: tuple[str, ...]
    attributes: Mapping[str, str]
    status: SubscriberStatus
    status_changed_at: dt.datetime
    status_reason: str
    created_at: dt.datetime
    updated_at: dt.datetime
    link_version: int = 0
    """The version of the member's links; revoking them moves it on (see mailer.tokens)."""

    @property
    def first_name(self) -> str:
        """The ``first_name`` attribute if the list has one, else the first word of the name."""
        given = self.attributes.get("first_name", "").strip()
        if given:
            return given
        words = self.name.split()
        return words[0] if words else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "organisation": self.organisation,
            "region": self.region,
            "tags": list(self.tags),
            "attributes": dict(self.attributes),
            "status": self.status.value,
            "status_changed_at": self.status_changed_at.isoformat(),
            "status_reason": self.status_reason,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "link_version": self.link_version,
        }


class MemberRecord(NamedTuple):
    """One member as an import row or an ``add`` command gives them.

    ``email`` is already normalised (see :mod:`mailer.store.emails`). ``None`` in a
    profile field means the source did not give it, so an update keeps what is
    stored; an empty string clears it. In ``attributes``, ``None`` removes the key.
    ``status`` and the dates are used when the member is new, and an existing
    ``active`` member may be moved to a sticky status; nothing ever moves a
    member *out* of a sticky status here. ``history`` holds what the tool a list
    came from recorded, as (when, what): an opt-in, a confirmation. It goes into
    a new member's history, so that their consent can be shown later.

    A NamedTuple rather than a frozen dataclass: imports make 100,000 of these,
    and a tuple is several times cheaper to build.
    """

    email: str
    line: int = 0
    name: str | None = None
    organisation: str | None = None
    region: str | None = None
    tags: tuple[str, ...] | None = None
    attributes: Mapping[str, str | None] = MappingProxyType({})
    status: SubscriberStatus | None = None
    status_changed_at: dt.datetime | None = None
    status_reason: str | None = None
    created_at: dt.datetime | None = None
    history: tuple[tuple[dt.datetime, str], ...] = ()


class ImportFormat(StrEnum):
    """The formats ``import`` reads (see :mod:`mailer.store.importing`)."""

    auto = "auto"  # each file recognised by its columns
    csv = "csv"
    mailchimp = "mailchimp"
    listmonk = "listmonk"

    @property
    def label(self) -> str:
        """What the format is called in messages."""
        return {
            "auto": "recognised by its columns",
            "csv": "a members CSV",
            "mailchimp": "a Mailchimp export",
            "listmonk": "a listmonk CSV",
        }[self.value]


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """What an import did, row by row: every valid row is counted exactly once."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    suppressed: int = 0

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged + self.skipped + self.suppressed


def column_key(header: str) -> str:
    """A header cell as a column name: 'Member type' -> 'member_type', 'E-mail' -> 'email'."""
    key = re.sub(r"[^0-9a-z]+", "_", header.strip().lower()).strip("_")
    return ALIASES.get(key, key)
