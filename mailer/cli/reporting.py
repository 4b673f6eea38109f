"""`mailer report`: what happened to an issue, per segment; `--list`: the list's health over time.

The numbers come from :mod:`mailer.report` (summed by the database); this module
picks the report, prints it as tables or JSON, and writes the HTML page. The
store, the queries and matplotlib are imported inside the command, so that
`mailer --help` stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.table import Table

if TYPE_CHECKING:
    from mailer.config import Newsletter
    from mailer.report.models import HealthPoint, IssueReport, ListReport

# mailer.report.build.LINKS, written out so that `mailer --help` need not import it.
LINKS = 10


def report(
    issue: str | None = typer.Argument(
        None,
        metavar="ISSUE",
        help="The issue: its file (issues/2026-12-03-winter-connections.yaml) or its name "
        "(2026-12-03-winter-connections). Leave it out with --list.",
        show_default=False,
    ),
    list_health: bool = typer.Option(
        False,
        "--list",
        help="Instead of one issue: the list's health across all issues sent (members "
        "active, pending, unsubscribed, bounced and complained when each went out, and now).",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the report as JSON (the same figures) instead of tables."
    ),
    html_file: Path | None = typer.Option(
        None,
        "--html",
        metavar="FILE",
        help="Also write the report as one self-contained HTML page with charts (delivery "
        "funnel per segment, list health), readable offline.",
        show_default=False,
    ),
    links: int = typer.Option(
        LINKS,
        "--links",
        min=0,
        max=100,
        metavar="N",
        help="How many of the most-clicked links to show.",
    ),
) -> None:
    """Report what happened to an issue: sent, delivered, bounced, complained, unsubscribed,
    opened and clicked, per segment, with rates and the most-clicked links.

    Each member counts once per column. Rates say what they are a share of:
    delivered, bounced and dropped of sent; complained, unsubscribed, opened and
    clicked of delivered. Opens are approximate: Apple Mail Privacy Protection
    opens every message it receives. Rows: all members, each segment the issue
    addresses (as members were when it was sent; a member in two is in both),
    and 'general' for those in none.

    The events come from SendGrid's Event Webhook (`mailer serve`) and, through
    SMTP, from the bounce mailbox (`mailer bounces fetch`: bounced, complained,
    unsubscribed); with the outbox, only the sent and unsubscribed counts fill in.
    """
    from mailer.cli.common import load_context
    from mailer.report.build import issue_report, issue_slug, list_report
    from mailer.store import open_store

    if list_health == (issue is not None):
        raise typer.BadParameter(
            "give an ISSUE, or --list for the list's health across all issues (not both)",
            param_hint="ISSUE",
        )
    settings, newsletter = load_context()
    with open_store(settings.database_url) as store:
        if issue is not None:
            made: IssueReport | ListReport = issue_report(
                store.engine,
                issue_slug(issue),
                newsletter,
                base_url=settings.base_url,
                links=links,
            )
        else:
            made = list_report(store.engine)
    # The page is written first, so that a file that cannot be written fails the command
    # before anything is printed; where it went is said last, under the tables.
    if html_file is not None:
        _write_html(made, html_file, newsletter)
    if as_json:
        from mailer.cli.common import print_json

        print_json(made.model_dump(mode="json"))
    else:
        _print(made)
    if html_file is not None:
        from mailer.cli.common import console, err_console
        from mailer.errors import display_path

        # stdout stays pure JSON with --json.
        (err_console if as_json else console).print(
            f"Report written to {display_path(html_file)}", highlight=False
        )


def _write_html(made: IssueReport | ListReport, path: Path, newsletter: Newsletter) -> None:
    from mailer.report.html import issue_page, list_page, write_page
    from mailer.report.models import IssueReport

    page = (
        issue_page(made, newsletter)
        if isinstance(made, IssueReport)
        else list_page(made, newsletter)
    )
    write_page(path, page)


def _print(made: IssueReport | ListReport) -> None:
    from mailer.cli.common import console
    from mailer.report.models import IssueReport

    if isinstance(made, IssueReport):
        for part in _issue_parts(made):
            console.print(part)
    else:
        console.print(
            _health_table(
                made.issues,
                made.now,
                "List health: members by status when each issue went out, and now",
            )
        )
        for point in made.issues:  # where "recipients" and "active" differ, why
            if (difference := point.difference()) is not None:
                console.print(f"{point.issue}: {difference}", highlight=False)


# -- the issue's tables ---------------------------------------------------------------------------

# Two tables, so that each fits 80 columns and each has one denominator for its rates.
DELIVERY = ("sent", ("delivered", "bounced", "dropped"))
RESPONSE = ("delivered", ("opened", "clicked", "complained", "unsubscribed"))
HEADINGS = {"opened": "Opened*"}
TITLES = {"sent": "Delivery", "delivered": "Response"}


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _count(value: int | None) -> str:
    """A count; one not known (no delivery events came back) is "n/a"."""
    return "n/a" if value is None else f"{value:,}"


def _cell(count: int | None, share: float | None) -> str:
    return "n/a" if count is None else f"{count:,}\n{_percent(share)}"


def _issue_parts(made: IssueReport) -> list[object]:
    state = (
        f"finished {made.finished_at:%Y-%m-%d %H:%M} UTC"
        if made.finished_at
        else f"the send is {made.send_status}"
    )
    parts: list[object] = [
        f"[bold]{made.issue}[/]: sent {made.sent_at:%Y-%m-%d %H:%M} UTC, {state}.",
        _measures_table(made, *DELIVERY),
        _measures_table(made, *RESPONSE),
        "Each member counts once per column; a member in several segments counts in each "
        "of their rows. 'general': members in none of the issue's segments.",
    ]
    everyone = made.everyone
    if made.delivery_events:
        parts.append(
            f"All members: {_count(everyone.opens)} opens and {_count(everyone.clicks)} clicks, "
            f"every one counted; click-to-open {_percent(everyone.rates.click_to_open)} "
            "(clicked, of opened)."
        )
    else:
        from mailer.report.models import NO_DELIVERY_EVENTS

        parts.append(f"n/a: {NO_DELIVERY_EVENTS}")
    if everyone.not_sent:
        parts.append(
            f"Not sent: {everyone.not_sent:,} (failed, unknown or in flight in the send "
            "ledger: run `mailer send` on the issue to see why and carry on)."
        )
    parts.append(f"* {made.notes[0]}")
    if made.list_health:
        at_send = made.list_health[-1]
        parts.append(
            f"The list when it went out: {at_send.active:,} active, {at_send.pending:,} pending, "
            f"{at_send.unsubscribed:,} unsubscribed, {at_send.bounced:,} bounced, "
            f"{at_send.complained:,} complained (`mailer report --list`: at every issue)."
        )
        if (difference := at_send.difference()) is not None:
            parts.append(difference[0].upper() + difference[1:])
    no_links = (
        "No clicks recorded for this issue yet."
        if made.delivery_events
        else "Clicks are not known: no delivery events came back for this issue."
    )
    parts.append(_links_table(made) if made.links else no_links)
    return parts


def _measures_table(made: IssueReport, base: str, measures: tuple[str, ...]) -> Table:
    """Segments down, measures across: each count with its rate (a share of ``base``) below."""
    table = Table(
        title=f"{TITLES[base]} (rates: shares of {base})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
    )
    table.add_column("Segment", overflow="fold", max_width=20)
    table.add_column(base.capitalize(), justify="right")
    for name in measures:
        table.add_column(HEADINGS.get(name, name.capitalize()), justify="right")
    for row in made.segments:
        rates = row.rates.model_dump()
        cells = [_cell(getattr(row, name), rates[name]) for name in measures]
        table.add_row(row.name, _count(getattr(row, base)), *cells, end_section=True)
    return table


def _links_table(made: IssueReport) -> Table:
    table = Table(title="Most-clicked links", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("Link", overflow="fold")
    table.add_column("Members", justify="right")
    table.add_column("Clicks", justify="right")
    for link in made.links:
        table.add_row(link.url, f"{link.clicked:,}", f"{link.clicks:,}")
    return table


HEALTH = ("active", "pending", "unsubscribed", "bounced", "complained")


def _health_table(points: list[HealthPoint], now: HealthPoint | None, title: str) -> Table:
    """One row per issue (its name; when it went out and to how many, below), then now."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True)
    # Numbers never shrink: the issue's name folds instead when the terminal is narrow.
    table.add_column("Issue", overflow="fold", ratio=1)
    for name in HEALTH:
        table.add_column(name.capitalize(), justify="right", no_wrap=True, min_width=len(name))
    for point in [*points, *([now] if now else [])]:
        when = (
            f"{point.at:%Y-%m-%d %H:%M} UTC"
            if point.recipients is None
            else f"{point.at:%Y-%m-%d}, to {point.recipients:,}"
        )
        table.add_row(
            f"{point.issue or 'now'}\n[dim]{when}[/]",
            *(f"{getattr(point, name):,}" for name in HEALTH),
            end_section=True,
        )
    return table
