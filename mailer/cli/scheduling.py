"""`mailer schedule`: the next fortnightly slots, the issue each would send, and its state."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

if TYPE_CHECKING:
    from mailer.config import Schedule
    from mailer.scheduling.status import SlotView

# What each state means, under the table (only those shown).
_MEANINGS = {
    "ready": "will be sent at the slot",
    "draft": "still `status: draft`: not sent unless it is ready by then",
    "missing": "no issue file has this date",
    "invalid": "the issue file does not validate (`mailer validate`)",
    "ambiguous": "more than one ready issue has this date: none is sent",
    "sending": "a scheduler is sending it now",
    "interrupted": "its send was stopped; the scheduler resumes it",
    "sent": "sent",
    "incomplete": "sent, with deliveries failed or unknown (`mailer send ISSUE` shows them)",
    "failed": "the send stopped on an error; the editors were told",
    "no_issue": "nothing was ready: nothing sent, the editors were told",
    "missed": "the scheduler was down for too long: nothing sent, the editors were told",
}
_STYLES = {"ready": "green", "sent": "green", "draft": "yellow", "sending": "cyan"}


def schedule(
    count: int = typer.Option(
        6, "--count", "-n", min=1, max=200, help="How many upcoming slots to list."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the schedule and the slots as JSON, for scripts."
    ),
) -> None:
    """List the next fortnightly slots, the issue each would send, and that issue's state.

    Slots come from \\[schedule] in mailer.toml; the issue for a slot is the file in
    the issues folder whose `date:` is the slot's day. The last slot is shown too,
    with what the scheduler (`python scheduler.py`) did about it.
    """
    from mailer.cli.common import console, load_context, print_json
    from mailer.scheduling.runner import require_schedule, utcnow
    from mailer.scheduling.slots import latest_due, upcoming
    from mailer.scheduling.status import slot_views
    from mailer.store import open_store

    settings, newsletter = load_context()
    rule = require_schedule(newsletter)
    now = utcnow()
    last = latest_due(rule, now)
    slots = ([last] if last else []) + upcoming(rule, now, count)
    with open_store(settings.database_url) as store:
        views = slot_views(newsletter, store.engine, slots)
    past, coming = (views[:1], views[1:]) if last else ([], views)
    if as_json:
        print_json(
            {
                "schedule": _rule_json(rule),
                "now": now.isoformat(),
                "last": past[0].to_json() if past else None,
                "slots": [view.to_json() for view in coming],
            }
        )
        return
    console.print(
        f"Every other {rule.weekday.value.capitalize()} at {rule.time:%H:%M} ({rule.timezone}); "
        f"a missed slot is sent up to {rule.lateness_hours:g} hours late; editors are reminded "
        f"{rule.reminder_hours:g} hours ahead.",
        highlight=False,
    )
    console.print(_table(past, coming))
    for state in dict.fromkeys(view.state for view in views):
        console.print(f"  [bold]{state}[/]: {_MEANINGS.get(state, state)}", highlight=False)


def _table(past: list[SlotView], coming: list[SlotView]) -> Table:
    table = Table(title_justify="left")
    table.add_column("Slot", no_wrap=True)
    # Wrapped at spaces; a file name too long for the column is shortened (…), never
    # folded over lines: its date, first, says which it is.
    table.add_column("Issue", overflow="ellipsis")
    table.add_column("State", no_wrap=True)
    for view in past:
        table.add_row(*_cells(view, "last"), style="dim")
    if past:
        table.add_section()
    for view in coming:
        table.add_row(*_cells(view))
    return table


def _cells(view: SlotView, label: str = "") -> tuple[str, str, str]:
    when = f"{view.slot.at:%a} {view.slot}" + (f" ({label})" if label else "")
    style = _STYLES.get(view.state)
    state = f"[{style}]{view.state}[/]" if style else view.state
    issue = view.file or view.issue or "-"
    if view.meant:
        issue += "".join(f"\n(dated off the schedule: {file}?)" for file in view.meant)
    return when, issue, state


def _rule_json(rule: Schedule) -> dict[str, object]:
    return {
        "weekday": rule.weekday.value,
        "time": rule.time.strftime("%H:%M:%S"),
        "timezone": rule.timezone,
        "anchor": rule.anchor.isoformat(),
        "lateness_hours": rule.lateness_hours,
        "reminder_hours": rule.reminder_hours,
        "editors": [str(editor) for editor in rule.editors],
    }
