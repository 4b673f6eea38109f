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

    Every problem in every file is reported at once. A file without problems gets
    one line: its status, its number of sections and its subject. Warnings (things
    that are allowed but probably not meant) are shown but do not fail the check.
    """
    # Imported here, like preview's: `mailer --help` stays quick.
    from mailer.cli.common import load_context, print_json
    from mailer.cli.validating import expand_paths, print_checks, summary_json
    from mailer.issues.check import check_issue

    _, newsletter = load_context()
    files, empty_folders = expand_paths(paths)
    checks = [check_issue(path, newsletter) for path in files]
    if as_json:
        print_json(summary_json(checks, empty_folders))
    else:
        print_checks(checks, empty_folders)
    if empty_folders or any(not check.ok for check in checks):
        raise typer.Exit(1)


def preview(
    issue: Path = typer.Argument(..., help="The issue file to preview.", show_default=False),
    segment: list[str] = typer.Option(
        [], "--segment", "-s", help="Only the variants seen by this segment (repeatable)."
    ),
    out: Path = typer.Option(
        Path("preview"), "--out", "-o", help="Folder to write the previews to."
    ),
) -> None:
    """Write every variant's HTML and text, plus an index page, and print a table of variants.

    By default: the general variant and one per segment the issue names. With
    --segment NAME, only what members of that segment get; NAME+OTHER previews
    the variant for members of both.
    """
    # Imported here: only this command needs the renderer, and `mailer --help` stays quick.
    from mailer.cli.common import console, load_context
    from mailer.issues.check import load_issue
    from mailer.render.preview import preview_keys, preview_table, write_preview

    settings, newsletter = load_context()
    loaded = load_issue(issue, newsletter)
    keys = preview_keys(loaded, newsletter, only=segment)
    entries = write_preview(loaded, newsletter, out, keys, base_url=settings.base_url)
    console.print(preview_table(entries, newsletter))
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
