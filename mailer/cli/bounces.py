"""`mailer bounces fetch`: read the bounce mailbox once (the scheduler does it every few minutes).

What reading does is :mod:`mailer.events.bounces`; this module runs it and prints
a table of the new messages (what each is, whose, what it did) or, with
``--json``, the same as JSON. The store and the mailbox libraries are imported
inside the command, so that `mailer --help` stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich import box
from rich.table import Table

if TYPE_CHECKING:
    from mailer.events.bounces.fetch import FetchReport

app = typer.Typer(
    name="bounces",
    help="The bounce mailbox: bounces, complaints and unsubscribes of mail sent through SMTP.",
    no_args_is_help=True,
)

# mailer.events.bounces.fetch.BATCH, written out so that `mailer --help` need not import it.
BATCH = 200

_WHAT = {
    "bounce": "hard bounce",
    "soft_bounce": "soft bounce",
    "complaint": "complaint",
    "unsubscribe": "unsubscribe",
    "unknown_address": "not on the list",
    "duplicate": "already counted",
    "other": "left alone",
}


@app.command("fetch")
def fetch(
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Show what each new message would do, and change nothing: no member, no log "
        "entry, nothing moved or deleted on the server.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print what was read and done as JSON instead of a table."
    ),
    batch_size: int = typer.Option(
        BATCH,
        "--batch-size",
        min=1,
        max=1000,
        metavar="N",
        help="Messages read, applied and committed together; an interrupted run loses "
        "none of them, at most it reads the batch in hand again.",
    ),
) -> None:
    """Read the bounce mailbox (MAILER_BOUNCE_MAILBOX) once and apply what is new.

    Each new message is read once. Delivery status notifications (RFC 3464) bounce
    a member (5.x.x) or count toward MAILER_SOFT_BOUNCE_LIMIT (4.x.x, delayed);
    spam complaints (RFC 5965 feedback reports) mark them complained; a message
    to the List-Unsubscribe mailto: unsubscribes them; bounces in the free-text
    formats of older servers count as far as flufl.bounce reads them. Anything
    else (auto-replies, people writing) is left alone, listed here, and moved to
    MAILER_BOUNCE_OTHER_FOLDER if set, never deleted. Messages acted on are moved
    to MAILER_BOUNCE_PROCESSED_FOLDER, or deleted when it is not set.

    A message is recorded as processed in the transaction that applies it, so a
    run that is interrupted, even killed, is simply run again. The scheduler runs
    this every MAILER_BOUNCE_POLL_INTERVAL seconds.
    """
    from mailer.cli.common import load_context, print_json
    from mailer.events.bounces.fetch import fetch_bounces
    from mailer.store import open_store

    settings, _ = load_context()
    with open_store(settings.database_url) as store:
        report = fetch_bounces(settings, store, dry_run=dry_run, batch=batch_size)
    if as_json:
        print_json(report.to_json())
    else:
        _print(report)


def _print(report: FetchReport) -> None:
    from mailer.cli.common import console

    if report.messages:
        # Addresses and subjects on one line each, shortened (…) to fit 80 columns or a pipe;
        # what it was and what it did wrap at words.
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, expand=True)
        table.add_column("From", no_wrap=True, overflow="ellipsis", ratio=2)
        table.add_column("Subject", no_wrap=True, overflow="ellipsis", ratio=2)
        table.add_column("What")
        table.add_column("Member", no_wrap=True, overflow="ellipsis", ratio=2)
        table.add_column("Effect", ratio=4)
        for message in report.messages:
            table.add_row(
                message.sender,
                message.subject,
                _WHAT.get(message.outcome, message.outcome),
                message.member or "",
                message.effect,
            )
        console.print(table)
    would = "would be " if report.dry_run else ""
    counts = ", ".join(
        f"{report.count(outcome)} {label}"
        for outcome, label in _WHAT.items()
        if report.count(outcome)
    )
    console.print(
        f"{report.mailbox}: {report.in_mailbox} message(s), {len(report.messages)} new"
        + (f" ({counts})" if counts else "")
        + f"; {report.already_processed} processed before.",
        highlight=False,
    )
    changes = report.status_changes
    if changes:
        said = ", ".join(f"{count} {status}" for status, count in sorted(changes.items()))
        console.print(f"Members {would}changed: {said}.", highlight=False)
    if report.dry_run:
        console.print("Dry run: nothing was changed.", highlight=False)
    if report.stopped:
        console.print(
            f"Stopped early: {report.stopped}; run it again to carry on.", highlight=False
        )
