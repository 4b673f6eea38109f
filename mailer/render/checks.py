"""Checks of one variant as a member gets it: what the studio shows beside the preview.

Each check reads the personalised message (subject, preheader, HTML, text) and says,
in editors' words, what is fine and what deserves a look: the size budget, images
whose alt text describes nothing, every link's words and target (and links that
will not work as meant), the subject and preheader as inboxes cut them, and the
reading time. Nothing here stops a send; ``mailer validate`` and the size limit do.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from html.parser import HTMLParser

from mailer.issues.alttext import alt_problem
from mailer.render.build import LIMIT_BYTES, WARN_BYTES, CompiledVariant, RenderedMessage

__all__ = [
    "ImageCheck",
    "LengthCheck",
    "LinkCheck",
    "VariantChecks",
    "check_variant",
]

WORDS_PER_MINUTE = 230  # silent reading of plain prose, a common average
SUBJECT_ON_A_PHONE = 40
SUBJECT_LONG = 60
PREHEADER_SHORT = 40
PREHEADER_SHOWN = 100


@dataclass(frozen=True)
class ImageCheck:
    src: str
    alt: str
    problem: str | None  # None when the alt text may well describe the picture


@dataclass(frozen=True)
class LinkCheck:
    text: str
    href: str
    problems: tuple[str, ...]


@dataclass(frozen=True)
class LengthCheck:
    """The subject or preheader: its length, what a phone shows of it, and a note if needed."""

    text: str
    length: int
    shown: str
    note: str | None


@dataclass(frozen=True)
class VariantChecks:
    html_size: int
    text_size: int
    size_note: str | None
    images: tuple[ImageCheck, ...]
    links: tuple[LinkCheck, ...]
    subject: LengthCheck
    preheader: LengthCheck
    words: int
    minutes: int

    @property
    def warn_bytes(self) -> int:
        return WARN_BYTES

    @property
    def limit_bytes(self) -> int:
        return LIMIT_BYTES

    @property
    def problems(self) -> int:
        """How many things deserve a look, for the panel's heading."""
        return (
            (self.size_note is not None)
            + sum(1 for image in self.images if image.problem)
            + sum(1 for link in self.links if link.problems)
            + (self.subject.note is not None)
            + (self.preheader.note is not None)
        )


class _Elements(HTMLParser):
    """Images and links of an email, outside conditional comments (Outlook's own copies)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[tuple[str, str]] = []
        self.links: list[tuple[str, str]] = []
        self.ids: set[str] = set()
        self._link: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if values.get("id"):
            self.ids.add(values["id"])
        if tag == "img":
            self.images.append((values.get("src", ""), values.get("alt", "")))
            if self._link is not None and values.get("alt"):
                self._link[1].append(f"[picture: {values['alt']}]")
        elif tag == "a":
            self._link = (values.get("href", ""), [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            href, words = self._link
            self.links.append((" ".join(" ".join(words).split()), href))
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._link[1].append(data)


def check_variant(
    variant: CompiledVariant, message: RenderedMessage, *, own_links: str = ""
) -> VariantChecks:
    """Everything the studio says about one variant, as this member gets it.

    Links starting with ``own_links`` (MAILER_BASE_URL: unsubscribe, preferences) are
    the web app's, whose scheme is a deployment setting, not the editor's to fix.
    """
    elements = _Elements()
    elements.feed(message.html)
    words = len(re.findall(r"[\w’'-]+", message.text))
    return VariantChecks(
        html_size=variant.html_size,
        text_size=variant.text_size,
        size_note=_size_note(variant.html_size),
        images=tuple(_image(src, alt) for src, alt in elements.images),
        links=_links(elements.links, own_links, elements.ids),
        subject=_subject(message.subject),
        preheader=_preheader(message.preheader),
        words=words,
        minutes=max(1, math.ceil(words / WORDS_PER_MINUTE)),
    )


def _size_note(size: int) -> str | None:
    if size > WARN_BYTES:
        return (
            f"{size / 1000:.1f} KB is close to where Gmail clips a message (about 102 KB), "
            "hiding the rest and the unsubscribe link: shorten the issue or split it"
        )
    return None


def _image(src: str, alt: str) -> ImageCheck:
    if not alt.strip():
        return ImageCheck(src, alt, "has no alt text: people who cannot see it hear nothing")
    problem = alt_problem(alt)
    if problem is None:
        return ImageCheck(src, alt, None)
    return ImageCheck(
        src, alt, f"alt text {problem.value}: describe what the picture shows instead"
    )


def _links(
    found: list[tuple[str, str]], own: str, ids: AbstractSet[str] = frozenset()
) -> tuple[LinkCheck, ...]:
    targets: dict[str, set[str]] = defaultdict(set)
    for text, href in found:
        if text:
            targets[text.lower()].add(href)
    checks = []
    for text, href in found:
        problems: list[str] = []
        scheme = href.split(":", 1)[0].lower() if ":" in href else ""
        if not href:
            problems.append("has no address")
        elif own and href.startswith(own):
            pass  # the web app's link (MAILER_BASE_URL): a deployment setting, not the editor's
        elif href.startswith("#") and href[1:] in ids:
            pass  # "In this issue": a jump to a section of this email
        elif scheme == "http":
            problems.append(
                "starts with http://: members' mail apps may warn; use https:// if the site has it"
            )
        elif scheme not in ("https", "mailto"):
            problems.append("is not a whole web address: it will not open from an inbox")
        others = len(targets[text.lower()]) if text else 0
        if others > 1:
            problems.append(f"the same words '{text}' link to {others} different places")
        if not text:
            problems.append("has no words: screen readers read out the address")
        checks.append(LinkCheck(text, href, tuple(problems)))
    return tuple(checks)


def _cut(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def _subject(subject: str) -> LengthCheck:
    length = len(subject)
    shown = _cut(subject, SUBJECT_ON_A_PHONE)
    note = None
    if length > SUBJECT_LONG:
        note = (
            f"phones show about the first {SUBJECT_ON_A_PHONE} characters (“{shown}”) and "
            "desktop inboxes about 60: put what matters first"
        )
    elif length > SUBJECT_ON_A_PHONE:
        note = f"phones show about the first {SUBJECT_ON_A_PHONE} characters: “{shown}”"
    return LengthCheck(subject, length, shown, note)


def _preheader(preheader: str) -> LengthCheck:
    length = len(preheader)
    note = None
    if length < PREHEADER_SHORT:
        note = (
            "inboxes fill the rest of the line with the email's first words; 40 to 100 "
            "characters fill it with yours"
        )
    elif length > PREHEADER_SHOWN:
        note = f"most inboxes show about the first {PREHEADER_SHOWN} characters"
    return LengthCheck(preheader, length, _cut(preheader, PREHEADER_SHOWN), note)
