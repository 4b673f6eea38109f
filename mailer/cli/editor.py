"""Editors' commands: validate issue files and preview every segment's version."""

from __future__ import annotations

from pathlib import Path

import typer


def validate(
    paths: list[Path] = typer.Argument(..., help="Issue files to check.", show_default=False),
) -> None:
    """Check issue files; print each problem as PATH:LINE: message. Exit 1 if any."""
    raise NotImplementedError  # built by the loader work


def preview(
    issue: Path = typer.Argument(..., help="The issue file to preview.", show_default=False),
    segment: list[str] = typer.Option(
        [], "--segment", "-s", help="Only the variants seen by this segment (repeatable)."
    ),
    out: Path = typer.Option(Path("preview"), "--out", "-o", help="Folder to write the previews to."),
) -> None:
    """Write every variant's HTML and text, plus an index page, and print a table of variants."""
    raise NotImplementedError  # built by the rendering work
