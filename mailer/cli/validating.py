"""Output of `mailer validate`: which files to check, and what each check found, as lines or JSON.

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

from mailer.config import Newsletter
from mailer.errors import Problem
from mailer.issues.model import IssueCheck

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


def with_size_budget(check: IssueCheck, newsletter: Newsletter) -> IssueCheck:
    """The check, with the size budget ``preview`` and ``send`` apply checked too.

    Every variant a send of the issue can make from its segments is compiled; one over
    the limit is a problem at the ``sections:`` line (the sections make the size), one
    near it a warning.
    """
    from mailer.render.build import size_check
    from mailer.render.preview import preview_keys

    issue = check.issue
    if issue is None:
        return check
    problems, warnings = size_check(issue, newsletter, preview_keys(issue, newsletter))
    if not problems and not warnings:
        return check
    line = _sections_line(Path(check.path))
    return IssueCheck(
        check.path,
        None if problems else issue,
        check.errors + tuple(Problem(check.path, line, text) for text in problems),
        check.warnings + tuple(Problem(check.path, line, text) for text in warnings),
    )


def _sections_line(path: Path) -> int:
    try:
        with path.open(encoding="utf-8", errors="replace") as lines:
            return next((n for n, text in enumerate(lines, 1) if text.startswith("sections:")), 1)
    except OSError:
        return 1


def print_checks(checks: Sequence[IssueCheck], empty_folders: Sequence[Path]) -> None:
    """Each file's problems and warnings (or its ok line), then one summary line."""
    for folder in empty_folders:
        typer.echo(f"{folder}: no issue files ({ISSUE_GLOB}) in this folder", err=True)
    for check in checks:
        for problem in check.errors:
            typer.echo(str(problem))
        for warning in check.warnings:
            typer.echo(_warning_line(warning))
        if check.issue is not None:
            typer.echo(f"{check.path}: {typer.style('ok', fg='green')} {_describe(check)}")
    typer.echo(_summary(checks))


def summary_json(checks: Sequence[IssueCheck], empty_folders: Sequence[Path]) -> dict[str, Any]:
    """The same results for scripts: totals, then one entry per file."""
    errors = sum(len(check.errors) for check in checks)
    return {
        "ok": errors == 0 and not empty_folders,
        "checked": len(checks),
        "errors": errors,
        "warnings": sum(len(check.warnings) for check in checks),
        "empty_folders": [str(folder) for folder in empty_folders],
        "files": [_file_json(check) for check in checks],
    }


def _warning_line(warning: Problem) -> str:
    return (
        f"{warning.path}:{warning.line}: {typer.style('warning', fg='yellow')}: {warning.message}"
    )


def _describe(check: IssueCheck) -> str:
    issue = check.issue
    assert issue is not None
    sections = _plural(len(issue.sections), "section")
    when = f"{issue.date.day} {issue.date:%B %Y}"
    return f"({issue.status}, {when}, {sections}): {issue.subject}"


def _summary(checks: Sequence[IssueCheck]) -> str:
    errors = sum(len(check.errors) for check in checks)
    warnings = sum(len(check.warnings) for check in checks)
    parts = [f"{_plural(len(checks), 'file')} checked", _plural(errors, "problem")]
    if warnings:
        parts.append(_plural(warnings, "warning"))
    return ", ".join(parts)


def _file_json(check: IssueCheck) -> dict[str, Any]:
    issue = check.issue
    return {
        "path": check.path,
        "ok": check.ok,
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
        "errors": [_problem_json(problem) for problem in check.errors],
        "warnings": [_problem_json(problem) for problem in check.warnings],
    }


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {"line": problem.line, "message": problem.message}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
