"""`mailer preview --serve`: the editor's studio, under uvicorn, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

from pathlib import Path

import typer

from mailer.cli.common import err_console


def serve_studio(issue: Path | None, host: str, port: int, *, allow_remote: bool) -> None:
    """Run the studio until Ctrl+C; refuse another interface than loopback without --allow-remote."""
    import uvicorn

    from mailer.cli.common import load_context
    from mailer.config import is_loopback
    from mailer.store import open_store
    from mailer.studio import Workspace, create_studio

    if not is_loopback(host) and not allow_remote:
        raise typer.BadParameter(
            f"the studio can send mail, so it listens only on this machine (127.0.0.1); to "
            f"listen on {host}, where anyone who reaches it can send tests to the editors, add "
            "--allow-remote",
            param_hint="--host",
        )
    settings, newsletter = load_context()
    if not is_loopback(host):
        err_console.print(
            f"Listening on {host}: anyone who can reach this machine can open the studio and send "
            "tests to the editors, over plain HTTP. Stop it (Ctrl+C) when you are done.",
            style="bold yellow",
        )
    first = None
    if issue is not None:
        if not issue.is_file():
            raise typer.BadParameter(f"{issue}: no such issue file", param_hint="ISSUE")
        if issue.resolve().parent != newsletter.issues_dir.resolve():
            raise typer.BadParameter(
                f"{issue} is not in the issues folder ({newsletter.issues_dir}): the studio "
                "shows the issues there",
                param_hint="ISSUE",
            )
        first = issue.stem
    with open_store(settings.database_url) as store:
        workspace = Workspace(settings, store)
        app = create_studio(workspace, host=host, port=port, first=first)
        shown = f"[{host}]" if ":" in host else host
        err_console.print(
            f"The studio for {newsletter.name} is at http://{shown}:{port}/ : it updates as you "
            "save issues, templates or mailer.toml. Ctrl+C stops it.",
            highlight=False,
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        uvicorn.Server(config).run()
