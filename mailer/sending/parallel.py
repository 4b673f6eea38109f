"""Sending in several processes: shares of the audience taken in turn, one transport each.

One Python process tops out at about one core (the GIL), and a large send is
CPU-bound: reading members, signing their links, writing SendGrid's JSON. With
``processes=N`` the parent (which holds the issue's lease, settled the ledger,
cut the audience into shares and compiled every variant) forks N children; each
takes share after share (:mod:`mailer.store.shares`), as other machines' senders
do, and sends it through its own transport and database connections exactly as
a single process would: claim a batch in the ledger, hand it over, record it.
Claims are per member, so the exactly-once guarantee is the ledger's, unchanged.

* Progress and each child's summary come back over a queue; the parent adds
  them up, and calls ``on_progress`` as one send would.
* Stopping (SIGTERM, or a whole batch failing in any child) reaches every child
  through a shared event: each records the batch in hand and ends.
* A child never outlives the parent: on Linux the kernel kills it when the
  parent dies (``PR_SET_PDEATHSIG``), so a ``kill -9`` of ``mailer send``
  leaves exactly what a single killed process leaves; elsewhere it checks
  before each batch that its parent is still there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import queue
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailer.errors import DeliveryError, MailerError
from mailer.store.ledger import new_owner
from mailer.transports import open_transport

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event, Lock

    from mailer.sending.run import Progress, SendRun, SendSummary

__all__ = ["send_in_processes"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class _Report:
    """What a child sends its parent: progress so far, or its end."""

    child: int
    progress: Progress | None = None
    summary: SendSummary | None = None
    failure: str | None = None  # a whole batch failed: the send stops
    error: MailerError | None = None  # the child failed (the database, a bug): raised here


def send_in_processes(
    run: SendRun,
    on_progress: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool],
) -> str | None:
    """Send ``run``'s audience from ``run.processes`` children; the failure that stopped it, if any.

    Adds the children's counts to ``run.summary`` and sets ``run.summary.stopped``
    when the send was asked to stop. A child that failed (its database, a bug) or
    died stops the others after their batch in hand; its error is raised here.
    """
    context = multiprocessing.get_context("fork")  # children share the compiled variants
    reports: multiprocessing.Queue[_Report] = context.Queue()
    stop = context.Event()
    writes = context.Lock()
    count = run.processes
    children = [
        context.Process(
            target=_child,
            args=(run, index, reports, stop, writes, os.getpid()),
            name=f"mailer-send-{index}",
        )
        for index in range(count)
    ]
    for child in children:
        child.start()
    latest: dict[int, Progress] = {}
    ended: dict[int, _Report] = {}
    try:
        while len(ended) < count:
            if should_stop() and not stop.is_set():
                stop.set()
                run.summary.stopped = "asked to stop"
            try:
                report = reports.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                _notice_lost_children(children, ended)
                continue
            if report.progress is not None:
                latest[report.child] = report.progress
                if on_progress is not None:
                    on_progress(_sum(latest.values()))
            else:
                ended[report.child] = report
                if report.failure or report.error:
                    stop.set()
    finally:
        stop.set()
        for child in children:
            child.join()
    return _outcome(run, ended.values())


def _notice_lost_children(
    children: Sequence[multiprocessing.process.BaseProcess], ended: dict[int, _Report]
) -> None:
    """A child that died without a word (killed, out of memory) ends the send."""
    for index, child in enumerate(children):
        if index not in ended and child.exitcode is not None:
            ended[index] = _Report(
                index,
                error=DeliveryError(
                    f"sending process {index} ended unexpectedly (exit status "
                    f"{child.exitcode}); run `mailer send` again to carry on"
                ),
            )


def _outcome(run: SendRun, reports: Iterable[_Report]) -> str | None:
    failure: str | None = None
    errors: list[MailerError] = []
    for report in sorted(reports, key=lambda r: r.child):
        if report.summary is not None:
            run.summary.add(report.summary)
        if report.error is not None:
            errors.append(report.error)
        failure = failure or report.failure
    if errors:
        raise errors[0]
    return failure


def _sum(parts: Iterable[Progress]) -> Progress:
    from mailer.sending.run import Progress

    items = list(parts)
    return Progress(
        done=sum(p.done for p in items),
        sent=sum(p.sent for p in items),
        failed=sum(p.failed for p in items),
        unknown=sum(p.unknown for p in items),
        suppressed=sum(p.suppressed for p in items),
    )


def _child(
    run: SendRun,
    index: int,
    reports: multiprocessing.Queue[_Report],
    stop: Event,
    writes: Lock,
    parent: int,
) -> None:
    """In the child: send shares of the audience until none is left, then report how it went."""
    from mailer.sending.run import Settled

    _die_with_parent()
    # SIGTERM and Ctrl-C reach the whole process group; the parent turns them into the
    # stop event, so that each child records the batch in hand before it ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.getppid() != parent:  # the parent died before the death signal was asked for
        os._exit(1)
    run.store.engine.dispose(close=False)  # the parent's connections stay the parent's
    run.ledger = run.ledger.taking_turns(writes)  # the children write to the ledger in turn
    run.summary.variants = {}  # this child's counts only; the parent adds them up
    run.summary.settled = Settled()
    run.owner = new_owner()  # each process holds shares of the audience in its own name
    # MAILER_SEND_RATE is for the whole send: each process takes its share of it.
    settings = run.settings.model_copy(update={"send_rate": run.settings.send_rate / run.processes})
    try:

        def stopping() -> bool:
            return stop.is_set() or os.getppid() != parent

        with open_transport(settings, should_stop=stopping) as transport:
            run.transport = transport
            failure = run.send_batches(
                lambda progress: reports.put(_Report(index, progress=progress)),
                stopping,
            )
        reports.put(_Report(index, summary=run.summary, failure=failure))
    except BaseException as error:  # reported, so that the parent stops the others
        log.exception("sending process %d failed", index)
        reported = (
            error
            if isinstance(error, MailerError)
            else DeliveryError(f"sending process {index} failed: {type(error).__name__}: {error}")
        )
        reports.put(_Report(index, summary=run.summary, error=reported))
    finally:
        reports.close()
        reports.join_thread()


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (elsewhere: nothing)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
