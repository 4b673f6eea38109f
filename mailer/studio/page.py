"""What the studio's page shows for one request: the issues, the chosen variant, its checks.

:func:`build_view` turns the workspace and the page's query (issue, variant,
member, dark mode, pictures off, HTML or text) into a :class:`View` for the
template. Nothing here raises on a bad file: problems of the issue file, of
mailer.toml or of the templates become the page's ``problems``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from mailer.config import Newsletter
from mailer.errors import MailerError
from mailer.render import CompiledVariant, RenderedMessage, variant_name
from mailer.render.checks import VariantChecks, check_variant
from mailer.render.support import SupportNote, support_notes
from mailer.render.variants import ordered_segments
from mailer.studio.members import Chosen, choose, sample
from mailer.studio.views import dark_mode, images_off
from mailer.studio.workspace import IssueFile, Workspace

__all__ = ["Query", "VariantLink", "View", "build_view", "email_html", "parse_variant"]

log = logging.getLogger("mailer.studio")


@dataclass(frozen=True)
class Query:
    """What the page was asked to show (its address's query string)."""

    slug: str | None = None
    variant: str | None = None  # 'general', 'youth+wales'
    member: int | None = None
    dark: bool = False
    images_off: bool = False
    text: bool = False

    @classmethod
    def of(cls, slug: str | None, params: Mapping[str, str]) -> Query:
        member = params.get("member", "")
        return cls(
            slug=slug,
            variant=params.get("variant") or None,
            member=int(member) if member.isdigit() else None,
            dark=params.get("dark") == "1",
            images_off=params.get("images") == "off",
            text=params.get("view") == "text",
        )

    def params(self, **changes: object) -> str:
        """This query's string, with some parts changed: '?variant=youth&dark=1'."""
        values: dict[str, object] = {
            "variant": self.variant,
            "member": self.member,
            "dark": "1" if self.dark else None,
            "images": "off" if self.images_off else None,
            "view": "text" if self.text else None,
        }
        values.update(changes)
        kept = {key: value for key, value in values.items() if value not in (None, "", False)}
        return "?" + urlencode(kept) if kept else ""


@dataclass(frozen=True)
class VariantLink:
    name: str
    label: str  # the segments' labels, or 'no segment of this issue'
    members: int | None
    current: bool
    query: str


@dataclass
class View:
    """Everything the page template needs."""

    query: Query
    files: list[IssueFile]
    newsletter: Newsletter | None
    config_error: str | None
    file: IssueFile | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    variants: list[VariantLink] = field(default_factory=list)
    segments: list[tuple[str, str, bool]] = field(default_factory=list)  # name, label, chosen
    variant: CompiledVariant | None = None
    message: RenderedMessage | None = None
    chosen: Chosen | None = None
    checks: VariantChecks | None = None
    support: list[SupportNote] = field(default_factory=list)
    version: str = ""  # of what the frames show: a new one reloads them
    editors: list[str] = field(default_factory=list)
    members_counted: bool = False

    @property
    def variant_name(self) -> str:
        return self.variant.name if self.variant else ""


def parse_variant(name: str, newsletter: Newsletter) -> frozenset[str] | None:
    """The key of a variant name ('general', 'youth+wales'); None if a segment is unknown."""
    if name == "general":
        return frozenset()
    key = frozenset(part for part in name.split("+") if part)
    return key if key <= set(newsletter.segment_names) else None


def build_view(workspace: Workspace, query: Query) -> View:
    """The page for this query: never raises for a bad file, says what is wrong instead."""
    newsletter = workspace.newsletter
    view = View(query, workspace.files(), newsletter, workspace.config_error)
    if newsletter is None:
        return view
    if newsletter.schedule is not None:
        view.editors = [str(editor) for editor in newsletter.schedule.editors]
    view.file = _chosen_file(view.files, query.slug)
    if view.file is None:
        return view
    view.problems = [str(problem) for problem in view.file.check.errors]
    view.warnings = [str(problem) for problem in view.file.check.warnings]
    if view.file.issue is None:
        return view
    try:
        _fill(view, workspace, view.file, newsletter)
    except MailerError as error:
        view.problems.append(str(error))
    except Exception as error:  # the studio must outlive any file an editor saves
        log.exception("the studio could not show %s", view.file.shown)
        view.problems.append(f"mailer could not show this issue: {error!r} (details in the log)")
    return view


def _chosen_file(files: list[IssueFile], slug: str | None) -> IssueFile | None:
    if slug is not None:
        return next((file for file in files if file.slug == slug), None)
    # No issue named: the next one to go out (the earliest dated today or later), else the newest.
    today = dt.date.today()
    coming = [f for f in files if f.issue is not None and f.issue.date >= today]
    return min(
        coming, key=lambda f: (f.issue.date if f.issue else today, f.slug), default=None
    ) or (files[0] if files else None)


def _fill(view: View, workspace: Workspace, file: IssueFile, newsletter: Newsletter) -> None:
    issue = file.issue
    assert issue is not None
    query = view.query
    counts = workspace.members(file)
    view.members_counted = workspace.store is not None
    chosen = choose(workspace.store, query.member, issue, newsletter, workspace.settings.base_url)
    key = _key(query, chosen, counts, newsletter)
    named = ordered_segments(issue.segments_named(), newsletter)
    keys = [*counts, frozenset(), *(frozenset([name]) for name in named), key]
    for shown in dict.fromkeys(keys):
        view.variants.append(
            VariantLink(
                variant_name(shown, newsletter),
                _label(shown, newsletter),
                counts.get(shown, 0) if view.members_counted else None,
                shown == key,
                query.params(variant=variant_name(shown, newsletter), member=None),
            )
        )
    labels = {segment.name: segment.label for segment in newsletter.segments}
    view.segments = [(name, labels.get(name, name), name in key) for name in named]
    view.variant = workspace.compile(file, key)
    view.chosen = chosen if chosen.id is not None else sample(workspace.settings.base_url)
    view.message = view.variant.personalise(view.chosen.values)
    view.checks = check_variant(view.variant, view.message, own_links=workspace.settings.base_url)
    view.support = support_notes(view.message.html)
    shown_html = email_html(view.message, query)
    view.version = hashlib.sha256(shown_html.encode()).hexdigest()[:12]


def _key(
    query: Query, chosen: Chosen, counts: Mapping[frozenset[str], int], newsletter: Newsletter
) -> frozenset[str]:
    if chosen.key is not None:
        return chosen.key
    if query.variant:
        key = parse_variant(query.variant, newsletter)
        if key is not None:
            return key
    return next(iter(counts), frozenset())  # the variant most members get


def _label(key: frozenset[str], newsletter: Newsletter) -> str:
    if not key:
        return "members in none of the issue's segments"
    labels = {segment.name: segment.label for segment in newsletter.segments}
    return " and ".join(labels.get(name, name) for name in ordered_segments(key, newsletter))


def email_html(message: RenderedMessage, query: Query) -> str:
    """The email's HTML as the chosen view shows it (dark mode, pictures off)."""
    page = message.html
    if query.dark:
        page = dark_mode(page)
    if query.images_off:
        page = images_off(page)
    return page
