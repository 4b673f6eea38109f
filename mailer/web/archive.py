"""The archive: the web version of every issue that has been sent ("view in browser").

An issue is in the archive once a send of it has started (it has a row in the
send ledger's ``sends``); drafts and issues never sent are not, whatever is in
``issues/``. Each page is the issue's *general* variant (the sections every
member gets) with no member's data: merge tags take their fallbacks ("Hello
there"), and the footer, which members' emails fill with "you are receiving this"
and their own links, links to the sign-up page and the past issues instead. Rendering compiles MJML, so each page is kept
until its issue file changes.
"""

from __future__ import annotations

import html
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from mailer.config import Newsletter
from mailer.errors import MailerError
from mailer.issues.check import load_issue
from mailer.issues.model import Issue
from mailer.mail import DeliveryState
from mailer.render import render_issue
from mailer.render.build import WebVersion
from mailer.store import SubscriberStore
from mailer.store.ledger import DeliveryRow, SendRow
from mailer.store.transact import read
from mailer.web.context import context_of

__all__ = ["Archive", "ArchivedIssue", "archive_index", "archive_issue"]

log = logging.getLogger(__name__)

SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
# The email's own HTML needs inline styles; it still gets no script, frames or forms.
ARCHIVE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class ArchivedIssue:
    slug: str
    subject: str
    date_label: str
    sort_key: str
    html: str


class Archive:
    """Sent issues, rendered once per version of their file."""

    def __init__(self, newsletter: Newsletter, store: SubscriberStore, base_url: str) -> None:
        self.newsletter = newsletter
        self.store = store
        self.base_url = base_url
        self._cache: dict[str, tuple[int, ArchivedIssue]] = {}
        self._lock = threading.Lock()

    def sent(self) -> list[str]:
        """Slugs of the issues at least one member was sent: a send that failed before any
        message went out (a stopped run, a refused issue) publishes nothing."""
        delivered = (
            select(DeliveryRow.id)
            .where(DeliveryRow.issue == SendRow.issue, DeliveryRow.state == DeliveryState.sent)
            .exists()
        )
        with read(self.store.engine) as connection:
            return list(connection.scalars(select(SendRow.issue).where(delivered)))

    def get(self, slug: str) -> ArchivedIssue | None:
        """The issue's web version, or None when it was never sent or its file is gone or broken."""
        if not SLUG.fullmatch(slug) or slug not in self.sent():
            return None
        path = self._path(slug)
        if path is None:
            return None
        version = path.stat().st_mtime_ns
        with self._lock:
            cached = self._cache.get(slug)
            if cached is not None and cached[0] == version:
                return cached[1]
        try:
            archived = self._render(load_issue(path, self.newsletter))
        except MailerError as error:
            log.warning("archive: issue %s cannot be shown: %s", slug, str(error).splitlines()[0])
            return None
        with self._lock:
            self._cache[slug] = (version, archived)
        return archived

    def issues(self) -> list[ArchivedIssue]:
        """Every sent issue that can be shown, newest first."""
        found = [issue for slug in self.sent() if (issue := self.get(slug)) is not None]
        return sorted(found, key=lambda issue: issue.sort_key, reverse=True)

    def _path(self, slug: str) -> Path | None:
        for suffix in (".yaml", ".yml"):
            path = self.newsletter.issues_dir / f"{slug}{suffix}"
            if path.is_file():
                return path
        return None

    def _render(self, issue: Issue) -> ArchivedIssue:
        # Read by the public: the footer speaks to any reader, with the sign-up page and
        # the past issues, never a member's links (there is no member).
        public = WebVersion(
            signup_url=f"{self.base_url}/subscribe", archive_index_url=f"{self.base_url}/archive/"
        )
        variant = render_issue(issue, self.newsletter, [frozenset()], web_version=public)[0]
        manage = f"{self.base_url}/subscribe#manage"  # placeholders the web footer leaves out
        message = variant.personalise({"unsubscribe_url": manage, "preferences_url": manage})
        title = public_title(variant.subject_with_markers(lambda _: ""))
        # The page's <title> is the email's subject, fallback and all: the public title instead.
        page = _TITLE.sub(f"<title>{html.escape(title)}</title>", message.html, count=1)
        return ArchivedIssue(
            slug=issue.slug,
            subject=title,
            date_label=f"{issue.date.day} {issue.date:%B %Y}",
            sort_key=f"{issue.date.isoformat()} {issue.slug}",
            html=page,
        )


_TITLE = re.compile(r"<title>.*?</title>", re.DOTALL)
_GAP_BEFORE_PUNCTUATION = re.compile(r"\s+([,.;:!?])")
_PUNCTUATION_RUN = re.compile(r"([,;:])(?:\s*[,;:])+")


def public_title(subject: str) -> str:
    """A subject whose merge tags were blanked, tidied into a public title.

    ``{{ first_name | Friends }}, your December bulletin`` is a greeting to one
    member; a page anyone can read shows "Your December bulletin", neither the
    fallback ("Friends, …") nor a dangling comma.
    """
    title = " ".join(subject.split())
    title = _GAP_BEFORE_PUNCTUATION.sub(r"\1", title)
    title = _PUNCTUATION_RUN.sub(r"\1", title)
    title = title.lstrip(",;:.!? ").rstrip(",;: ")
    return title[:1].upper() + title[1:] if title else subject.strip()


async def archive_index(request: Request) -> Response:
    web = context_of(request)
    issues = await run_in_threadpool(web.archive.issues)
    return web.pages.page("archive_index.html", title="Past issues", issues=issues)


async def archive_issue(request: Request) -> Response:
    web = context_of(request)
    archived = await run_in_threadpool(web.archive.get, request.path_params["issue"])
    if archived is None:
        return web.pages.message(
            "No such issue",
            ["There is no sent issue at this address."],
            status=404,
            links=[("See past issues", "/archive/")],
        )
    return HTMLResponse(
        archived.html,
        headers={"Content-Security-Policy": ARCHIVE_CSP, "Cache-Control": "public, max-age=300"},
    )
