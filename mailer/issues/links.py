"""Links an editor writes in Markdown, judged before the renderer would quietly drop them.

The renderer keeps only ``https://``, ``http://`` and ``mailto:`` links (anything
else becomes its plain label), which is safe but silent: ``[notes](www.example.org)``
would vanish from both parts of the email. Here every link of a Markdown text is
found as the renderer's parser finds it, and each one the email could not carry
is a :class:`TextMistake` naming the link and saying what to write instead.
"""

from __future__ import annotations

import re
from functools import cache
from typing import NamedTuple

from markdown_it import MarkdownIt
from markdown_it.token import Token

__all__ = ["TextMistake", "link_mistakes", "shorten"]

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_EMAIL = re.compile(r"[^@\s/:]+@[^@\s/:]+\.[^@\s/:]+")
_DOMAIN = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:\d+)?([/?#]\S*)?")
# Schemes refused by name: what they do is worse than a broken link.
_DANGEROUS = {
    "javascript": "which could run code",
    "vbscript": "which could run code",
    "data": "which hides its content inside the link",
    "file": "which points at a file on your own computer",
}
_ALLOWED = ("https", "http", "mailto")
_MERGE_TAG = re.compile(r"\{\{[^{}]*\}\}")


class TextMistake(NamedTuple):
    """One mistake inside a text: where it starts, the text as written (to find its line), and what to do."""

    at: int
    fragment: str
    message: str


def shorten(text: str, limit: int = 60) -> str:
    """Text cut to ``limit`` characters with an ellipsis, for quoting in a message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def link_mistakes(markdown: str) -> list[TextMistake]:
    """Every link in a Markdown text that the email could not carry, in order."""
    tags: dict[str, str] = {}

    def hide(match: re.Match[str]) -> str:
        token = f"mlrtag{len(tags)}z"
        tags[token] = match[0]
        return token

    # Merge tags hold spaces, which would end a link's address: parse with them hidden.
    hidden = _MERGE_TAG.sub(hide, markdown)
    mistakes: list[TextMistake] = []
    start = 0
    for href in _hrefs(_parser().parse(hidden)):
        written = _restore(href, tags)
        message = _judge(written)
        found = markdown.find(written, start) if written else markdown.find("]()", start)
        at = found if found >= 0 else start
        start = at + max(len(written), 1)
        if message is not None:
            mistakes.append(TextMistake(at, written or "]()", message))
    return mistakes


def _judge(href: str) -> str | None:
    """What is wrong with a link's address, in the editor's words; None when the email keeps it."""
    address = href.strip()
    shown = shorten(address)
    if not address:
        return "a link has no address between its brackets: write the web address, like (https://example.org/page)"
    scheme = _SCHEME.match(address)
    if scheme is None:
        return _no_scheme(address, shown)
    name = scheme[1].lower()
    if name in _DANGEROUS:
        return (
            f"the link '{shown}' is a {name}: link, {_DANGEROUS[name]}: emails may only link to "
            "https://, http:// or mailto: addresses"
        )
    if name not in _ALLOWED:
        if _DOMAIN.fullmatch(address):  # www.example.org:8080/page reads as a scheme
            return _no_scheme(address, shown)
        return (
            f"the link '{shown}' is not a web or email link: links must start with https://, "
            "http:// or mailto:"
        )
    rest = address[scheme.end() :]
    if name in ("http", "https") and not rest.startswith("//"):
        return f"the link '{shown}' is missing the // after {scheme[1]}:"
    if not rest.strip("/"):
        return f"the link '{shown}' has nothing after {scheme[1]}: write the whole address"
    return None


def _no_scheme(address: str, shown: str) -> str:
    if _EMAIL.fullmatch(address):
        return (
            f"the link '{shown}' has no mailto: at the start, so the email would drop it: "
            f"write mailto:{shorten(address)}"
        )
    if _DOMAIN.fullmatch(address):
        return (
            f"the link '{shown}' has no https:// at the start, so the email would drop it: "
            f"write https://{shorten(address)}"
        )
    return (
        f"the link '{shown}' is not a whole web address, so the email would drop it: write the "
        "full address, starting with https://"
    )


def _hrefs(tokens: list[Token]) -> list[str]:
    """Each link's (and Markdown image's) address, in the order they are written."""
    found: list[str] = []
    for token in tokens:
        for child in token.children or []:
            if child.type == "link_open":
                found.append(str(child.attrs.get("href", "")))
            elif child.type == "image":
                found.append(str(child.attrs.get("src", "")))
    return found


def _restore(href: str, tags: dict[str, str]) -> str:
    for token, tag in tags.items():
        href = href.replace(token, tag)
    return href


@cache
def _parser() -> MarkdownIt:
    """CommonMark as the renderer reads it, but keeping every address exactly as written."""
    md = MarkdownIt("commonmark", {"html": True, "linkify": False})
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    md.normalizeLink = lambda url: url  # type: ignore[method-assign]
    md.normalizeLinkText = lambda link: link  # type: ignore[method-assign]
    return md
