"""The deliver stage: an issue to its audience, batch by batch, recorded in the send ledger.

One send, in order (:class:`SendRun` and :func:`run_send`):

1. **Take the lease** on the issue's send (one process at a time) and **settle**
   what a process that died mid-send left ``in_flight``: through the outbox, a
   message was written iff its ``.eml`` file exists (files are written
   atomically); through SMTP or SendGrid, nobody can tell, so the rows become
   ``unknown`` and are not resent until reconciled (SendGrid's events, see
   :mod:`mailer.events.reconcile`) or resolved by the operator (``--resolve-unknown``).
2. **Render** each variant present in the audience once.
3. **Cut the audience into shares** (:mod:`mailer.store.shares`), ranges of member
   ids that each sending process takes one at a time: this process's children, and
   on PostgreSQL other machines running ``mailer send`` of the same issue, which
   join the send instead of being refused.
4. For each batch of members of one variant in a share (:func:`mailer.audience.batches`):
   **claim** them in the ledger (only those still active and not yet sent), hand
   the batch to the transport, **record** what it said. The next batch is
   prepared while the transport is busy with the current one.
5. **Stop** early, after recording what was handed over, when asked to (SIGTERM,
   SIGINT) or when a whole batch failed for a reason that is not the recipients'
   (a wrong API key, a server that is down): :class:`SendStopped`.

Per-recipient values (name, links with signed tokens) go into the variant's
placeholders; the transport fills them (SendGrid substitutions, or locally for SMTP
and the outbox). With MAILER_BOUNCE_ADDRESS, each recipient also gets its own
envelope sender and a ``mailto:`` unsubscribe address (:mod:`mailer.verp`).
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from email.utils import make_msgid
from pathlib import Path
from typing import Any, Literal

from mailer.audience.plan import (
    Addressee,
    Done,
    Idle,
    Pending,
    ShareSpan,
    Walked,
    batches,
    members_by_variant,
)
from mailer.config import Newsletter, Settings
from mailer.errors import DeliveryError, SendRefused
from mailer.headersafety import header_safe
from mailer.issues.model import Issue
from mailer.mail import MAX_BATCH, Batch, Delivery, DeliveryState, Recipient
from mailer.render import variant_name
from mailer.render.variants import ordered_segments
from mailer.sending.personalise import Variant, Variants, archive_url
from mailer.store import SubscriberStore
from mailer.store.leases import Keeper
from mailer.store.ledger import Ledger, SendStatus, new_owner
from mailer.store.shares import Share
from mailer.tokens import TokenSigner
from mailer.transports import Transport
from mailer.transports.message import list_id
from mailer.transports.ratelimit import NOT_HANDED_OVER
from mailer.verp import VerpPurpose, verp_signer

__all__ = [
    "Resolution",
    "SendRun",
    "SendStopped",
    "SendSummary",
    "Settled",
    "VariantSummary",
    "ensure_sendable",
]

log = logging.getLogger(__name__)

TEST_PREFIX = "[TEST] "
MAX_REASONS = 5  # distinct failure reasons kept per variant, so a summary stays small
MAX_PROCESSES = 16
# With no share free to take while other processes send the rest, how long to wait
# before looking again (one of them may die, leaving its share to take over).
SHARE_WAIT_SECONDS = 0.1
# The garbage collector's thresholds while a send runs (see SendRun.run); Python's are
# (700, 10, 10).
SEND_GC_THRESHOLDS = (20_000, 50, 100)
Resolution = Literal["sent", "resend"]
Count = Literal["sent", "already_sent", "suppressed", "failed", "failed_before", "unknown"]
_COUNTS: tuple[Count, ...] = (
    "sent",
    "already_sent",
    "suppressed",
    "failed",
    "failed_before",
    "unknown",
)


# -- what a send reports ------------------------------------------------------------------


@dataclass
class VariantSummary:
    """One variant's part of a send: what happened to each member of its audience."""

    variant: str
    segments: tuple[str, ...] = ()
    sent: int = 0  # handed over in this run
    already_sent: int = 0  # skipped: sent before
    suppressed: int = 0  # skipped: left the list (unsubscribed, bounced...) during the send
    failed: int = 0  # in this run
    failed_before: int = 0  # skipped: refused for good in an earlier run, not retried
    unknown: int = 0  # handed over with no answer (this run or before): not resent
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def members(self) -> int:
        """Members counted, each in exactly one column."""
        return sum(int(getattr(self, count)) for count in _COUNTS)

    def add_reason(self, reason: str) -> None:
        if reason in self.reasons or len(self.reasons) < MAX_REASONS:
            self.reasons[reason] += 1
        else:
            self.reasons["(other reasons)"] += 1

    def add(self, other: VariantSummary) -> None:
        """Count another process's part of this variant in."""
        for count in _COUNTS:
            setattr(self, count, getattr(self, count) + getattr(other, count))
        for reason, times in other.reasons.items():
            for _ in range(times):
                self.add_reason(reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "segments": list(self.segments),
            "sent": self.sent,
            "skipped_already_sent": self.already_sent,
            "skipped_suppressed": self.suppressed,
            "failed": self.failed,
            "skipped_failed_before": self.failed_before,
            "unknown": self.unknown,
            "reasons": dict(self.reasons.most_common()),
        }


@dataclass(frozen=True)
class Settled:
    """What became of the rows a dead process left in_flight, and of unknown ones resolved."""

    sent: int = 0  # their .eml file exists
    resend: int = 0  # never handed over: sent again in this run
    unknown: int = 0  # may have gone out: left for reconciliation
    resolved: int = 0  # unknown rows the operator resolved with --resolve-unknown

    def __add__(self, other: Settled) -> Settled:
        return Settled(
            self.sent + other.sent,
            self.resend + other.resend,
            self.unknown + other.unknown,
            self.resolved + other.resolved,
        )


@dataclass
class SendSummary:
    """What a run of ``mailer send`` did, per variant."""

    issue: str
    transport: str
    variants: dict[str, VariantSummary] = field(default_factory=dict)
    settled: Settled = field(default_factory=Settled)
    stopped: str | None = None  # why the run ended early; None when it got through the list
    seconds: float = 0.0

    def variant(self, name: str, segments: tuple[str, ...] = ()) -> VariantSummary:
        found = self.variants.get(name)
        if found is None:
            found = self.variants[name] = VariantSummary(name, segments)
        return found

    def add(self, other: SendSummary) -> None:
        """Count another process's part of the send in (its variants, and what it settled)."""
        for name, part in other.variants.items():
            self.variant(name, part.segments).add(part)
        self.settled += other.settled

    def total(self, what: Count) -> int:
        """A count summed over the variants."""
        return sum(int(getattr(v, what)) for v in self.variants.values())

    @property
    def complete(self) -> bool:
        """Everyone in the audience has been handed the issue (or refused for good)."""
        return self.stopped is None and self.total("unknown") == 0

    def to_json(self) -> dict[str, Any]:
        totals = _COUNTS
        return {
            "issue": self.issue,
            "transport": self.transport,
            "complete": self.complete,
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
            "totals": {name: self.total(name) for name in totals},
            "interrupted_before": {
                "sent": self.settled.sent,
                "resent": self.settled.resend,
                "unknown": self.settled.unknown,
                "resolved": self.settled.resolved,
            },
            "variants": [v.to_json() for v in self.variants.values()],
        }


class SendStopped(DeliveryError):
    """The send stopped because a whole batch failed; what was done is in ``summary``."""

    def __init__(self, message: str, summary: SendSummary) -> None:
        self.summary = summary
        super().__init__(message)


def _message_ids(members: list[Addressee], recipients: list[Recipient]) -> dict[int, str]:
    """Subscriber id -> the Message-ID chosen for them, where one was."""
    return {
        member.id: recipient.message_id
        for member, recipient in zip(members, recipients, strict=True)
        if recipient.message_id
    }


# -- settling an interrupted send ---------------------------------------------------------------


def settle_interrupted(
    ledger: Ledger,
    issue: str,
    previous_transport: str | None,
    outbox_dir: Path,
    span: tuple[int, int] | None = None,
) -> Settled:
    """Resolve the rows a dead process left in_flight (call holding the lease, or the share
    of the audience whose member ids ``span`` covers).

    An outbox send is settled from the folder it wrote to, which ``outbox_dir`` is
    (the ledger records it): never from another process's own folder.
    """
    rows = ledger.in_flight(issue, span)
    if not rows:
        return Settled()
    if previous_transport == "outbox":
        from mailer.transports.outbox import file_name

        if not outbox_dir.is_dir():
            raise SendRefused(
                f"the interrupted send of {issue} wrote its messages to {outbox_dir}, which "
                f"this process cannot see, so it cannot tell which of its {len(rows)} messages "
                "in hand were written. Run `mailer send` where that folder is (same "
                "MAILER_OUTBOX_DIR, same machine)"
            )
        folder = outbox_dir / issue
        _remove_partial_files(folder)
        written = [row.delivery_id for row in rows if (folder / file_name(row.email)).is_file()]
        unwritten = [row.delivery_id for row in rows if row.delivery_id not in set(written)]
        ledger.settle(sent=written, unsent=unwritten)
        log.info(
            "settled interrupted outbox deliveries: issue=%s written=%d unwritten=%d",
            issue,
            len(written),
            len(unwritten),
        )
        return Settled(sent=len(written), resend=len(unwritten))
    where = (
        "SendGrid's events (the webhook, or --reconcile EVENTS.json)"
        if previous_transport == "sendgrid"
        else "the SMTP relay's log"
    )
    reason = (
        f"the send was interrupted while this was being handed to {previous_transport}: it may "
        f"have gone out. Check {where}, then settle it with "
        "`mailer send ISSUE --resolve-unknown=sent|resend`"
    )
    ledger.settle(unknown=[row.delivery_id for row in rows], unknown_reason=reason)
    log.info("interrupted deliveries left unknown: issue=%s count=%d", issue, len(rows))
    return Settled(unknown=len(rows))


def _remove_partial_files(folder: Path) -> None:
    """Temporary files of writes a kill cut short: never a message, only clutter."""
    if folder.is_dir():
        for partial in folder.glob(".*.tmp"):
            partial.unlink(missing_ok=True)


# -- the send ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """After each batch: members dealt with so far in this run, and how."""

    done: int
    sent: int
    failed: int
    unknown: int
    suppressed: int


@dataclass(frozen=True)
class _Prepared:
    """A batch's members and their recipients, not yet claimed."""

    variant: Variant
    members: list[Addressee]
    recipients: list[Recipient]


@dataclass
class _Claimed:
    """A batch whose members are claimed in the ledger, ready for the transport."""

    name: str
    batch: Batch | None  # until handed over
    delivery_ids: list[int]
    shares: frozenset[int] = frozenset()  # the shares of the audience its members are in
    future: Future[list[Delivery]] | None = None  # set once handed to the worker thread

    def answer(self) -> list[Delivery]:
        """What the transport said of each member, once it has (waits until then)."""
        assert self.future is not None, "not handed over yet"
        return self.future.result()

    def outcomes(self) -> list[tuple[int, Delivery]]:
        """(delivery row id, what the transport said), for the ledger."""
        return list(zip(self.delivery_ids, self.answer(), strict=True))


@dataclass
class _Shares:
    """The shares a sending process holds, and where each stands."""

    held: dict[int, Share] = field(default_factory=dict)
    unrecorded: Counter[int] = field(default_factory=Counter)  # batches claimed, not recorded
    ended: set[int] = field(default_factory=set)  # every batch of it claimed

    def finished(self) -> list[Share]:
        """Shares ended whose every batch is recorded: done (and no longer held)."""
        ready = [i for i in self.ended if not self.unrecorded[i]]
        for share_id in ready:
            self.ended.discard(share_id)
        return [self.held.pop(share_id) for share_id in ready]


@dataclass
class SendRun:
    """One run of sending an issue to its audience: :meth:`start`, then :meth:`run`.

    The transport is the caller's: it is opened and closed outside, and only the
    worker thread calls its ``send``.
    """

    issue: Issue
    newsletter: Newsletter
    settings: Settings
    store: SubscriberStore
    ledger: Ledger
    transport: Transport
    signer: TokenSigner
    batch_size: int = MAX_BATCH
    processes: int = 1  # more: the audience split between processes (mailer.sending.parallel)
    owner: str = field(default_factory=new_owner)
    # The `mailer send` this process is part of (its children have owners of their own).
    sender: str = ""
    summary: SendSummary = field(init=False)
    _variants: Variants = field(init=False)
    _started: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be from 1 to {MAX_BATCH}")
        if not 1 <= self.processes <= MAX_PROCESSES:
            raise ValueError(f"processes must be from 1 to {MAX_PROCESSES}")
        self.summary = SendSummary(self.issue.slug, self.transport.name)
        self.sender = self.sender or self.owner
        self._written_to = self.settings.outbox_dir
        self._variants = Variants(
            self.issue, self.newsletter, archive_url(self.settings, self.issue)
        )
        self._list_id = list_id(self.newsletter.name, self.newsletter.list_id)
        self._verp = verp_signer(self.settings)
        # SMTP: each Message-ID chosen before the claim, so the ledger keeps it even when
        # the process dies between handing the message over and hearing back.
        self._msgid_domain = (
            str(self.newsletter.sender.email).rpartition("@")[2]
            if self.transport.name == "smtp"
            else None
        )

    def start(self, *, resolve_unknown: Resolution | None = None) -> Settled:
        """Take the lease, apply the operator's resolution of unknown rows, settle an interrupted send.

        The resolution applies to rows that were unknown before this run: rows an
        interrupted send left in flight become unknown only now, and are reported
        before anyone decides about them.
        """
        self._started = time.monotonic()
        slug = self.issue.slug
        outbox = self.settings.outbox_dir
        here = str(outbox.resolve()) if self.transport.name == "outbox" else ""
        previous = self.ledger.acquire(slug, self.transport.name, self.owner, outbox_dir=here)
        try:
            resolved = self.ledger.resolve_unknown(slug, resolve_unknown) if resolve_unknown else 0
            self._written_to = Path(previous.outbox_dir) if previous.outbox_dir else outbox
            if previous.joined:  # others send this run: each share is settled as it is taken
                settled = Settled()
            else:
                settled = settle_interrupted(
                    self.ledger, slug, previous.transport, self._written_to
                )
                self.ledger.shares.open(slug, self.batch_size)
        except BaseException:
            self.ledger.release(slug, self.owner, SendStatus.stopped)
            raise
        self.summary.settled = Settled(settled.sent, settled.resend, settled.unknown, resolved)
        return self.summary.settled

    def run(
        self,
        *,
        keys: Iterable[frozenset[str]] = (),
        audience: Mapping[frozenset[str], int] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> SendSummary:
        """Send to everyone who still needs the issue; ``keys`` are compiled up front.

        ``audience``: active members per variant key when the send was planned (the
        caller's :func:`~mailer.audience.plan.plan`; walked here when not given). Whoever
        leaves the list before their batch is read is counted as suppressed at the end, so
        that every member of it is in one column of the summary.

        Returns the summary; raises :class:`SendStopped` when a whole batch failed.
        Always leaves the lease released and the ledger up to date.
        """
        status = SendStatus.stopped
        # What exists now (the compiled variants, every module) lives through the send:
        # frozen, the garbage collector stops walking it again and again as each batch
        # allocates, which took a fifth of a send's time. And a batch allocates some ten
        # thousand objects (recipients, their values, personalizations): at Python's
        # threshold of 700 the collector ran a dozen times a batch, scanning the batch in
        # hand each time (a tenth of a send's CPU). What a send allocates is freed by
        # reference counting, not by the collector, so collecting less often costs no memory.
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(*SEND_GC_THRESHOLDS)
        slug = self.issue.slug
        keeper = Keeper(lambda: self.ledger.heartbeat(slug, self.owner), name=slug)

        def stop() -> bool:  # asked to, or the lease is no longer this process's
            return should_stop() or keeper.lost.is_set()

        if audience is None:
            audience = members_by_variant(self.store, self.issue, self.newsletter)
        planned = {variant_name(key, self.newsletter): count for key, count in audience.items()}
        try:
            with keeper:
                self._variants.prepare(keys)  # before any fork: compiled once for every process
                if self.processes == 1:
                    failure = self.send_batches(on_progress, stop)
                else:
                    from mailer.sending.parallel import send_in_processes

                    failure = send_in_processes(self, on_progress, stop)
            if failure is not None:
                self.summary.stopped = failure
                raise SendStopped(_stopped_message(failure, self.summary), self.summary)
            if self.summary.stopped is None:
                status = SendStatus.finished
                if self.ledger.shares.senders(slug) <= {self.sender}:  # nobody else took part
                    self._count_leavers(planned)
            return self.summary
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            self.summary.seconds = time.monotonic() - self._started
            self.ledger.release(self.issue.slug, self.owner, status)

    # Up to the transport's ``batches_in_flight`` batches are with it at once, each in a
    # worker thread, while the next is built here: the CPU and the provider work at the
    # same time, and a provider's round trip is not waited for batch after batch. Each
    # batch is claimed in the ledger (committed) before it is handed over; the batches
    # answered since are recorded in the same transaction as the next claim. After a
    # batch failed as a whole, or when asked to stop, nothing more is claimed: the
    # batches in flight are waited for and recorded, so none is left in_flight, and the
    # shares not done are given back for another process to finish.
    #
    # Shares follow one another without a pause: the next is taken while the last one's
    # batches are still with the transport, and a share is marked done once every batch
    # of it is recorded.
    def send_batches(
        self,
        on_progress: Callable[[Progress], None] | None,
        should_stop: Callable[[], bool],
    ) -> str | None:
        """Take share after share of the audience; claim, hand over and record its batches."""
        slots = max(1, self.transport.batches_in_flight)
        in_flight: list[_Claimed] = []  # with the transport
        answered: list[_Claimed] = []  # answered, not yet recorded
        shares = _Shares()
        worker = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="mailer-send")
        try:
            work_to_do = batches(
                self.store,
                self.issue,
                self.newsletter,
                batch_size=self.batch_size,
                shares=self._take_shares(shares),
            )
            for work in work_to_do:
                if should_stop():
                    self.summary.stopped = "asked to stop"
                    break
                if isinstance(work, Idle):  # others send the rest: record, then look again
                    answered += _answered(in_flight, wait=True, every=True)
                    failure = self._record(answered, shares, on_progress)
                    answered = []
                    if failure is not None:
                        return failure
                    _pause(SHARE_WAIT_SECONDS, should_stop)
                    continue
                if isinstance(work, Walked):
                    shares.ended.add(work.share)
                    self._finish(shares)
                    continue
                if isinstance(work, Done):
                    self._count_done(work)
                    continue
                prepared = self._prepare(work)
                answered += _answered(in_flight, wait=len(in_flight) >= slots)
                if any(batch_failure(handed.answer()) for handed in answered):
                    break  # recorded below, with the batches still in flight
                if should_stop():  # asked while the batches before were with the transport
                    self.summary.stopped = "asked to stop"
                    break  # nothing more is claimed: the batches in hand are recorded below
                ready = self._claim(prepared, work.shares, recording=answered)
                recorded, answered = answered, []
                for handed in recorded:
                    self._count(handed, on_progress, shares)
                self._finish(shares)
                if ready is not None:
                    ready.future = worker.submit(self._hand_over(ready))
                    in_flight.append(ready)
                    shares.unrecorded.update(ready.shares)
            answered += _answered(in_flight, wait=True, every=True)
            failure = self._record(answered, shares, on_progress)
            answered = []
            return failure
        finally:
            if answered or in_flight:  # the send ends on an error
                self._leave([*answered, *in_flight])
            worker.shutdown(wait=True, cancel_futures=True)
            self._give_back(shares)

    def _take_shares(self, shares: _Shares) -> Iterator[ShareSpan | None]:
        """Share after share of the audience, taken for this process; None while none is
        free to take but others are still sending some."""
        slug = self.issue.slug
        while True:
            share = self.ledger.shares.take(slug, self.owner, self.sender)
            if share is None:
                return
            if share is False:
                yield None
                continue
            assert isinstance(share, Share)
            shares.held[share.id] = share
            if share.previous_owner:  # a process died (or stopped) with it: settle its rows
                self.summary.settled += settle_interrupted(
                    self.ledger, slug, self.transport.name, self._written_to, share.span
                )
            yield share.id, share.span

    def _record(
        self,
        answered: list[_Claimed],
        shares: _Shares,
        on_progress: Callable[[Progress], None] | None,
    ) -> str | None:
        """Record answered batches on their own (no claim to go with them); the failure
        that stops the send, if any."""
        if answered:
            outcomes = [outcome for handed in answered for outcome in handed.outcomes()]
            self.ledger.record(self.issue.slug, self.owner, outcomes)
        failures = [self._count(handed, on_progress, shares) for handed in answered]
        self._finish(shares)
        return next((failure for failure in failures if failure), None)

    def _finish(self, shares: _Shares) -> None:
        """Mark done the shares whose every batch is recorded."""
        for share in shares.finished():
            self.ledger.shares.done(share, self.owner)

    def _give_back(self, shares: _Shares) -> None:
        """Shares this process stops before finishing: open again for another."""
        for share in list(shares.held.values()):
            try:
                self.ledger.shares.give_back(share, self.owner)
            except Exception:  # the error that ended the send is the one to report
                log.exception("could not give share %d back: it is taken over later", share.id)
        shares.held.clear()

    def _hand_over(self, claimed: _Claimed) -> Callable[[], list[Delivery]]:
        """The transport's work on a claimed batch that needs no answer (building its request)
        done here; what is left, to run in a worker thread. The batch itself is let go: with
        several batches in flight, only their requests stay in memory."""
        batch, claimed.batch = claimed.batch, None
        assert batch is not None, "handed over twice"
        try:
            return self.transport.prepare(batch)
        except BaseException:  # nothing was handed over: the members are free to be sent
            self.ledger.settle(unsent=claimed.delivery_ids)
            raise

    def _leave(self, handed: list[_Claimed]) -> None:
        """The batches in hand when an error ends the send: freed to be sent next time if the
        transport never got them, else recorded if that can be done (if not, the next send
        settles them as an interrupted one)."""
        cancelled = [batch.future is not None and batch.future.cancel() for batch in handed]
        unsent = [batch for batch, never in zip(handed, cancelled, strict=True) if never]
        started = [batch for batch, never in zip(handed, cancelled, strict=True) if not never]
        if unsent:
            self.ledger.settle(unsent=[i for batch in unsent for i in batch.delivery_ids])
        try:
            outcomes = [outcome for batch in started for outcome in batch.outcomes()]
            self.ledger.record(self.issue.slug, self.owner, outcomes)
        except Exception:  # the error that ended the send is the one to report
            log.exception("could not record the last batches: the next send settles them")

    def _prepare(self, work: Pending) -> _Prepared:
        """A batch's members with their recipients, built before they are claimed: nearly
        everyone ``batches`` yields is claimed, and building takes longer than claiming."""
        variant = self._variants.get(work.key)
        members = work.addressees
        tokens = self.signer.links_of([(member.id, member.link_version) for member in members])
        recipients = [
            self._recipient(member, variant, unsubscribe, preferences)
            for member, (unsubscribe, preferences) in zip(members, tokens, strict=True)
        ]
        return _Prepared(variant, members, recipients)

    def _claim(
        self, prepared: _Prepared, shares: frozenset[int], *, recording: list[_Claimed]
    ) -> _Claimed | None:
        """Record the batches the transport answered, claim the next batch's members in the
        ledger (one transaction, committed) and build the transport's Batch of them."""
        variant, members = prepared.variant, prepared.members
        claim = self.ledger.claim(
            self.issue.slug,
            variant.name,
            [member.id for member in members],
            self.owner,
            recording=[outcome for handed in recording for outcome in handed.outcomes()],
            message_ids=_message_ids(members, prepared.recipients) if self._msgid_domain else None,
            shares=shares,
        )
        counts = self.summary.variant(variant.name, variant.compiled.segments)
        counts.suppressed += len(claim.inactive)
        counts.already_sent += len(claim.already)
        claimed = claim.claimed
        kept = [
            (claimed[member.id], recipient)
            for member, recipient in zip(members, prepared.recipients, strict=True)
            if member.id in claimed
        ]
        if not kept:
            return None
        batch = Batch(
            issue=self.issue.slug,
            sender=self.newsletter.sender,
            content=variant.content,
            list_id=self._list_id,
            recipients=[recipient for _, recipient in kept],
        )
        return _Claimed(
            variant.name, batch, [delivery_id for delivery_id, _ in kept], shares=shares
        )

    def _recipient(
        self, subscriber: Addressee, variant: Variant, unsubscribe: str, preferences: str
    ) -> Recipient:
        """A member's Recipient, given their two link tokens (as in
        :func:`mailer.sending.personalise.links`)."""
        base, slug, verp = self.settings.base_url, self.issue.slug, self._verp
        unsubscribe_url = f"{base}/unsubscribe/{unsubscribe}"
        mailto = return_path = None
        if verp is not None:
            mailto = verp.unsubscribe_mailto(subscriber.id, slug, subscriber.email, test=False)
            return_path = verp.address(VerpPurpose.bounce, subscriber.id, slug, subscriber.email)
        return Recipient.trusted(
            email=subscriber.email,
            name=header_safe(subscriber.name),
            values=variant.values_for(
                subscriber, unsubscribe_url, f"{base}/preferences/{preferences}"
            ),
            unsubscribe_url=unsubscribe_url,
            custom_args={"issue": slug, "subscriber": str(subscriber.id)},
            unsubscribe_mailto=mailto,
            return_path=return_path,
            message_id=make_msgid(domain=self._msgid_domain) if self._msgid_domain else None,
        )

    def _count(
        self,
        handed: _Claimed,
        on_progress: Callable[[Progress], None] | None,
        shares: _Shares,
    ) -> str | None:
        """Count a recorded batch in the summary; the failure that stops the send, if any."""
        shares.unrecorded.subtract(handed.shares)
        deliveries = handed.answer()
        variant = self.summary.variant(handed.name)
        counts = Counter(d.state for d in deliveries)
        if any(d.error == NOT_HANDED_OVER for d in deliveries):
            self.summary.stopped = "asked to stop"
        variant.sent += counts[DeliveryState.sent]
        variant.failed += counts[DeliveryState.failed]
        variant.unknown += counts[DeliveryState.unknown]
        for delivery in deliveries:
            if delivery.state != "sent":
                variant.add_reason(delivery.error or delivery.state)
        log.info(
            "batch handed over: issue=%s variant=%s recipients=%d sent=%d failed=%d unknown=%d",
            self.issue.slug,
            handed.name,
            len(deliveries),
            counts[DeliveryState.sent],
            counts[DeliveryState.failed],
            counts[DeliveryState.unknown],
        )
        if on_progress is not None:
            on_progress(self._progress())
        return batch_failure(deliveries)

    def _count_leavers(self, planned: dict[str, int]) -> None:
        """Members of the audience who left the list before their batch was read: suppressed.

        The pages of the audience are read as the send goes, and someone who unsubscribed
        (or bounced, or was forgotten) before their page was read is on none of them.
        """
        for name, count in planned.items():
            variant = self.summary.variants.get(name)
            left = count - (variant.members if variant is not None else 0)
            if left > 0:
                self.summary.variant(name).suppressed += left
                log.info(
                    "left the list during the send: issue=%s variant=%s count=%d",
                    self.issue.slug,
                    name,
                    left,
                )

    def _count_done(self, done: Done) -> None:
        variant = self.summary.variant(
            variant_name(done.key, self.newsletter), ordered_segments(done.key, self.newsletter)
        )
        if done.state == DeliveryState.sent:
            variant.already_sent += done.count
        elif done.state == DeliveryState.unknown:
            variant.unknown += done.count
        else:
            variant.failed_before += done.count

    def _progress(self) -> Progress:
        total = self.summary.total
        return Progress(
            done=total("sent") + total("failed") + total("unknown") + total("suppressed"),
            sent=total("sent"),
            failed=total("failed"),
            unknown=total("unknown"),
            suppressed=total("suppressed"),
        )


def _pause(seconds: float, should_stop: Callable[[], bool]) -> None:
    """Sleep up to ``seconds``, waking early when asked to stop."""
    deadline = time.monotonic() + seconds
    while not should_stop() and time.monotonic() < deadline:
        time.sleep(0.05)


def _answered(in_flight: list[_Claimed], *, wait: bool, every: bool = False) -> list[_Claimed]:
    """Take the batches the transport has answered out of ``in_flight``; with ``wait``, wait
    for one first (``every``: for all of them)."""
    futures = [handed.future for handed in in_flight if handed.future is not None]
    if wait and futures:
        futures_wait(futures, return_when=ALL_COMPLETED if every else FIRST_COMPLETED)
    done = [(handed, handed.future is not None and handed.future.done()) for handed in in_flight]
    in_flight[:] = [handed for handed, finished in done if not finished]
    return [handed for handed, finished in done if finished]


def batch_failure(deliveries: Sequence[Delivery]) -> str | None:
    """The reason, when every delivery of a batch failed for one and the same reason that is
    not about an address (a wrong key, an unreachable server): sending on would fail too.
    A batch left unsent because the send was asked to stop is no failure."""
    if not deliveries or any(d.state != "failed" or d.permanent for d in deliveries):
        return None
    reasons = {d.error or "" for d in deliveries}
    reason = reasons.pop() if len(reasons) == 1 else None
    return None if reason == NOT_HANDED_OVER else reason


def _stopped_message(reason: str, summary: SendSummary) -> str:
    return (
        f"the send of {summary.issue} stopped: a whole batch failed: {reason}\n"
        f"{summary.total('sent')} sent in this run before that. Fix the cause and run "
        "`mailer send` again: it carries on with those not yet sent."
    )


def ensure_sendable(issue: Issue) -> None:
    """Refuse an issue that is not ``ready``: drafts go out only with --test."""
    if issue.status != "ready":
        raise SendRefused(
            f"issue {issue.slug} is a {issue.status}: only an issue with `status: ready` is sent "
            "to the list. Change it in the file when it is checked and proofread, or send "
            "yourself a copy with --test EMAIL."
        )
