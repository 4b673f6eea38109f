"""Server-rendered pages: Jinja templates in ``mailer/web/templates``, one response helper.

Templates ship inside the package (not in the project's ``templates/``, which
holds the editors' email templates): they are the web app's, versioned with its
code. Every page extends ``base.html`` (language, viewport, the stylesheet at
``/static/site.css``, no script); HTML templates are autoescaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from mailer.config import Newsletter

__all__ = [
    "TEMPLATES",
    "Pages",
    "masked",
]

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Pages reached through a member's link: never cached, never indexed.
PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        # HTML escaped; the text parts of emails and the stylesheet not.
        autoescape=select_autoescape(["html"], default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class Pages:
    """Renders the web app's templates with what every page needs."""

    def __init__(self, newsletter: Newsletter) -> None:
        self.newsletter = newsletter
        self.env = _environment()
        self._common = {
            "newsletter": newsletter,
            "lang": newsletter.language,
        }

    def text(self, template: str, /, **context: Any) -> str:
        return self.env.get_template(template).render({**self._common, **context})

    def page(
        self,
        template: str,
        /,
        *,
        status: int = 200,
        private: bool = False,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """The template as an HTML response; ``private`` for pages reached through a member's token."""
        all_headers = {**(PRIVATE if private else {}), **(headers or {})}
        return HTMLResponse(self.text(template, **context), status_code=status, headers=all_headers)

    def message(
        self,
        title: str,
        paragraphs: list[str],
        *,
        status: int = 200,
        private: bool = False,
        links: list[tuple[str, str]] | None = None,
    ) -> HTMLResponse:
        """A page with a heading, a few paragraphs and links: errors, confirmations."""
        return self.page(
            "message.html",
            status=status,
            private=private,
            title=title,
            paragraphs=paragraphs,
            links=links or [],
        )


def masked(address: str) -> str:
    """The address with most of its local part hidden: ``ne***@example.org``.

    Enough for the member to recognise it, not enough to read it off a forwarded link.
    """
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    keep = 1 if len(local) <= 4 else 2
    return f"{local[:keep]}***{at}{domain}"
