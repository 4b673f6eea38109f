"""`mailer events rejected`: what SendGrid posted that was not an event the list could use.

The webhook answers a verified batch 2xx whatever is in it, applies each valid
event, and keeps every other item (no address, a timestamp that is text, an id
too long...) once in the rejected events' table, with why (see docs/web.md).
This command lists them, newest first, as a table or JSON.
"""

from __future__ import annotations

import typer
from rich import box
from rich.table import Table

app = typer.Typer(
    name="events",
    help="SendGrid's Event Webhook: the events it posted that could not be applied.",
    no_args_is_help=True,
)


@app.command("rejected")
def rejected(
    limit: int = typer.Option(
        50, "--limit", min=1, max=100_000, metavar="N", help="Show the newest N (default 50)."
    ),
    days: int | None = typer.Option(
        None, "--days", min=1, metavar="N", help="Only those received in the last N days."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print them as JSON (with each item whole) instead of a table."
    ),
) -> None:
    """List the items of signed webhook batches that were not events we could apply, and why.

    Each is kept once however often SendGrid posts it. Account-level events with no
    address are normal; anything else here is worth a look. ``mailer subscribers
    forget`` erases the ones that name the address.
    """
    import datetime as dt

    from mailer.cli.common import console, load_context, print_json
    from mailer.store import open_store
    from mailer.store.eventlog import rejected_events

    settings, _ = load_context()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days) if days else None
    with open_store(settings.database_url) as store:
        rows = rejected_events(store.engine, limit=limit, since=since)
    if as_json:
        print_json(
            [
                {
                    "id": row.id,
                    "received_at": row.received_at.isoformat(),
                    "reason": row.reason,
                    "item": _item(row.body),
                }
                for row in rows
            ]
        )
        return
    if not rows:
        console.print("No rejected events.", highlight=False)
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("Received (UTC)", "Why", "Item"):
        table.add_column(column, overflow="fold")
    for row in rows:
        shown = row.body if len(row.body) <= 300 else row.body[:300] + " ..."
        table.add_row(f"{row.received_at:%Y-%m-%d %H:%M:%S}", row.reason, shown)
    console.print(table)
    console.print(f"{len(rows)} rejected event(s), newest first.", highlight=False)


def _item(text: str) -> object:
    """The item as it came, when its kept text is whole JSON; else the text (it was cut)."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text
