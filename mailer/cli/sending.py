"""`mailer send`: an issue to its audience (exactly once), to test addresses, or a dry run.

The work is done by :mod:`mailer.sending.send` (the send the scheduler shares),
:mod:`mailer.sending.run` (the deliver stage), :mod:`mailer.audience` and the send
ledger; this module asks, shows progress and prints the summary.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from mailer.audience.plan import Plan
    from mailer.config import Newsletter, Settings
    from mailer.issues.model import Issue
    from mailer.sending.run import Count, Resolution, SendSummary
    from mailer.sending.run import Progress as SendProgress

# Exit status when the send ended without everyone being dealt with: stopped by a
# signal, or deliveries failed or unknown. 1 stays "an error stopped it".
INCOMPLETE = 3


class Resolve(StrEnum):
    sent = "sent"
    resend = "resend"
    list = "list"


def send(
    issue_path: Path = typer.Argument(
        ..., metavar="ISSUE", help="The issue file to send.", show_default=False
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Show who would get which variant (counts, and the first addresses of each); "
        "send nothing, change nothing.",
    ),
    test: list[str] = typer.Option(
        [],
        "--test",
        metavar="EMAIL",
        help="Send only to this address, subject marked [TEST], outside the ledger; repeat it "
        "(or separate addresses with commas) for several. Works for drafts too.",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Send without asking for confirmation."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the outcome as JSON instead of tables, with no progress bar."
    ),
    resolve_unknown: Resolve | None = typer.Option(
        None,
        "--resolve-unknown",
        metavar="ACTION",
        help="Settle deliveries left unknown (handed to SMTP or SendGrid, no answer) before "
        "sending: 'sent' if you know they went out, 'resend' to send them again; 'list' "
        "only lists them, with the Message-ID each was sent with, to look up in the relay's log.",
        show_default=False,
    ),
    reconcile_file: Path | None = typer.Option(
        None,
        "--reconcile",
        metavar="EVENTS.json",
        help="Settle unknown deliveries from SendGrid events (a JSON array, as the Event "
        "Webhook posts): accepted ones become sent, dropped ones failed.",
        show_default=False,
    ),
    release: bool = typer.Option(
        False,
        "--release",
        help="End a stuck claim on the issue's send by hand: says who holds it and whether "
        "that process still runs, asks, then frees it (and the scheduler's slot). Sends nothing.",
    ),
    batch_size: int | None = typer.Option(
        None,
        "--batch-size",
        min=1,
        hidden=True,
        help="Recipients per batch (at most one SendGrid request's, the default); smaller only for tests.",
    ),
) -> None:
    """Send an issue to every active member who does not have it yet, exactly once.

    The issue must validate and have `status: ready`. Each member gets the variant
    for their segments, through MAILER_TRANSPORT (outbox, smtp or sendgrid), in
    batches recorded in the send ledger: running it again sends only to those who
    do not have the issue yet, and a send that was stopped or killed carries on
    where it was. SIGTERM or Ctrl+C stops it after the current batch.

    Deliveries handed to SMTP or SendGrid that got no answer are "unknown" and
    never resent on their own: settle them with --reconcile or --resolve-unknown.

    Exit status: 0 when everyone has been dealt with; 1 on an error (nothing is
    sent twice: fix it and run again); 2 for a configuration problem; 3 when the
    send stopped early or left deliveries failed or unknown (see the summary).
    """
    from mailer.cli.common import load_context
    from mailer.issues.check import load_issue
    from mailer.mail import MAX_BATCH
    from mailer.sending.run import ensure_sendable

    if batch_size is not None and batch_size > MAX_BATCH:
        raise typer.BadParameter(
            f"{batch_size} is more than one SendGrid request takes: at most {MAX_BATCH}",
            param_hint="--batch-size",
        )
    settings, newsletter = load_context()
    if not dry_run:
        from mailer.logs import configure_logging

        # Each batch handed over, settlements and stops, in MAILER_LOG_FORMAT on stderr.
        configure_logging(settings.log_level.value, settings.log_format.value)
    issue = load_issue(issue_path, newsletter)
    if release:
        _release(issue.slug, settings, yes=yes)
        return
    emails = [part.strip() for entry in test for part in entry.split(",") if part.strip()]
    if emails and dry_run:
        raise typer.BadParameter("use either --test or --dry-run, not both", param_hint="--test")
    if resolve_unknown == Resolve.list:
        _list_unknown(issue.slug, settings, as_json=as_json)
        return
    if dry_run and (resolve_unknown or reconcile_file):
        raise typer.BadParameter(
            "a dry run changes nothing: run --resolve-unknown or --reconcile without --dry-run",
            param_hint="--dry-run",
        )
    if emails:
        _send_test(issue, newsletter, settings, emails, as_json=as_json)
        return
    if not dry_run:
        ensure_sendable(issue)
    _send(
        issue,
        newsletter,
        settings,
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
        resolve_unknown=resolve_unknown,
        reconcile_file=reconcile_file,
        batch_size=batch_size or MAX_BATCH,
    )


# -- the real send ------------------------------------------------------------------------


def _send(
    issue: Issue,
    newsletter: Newsletter,
    settings: Settings,
    *,
    dry_run: bool,
    yes: bool,
    as_json: bool,
    resolve_unknown: Resolve | None,
    reconcile_file: Path | None,
    batch_size: int,
) -> None:
    from mailer.audience.plan import plan
    from mailer.cli.common import console, err_console
    from mailer.sending.personalise import link_signer
    from mailer.sending.run import SendStopped
    from mailer.sending.send import has_work, run_send
    from mailer.store import open_store
    from mailer.store.ledger import Ledger
    from mailer.transports import open_transport

    signer = link_signer(settings)
    if signer.development:
        _warn_development_key()
    with open_store(settings.database_url) as store:
        ledger = Ledger(store.engine)
        if reconcile_file is not None:
            from mailer.events.reconcile import read_events, reconcile

            done = reconcile(ledger, read_events(reconcile_file))
            err_console.print(
                f"Reconciled from {reconcile_file}: {done.events} events of this list, "
                f"{done.sent} deliveries now sent, {done.dropped} dropped by SendGrid."
            )
        audience = plan(store, issue, newsletter)
        if dry_run:
            _print_plan(issue, audience, settings, as_json=as_json)
            return
        unresolved = audience.unknown if resolve_unknown is None else 0
        resolution: Resolution | None = (
            "sent"
            if resolve_unknown == Resolve.sent
            else "resend"
            if resolve_unknown == Resolve.resend
            else None
        )
        if not has_work(audience, resolution):
            _nothing_to_send(issue, audience, as_json=as_json)
            if unresolved:
                raise typer.Exit(INCOMPLETE)
            return
        stop = threading.Event()
        transport = open_transport(settings, should_stop=stop.is_set)
        with transport:
            if not as_json:
                console.print(_intro(issue, audience, transport.name))
                console.print(_concurrency(settings, audience))
            if not yes:
                _confirm(audience.to_send + audience.interrupted, transport.name)
            with _stop_on_signals(stop) as should_stop:
                try:
                    summary = run_send(
                        issue,
                        newsletter,
                        settings,
                        store,
                        ledger,
                        transport,
                        signer,
                        audience,
                        resolve_unknown=resolution,
                        batch_size=batch_size,
                        should_stop=should_stop,
                        progress=lambda total: _progress(total, hidden=as_json),
                    )
                except SendStopped as stopped:
                    _print_summary(stopped.summary, settings, as_json=as_json)
                    raise
    _print_summary(summary, settings, as_json=as_json)
    if not summary.complete or summary.total("failed"):
        raise typer.Exit(INCOMPLETE)


def _list_unknown(slug: str, settings: Settings, *, as_json: bool) -> None:
    """`mailer send ISSUE --resolve-unknown=list`: the unknown deliveries; changes nothing."""
    from mailer.cli.common import console, print_json
    from mailer.store import open_store
    from mailer.store.ledger import Ledger

    with open_store(settings.database_url) as store:
        rows = Ledger(store.engine).unknown(slug)
    if as_json:
        print_json(
            [
                {
                    "email": row.email,
                    "message_id": row.message_id,
                    "since": row.since.isoformat(),
                    "reason": row.error,
                }
                for row in rows
            ]
        )
        return
    if not rows:
        console.print(f"No deliveries of {slug} are unknown.", highlight=False)
        return
    # One line each, never folded: a Message-ID is copied whole into a search of the log.
    console.print(f"Unknown deliveries of {slug} (email, Message-ID, since, UTC):", highlight=False)
    for row in rows:
        since = row.since.strftime("%Y-%m-%d %H:%M")
        line = f"  {row.email}  {row.message_id or '(no Message-ID recorded)'}  {since}"
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(
        f"{len(rows)} unknown. Look each Message-ID up in the relay's log, then run "
        "--resolve-unknown=sent (they went out) or --resolve-unknown=resend.",
        highlight=False,
    )


def _release(slug: str, settings: Settings, *, yes: bool) -> None:
    """`mailer send ISSUE --release`: end the lease on the issue's send, and its slot's claim."""
    import datetime as dt

    from mailer.cli.common import console
    from mailer.store import open_store
    from mailer.store.ledger import Ledger
    from mailer.store.slots import SlotStore

    with open_store(settings.database_url) as store:
        ledger = Ledger(store.engine)
        holder = ledger.holder(slug)
        if holder is None or (not holder.owner and not holder.running):
            console.print(f"Nobody holds the send of {slug}: there is nothing to release.")
            return
        who = holder.owner or "nobody named"
        alive = (
            "its process is still running (it holds the send's lock)"
            if holder.running
            else "no running process holds it"
        )
        console.print(
            f"The send of {slug} is held by {who}, last active "
            f"{holder.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC; {alive}.",
            highlight=False,
        )
        if holder.running:
            console.print(
                "Releasing it stops that process from claiming anything more; a batch it has "
                "in hand may still go out. On PostgreSQL its lock session is ended; on SQLite "
                "the next send waits until that process ends: stop it.",
                highlight=False,
            )
        if not yes and not typer.confirm(f"Release the send of {slug}?", default=False):
            raise typer.Exit(1)
        owner = ledger.force_release(slug)
        slots = SlotStore(store.engine).release_issue(slug, dt.datetime.now(dt.UTC))
    console.print(
        f"Released the send of {slug} (held by {owner or 'nobody'})"
        + (f" and {len(slots)} scheduler slot claim(s)" if slots else "")
        + ". `mailer send` carries on with the members who do not have it yet.",
        highlight=False,
    )


def _warn_development_key() -> None:
    from mailer.cli.common import err_console

    err_console.print(
        "[yellow]warning:[/] MAILER_SECRET_KEY is not set: links are signed with the public "
        "development key (for the outbox only)",
        highlight=False,
        soft_wrap=True,
    )


def _confirm(count: int, transport: str) -> None:
    """Ask before sending; "no" is an answer, not a failure: it says so and exits 0."""
    if not typer.confirm(f"Send to {count} members through {transport}?", default=False):
        from mailer.cli.common import console

        console.print("Nothing sent.")
        raise typer.Exit(0)


def subject_for_anyone(subject: str) -> str:
    """The subject as a member with no first name (or other field) reads it.

    ``{{ first_name | Friends }}, winter news`` is "Friends, winter news": each merge
    tag is its fallback, or nothing.
    """
    from mailer.issues.model import MERGE_TAG

    filled = MERGE_TAG.sub(lambda tag: tag["fallback"] or "", subject)
    return " ".join(filled.split())


def _intro(issue: Issue, audience: Plan, transport: str) -> str:
    lines = [
        f"Sending [bold]{escape(subject_for_anyone(issue.subject))}[/] ({issue.slug}) "
        f"through {transport}.",
        f"Audience: {audience.audience} active members in {len(audience.variants)} variants; "
        f"{audience.to_send} to send.",
    ]
    if audience.sent:
        lines.append(f"{audience.sent} already have this issue: they are skipped.")
    if audience.interrupted:
        lines.append(
            f"{audience.interrupted} were being sent when an earlier send was interrupted: "
            "they are checked first."
        )
    return "\n".join(lines)


def _concurrency(settings: Settings, audience: Plan) -> str:
    """How the send is spread: processes, and requests in flight or connections in each."""
    processes = settings.processes_for(audience.to_send + audience.interrupted)
    each = {
        "sendgrid": f", {settings.sendgrid_requests_in_flight} requests in flight each",
        "smtp": f", {settings.smtp_connection_count} connections each",
    }.get(str(settings.transport), "")
    return f"{processes} sending process{'es' if processes > 1 else ''}{each}."


def _nothing_to_send(issue: Issue, audience: Plan, *, as_json: bool) -> None:
    from mailer.cli.common import console, print_json

    if as_json:
        print_json(
            {
                "issue": issue.slug,
                "audience": audience.audience,
                "to_send": 0,
                "already_sent": audience.sent,
                "unknown": audience.unknown,
            }
        )
        return
    console.print(
        f"All {audience.sent} members in the audience already have {issue.slug}: nothing to send."
        if not audience.unknown
        else f"Nothing to send: {audience.sent} members have {issue.slug}, and "
        f"{audience.unknown} deliveries are unknown."
    )
    if audience.unknown:
        console.print(_UNKNOWN_HELP.format(count=audience.unknown))


_UNKNOWN_HELP = (
    "{count} deliveries are [bold]unknown[/]: they were handed over and no answer came, "
    "so they may have gone out, and are not resent on their own. Settle them from SendGrid's "
    "events with --reconcile EVENTS.json, or with --resolve-unknown=sent (they went out) or "
    "--resolve-unknown=resend (send them again); --resolve-unknown=list shows each with its "
    "Message-ID, to look up in the relay's log."
)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[Callable[[], bool]]:
    """SIGTERM and SIGINT ask the send to stop after the batches in hand; a second one stops now."""
    from mailer.cli.common import err_console

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        err_console.print(
            f"{signal.Signals(signum).name}: stopping after the batches in hand "
            "(again to stop at once)."
        )

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop.is_set
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class _Rate(ProgressColumn):
    """Recipients per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "-/s", style="progress.data.speed")


@contextmanager
def _progress(total: int, *, hidden: bool) -> Iterator[Callable[[SendProgress], None]]:
    from mailer.cli.common import err_console

    columns = (
        TextColumn("Sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("recipients"),
        _Rate(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, disable=hidden, transient=False) as bar:
        task = bar.add_task("send", total=max(total, 1))

        def advance(progress: SendProgress) -> None:
            bar.update(task, completed=min(progress.done, total))

        yield advance


def _print_plan(issue: Issue, audience: Plan, settings: Settings, *, as_json: bool) -> None:
    from mailer.cli.common import console, print_json

    if as_json:
        print_json(
            {
                "issue": issue.slug,
                "status": issue.status,
                "audience": audience.audience,
                "to_send": audience.to_send,
                "already_sent": audience.sent,
                "unknown": audience.unknown,
                "interrupted": audience.interrupted,
                "variants": [
                    {
                        "variant": v.name,
                        "audience": v.audience,
                        "to_send": v.to_send,
                        "already_sent": v.sent,
                        "unknown": v.unknown,
                        "first": v.sample,
                    }
                    for v in audience.ordered()
                ],
            }
        )
        return
    from mailer.render.preview import stacked, variant_column

    table = Table(
        title=f"Dry run: {issue.slug} through {settings.transport}",
        title_justify="left",
        expand=True,  # the addresses take what the counts leave, and shorten to fit it
    )
    variant_column(table, [v.name for v in audience.ordered()])
    table.add_column("To send", justify="right", no_wrap=True)
    table.add_column("Already sent", justify="right", no_wrap=True)
    table.add_column("Unknown", justify="right", no_wrap=True)
    # One address a line, shortened (…) rather than folded when the terminal is narrow.
    table.add_column("First addresses", no_wrap=True, overflow="ellipsis", ratio=1)
    for v in audience.ordered():
        table.add_row(
            stacked(v.name), str(v.to_send), str(v.sent), str(v.unknown), "\n".join(v.sample)
        )
    table.add_section()
    table.add_row(
        "Total", str(audience.to_send), str(audience.sent), str(audience.unknown), "", style="bold"
    )
    console.print(table)
    if issue.status != "ready":
        console.print(
            f"The issue is a {issue.status}: `mailer send` will refuse it until it says "
            "`status: ready`."
        )
    console.print("Dry run: nothing was sent and nothing was changed.")


def _print_summary(summary: SendSummary, settings: Settings, *, as_json: bool) -> None:
    from mailer.cli.common import console, print_json

    if as_json:
        print_json(summary.to_json())
        return
    table = Table(
        title=f"Sent {summary.issue} through {summary.transport}",
        title_justify="left",
        caption="Skipped: already sent before, or suppressed (left the list during the send).",
        caption_justify="left",
    )
    from mailer.render.preview import stacked, variant_column

    variant_column(table, list(summary.variants))
    for heading in ("Sent", "Skipped:\nalready sent", "Skipped:\nsuppressed", "Failed", "Unknown"):
        table.add_column(heading, justify="right", no_wrap=True)
    fields: tuple[Count, ...] = ("sent", "already_sent", "suppressed", "failed", "unknown")
    for v in sorted(summary.variants.values(), key=lambda v: v.variant):
        table.add_row(stacked(v.variant), *(str(getattr(v, name)) for name in fields))
    table.add_section()
    table.add_row("Total", *(str(summary.total(name)) for name in fields), style="bold")
    console.print(table)
    for v in sorted(summary.variants.values(), key=lambda v: v.variant):
        for reason, count in v.reasons.most_common():
            console.print(f"  {v.variant}: {count} × {reason}", highlight=False)
    before = summary.total("failed_before")
    if before:
        console.print(
            f"{before} addresses refused for good in an earlier run were not tried again."
        )
    _print_notes(summary, settings)


def _print_notes(summary: SendSummary, settings: Settings) -> None:
    from mailer.cli.common import console

    settled = summary.settled
    if settled.sent or settled.resend:
        console.print(
            f"An earlier send was interrupted: {settled.sent} of its messages had been written, "
            f"{settled.resend} had not and were sent now."
        )
    if settled.resolved:
        console.print(f"{settled.resolved} unknown deliveries were resolved as you asked.")
    if summary.stopped:
        console.print(
            f"[bold]Stopped[/] ({summary.stopped}) after {summary.total('sent')} sent in this run. "
            f"Run `mailer send` again to carry on with the rest."
        )
    unknown = summary.total("unknown")
    if unknown:
        console.print(_UNKNOWN_HELP.format(count=unknown))
    if summary.transport == "outbox":
        folder = Path(settings.outbox_dir) / summary.issue
        console.print(f"The messages are in {folder}/, one .eml file per member.")


# -- test sends -----------------------------------------------------------------------------


def _send_test(
    issue: Issue, newsletter: Newsletter, settings: Settings, emails: list[str], *, as_json: bool
) -> None:
    from mailer.cli.common import console, print_json
    from mailer.sending.personalise import link_signer
    from mailer.sending.proofs import TEST_PREFIX, send_test
    from mailer.store import open_store
    from mailer.transports import open_transport

    signer = link_signer(settings)
    if signer.development:
        _warn_development_key()
    with open_store(settings.database_url) as store, open_transport(settings) as transport:
        results = send_test(issue, newsletter, settings, store, transport, signer, emails)
    if as_json:
        print_json(
            [
                {"email": d.email, "variant": variant, "state": d.state, "error": d.error}
                for variant, d in results
            ]
        )
    else:
        table = Table(
            title=f"Test send of {issue.slug} ({TEST_PREFIX.strip()} in the subject), "
            f"through {transport.name}",
            title_justify="left",
        )
        table.add_column("Address")
        table.add_column("Variant")
        table.add_column("Result")
        for variant, d in results:
            table.add_row(d.email, variant, d.state if d.ok else f"{d.state}: {d.error}")
        console.print(table)
        console.print("Not recorded in the send ledger: the real send is unaffected.")
        if transport.name == "outbox":
            console.print(f"The messages are in {settings.outbox_dir / (issue.slug + '--test')}/.")
    if not all(d.ok for _, d in results):
        raise typer.Exit(INCOMPLETE)
