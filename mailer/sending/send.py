"""One issue to its audience, as ``mailer send ISSUE --yes`` does: shared by the CLI and the scheduler.

:func:`send_issue` is the whole send without a terminal: refuse an issue that is
not ready, plan the audience from the store and the send ledger, and, when anyone
still needs the issue, open the configured transport and run the send
(:func:`run_send`). ``mailer send`` calls :func:`run_send` itself, because it
asks and prints between the plan and the send; the scheduler calls
:func:`send_issue`. Either way the same :class:`~mailer.sending.run.SendRun` takes the
issue's lease, settles what an interrupted send left, and sends batch by batch,
recorded in the ledger, so nobody gets an issue twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING

from mailer.mail import MAX_BATCH

if TYPE_CHECKING:
    from mailer.audience.plan import Plan
    from mailer.config import Newsletter, Settings
    from mailer.issues.model import Issue
    from mailer.sending.run import Progress, Resolution, SendSummary
    from mailer.store import SubscriberStore
    from mailer.store.ledger import Ledger
    from mailer.tokens import TokenSigner
    from mailer.transports import Transport

__all__ = ["ProgressFactory", "has_work", "run_send", "send_issue"]

# Given the number of recipients this run will deal with, a context in which to call
# back after each batch (the CLI's progress bar; None for no progress).
ProgressFactory = Callable[[int], AbstractContextManager["Callable[[Progress], None] | None"]]


def _never() -> bool:
    return False


@contextmanager
def _no_progress(total: int) -> Iterator[None]:
    yield None


def has_work(audience: Plan, resolve_unknown: Resolution | None = None) -> bool:
    """Whether a send would hand anything over: members to send to, an interrupted send to
    settle, or unknown deliveries the operator asked to resolve."""
    if audience.to_send + audience.interrupted:
        return True
    return bool(resolve_unknown and audience.unknown)


def run_send(
    issue: Issue,
    newsletter: Newsletter,
    settings: Settings,
    store: SubscriberStore,
    ledger: Ledger,
    transport: Transport,
    signer: TokenSigner,
    audience: Plan,
    *,
    resolve_unknown: Resolution | None = None,
    batch_size: int = MAX_BATCH,
    should_stop: Callable[[], bool] = _never,
    progress: ProgressFactory = _no_progress,
) -> SendSummary:
    """Take the lease, settle an interrupted send, then send to everyone who still needs it.

    ``should_stop`` is asked before each batch (SIGTERM: the batch in hand is
    recorded, then the run ends with ``summary.stopped`` set). Raises
    :class:`~mailer.sending.run.SendStopped` when a whole batch failed, and
    :class:`~mailer.errors.SendRefused` when another process is sending the issue.
    """
    from mailer.sending.run import SendRun

    run = SendRun(
        issue,
        newsletter,
        settings,
        store,
        ledger,
        transport,
        signer,
        batch_size=batch_size,
        processes=settings.processes_for(audience.to_send + audience.interrupted),
    )
    settled = run.start(resolve_unknown=resolve_unknown)
    resent = settled.resolved if resolve_unknown == "resend" else 0
    total = audience.to_send + settled.resend + resent
    with progress(total) as advance:
        return run.run(
            keys=[v.key for v in audience.variants.values() if v.to_send],
            audience={v.key: v.audience for v in audience.variants.values()},
            on_progress=advance,
            should_stop=should_stop,
        )


def send_issue(
    issue: Issue,
    newsletter: Newsletter,
    settings: Settings,
    store: SubscriberStore,
    *,
    should_stop: Callable[[], bool] = _never,
    on_progress: Callable[[Progress], None] | None = None,
    transport: Transport | None = None,
    batch_size: int = MAX_BATCH,
) -> SendSummary:
    """``mailer send ISSUE --yes``, without a terminal: the summary of what happened.

    Refuses (:class:`~mailer.errors.SendRefused`) an issue that is not ready. When
    nobody needs the issue any more, opens no transport and returns a summary of
    the audience as the ledger has it. ``transport`` is for tests: by default the
    configured one is opened and closed here.
    """
    from mailer.audience.plan import plan
    from mailer.sending.personalise import link_signer
    from mailer.sending.run import ensure_sendable
    from mailer.store.ledger import Ledger
    from mailer.transports import open_transport

    ensure_sendable(issue)
    signer = link_signer(settings)
    ledger = Ledger(store.engine)
    audience = plan(store, issue, newsletter)
    if not has_work(audience):
        return _nothing_to_send(issue, audience, settings)
    opened: AbstractContextManager[Transport] = (
        nullcontext(transport) if transport is not None else open_transport(settings)
    )
    with opened as using:
        return run_send(
            issue,
            newsletter,
            settings,
            store,
            ledger,
            using,
            signer,
            audience,
            batch_size=batch_size,
            should_stop=should_stop,
            progress=lambda total: nullcontext(on_progress),
        )


def _nothing_to_send(issue: Issue, audience: Plan, settings: Settings) -> SendSummary:
    """A summary of a send that found everyone dealt with already."""
    from mailer.sending.run import SendSummary

    summary = SendSummary(issue.slug, str(settings.transport))
    for planned in audience.ordered():
        counts = summary.variant(planned.name)
        counts.already_sent += planned.sent
        counts.unknown += planned.unknown
        counts.failed_before += planned.failed
    return summary
