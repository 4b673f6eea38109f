"""Commands over the subscriber list: import, export, list, show, add, unsubscribe, resubscribe, forget.

Every command opens the store named by MAILER_DATABASE_URL (the SQLite file
``subscribers/mailer.db`` by default, created and migrated on first use). Changes
made here are logged in each member's history with the command as their source.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import typer
from rich.table import Table

from mailer.cli.common import console, err_console
from mailer.errors import Problem, SubscriberDataError, display_path
from mailer.store.models import (
    ImportCounts,
    ImportFormat,
    MemberRecord,
    Subscriber,
    SubscriberStatus,
)

if TYPE_CHECKING:
    from mailer.store import SubscriberStore
    from mailer.store.columnmap import ColumnMap
    from mailer.store.importing import ImportReport
    from mailer.store.subscribers import Listed

    Shown: TypeAlias = Listed | Subscriber  # a member in the table: as `list` reads them, or whole

# The store, CSV and segment modules are imported inside the commands (they pull
# in SQLAlchemy and Alembic), so that `mailer --help` stays quick.

# The argument of every command that acts on one member.
MemberEmail = Annotated[
    str, typer.Argument(metavar="EMAIL", help="The member's email address.", show_default=False)
]

app = typer.Typer(help="Manage the subscriber list.", no_args_is_help=True)

JSON_HELP = "Print JSON instead of a table."


@contextmanager
def _store() -> Iterator[SubscriberStore]:
    from mailer.config import get_settings
    from mailer.store import open_store

    with open_store(get_settings().database_url) as store:
        yield store


def _source(command: str) -> str:
    return f"mailer subscribers {command}"


# -- import and export ----------------------------------------------------------------


@app.command("import")
def import_(
    path: Path = typer.Argument(
        ...,
        metavar="PATH",
        help="The list: a CSV file, or a ZIP of CSV files such as Mailchimp's audience export.",
        show_default=False,
    ),
    source_format: ImportFormat = typer.Option(
        ImportFormat.auto,
        "--from",
        help="The tool the file comes from; auto recognises each file by its columns.",
    ),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="Import the good rows and report the bad ones, instead of importing nothing.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Check the file and count what would change; change nothing."
    ),
) -> None:
    """Add and update members from a spreadsheet's CSV, or from Mailchimp or listmonk.

    A spreadsheet's header row names the columns: email (required), name,
    organisation, region, tags (separated by ; or , in the cell); any other
    column is kept as an attribute. Commas or semicolons; UTF-8, with or
    without a BOM. Mailchimp's audience export (the ZIP, or one of its CSV
    files) and listmonk's import and export files are recognised by their
    columns; mailer.toml's [imports] table maps other columns and values.

    By default nothing is imported if any row has a problem. Importing the
    same file twice changes nothing the second time. An import never
    re-subscribes anyone who unsubscribed, bounced, complained or is pending,
    and never adds back a member who was forgotten; a row that says a member
    left (an unsubscribed or cleaned Mailchimp contact, a blocklisted
    listmonk subscriber) moves them out.
    """
    from mailer.store.importing import import_list

    columns = _column_map()
    with _store() as store, err_console.status(f"Importing {display_path(path)}..."):
        report = import_list(
            store,
            path,
            source_format=source_format,
            columns=columns,
            skip_invalid=skip_invalid,
            dry_run=dry_run,
        )
    for problem in report.problems:
        err_console.print(f"[yellow]skipped:[/] {problem}", highlight=False, soft_wrap=True)
    _print_files(report, display_path(path), dry_run=dry_run)
    _print_counts(report.counts, dry_run=dry_run)


def _column_map() -> ColumnMap:
    """mailer.toml's [imports] map; none if there is no mailer.toml (a list imports without one)."""
    from mailer.config import get_settings, load_newsletter
    from mailer.store.columnmap import ColumnMap

    config_path = get_settings().config_path
    if not config_path.exists():
        return ColumnMap()
    imports = load_newsletter(config_path).imports
    return ColumnMap() if imports is None else ColumnMap.of(imports.columns, imports.values)


def _print_files(report: ImportReport, where: str, *, dry_run: bool) -> None:
    """The format found, then members per status after the import, file by file."""
    kinds = " and ".join(found.label for found in report.formats)
    files = len(report.files)
    count = "" if files == 1 else f" ({files} files)"
    console.print(f"Read {where}{count} as {kinds}.", highlight=False)
    totals = report.statuses
    columns = [status.value for status in SubscriberStatus if totals.get(status.value)]
    columns = columns or [SubscriberStatus.active.value]
    if totals.get("suppressed"):
        columns.append("suppressed")
    title = "Members by status if imported" if dry_run else "Members by status after the import"
    table = Table(title=title)
    table.add_column("file", overflow="fold")
    for name in [*columns, "skipped"]:
        table.add_column(name, justify="right")
    for file in report.files:
        cells = [str(file.statuses.get(name, 0)) for name in columns]
        name = file.where.removeprefix(f"{where}/")  # a file in a ZIP by its own name
        table.add_row(name, *cells, str(file.skipped))
    if files > 1:
        cells = [str(totals.get(name, 0)) for name in columns]
        table.add_row("total", *cells, str(report.counts.skipped), style="bold")
    console.print(table)


def _print_counts(counts: ImportCounts, *, dry_run: bool) -> None:
    names = ("added", "updated", "unchanged", "skipped", "suppressed")
    table = Table(title="What would change (dry run: nothing was)" if dry_run else None)
    for name in names:
        table.add_column(name, justify="right")
    table.add_row(*(str(getattr(counts, name)) for name in names))
    console.print(table)


@app.command("export")
def export(
    csv_file: Path | None = typer.Argument(
        None,
        metavar="[CSV]",
        help="Where to write the CSV (UTF-8 with BOM, for spreadsheets); standard output if omitted or '-'.",
        show_default=False,
    ),
    status: SubscriberStatus | None = typer.Option(
        None, "--status", help="Only members with this status.", show_default=False
    ),
) -> None:
    """Write every member as CSV, with status and dates, in the form `import` reads back."""
    from mailer.store.csvio import write_members

    # Written as they are read from the database: the list is never held whole.
    with _store() as store:
        attributes = store.attribute_names(status=status)
        members = store.stream(status=status)
        if csv_file is None or str(csv_file) == "-":
            write_members(members, sys.stdout, attributes)
            return
        with csv_file.open("w", encoding="utf-8-sig", newline="") as stream:
            count = write_members(members, stream, attributes)
    err_console.print(f"Wrote {count} members to {display_path(csv_file)}.", highlight=False)


# -- looking -----------------------------------------------------------------------


@app.command("list")
def list_(
    status: SubscriberStatus | None = typer.Option(
        None, "--status", help="Only members with this status.", show_default=False
    ),
    segment: str | None = typer.Option(
        None,
        "--segment",
        "-s",
        help="Only members in this segment of mailer.toml.",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List members with their status and segments, ordered by address."""
    from mailer.audience.segments import SegmentRules
    from mailer.audience.segmentsql import segment_condition
    from mailer.cli.common import load_context, print_json_items

    _, newsletter = load_context()
    rules = SegmentRules.of(newsletter)
    # The database picks the members (status and segment in SQL) and hands them over a
    # page at a time; the Python rules, the reference, confirm each one.
    with _store() as store:
        where = None
        if segment is not None:
            where = segment_condition(rules.segment(segment), store.engine.dialect.name)
        if as_json:
            members = store.stream(status=status, where=where)
            chosen = ((member, rules.of_member(member)) for member in members)
            print_json_items(
                _json(member, segments)
                for member, segments in chosen
                if segment is None or segment in segments
            )
            return
        listed = store.stream_listed(status=status, where=where)
        rows = ((member, rules.of_member(member)) for member in listed)
        if segment is not None:
            rows = ((member, segments) for member, segments in rows if segment in segments)
        count = _print_members(rows, lambda: store.longest_email(status=status, where=where))
    console.print(f"{count} {'member' if count == 1 else 'members'}", highlight=False)


# Members printed per table; a longer list is printed as tables of this many rows
# joined into one, so that it is never held whole.
PAGE = 200


def _print_members(
    rows: Iterable[tuple[Shown, frozenset[str]]], longest_email: Callable[[], int]
) -> int:
    """Print the members' table a page at a time; returns how many members."""
    from rich.segment import Segments

    first = list(islice(rows, PAGE))
    following = next(iter(rows), None)
    if following is None:  # one page: a table sized to its contents
        console.print(_members_table(first))
        return len(first)
    # A longer list: rich draws the header and the first page, with the email column
    # as wide as the longest address; every later row is drawn in the same widths
    # without rich (which takes milliseconds a row: minutes for a big segment).
    table = _members_table(first, email_width=longest_email())
    lines = console.render_lines(table, pad=False, new_lines=True)
    console.print(Segments(chain.from_iterable(lines[:-1])), end="")
    widths = [len(part) - 2 for part in "".join(s.text for s in lines[0]).strip()[1:-1].split("┳")]
    write = console.file.write
    colour = console.is_terminal and not console.no_color and console.color_system is not None
    count = len(first)
    for member, segments in chain([following], rows):
        write(_row_text(member, segments, widths, colour=colour))
        count += 1
    write("└" + "┴".join("─" * (width + 2) for width in widths) + "┘\n")
    return count


def _row_text(
    member: Shown, segments: frozenset[str], widths: Sequence[int], *, colour: bool
) -> str:
    """One member's lines of the table, as rich draws them (long values shortened with …)."""
    place = [[member.organisation], [member.region]] if len(widths) == 6 else []
    status = _fit(member.status.value, widths[-2])
    if colour and member.status is not SubscriberStatus.active:
        status = f"\x1b[33m{status}\x1b[0m"
    columns = [[member.email], [member.name], *place, [status], sorted(segments) or [""]]
    fitted = [
        [_fit(text, width) for text in column]
        for column, width in zip(columns, widths, strict=True)
    ]
    fitted[-2] = [status]
    height = len(fitted[-1])
    blanks = [" " * width for width in widths]
    return "".join(
        "│ "
        + " │ ".join(
            column[index] if index < len(column) else blank
            for column, blank in zip(fitted, blanks, strict=True)
        )
        + " │\n"
        for index in range(height)
    )


def _fit(text: str, width: int) -> str:
    """The text in exactly ``width`` cells, shortened with … if it is longer."""
    if text.isascii():  # one cell a character: the common case, done quickly
        return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) > width:
        text = set_cell_size(text, width - 1) + "…"
    return set_cell_size(text, width)


def _members_table(
    rows: Sequence[tuple[Shown, frozenset[str]]],
    *,
    email_width: int | None = None,
) -> Table:
    # Organisation and region only when there is room: `show` has every detail.
    wide = console.width >= 120
    table = Table(expand=True)
    # One line per member and segment: long values are shortened (…), never folded mid-word;
    # `show` has every detail in full.
    table.add_column(
        "email", no_wrap=True, width=email_width
    )  # never wrapped or cut short: `show` needs it
    table.add_column("name", no_wrap=True, overflow="ellipsis", ratio=1)
    for name in ("organisation", "region") if wide else ():
        table.add_column(name, no_wrap=True, overflow="ellipsis", ratio=2)
    table.add_column("status", no_wrap=True, width=None if email_width is None else _STATUS_WIDTH)
    # One a line; shortened (…) only when a long address leaves too little room.
    table.add_column("segments", no_wrap=True, overflow="ellipsis", ratio=1)
    for member, segments in rows:
        place = (member.organisation, member.region) if wide else ()
        table.add_row(
            member.email,
            member.name,
            *place,
            _status(member.status),
            "\n".join(sorted(segments)),
        )
    return table


_STATUS_WIDTH = max(len(status.value) for status in SubscriberStatus)


@app.command("show")
def show(
    email: MemberEmail,
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show one member: their details, segments, segment opt-outs and history."""
    from mailer.audience.segments import SegmentRules
    from mailer.cli.common import load_context, print_json
    from mailer.store.preferences import opted_out

    _, newsletter = load_context()
    with _store() as store:
        member = store.get(email)
        history = store.history(member.id)
        opt_outs = sorted(opted_out(store.engine, [member.id]).get(member.id, frozenset()))
    segments = SegmentRules.of(newsletter).of_member(member)
    if as_json:
        print_json(
            {
                **_json(member, segments),
                "opted_out": opt_outs,
                "history": [event.to_json() for event in history],
            }
        )
        return
    details = Table.grid(padding=(0, 2))
    for label, value in (
        ("email", member.email),
        ("name", member.name),
        ("organisation", member.organisation),
        ("region", member.region),
        ("tags", ", ".join(member.tags)),
        *sorted(member.attributes.items()),
        ("status", f"{_status(member.status)} since {member.status_changed_at:%Y-%m-%d %H:%M} UTC"),
        ("why", member.status_reason),
        ("segments", ", ".join(sorted(segments)) or "none"),
        # Unticked in the preference centre: those sections are left out of their emails.
        ("opted out", ", ".join(opt_outs) or "none"),
        ("added", f"{member.created_at:%Y-%m-%d %H:%M} UTC"),
    ):
        details.add_row(f"[bold]{label}[/]", value)
    console.print(details)
    events = Table("when (UTC)", "what", "by", title="History", title_justify="left")
    for event in history:
        events.add_row(f"{event.at:%Y-%m-%d %H:%M}", event.detail, event.source)
    console.print(events)


def _json(member: Subscriber, segments: frozenset[str]) -> dict[str, Any]:
    return {**member.to_json(), "segments": sorted(segments)}


def _status(status: SubscriberStatus) -> str:
    return status.value if status is SubscriberStatus.active else f"[yellow]{status.value}[/]"


# -- changing ----------------------------------------------------------------------


@app.command("add")
def add(
    emails: list[str] = typer.Argument(
        ..., metavar="EMAIL...", help="Addresses to add.", show_default=False
    ),
    name: str | None = typer.Option(None, "--name", help="The member's name.", show_default=False),
    organisation: str | None = typer.Option(
        None, "--organisation", help="Their organisation.", show_default=False
    ),
    region: str | None = typer.Option(
        None, "--region", help="Their region, e.g. Wales.", show_default=False
    ),
    tags: list[str] = typer.Option(
        [], "--tag", help="A tag (repeatable; or several separated by ;)."
    ),
    attributes: list[str] = typer.Option(
        [],
        "--attribute",
        "-a",
        metavar="NAME=VALUE",
        help="An attribute (repeatable), e.g. member_type=charity.",
    ),
    pending: bool = typer.Option(
        False, "--pending", help="Add as pending (not mailed until they confirm) instead of active."
    ),
) -> None:
    """Add members by hand; refuses addresses already on the list or forgotten."""
    records = _records(emails, name, organisation, region, tags, attributes, pending)
    with _store() as store:
        added = store.add(records, source=_source("add"))
    for member in added:
        console.print(f"Added {member.email} ({member.status.value}).", highlight=False)


def _records(
    emails: Sequence[str],
    name: str | None,
    organisation: str | None,
    region: str | None,
    tags: Sequence[str],
    attributes: Sequence[str],
    pending: bool,
) -> list[MemberRecord]:
    """Check the command line as an import checks a row: every problem at once."""
    from mailer.store.csvio import profile_text, split_tags
    from mailer.store.emails import InvalidEmail, normalise_email
    from mailer.store.models import column_key

    problems: list[Problem] = []
    where = "mailer subscribers add"
    texts: list[str] = []
    name, organisation, region = (
        profile_text(field, value, texts)
        for field, value in (("name", name), ("organisation", organisation), ("region", region))
    )
    problems += [Problem(where, 0, text) for text in texts]
    parsed: dict[str, str | None] = {}
    for position, pair in enumerate(attributes, start=1):
        key, sep, value = pair.partition("=")
        if not sep or not column_key(key):
            problems.append(Problem(where, position, f"--attribute {pair!r} is not NAME=VALUE"))
        else:
            parsed[column_key(key)] = value.strip()
    addresses: dict[str, str] = {}
    for position, raw in enumerate(emails, start=1):
        try:
            address = normalise_email(raw)
        except InvalidEmail as error:
            problems.append(Problem(where, position, str(error)))
            continue
        if address.key in addresses:
            problems.append(Problem(where, position, f"{raw!r} is given twice"))
        addresses[address.key] = address.email
    if problems:
        raise SubscriberDataError(problems)
    status = SubscriberStatus.pending if pending else None
    return [
        MemberRecord(
            email=address,
            name=name,
            organisation=organisation,
            region=region,
            tags=split_tags(";".join(tags)),
            attributes=parsed,
            status=status,
        )
        for address in addresses.values()
    ]


@app.command("unsubscribe")
def unsubscribe(
    email: MemberEmail,
    reason: str = typer.Option(
        "unsubscribed by an administrator", "--reason", help="Why, for the member's history."
    ),
) -> None:
    """Unsubscribe a member. Only `resubscribe` undoes it."""
    with _store() as store:
        member = store.unsubscribe(email, reason=reason, source=_source("unsubscribe"))
    console.print(f"{member.email} is unsubscribed.", highlight=False)


@app.command("resubscribe")
def resubscribe(
    email: MemberEmail,
    reason: str = typer.Option(
        ...,
        "--reason",
        help="The member's own request, for their history, e.g. 'asked by email on 3 May'.",
        show_default=False,
    ),
) -> None:
    """Make a member active again at their explicit request (also a forgotten one). Logged."""
    with _store() as store:
        member = store.resubscribe(email, reason=reason, source=_source("resubscribe"))
    console.print(f"{member.email} is active.", highlight=False)


@app.command("forget")
def forget(
    email: MemberEmail,
    reason: str = typer.Option(
        "erasure requested by the member", "--reason", help="Why, kept with the suppression entry."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Erase a member's personal data and history for good.

    Only a one-way hash of the address is kept, so that no later import or
    `add` can put the person back on the list. It cannot be undone.
    """
    if not yes and not typer.confirm(
        f"Erase {email} and everything about them? This cannot be undone"
    ):
        raise typer.Exit(1)
    with _store() as store:
        erased = store.forget(email, reason=reason, source=_source("forget"))
    if erased:
        console.print(f"Erased {email}; the address can never be imported again.", highlight=False)
    else:
        console.print(
            f"{email} was not on the list; it is now suppressed, so it can never be added.",
            highlight=False,
        )


@app.command("revoke-links")
def revoke_links(
    email: MemberEmail,
    reason: str = typer.Option(
        "links revoked by an administrator",
        "--reason",
        help="Why, for the member's history, e.g. 'newsletter forwarded to a public list'.",
    ),
) -> None:
    """Make every unsubscribe, preference and confirmation link sent to a member stop working.

    For links that were forwarded or posted where others could use them. The
    member stays on the list as they are; the next email carries new links.
    """
    with _store() as store:
        member = store.revoke_links(email, reason=reason, source=_source("revoke-links"))
    console.print(
        f"Every link sent to {member.email} so far has stopped working; "
        "the next email will carry new ones.",
        highlight=False,
    )


@app.command("purge-unconfirmed")
def purge_unconfirmed() -> None:
    """Delete sign-ups never confirmed whose confirmation link has expired, with their names.

    `mailer serve` does this every hour; run it by hand if the web app is not running.
    """
    from mailer.store.signups import CONFIRM_DAYS
    from mailer.store.signups import purge_unconfirmed as purge

    with _store() as store:
        removed = purge(store)
    noun = "sign-up" if removed == 1 else "sign-ups"
    console.print(
        f"Deleted {removed} unconfirmed {noun} older than {CONFIRM_DAYS} days.", highlight=False
    )
