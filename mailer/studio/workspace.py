"""The studio's view of the project folder: issue files, mailer.toml, templates, the list.

A :class:`Workspace` checks every issue file (again only when its content changed),
keeps mailer.toml loaded (and its error, if it stops being valid, without
dying), counts how many members get each variant, and compiles variants once
per version of the files they come from. :meth:`Workspace.changed` is told which
files changed; it bumps :attr:`Workspace.version`, which the page's live updates
follow.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mailer.audience.plan import members_by_variant
from mailer.config import Newsletter, Settings, load_newsletter
from mailer.errors import MailerError
from mailer.issues.check import check_text
from mailer.issues.model import Issue, IssueCheck
from mailer.render import CompiledVariant, render_issue
from mailer.store import SubscriberStore

__all__ = ["IssueFile", "Workspace"]

log = logging.getLogger("mailer.studio")

COUNTS_FOR = 30.0  # seconds the members-per-variant counts are reused before counting again
_CACHED_VARIANTS = 64


@dataclass(frozen=True)
class IssueFile:
    """One file of the issues folder, as last checked."""

    path: Path
    shown: str  # the path as the editor would type it
    digest: str  # of its content: a new one means it changed
    check: IssueCheck

    @property
    def slug(self) -> str:
        return self.path.stem

    @property
    def issue(self) -> Issue | None:
        return self.check.issue


class Workspace:
    """The files the studio shows, read again whenever they change."""

    def __init__(self, settings: Settings, store: SubscriberStore | None) -> None:
        self.settings = settings
        self.store = store
        self.version = 0
        self._lock = threading.RLock()
        self._files: dict[Path, IssueFile] = {}
        self._variants: dict[tuple[str, str, frozenset[str], int], CompiledVariant] = {}
        self._counts: dict[tuple[str, str], tuple[float, dict[frozenset[str], int]]] = {}
        self._generation = 0  # templates and mailer.toml: everything compiled depends on them
        self.newsletter: Newsletter | None = None
        self.config_error: str | None = None
        self.reload_config()

    @property
    def root(self) -> Path:
        return self.settings.config_path.resolve().parent

    def reload_config(self) -> None:
        """Read mailer.toml again; keep the last good one, and the error, if it is now wrong."""
        try:
            newsletter = load_newsletter(self.settings.config_path)
        except MailerError as error:
            self.config_error = str(error)
            log.warning("mailer.toml: %s", error)
            return
        with self._lock:
            self.newsletter, self.config_error = newsletter, None

    def watched(self) -> list[Path]:
        """The folders and files whose changes matter: issues, templates, mailer.toml."""
        paths = [self.settings.config_path.resolve()]
        if self.newsletter is not None:
            paths += [self.newsletter.issues_dir.resolve(), self.newsletter.templates_dir.resolve()]
        return [path for path in paths if path.exists()]

    def changed(self, paths: Iterable[Path]) -> None:
        """Some files changed on disk: read what depends on them again."""
        changed = [path.resolve() for path in paths]
        config = self.settings.config_path.resolve()
        with self._lock:
            if config in changed:
                self.reload_config()
            templates = self.newsletter.templates_dir.resolve() if self.newsletter else None
            if config in changed or any(templates in p.parents for p in changed if templates):
                self._generation += 1
                self._variants.clear()
                self._counts.clear()
            self.version += 1

    # --- Issue files ------------------------------------------------------------------------

    def files(self) -> list[IssueFile]:
        """Every issue file in the issues folder, checked, newest date first."""
        if self.newsletter is None:
            return []
        folder = self.newsletter.issues_dir
        paths = sorted(p for p in folder.glob("*.yaml") if not p.name.startswith("."))
        found = [self._file(path) for path in paths]
        with self._lock:
            self._files = {file.path: file for file in found}
        return sorted(found, key=lambda file: file.slug, reverse=True)

    def file(self, slug: str) -> IssueFile | None:
        """The issue file named ``slug`` (its file name without .yaml), checked now."""
        return next((file for file in self.files() if file.slug == slug), None)

    def _file(self, path: Path) -> IssueFile:
        assert self.newsletter is not None
        try:
            content = path.read_bytes()
        except OSError:
            content = b""
        digest = hashlib.sha256(content).hexdigest()[:16]
        known = self._files.get(path)
        if known is not None and known.digest == digest:
            return known
        shown = _shown(path, self.root)
        return IssueFile(path, shown, digest, check_text(content, shown, self.newsletter))

    # --- Variants -----------------------------------------------------------------------------

    def members(self, file: IssueFile) -> dict[frozenset[str], int]:
        """How many active members get each variant of the issue, the largest first."""
        issue = file.issue
        if issue is None or self.store is None or self.newsletter is None:
            return {}
        key = (file.slug, file.digest)
        with self._lock:
            known = self._counts.get(key)
        if known is not None and time.monotonic() - known[0] < COUNTS_FOR:
            return known[1]
        counts = members_by_variant(self.store, issue, self.newsletter)
        with self._lock:
            self._counts[key] = (time.monotonic(), counts)
        return counts

    def compile(self, file: IssueFile, key: frozenset[str]) -> CompiledVariant:
        """The variant compiled (once per version of the issue, templates and mailer.toml)."""
        issue, newsletter = file.issue, self.newsletter
        assert issue is not None and newsletter is not None
        cache_key = (file.slug, file.digest, key, self._generation)
        with self._lock:
            known = self._variants.get(cache_key)
        if known is not None:
            return known
        archive = f"{self.settings.base_url}/archive/{issue.slug}"
        [compiled] = render_issue(issue, newsletter, [key], archive_url=archive)
        with self._lock:
            if len(self._variants) >= _CACHED_VARIANTS:
                self._variants.clear()
            self._variants[cache_key] = compiled
        return compiled


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)
