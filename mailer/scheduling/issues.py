"""Which issue a slot sends: the one file in ``issues/`` whose ``date:`` is the slot's day.

Every ``*.yaml`` file in the newsletter's issues folder is checked as ``mailer
validate`` would. For one slot day, the answer (:class:`SlotIssue`) is:

``ready``      exactly one valid issue with that date says ``status: ready``: it is sent
``ambiguous``  more than one does: nothing is sent until one is left
``invalid``    a file for that day does not validate: nothing is sent
``draft``      the issue for that day still says ``status: draft``
``missing``    no file is for that day

A file that does not validate has no trustworthy ``date:``; it counts for the day
its file name starts with (``2026-12-17-….yaml``), as the editor's guide (docs/editors.md) asks editors to
name them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from mailer.config import Newsletter
from mailer.errors import display_path
from mailer.issues.check import check_issue, check_text
from mailer.issues.model import Issue, IssueCheck

__all__ = ["Catalogue", "IssueFiles", "IssueState", "SlotIssue", "read_catalogue"]

_DATED = re.compile(r"^(\d{4}-\d{2}-\d{2})")
MAX_PROBLEMS = 3  # per file, in a notice: enough to see what is wrong, `mailer validate` says all


class IssueState(StrEnum):
    ready = "ready"
    ambiguous = "ambiguous"
    invalid = "invalid"
    draft = "draft"
    missing = "missing"


@dataclass(frozen=True)
class SlotIssue:
    """The issue a slot would send, or why there is none."""

    day: dt.date
    state: IssueState
    issue: Issue | None = None  # set when ready
    path: Path | None = None  # the file of the ready issue, or of the draft
    files: tuple[Path, ...] = ()  # every file for the day
    problems: tuple[str, ...] = ()  # of invalid files, as `PATH:LINE: message`

    def explain(self) -> str:
        """One paragraph for the editors: what is there for the day and what to do."""
        day = f"{self.day.isoformat()}"
        names = ", ".join(display_path(p) for p in self.files)
        if self.state == IssueState.ready:
            return f"{names} is ready."
        if self.state == IssueState.ambiguous:
            return (
                f"More than one issue with `date: {day}` says `status: ready` ({names}): "
                "only one can go out. Set the others to another date or to `status: draft`."
            )
        if self.state == IssueState.invalid:
            shown = "\n".join(f"  {problem}" for problem in self.problems)
            return (
                f"The issue for {day} does not validate:\n{shown}\n"
                f"Run `mailer validate {names}` to see every problem."
            )
        if self.state == IssueState.draft:
            return (
                f"{names} still says `status: draft`. Change it to `status: ready` once it "
                "is checked and proofread."
            )
        return (
            f"No file in the issues folder has `date: {day}`. Write the issue (name it "
            f"{day}-some-title.yaml), check it with `mailer validate`, and set "
            "`status: ready`."
        )


@dataclass
class Catalogue:
    """Every issue file, checked once, by the day it is for."""

    by_day: dict[dt.date, list[IssueCheck]] = field(default_factory=dict)

    def for_day(self, day: dt.date) -> SlotIssue:
        reports = self.by_day.get(day, [])
        files = tuple(Path(report.path) for report in reports)
        valid = [r for r in reports if r.issue is not None]
        ready = [r for r in reports if r.issue is not None and r.issue.status == "ready"]
        invalid = [r for r in reports if r.issue is None]
        if len(ready) > 1:
            return SlotIssue(day, IssueState.ambiguous, files=files)
        if invalid:
            problems = tuple(str(p) for r in invalid for p in r.errors[:MAX_PROBLEMS])
            return SlotIssue(day, IssueState.invalid, files=files, problems=problems)
        if ready:
            [found] = ready
            return SlotIssue(day, IssueState.ready, found.issue, Path(found.path), files)
        if valid:
            draft = next(r for r in reports if r.issue is not None)
            return SlotIssue(day, IssueState.draft, draft.issue, Path(draft.path), files)
        return SlotIssue(day, IssueState.missing)


def read_catalogue(newsletter: Newsletter) -> Catalogue:
    """Check every issue file in the newsletter's issues folder (a missing folder is empty)."""
    return IssueFiles(newsletter).catalogue()


class IssueFiles:
    """The issues folder, read again on every call; a file is checked again only when its
    content changed (the scheduler looks every minute, and checking is the slow part)."""

    def __init__(self, newsletter: Newsletter) -> None:
        self.newsletter = newsletter
        self._checked: dict[Path, tuple[bytes, IssueCheck]] = {}

    def catalogue(self) -> Catalogue:
        by_day: dict[dt.date, list[IssueCheck]] = defaultdict(list)
        folder = self.newsletter.issues_dir
        paths = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
        self._checked = {path: self._check(path) for path in paths}
        for path, (_, report) in self._checked.items():
            day = report.issue.date if report.issue is not None else _named_day(path)
            if day is not None:
                by_day[day].append(report)
        return Catalogue(dict(by_day))

    def _check(self, path: Path) -> tuple[bytes, IssueCheck]:
        try:
            content = path.read_bytes()
        except OSError:  # gone or unreadable since the listing: check_issue says which
            return b"", check_issue(path, self.newsletter)
        digest = hashlib.sha256(content).digest()
        known = self._checked.get(path)
        if known is not None and known[0] == digest:
            return known
        return digest, check_text(content, path, self.newsletter)


def _named_day(path: Path) -> dt.date | None:
    match = _DATED.match(path.name)
    if match is None:
        return None
    try:
        return dt.date.fromisoformat(match[1])
    except ValueError:
        return None
