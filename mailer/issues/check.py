"""Load and check issue files: YAML in, an :class:`~mailer.issues.model.Issue` or every problem out.

An issue file is read in stages, each of which collects problems instead of
stopping at the first, so that an editor sees everything to fix at once:

    bytes --decode--> text --compose--> YAML nodes (with line marks)
          --build--> plain data --pydantic--> Issue --cross-check with mailer.toml

The YAML nodes are kept so that each pydantic error, whose ``loc`` is a path such
as ``("sections", 2, "image", "alt")``, can be pinned to the line of that key in
the file. Messages are written for editors, not programmers (:mod:`mailer.issues.wording`);
the file's text and its YAML nodes are :mod:`mailer.issues.source`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from mailer.config import Newsletter
from mailer.errors import IssueFileError, Problem
from mailer.issues.alttext import AltProblem, alt_problem
from mailer.issues.dates import off_schedule
from mailer.issues.links import TextMistake
from mailer.issues.model import Issue, IssueCheck, Loc
from mailer.issues.source import IssueSource, NodeBuilder
from mailer.issues.wording import closest, message

__all__ = ["MAX_FILE_BYTES", "check_issue", "check_text", "load_issue"]


def load_issue(path: Path | str, newsletter: Newsletter) -> Issue:
    """The issue in the file; raises IssueFileError carrying every problem if there is any."""
    report = check_issue(path, newsletter)
    if report.issue is None:
        raise IssueFileError(report.errors)
    return report.issue


# Far beyond what fits the email's size budget (100 KB of HTML): a larger file is not an
# issue, and reading it would cost time and memory out of all proportion (53 MB took 64 s).
MAX_FILE_BYTES = 1_000_000


def check_issue(path: Path | str, newsletter: Newsletter) -> IssueCheck:
    """Read and check an issue file; problems name the path as given."""
    where = str(path)
    try:
        with Path(path).open("rb") as stream:
            content = stream.read(MAX_FILE_BYTES + 1)  # never more, whatever the file holds
    except OSError as error:
        return IssueCheck(where, None, (Problem(where, 1, _unreadable(error)),))
    return check_text(content, path, newsletter)


def _too_large(where: str, size: int) -> IssueCheck | None:
    if size <= MAX_FILE_BYTES:
        return None
    message = (
        f"the file is over {MAX_FILE_BYTES // 1_000_000} MB, the most an issue file may be: an "
        "email from it would be far over the size budget (100 KB of HTML, where Gmail clips "
        "it). Is this the right file?"
    )
    return IssueCheck(where, None, (Problem(where, 1, message),))


def check_text(content: str | bytes, path: Path | str, newsletter: Newsletter) -> IssueCheck:
    """Check an issue's text as if read from ``path`` (which names it and gives its slug)."""
    too_large = _too_large(str(path), len(content))
    if too_large is not None:
        return too_large
    source = IssueSource(str(path))
    if isinstance(content, bytes):
        text = source.decode(content)
        if text is None:
            return source.result(None)
    else:
        text = content
    source.set_text(text)
    root = source.compose()
    if root is None:
        return source.result(None)
    try:
        data = NodeBuilder(source).build_root(root)
        issue = _validate(source, data, Path(path).stem)
    except RecursionError:
        source.error(1, "the file is nested too deeply to read: check its indentation")
        return source.result(None)
    _check_segments(source, data, newsletter)
    if issue is not None and not source.errors:
        _warn(source, issue, Path(path).stem)
        _warn_schedule(source, issue, newsletter)
        _warn_alt_text(source, issue)
    return source.result(issue)


def _unreadable(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file: check the name and the folder (issue files end in .yaml)"
    if isinstance(error, IsADirectoryError):
        return "this is a folder, not an issue file"
    if isinstance(error, PermissionError):
        return "the file cannot be read: permission denied"
    return f"the file cannot be read: {error.strerror or error}"


# --- From data to an Issue ----------------------------------------------------------------------


def _validate(source: IssueSource, data: dict[str, object], slug: str) -> Issue | None:
    try:
        return Issue.model_validate({"slug": slug, **data})
    except ValidationError as error:
        found = error.errors(include_url=False)
        # 'subjcet' is not a field; did you mean 'subject'? already says 'subject' is missing.
        misspelt = {
            (tuple(d["loc"][:-1]), closest(str(d["loc"][-1]), tuple(d["loc"][:-1])))
            for d in found
            if d["type"] == "extra_forbidden"
        }
        for details in found:
            loc = tuple(details["loc"])
            if details["type"] != "missing" or (loc[:-1], loc[-1]) not in misspelt:
                _translate(source, details)
        return None


def _translate(source: IssueSource, details: ErrorDetails) -> None:
    """Say one pydantic error in the editor's words, at its line."""
    loc: Loc = tuple(details["loc"])
    ctx: dict[str, Any] = dict(details.get("ctx") or {})
    kind = details["type"]
    if kind == "text_mistakes":
        mistakes: list[TextMistake] = ctx["mistakes"]
        lines = source.line_of_text(loc, [m.fragment for m in mistakes])
        for mistake, line in zip(mistakes, lines, strict=True):
            source.error(line, mistake.message)
        return
    if kind == "missing":
        source.error(source.line_of(loc[:-1]), message(details, loc, ctx))
        return
    source.error(source.line_of(loc), message(details, loc, ctx))


# --- Checks that need mailer.toml, and warnings --------------------------------------------------


def _check_segments(source: IssueSource, data: dict[str, object], newsletter: Newsletter) -> None:
    """Audiences and overrides must name segments mailer.toml defines."""
    for loc, name in _segment_names(data):
        if name not in newsletter.segment_names:
            source.error(source.line_of(loc), _unknown_segment(name, newsletter.segment_names))


def _segment_names(data: dict[str, object]) -> Iterator[tuple[Loc, str]]:
    """Every segment name written in the raw data, with its place; wrong types are pydantic's."""
    sections = data.get("sections")
    for i, section in enumerate(sections if isinstance(sections, list) else []):
        audience = section.get("audience") if isinstance(section, dict) else None
        if isinstance(audience, str):
            yield ("sections", i, "audience"), audience
        elif isinstance(audience, list):
            for j, name in enumerate(audience):
                if isinstance(name, str):
                    yield ("sections", i, "audience", j), name
    overrides = data.get("segments")
    if isinstance(overrides, dict):
        for name in overrides:
            yield ("segments", name), name


def _unknown_segment(name: str, known: list[str]) -> str:
    if not known:
        return f"'{name}' is not a segment: mailer.toml defines no segments"
    close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"'{name}' is not a segment{hint}; mailer.toml defines: {', '.join(known)}"


_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DATED_SLUG = re.compile(r"(\d{4}-\d{2}-\d{2})-")


def _warn(source: IssueSource, issue: Issue, slug: str) -> None:
    """Things that are allowed but probably not what the editor meant."""
    if not _SLUG.fullmatch(slug):
        source.warn(
            1,
            f"the file name '{slug}' becomes the issue's web address: use only lower-case "
            "letters, digits and hyphens, like 2026-12-03-winter-connections.yaml",
        )
    dated = _DATED_SLUG.match(slug)
    if dated:
        try:
            named = dt.date.fromisoformat(dated[1])
        except ValueError:
            named = None
        if named is not None and named != issue.date:
            source.warn(
                source.line_of(("date",)),
                f"the date is {issue.date.isoformat()} but the file name starts with "
                f"{dated[1]}: make them agree",
            )
    for i, section in enumerate(issue.sections):
        if section.layout != "stacked" and section.image is None:
            source.warn(
                source.line_of(("sections", i, "layout")),
                f"layout '{section.layout}' puts an image beside the text, but section {i + 1} "
                "has no image: add one, or remove the layout line",
            )


def _warn_schedule(source: IssueSource, issue: Issue, newsletter: Newsletter) -> None:
    """A date no slot falls on: the scheduler would never send the issue."""
    if newsletter.schedule is None:
        return
    why = off_schedule(issue.date, newsletter.schedule)
    if why is not None:
        source.warn(source.line_of(("date",)), why)


def _warn_alt_text(source: IssueSource, issue: Issue) -> None:
    """Alt text that describes nothing: a file name or a placeholder."""
    for i, section in enumerate(issue.sections):
        if section.image is None:
            continue
        problem = alt_problem(section.image.alt)
        if problem in (AltProblem.file_name, AltProblem.placeholder):
            source.warn(
                source.line_of(("sections", i, "image", "alt")),
                f"the alt text '{section.image.alt.strip()}' of the image in section {i + 1} "
                f"{problem.value}: describe what the picture shows, for people who cannot see "
                'it ("Volunteers serving soup in a chapel vestry")',
            )
