"""Editors' Markdown, turned into safe email HTML and into plain text.

Both outputs come from one token stream, so the HTML and the text part of an
email always say the same thing. The rules, in order of defence:

* Raw HTML is never rendered: HTML blocks keep only their text (scripts and
  styles lose their content too) and inline tags are dropped.
* Headings are shifted down to h3/h4, because h1 and h2 belong to the
  newsletter's name and the section titles.
* Markdown images become links to the image: pictures go in a section's
  ``image``, which has the alt text and the width email clients need.
* nh3 then cleans the HTML against an email allowlist, keeping only http,
  https and mailto links, so nothing the parser lets through can run.

Merge tags ({{ first_name }}) must be replaced by plain alphanumeric
placeholders before calling these functions (see :mod:`mailer.render.placeholders`):
Markdown would otherwise percent-encode them inside links.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Iterator, Sequence
from functools import cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

__all__ = ["ALLOWED_TAGS", "markdown_to_html", "markdown_to_text"]

ALLOWED_TAGS = frozenset(
    {"p", "a", "strong", "em", "ul", "ol", "li", "h3", "h4", "blockquote", "br", "hr", "code"}
)
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
_URL_SCHEMES = {"http", "https", "mailto"}
# Markdown heading level -> email heading tag.
_HEADING_TAGS = {1: "h3", 2: "h3", 3: "h4", 4: "h4", 5: "h4", 6: "h4"}
TEXT_WIDTH = 72


def markdown_to_html(source: str, *, line_breaks: bool = False) -> str:
    """Markdown -> HTML fragment that only uses the email allowlist.

    ``line_breaks`` keeps each newline as a line break, for text such as a sign-off
    (name, then role on the next line); elsewhere editors wrap lines freely.
    """
    rendered = _parser(line_breaks).render(source)
    return nh3.clean(
        rendered,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(attrs) for tag, attrs in _ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(_URL_SCHEMES),
        # Relative links and #anchors mean nothing in an inbox.
        url_relative="deny",
        link_rel="noopener",
        clean_content_tags={"script", "style"},
    ).strip()


def markdown_to_text(
    source: str, width: int | None = TEXT_WIDTH, *, line_breaks: bool = False
) -> str:
    """Markdown -> plain text: wrapped paragraphs, '- ' lists, '> ' quotes, links written out.

    ``width=None`` leaves each paragraph on one line, for wrapping later (once merge
    fields are filled in, with :func:`mailer.mail.wrap_text`).
    """
    tokens = _parser(line_breaks).parse(source)
    blocks = list(_text_blocks(tokens, width))
    return "\n\n".join(block for block in blocks if block)


@cache
def _parser(line_breaks: bool) -> MarkdownIt:
    # html=True only so raw HTML is recognised as such and removed by _strip_html;
    # it never reaches the renderer. Linkify stays off: editors write real links.
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    # Accept every link at parse time so that a bad one shows as its label, not as
    # literal [label](javascript:...); _unwrap_unsafe_links then keeps only safe ones.
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    md.core.ruler.push("mailer_strip_html", _strip_html)
    md.core.ruler.push("mailer_images_to_links", _images_to_links)
    md.core.ruler.push("mailer_unwrap_unsafe_links", _unwrap_unsafe_links)
    md.core.ruler.push("mailer_shift_headings", _shift_headings)
    if line_breaks:
        md.core.ruler.push("mailer_line_breaks", _soft_to_hard_breaks)
    return md


def _html_text(fragment: str) -> str:
    """The readable text of an HTML fragment, without tags, scripts or styles."""
    cleaned = nh3.clean(fragment, tags=set(), clean_content_tags={"script", "style"})
    return " ".join(html.unescape(cleaned).split())


def _strip_html(state: StateCore) -> None:
    tokens: list[Token] = []
    for token in state.tokens:
        if token.type == "html_block":
            text = _html_text(token.content)
            if text:
                inline = Token(
                    "inline", "", 0, content=text, children=[Token("text", "", 0, content=text)]
                )
                tokens += [
                    Token("paragraph_open", "p", 1),
                    inline,
                    Token("paragraph_close", "p", -1),
                ]
            continue
        if token.type == "inline" and token.children:
            token.children = [child for child in token.children if child.type != "html_inline"]
        tokens.append(token)
    state.tokens = tokens


def _images_to_links(state: StateCore) -> None:
    for token in state.tokens:
        if token.type != "inline" or not token.children:
            continue
        children: list[Token] = []
        for child in token.children:
            if child.type == "image":
                label = child.content or "image"
                children += [
                    Token("link_open", "a", 1, attrs={"href": str(child.attrs.get("src", ""))}),
                    Token("text", "", 0, content=label),
                    Token("link_close", "a", -1),
                ]
            else:
                children.append(child)
        token.children = children


def _is_safe_href(href: str) -> bool:
    scheme, sep, rest = href.partition(":")
    return bool(sep) and scheme.lower() in _URL_SCHEMES and bool(rest.strip("/"))


def _unwrap_unsafe_links(state: StateCore) -> None:
    """Turn links that are not http, https or mailto into their plain label."""
    for token in state.tokens:
        if token.type != "inline" or not token.children:
            continue
        children: list[Token] = []
        unwrapping: list[bool] = []  # one entry per open link: whether it was dropped
        for child in token.children:
            if child.type == "link_open":
                unwrapping.append(not _is_safe_href(str(child.attrs.get("href", ""))))
                if unwrapping[-1]:
                    continue
            elif child.type == "link_close" and unwrapping and unwrapping.pop():
                continue
            children.append(child)
        token.children = children


def _soft_to_hard_breaks(state: StateCore) -> None:
    for token in state.tokens:
        for child in token.children or []:
            if child.type == "softbreak":
                child.type, child.tag = "hardbreak", "br"


def _shift_headings(state: StateCore) -> None:
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = _HEADING_TAGS[int(token.tag[1])]


# --- plain text ------------------------------------------------------------


def _text_blocks(tokens: Sequence[Token], width: int | None) -> Iterator[str]:
    """Yield the text of each top-level block; nested blocks are rendered by their parent."""
    index = 0
    while index < len(tokens):
        end = _block_end(tokens, index)
        yield _text_block(tokens[index:end], width)
        index = end


def _block_end(tokens: Sequence[Token], start: int) -> int:
    """Index just past the block that starts at ``start`` (its matching close token)."""
    depth = 0
    for index in range(start, len(tokens)):
        depth += tokens[index].nesting
        if depth == 0:
            return index + 1
    return len(tokens)


def _text_block(block: Sequence[Token], width: int | None) -> str:
    first = block[0]
    inner = block[1:-1]
    if first.type == "paragraph_open":
        return _wrap(_inline_text(inner[0], alone_link=True), width)
    if first.type == "heading_open":
        title = _inline_text(inner[0])
        return f"{title}\n{'~' * len(title)}"
    if first.type in ("bullet_list_open", "ordered_list_open"):
        return _list_text(first, inner, width)
    if first.type == "blockquote_open":
        quoted = "\n\n".join(_text_blocks(inner, _narrower(width, 2)))
        return "\n".join(f"> {line}".rstrip() for line in quoted.splitlines())
    if first.type in ("fence", "code_block"):
        return "\n".join(f"    {line}" for line in first.content.rstrip("\n").splitlines())
    if first.type == "hr":
        return "-" * 8
    return ""


def _list_text(opening: Token, items: Sequence[Token], width: int | None) -> str:
    ordered = opening.type == "ordered_list_open"
    number = int(opening.attrs.get("start", 1) or 1)
    lines: list[str] = []
    index = 0
    while index < len(items):
        end = _block_end(items, index)
        bullet = f"{number}. " if ordered else "- "
        body = "\n\n".join(_text_blocks(items[index + 1 : end - 1], _narrower(width, len(bullet))))
        pad = " " * len(bullet)
        lines.append(
            "\n".join(
                (bullet if n == 0 else pad) + line if line else ""
                for n, line in enumerate(body.splitlines())
            )
        )
        number += 1
        index = end
    # Tight lists read best without blank lines between items.
    return "\n".join(lines) if opening.hidden or _is_tight(items) else "\n\n".join(lines)


def _is_tight(items: Sequence[Token]) -> bool:
    return all(token.hidden for token in items if token.type == "paragraph_open")


def _inline_text(token: Token, *, alone_link: bool = False) -> str:
    """The text of an inline token; links become 'label (url)', or 'label: url' when alone."""
    children = token.children or []
    links = [child for child in children if child.type == "link_open"]
    if (
        alone_link
        and len(links) == 1
        and children[0].type == "link_open"
        and children[-1].type == "link_close"
    ):
        label = "".join(_plain(child) for child in children[1:-1])
        return _link_text(label, str(links[0].attrs.get("href", "")), alone=True)
    parts: list[str] = []
    href = ""
    label_start = 0
    for child in children:
        if child.type == "link_open":
            href, label_start = str(child.attrs.get("href", "")), len(parts)
        elif child.type == "link_close":
            label = "".join(parts[label_start:])
            parts[label_start:] = [_link_text(label, href, alone=False)]
        else:
            parts.append(_plain(child))
    return "".join(parts)


def _plain(token: Token) -> str:
    if token.type in ("softbreak",):
        return " "
    if token.type == "hardbreak":
        return "\n"
    if token.type in ("text", "code_inline"):
        return token.content
    return ""


def _link_text(label: str, href: str, *, alone: bool) -> str:
    shown = href.removeprefix("mailto:")
    if not label or label in (href, shown):
        return shown
    return f"{label}: {shown}" if alone else f"{label} ({shown})"


def _narrower(width: int | None, by: int) -> int | None:
    return None if width is None else max(width - by, 20)


def _wrap(text: str, width: int | None) -> str:
    if width is None:
        return text
    # Long words (URLs) are never broken: a broken link is a dead link.
    return "\n".join(
        textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False) if line else ""
        for line in text.split("\n")
    )
