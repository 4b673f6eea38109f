"""`mailer bounces fetch`: read the bounce mailbox once, apply what is new, exactly once.

One run (:func:`fetch_bounces`):

1. Open the mailbox (``MAILER_BOUNCE_MAILBOX``) and list its messages.
2. Messages already in the log (:mod:`mailer.store.bouncelog`) were processed by an
   earlier run: they are only put where they belong on the server, in case that
   run stopped before it could.
3. The rest, in batches of :data:`BATCH`: fetch them (left unread), read them
   (:mod:`~mailer.events.bounces.reading`), and in **one transaction** find whose
   they are (:mod:`~mailer.events.bounces.attribution`), apply their events with
   the webhook's rules (:func:`mailer.events.apply.apply_in`) and record each
   message in the log. Committed, then moved or deleted on the server.

A crash (even ``kill -9``) before a batch's commit leaves none of it applied or
recorded: the next run reads those messages again. After the commit, all of it
is applied and recorded: the next run only tidies them away. So nothing is lost
and nothing is applied twice; and a message met again under another id (same
Message-ID) is recorded as a duplicate, its events (keyed by member and issue)
counted once.

``dry_run`` reads and works everything out in a transaction that is rolled back,
and touches nothing on the server: what the listing shows is what a real run would
do now.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from mailer.config import Settings
from mailer.errors import ConfigError
from mailer.events.apply import apply_in
from mailer.events.bounces.attribution import Attributed, Lookups, attribute, tokens_in
from mailer.events.bounces.dsn import Outcome
from mailer.events.bounces.mailboxes import Mailbox, open_mailbox, parse_mailbox_url
from mailer.events.bounces.reading import Reading, ReadingKind, read_message
from mailer.store import SubscriberStore, bouncelog
from mailer.store.transact import read, rehearse, run_write
from mailer.verp import VerpSigner, verp_signer

__all__ = ["BATCH", "FetchReport", "Message", "fetch_bounces", "mailbox_url"]

log = logging.getLogger("mailer.bounces")

BATCH = 200  # messages read, applied and committed together
SOURCE_NAME = "bounce mailbox"  # members' history: who made the change

# What a message was taken for, by its first finding.
_OUTCOMES = {
    Outcome.hard: "bounce",
    Outcome.soft: "soft_bounce",
    Outcome.delayed: "soft_bounce",
    Outcome.complaint: "complaint",
    Outcome.unsubscribe: "unsubscribe",
}


@dataclass(frozen=True)
class Message:
    """One message of this run, for the listing: what it is, whose, and what it did."""

    id: str
    key: str
    sender: str
    subject: str
    kind: str  # dsn, arf, bounce, unsubscribe, auto_reply, other
    outcome: str  # bounce, soft_bounce, complaint, unsubscribe, unknown_address, duplicate, other
    member: str | None  # the member's address, when it is about one
    effect: str  # what it did to them, or why it was left alone
    handled: bool  # acted on (moved to the processed folder or deleted); else left alone

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "message_id": self.key,
            "from": self.sender,
            "subject": self.subject,
            "kind": self.kind,
            "outcome": self.outcome,
            "member": self.member,
            "effect": self.effect,
            "handled": self.handled,
        }


@dataclass
class FetchReport:
    """What one run of `mailer bounces fetch` found and did."""

    mailbox: str
    dry_run: bool = False
    in_mailbox: int = 0  # messages listed
    already_processed: int = 0  # by an earlier run: only tidied away
    messages: list[Message] = field(default_factory=list)  # new this run
    changes: Counter[str] = field(default_factory=Counter)  # members, by their new status
    stopped: str | None = None  # why the run ended before the last message
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(1 for message in self.messages if message.outcome == outcome)

    @property
    def status_changes(self) -> dict[str, int]:
        return dict(sorted(self.changes.items()))

    def to_json(self) -> dict[str, Any]:
        outcomes = ("bounce", "soft_bounce", "complaint", "unsubscribe", "unknown_address")
        return {
            "mailbox": self.mailbox,
            "dry_run": self.dry_run,
            "in_mailbox": self.in_mailbox,
            "already_processed": self.already_processed,
            "new": len(self.messages),
            "counts": {name: self.count(name) for name in (*outcomes, "duplicate", "other")},
            "status_changes": self.status_changes,
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
            "messages": [message.to_json() for message in self.messages],
        }


def fetch_bounces(
    settings: Settings,
    store: SubscriberStore,
    *,
    dry_run: bool = False,
    batch: int = BATCH,
    should_stop: Callable[[], bool] = lambda: False,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> FetchReport:
    """Read MAILER_BOUNCE_MAILBOX once (see the module docstring).

    Raises ConfigError when it is not set, BounceMailboxError when it cannot be read:
    what was committed before stays committed.
    """
    configured = mailbox_url(settings)
    if configured is None:
        raise ConfigError(
            "MAILER_BOUNCE_MAILBOX is not set: set it to the mailbox bounces arrive in, e.g. "
            "imaps://bounces%40news.example.org:PASSWORD@mail.example.org/INBOX "
            "(see docs/bounces.md)"
        )
    url = parse_mailbox_url(configured)
    ca_file = settings.bounce_ca_file
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"MAILER_BOUNCE_CA_FILE: {ca_file} is not a file")
    run = _Run(settings, store.engine, verp_signer(settings), dry_run, now)
    started = time.monotonic()
    with open_mailbox(url, ca_file=ca_file, timeout=settings.send_timeout) as mailbox:
        report = run.report = FetchReport(mailbox.identity, dry_run)
        try:
            run.through(mailbox, max(1, batch), should_stop)
        finally:
            report.seconds = time.monotonic() - started
    log.info(
        "bounce mailbox read: mailbox=%s new=%d processed_before=%d changes=%s dry_run=%s",
        report.mailbox,
        len(report.messages),
        report.already_processed,
        report.status_changes,
        dry_run,
    )
    return report


def mailbox_url(settings: Settings) -> str | None:
    """MAILER_BOUNCE_MAILBOX, or None when it is unset or blank."""
    if settings.bounce_mailbox is None:
        return None
    return settings.bounce_mailbox.get_secret_value().strip() or None


@dataclass
class _Run:
    settings: Settings
    engine: Engine
    verp: VerpSigner | None
    dry_run: bool
    now: Callable[[], dt.datetime]
    report: FetchReport = field(init=False)

    def through(self, mailbox: Mailbox, batch: int, should_stop: Callable[[], bool]) -> None:
        ids = mailbox.ids()
        self.report.in_mailbox = len(ids)
        with read(self.engine) as connection:
            done = bouncelog.recorded(connection, mailbox.identity, ids)
        self.report.already_processed = len(done)
        if not self.dry_run:
            self._tidy(mailbox, [(id_, record.handled) for id_, record in done.items()])
        new = [id_ for id_ in ids if id_ not in done]
        for start in range(0, len(new), batch):
            if should_stop():
                self.report.stopped = "asked to stop"
                return
            fetched = list(mailbox.fetch(new[start : start + batch]))
            readings = [(id_, read_message(raw)) for id_, raw in fetched]
            messages, changes = self._apply(mailbox.identity, readings)
            self.report.messages.extend(messages)
            self.report.changes.update(changes)
            if not self.dry_run:
                self._tidy(mailbox, [(m.id, m.handled) for m in messages])

    def _apply(
        self, mailbox: str, readings: Sequence[tuple[str, Reading]]
    ) -> tuple[list[Message], Counter[str]]:
        def work(connection: Connection) -> tuple[list[Message], Counter[str]]:
            return self._in_transaction(connection, mailbox, readings)

        if self.dry_run:
            return rehearse(self.engine, work)
        return run_write(self.engine, work)

    def _in_transaction(
        self, connection: Connection, mailbox: str, readings: Sequence[tuple[str, Reading]]
    ) -> tuple[list[Message], Counter[str]]:
        when = self.now()
        # Processed meanwhile by another run (two schedulers): theirs; and the same
        # message seen before under another id: a duplicate.
        done = bouncelog.recorded(connection, mailbox, [id_ for id_, _ in readings])
        readings = [(id_, reading) for id_, reading in readings if id_ not in done]
        seen = bouncelog.known_keys(connection, [reading.key for _, reading in readings])
        lookups = Lookups(
            connection, tokens_in(self.verp, (r for _, r in readings)) if self.verp else ()
        )
        attributed: list[tuple[str, Reading, Attributed | None]] = []
        batch_keys: set[str] = set()
        for id_, reading in readings:
            duplicate = reading.key in seen or reading.key in batch_keys
            batch_keys.add(reading.key)
            found = None if duplicate else attribute(reading, self.verp, lookups, when)
            attributed.append((id_, reading, found))
        events = [event for _, _, found in attributed if found for event in found.events]
        applied = apply_in(
            connection,
            events,
            soft_bounce_limit=self.settings.soft_bounce_limit,
            when=when,
            source=SOURCE_NAME,
        )
        messages = []
        claimed: set[str] = set()  # event keys of earlier messages of this batch
        for id_, reading, found in attributed:
            own = [] if found is None else [e.sg_event_id for e in found.events]
            logged = [None if key in claimed else applied.logged.get(key) for key in own]
            claimed.update(own)
            messages.append(_message(id_, reading, found, logged))
        bouncelog.record(
            connection,
            [
                {
                    "mailbox": mailbox,
                    "uid": message.id,
                    "message_key": message.key,
                    "outcome": message.outcome,
                    "handled": message.handled,
                    "summary": _summary(message)[:1000],
                    "processed_at": when,
                }
                for message in messages
            ],
        )
        return messages, applied.status_changes

    def _tidy(self, mailbox: Mailbox, messages: Sequence[tuple[str, bool]]) -> None:
        """Put processed messages where they belong: handled ones to the processed folder (or
        away), the others to the other folder (or left where they are, unread)."""
        handled = [id_ for id_, acted in messages if acted]
        others = [id_ for id_, acted in messages if not acted]
        folder = self.settings.bounce_processed_folder
        if handled:
            if folder is not None:
                mailbox.move(handled, folder)
            else:
                mailbox.delete(handled)
        mailbox.keep(others, self.settings.bounce_other_folder)


def _message(
    id_: str,
    reading: Reading,
    found: Attributed | None,
    logged: Sequence[tuple[int | None, str] | None],
) -> Message:
    """What one message was taken for. ``logged``: each of its events' (member, effect) as
    logged now, None for an event logged before (the same news again)."""
    base = {
        "id": id_,
        "key": reading.key,
        "sender": reading.sender,
        "subject": reading.subject,
        "kind": reading.kind.value,
    }
    if found is None:
        return Message(
            **base,
            outcome="duplicate",
            member=None,
            effect="already processed: a message with the same Message-ID was read before",
            handled=True,
        )
    if not reading.acts or (reading.kind is ReadingKind.unsubscribe and not found.events):
        why = reading.note
        if found.bad_token:
            why += "; its List-Unsubscribe address is not one mailer made for a member"
        return Message(
            **base, outcome="other", member=None, effect=f"left alone: {why}", handled=False
        )
    ours = [entry for entry in logged if entry is not None and entry[0] is not None]
    member = found.attribution.email if found.attribution else None
    if found.events and all(entry is None for entry in logged):
        return Message(
            **base,
            outcome="duplicate",
            member=member or found.events[0].email,
            effect="already counted: the same news for this member and issue came before",
            handled=True,
        )
    if not ours:
        address = next((f.address for f in reading.findings if f.address), None)
        what = f"{address} is not on the list" if address else "it names no address, and no member"
        if found.bad_token:
            what += "; its VERP address does not verify (forged, damaged, or a forgotten member)"
        return Message(**base, outcome="unknown_address", member=address, effect=what, handled=True)
    return Message(
        **base,
        outcome=_OUTCOMES[reading.findings[0].outcome],
        member=member or found.events[0].email,
        effect="; ".join(dict.fromkeys(effect for _, effect in ours)),
        handled=True,
    )


def _summary(message: Message) -> str:
    about = f" about {message.member}" if message.member else ""
    return f"{message.kind}{about} from {message.sender!r}, {message.subject!r}: {message.effect}"
