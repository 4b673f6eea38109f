"""`mailer health` and `mailer doctor`: is the newsletter going out, and will it."""

from __future__ import annotations

import typer


def health(
    as_json: bool = typer.Option(False, "--json", help="Print the state and problems as JSON."),
) -> None:
    """Exit 0 when the newsletter is going out: the store answers, a scheduler is running (its
    heartbeat is fresh) and the last slot did not fail, get stuck or go missed; otherwise exit 1
    and say why. For container and systemd health checks of the scheduler.
    """
    import datetime as dt

    from sqlalchemy.exc import SQLAlchemyError

    from mailer.cli.common import console, err_console, load_context, print_json
    from mailer.errors import MailerError
    from mailer.scheduling.runner import require_schedule
    from mailer.scheduling.status import health_problems, scheduler_health
    from mailer.store.database import make_engine

    settings, newsletter = load_context()
    schedule = require_schedule(newsletter)
    now = dt.datetime.now(dt.UTC)
    engine = make_engine(settings.database_url)
    try:
        state = scheduler_health(engine, schedule, now)
        problems = health_problems(engine, schedule, now)
    except (MailerError, SQLAlchemyError) as error:
        state, problems = {}, [f"the database does not answer: {error}"]
    finally:
        engine.dispose()
    if as_json:
        print_json({"healthy": not problems, "problems": problems, "scheduler": state})
    elif problems:
        for problem in problems:
            err_console.print(f"unhealthy: {problem}", highlight=False, markup=False)
    else:
        console.print(f"healthy: next slot {state['next_run']}", highlight=False)
    if problems:
        raise typer.Exit(1)


def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print every check as JSON."),
) -> None:
    """Check now what sending will need: the transport and its keys, MAILER_SECRET_KEY, an
    https MAILER_BASE_URL for real mail, the database and its schema, the templates (rendering
    the next slot's issue if it is ready), the editors' addresses, MAILER_NOTICE_URL and the
    webhook key. The scheduler and `mailer serve` refuse to start on the same failures.

    For real mail it then looks up the From domain's SPF, DKIM and DMARC records and says
    what Gmail's and Yahoo's bulk-sender rules still need; offline, it says which checks it
    could not make (marked --). Exit 1 if any check fails.
    """
    from mailer.cli.common import console, load_context, print_json
    from mailer.scheduling.checks import run_checks

    settings, newsletter = load_context()
    checks = run_checks(settings, newsletter, "doctor")
    if as_json:
        print_json([check.to_json() for check in checks])
    else:
        for check in checks:
            mark = (
                "[bold red]FAIL[/]"
                if not check.ok
                else "[green]ok[/]  "
                if check.checked
                else "[yellow]--[/]  "
            )
            console.print(f"{mark} {check.name}: ", end="", highlight=False)
            console.print(check.message, highlight=False, markup=False)
        unchecked = [check.name for check in checks if not check.checked]
        if unchecked:
            console.print(f"Not checked (--): {', '.join(unchecked)}.", highlight=False)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)
