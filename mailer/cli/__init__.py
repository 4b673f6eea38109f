"""The `mailer` command line: one Typer app, one module per group of commands.

Errors a user can act on (every :class:`~mailer.errors.MailerError`) are printed to
stderr as plain sentences with a non-zero exit status, never as a traceback.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from mailer import __version__
from mailer.cli import (
    apikeys,
    bounces,
    editor,
    events,
    helptext,
    operating,
    reporting,
    scheduling,
    sending,
    serving,
    subscribers,
)
from mailer.cli.common import err_console
from mailer.errors import MailerError

helptext.install()


class _MailerGroup(TyperGroup):
    """Translates MailerError into a message on stderr and an exit status; tidies `--help`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        helptext.tidy(self)  # one way of writing help for every command (mailer.cli.helptext)

    def invoke(self, ctx: Any) -> Any:  # typer vendors click; its Context type is private
        try:
            return super().invoke(ctx)
        except MailerError as error:
            # The message is plain text: brackets in it ("[schedule]") are not markup.
            message = escape(str(error))
            err_console.print(
                f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True
            )
            raise typer.Exit(error.exit_code) from None


app = typer.Typer(
    cls=_MailerGroup,
    name="mailer",
    help="Fortnightly newsletters kept as files: validate, preview, send, and take replies back.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("validate")(editor.validate)
app.command("preview")(editor.preview)
app.command("schema")(editor.schema)
app.command("send")(sending.send)
app.command("report")(reporting.report)
app.command("serve")(serving.serve)
app.command("schedule")(scheduling.schedule)
app.command("health")(operating.health)
app.command("doctor")(operating.doctor)
app.add_typer(subscribers.app, name="subscribers")
app.add_typer(bounces.app, name="bounces")
app.add_typer(apikeys.app, name="api-keys")
app.add_typer(events.app, name="events")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mailer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Fortnightly newsletters kept as files: validate, preview, send, and take replies back.

    Run commands from the project folder (the one with mailer.toml), or set
    MAILER_CONFIG_PATH. Deployment settings come from MAILER_* environment variables.
    """


def main() -> None:
    app()
