"""Editors' commands: validate issue files and preview every segment's version."""

from __future__ import annotations

from pathlib import Path

import typer


def validate(
    paths: list[Path] = typer.Argument(
        ...,
        metavar="PATH",
        help="Issue files to check; a folder means every *.yaml file in it.",
        show_default=False,
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the results as JSON (files, errors, warnings) instead."
    ),
) -> None:
    """Check issue files; print each problem as PATH:LINE: message. Exit 1 if any.

    Every problem in every file is reported at once, the size budget ``send``
    applies included (every variant is compiled). A file without problems gets
    one line: its status, its number of sections and its subject. Warnings (things
    that are allowed but probably not meant) are shown but do not fail the check.
    """
    # Imported here, like preview's: `mailer --help` stays quick.
    from mailer.cli.common import load_context, print_json
    from mailer.cli.validating import expand_paths, print_checks, summary_json, with_size_budget
    from mailer.issues.check import check_issue

    _, newsletter = load_context()
    files, empty_folders = expand_paths(paths)
    checks = [with_size_budget(check_issue(path, newsletter), newsletter) for path in files]
    if as_json:
        print_json(summary_json(checks, empty_folders))
    else:
        print_checks(checks, empty_folders)
    if empty_folders or any(not check.ok for check in checks):
        raise typer.Exit(1)


def preview(
    issue: Path | None = typer.Argument(
        None,
        metavar="[ISSUE]",
        help="The issue file to preview; with --serve, the one to open first (optional).",
        show_default=False,
    ),
    segment: list[str] = typer.Option(
        [], "--segment", "-s", help="Only the variants seen by this segment (repeatable)."
    ),
    out: Path = typer.Option(
        Path("preview"), "--out", "-o", help="Folder to write the previews to."
    ),
    serve: bool = typer.Option(
        False,
        "--serve",
        help="Run the studio instead: a live page of every issue that updates as you save, "
        "with checks beside it and a 'send me a test' button.",
    ),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="With --serve: the address to listen on. Anything but this machine's own needs "
        "--allow-remote.",
    ),
    port: int = typer.Option(
        8025, "--port", min=1, max=65535, help="With --serve: the port to listen on."
    ),
    allow_remote: bool = typer.Option(
        False,
        "--allow-remote",
        help="With --serve: let --host be an address other computers can reach. The studio can "
        "send tests to the editors, so only do this on a network you trust.",
    ),
) -> None:
    """Write every variant's HTML and text, plus an index page, and print a table of variants.

    By default: every variant the subscriber list produces (with how many members
    get each), the general variant, and one per segment the issue names. With
    --segment NAME, only what members of that segment get; NAME+OTHER previews
    the variant for members of both. Files of variants an earlier preview wrote
    to the folder and this one does not are removed.

    With --serve, runs the studio at http://127.0.0.1:8025/ instead: every issue in
    the issues folder, updated within a second of each save (see docs/editors.md).
    """
    if serve:
        from mailer.cli.studio import serve_studio

        serve_studio(issue, host, port, allow_remote=allow_remote)
        return
    if issue is None:
        raise typer.BadParameter(
            "give the issue file to preview, or --serve to run the studio", param_hint="ISSUE"
        )
    # Imported here: only this command needs the renderer, and `mailer --help` stays quick.
    from mailer.audience.plan import members_by_variant
    from mailer.cli.common import console, load_context
    from mailer.issues.check import load_issue
    from mailer.render.preview import preview_keys, preview_table, write_preview
    from mailer.store import open_store

    settings, newsletter = load_context()
    loaded = load_issue(issue, newsletter)
    with open_store(settings.database_url) as store:
        members = members_by_variant(store, loaded, newsletter)
    keys = preview_keys(loaded, newsletter, only=segment, extra=members)
    entries = write_preview(
        loaded, newsletter, out, keys, base_url=settings.base_url, members=members
    )
    console.print(preview_table(entries, newsletter, width=console.width))
    index = out / "index.html"
    console.print(f"Wrote {len(entries) * 2 + 1} files to {out}/: open {index} in a browser.")


def schema(
    write: bool = typer.Option(
        False,
        "--write",
        help="Write it to the issues folder as issue.schema.json (where .vscode/settings.json "
        "points) instead of printing it.",
    ),
) -> None:
    """Print the issue file's JSON Schema (draft 2020-12), for text editors.

    Generated from mailer's issue model, with the editor's guide's descriptions
    and examples on every field and mailer.toml's segment names as the only names
    an audience may use. VS Code with the YAML extension then completes field
    names and underlines mistakes as you type (see docs/editors.md). Run it with
    --write after changing the segments in mailer.toml.
    """
    from mailer.cli.common import load_context
    from mailer.errors import display_path
    from mailer.issues.schema import SCHEMA_FILE, schema_text

    _, newsletter = load_context()
    text = schema_text(newsletter)
    if not write:
        typer.echo(text, nl=False)
        return
    target = newsletter.issues_dir / SCHEMA_FILE
    target.write_text(text, encoding="utf-8")
    typer.echo(f"Wrote {display_path(target)}")
