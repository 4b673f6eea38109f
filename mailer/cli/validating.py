"""Output of `mailer validate`: which files to check, and their reports as lines or JSON.

Lines are for people and for editors' "jump to error" features: every problem is
``PATH:LINE: message``, every warning ``PATH:LINE: warning: message``, so that one
pattern finds both. A file without problems gets ``PATH: ok (…)``, which that
pattern does not match.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import typer

from mailer.errors import Problem
from mailer.issues.model import IssueReport

ISSUE_GLOB = "*.yaml"


def expand_paths(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """The files to check, in order and once each, and the folders that held none.

    A folder stands for its ``*.yaml`` files (not hidden ones, such as editors' lock
    files). Anything else is kept as given, so that a mistyped name is reported
    as a problem of that file.
    """
    files: list[Path] = []
    empty: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob(ISSUE_GLOB) if not p.name.startswith("."))
            if not found:
                empty.append(path)
            files.extend(found)
        else:
            files.append(path)
    return list(dict.fromkeys(files)), empty


def print_reports(reports: Sequence[IssueReport], empty_folders: Sequence[Path]) -> None:
    """Each file's problems and warnings (or its ok line), then one summary line."""
    for folder in empty_folders:
        typer.echo(f"{folder}: no issue files ({ISSUE_GLOB}) in this folder", err=True)
    for report in reports:
        for problem in report.errors:
            typer.echo(str(problem))
        for warning in report.warnings:
            typer.echo(_warning_line(warning))
        if report.issue is not None:
            typer.echo(f"{report.path}: {typer.style('ok', fg='green')} {_describe(report)}")
    typer.echo(_summary(reports))


def summary_json(reports: Sequence[IssueReport], empty_folders: Sequence[Path]) -> dict[str, Any]:
    """The same results for scripts: totals, then one entry per file."""
    errors = sum(len(report.errors) for report in reports)
    return {
        "ok": errors == 0 and not empty_folders,
        "checked": len(reports),
        "errors": errors,
        "warnings": sum(len(report.warnings) for report in reports),
        "empty_folders": [str(folder) for folder in empty_folders],
        "files": [_file_json(report) for report in reports],
    }


def _warning_line(warning: Problem) -> str:
    return (
        f"{warning.path}:{warning.line}: {typer.style('warning', fg='yellow')}: {warning.message}"
    )


def _describe(report: IssueReport) -> str:
    issue = report.issue
    assert issue is not None
    sections = _plural(len(issue.sections), "section")
    when = f"{issue.date.day} {issue.date:%B %Y}"
    return f"({issue.status}, {when}, {sections}): {issue.subject}"


def _summary(reports: Sequence[IssueReport]) -> str:
    errors = sum(len(report.errors) for report in reports)
    warnings = sum(len(report.warnings) for report in reports)
    parts = [f"{_plural(len(reports), 'file')} checked", _plural(errors, "problem")]
    if warnings:
        parts.append(_plural(warnings, "warning"))
    return ", ".join(parts)


def _file_json(report: IssueReport) -> dict[str, Any]:
    issue = report.issue
    return {
        "path": report.path,
        "ok": report.ok,
        "issue": None
        if issue is None
        else {
            "slug": issue.slug,
            "subject": issue.subject,
            "date": issue.date.isoformat(),
            "status": issue.status,
            "sections": len(issue.sections),
            "segments": sorted(issue.segments_named()),
        },
        "errors": [_problem_json(problem) for problem in report.errors],
        "warnings": [_problem_json(problem) for problem in report.warnings],
    }


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {"line": problem.line, "message": problem.message}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
