"""The Issue: what an editor writes, as validated data.

The models are strict (unknown fields are errors) because a typo in a field name
must never silently drop a section from a newsletter. Messages are written for
editors; :mod:`mailer.issues.check` pins each one to its line in the file.
"""

from __future__ import annotations

import calendar
import datetime as dt
import difflib
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mailer.errors import Problem
from mailer.headersafety import HeaderLine
from mailer.issues.links import TextMistake, link_mistakes

# Members' own fields an editor may use in the text, as {{ first_name }} or
# {{ first_name | there }} (the text after the bar is used when the field is empty).
MERGE_FIELDS: dict[str, str] = {
    "first_name": "the member's first name",
    "name": "the member's full name",
    "organisation": "the member's organisation",
    "region": "the member's region",
}
MERGE_TAG = re.compile(r"\{\{\s*(?P<field>[A-Za-z_][\w]*)\s*(?:\|\s*(?P<fallback>[^{}]*?)\s*)?\}\}")
# What is left of {{ }} or {% %} once the good tags are blanked out: a whole
# would-be tag on one line if there is one, else the lone brace pair.
_STRAY_TAG = re.compile(r"\{\{[^{}\n]*\}\}|\{%[^\n]*?%\}|\{\{|\}\}|\{%|%\}")
ALLOWED_SCHEMES = ("http", "https", "mailto")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def merge_tag_mistakes(value: str) -> list[TextMistake]:
    """Every wrong {{ }} in a piece of text, in order; empty when all are member fields."""
    mistakes: list[TextMistake] = []
    known = ", ".join(MERGE_FIELDS)
    for match in MERGE_TAG.finditer(value):
        field = match["field"]
        if field not in MERGE_FIELDS:
            close = difflib.get_close_matches(field.lower(), MERGE_FIELDS, n=1)
            hint = f" (did you mean {{{{ {close[0]} }}}}?)" if close else ""
            mistakes.append(
                TextMistake(
                    match.start(),
                    match[0],
                    f"'{match[0]}' is not a member field{hint}; you can use: {known}",
                )
            )
    # Blank the good tags out (keeping positions) so that what remains is stray.
    blanked = MERGE_TAG.sub(lambda m: " " * len(m[0]), value)
    for match in _STRAY_TAG.finditer(blanked):
        shown = value[match.start() : match.end()]
        if len(shown) == 2:  # a lone brace pair: show what follows it, to find it
            shown = value[match.start() :].split("\n", 1)[0][:30].rstrip()
        mistakes.append(
            TextMistake(
                match.start(),
                shown,
                f"'{shown}' is not a merge tag: write a member field in double braces, "
                "like {{ first_name }} or {{ first_name | there }} "
                "(the text after | is shown when the member's field is empty)",
            )
        )
    return sorted(mistakes)


def _check_url(value: str) -> str:
    value = value.strip()
    scheme, sep, rest = value.partition(":")
    if not sep or scheme.lower() not in ALLOWED_SCHEMES or not rest.strip("/"):
        raise PydanticCustomError(
            "link",
            "'{link}' is not a web or email link: links must start with https://, http:// "
            "or mailto:",
            {"link": value},
        )
    if scheme.lower() in ("http", "https") and not rest.startswith("//"):
        raise PydanticCustomError(
            "link", "'{link}' is missing the // after {scheme}:", {"link": value, "scheme": scheme}
        )
    return value


def _check_image_url(value: str) -> str:
    value = _check_url(value)
    if value.lower().startswith("mailto:"):
        raise PydanticCustomError(
            "link",
            "'{link}' is an email address, not an image: images need an https:// link",
            {"link": value},
        )
    return value


def _check_merge_tags(value: str) -> str:
    return _refuse(merge_tag_mistakes(value), value)


def _check_markdown(value: str) -> str:
    """Merge tags, and links the email could carry (not www.… without https://, not javascript:)."""
    return _refuse(sorted([*merge_tag_mistakes(value), *link_mistakes(value)]), value)


def _refuse(mistakes: list[TextMistake], value: str) -> str:
    if mistakes:
        # One error per field, carrying every mistake (in order) so the loader can pin each
        # to its line.
        raise PydanticCustomError(
            "text_mistakes",
            "{message}",
            {"message": "; ".join(m.message for m in mistakes), "mistakes": mistakes},
        )
    return value


def _check_date(value: object) -> object:
    """Insist on 2026-12-03 (not 3/12/2026, which is ambiguous) and name impossible dates."""
    if not isinstance(value, str):
        return value  # a date from Python code, or a wrong type pydantic reports itself
    text = value.strip()
    match = _ISO_DATE.fullmatch(text)
    if match is None:
        raise PydanticCustomError(
            "date_format",
            "'{value}' is not a date written as year-month-day: write it like 2026-12-03",
            {"value": value},
        )
    year, month, day = (int(part) for part in match.groups())
    if not 1 <= month <= 12:
        raise PydanticCustomError(
            "date_impossible",
            "'{value}' has no month {month}: the month (in the middle) goes from 01 to 12",
            {"value": value, "month": match[2]},
        )
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        raise PydanticCustomError(
            "date_impossible",
            "'{value}' is not a real date: {month_name} {year} has {days} days",
            {"value": value, "month_name": calendar.month_name[month], "year": year, "days": days},
        )
    return text


def _one_or_many(value: object) -> object:
    """`audience: youth` reads naturally; treat it as a list of one."""
    return [value] if isinstance(value, str) else value


Url = Annotated[str, AfterValidator(_check_url)]
ImageUrl = Annotated[str, AfterValidator(_check_image_url)]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_check_merge_tags)
]
HeaderText = Annotated[Text, HeaderLine]
Markdown = Annotated[str, StringConstraints(min_length=1), AfterValidator(_check_markdown)]
Status = Literal["draft", "ready"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, frozen=True)


class Image(Strict):
    """A picture in a section, with the words that describe it."""

    url: ImageUrl = Field(
        description="The web address of the picture, starting with https://.",
        examples=["https://images.example.org/2026/12/warm-space.jpg"],
    )
    alt: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        description="A sentence saying what the picture shows, read aloud to people who cannot "
        "see it and shown when pictures are turned off. Describe it as you would on the phone, "
        "not 'image1'.",
        examples=["Volunteers serving soup to older people in a chapel vestry"],
    )
    link: Url | None = Field(
        None,
        description="Where clicking the picture goes (optional).",
        examples=["https://example.org/warm-spaces"],
    )
    width: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        None,
        description="The picture's width in pixels (optional, with height): the email keeps "
        "room of that shape while pictures are off or loading. Without them it keeps 3:2.",
        examples=[1200],
    )
    height: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        None,
        description="The picture's height in pixels (optional, with width).",
        examples=[800],
    )

    @model_validator(mode="after")
    def _both_dimensions(self) -> Image:
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height of the picture, or neither")
        return self

    @property
    def ratio(self) -> tuple[int, int] | None:
        """(width, height) when the editor gave them."""
        return (self.width, self.height) if self.width and self.height else None


class Button(Strict):
    """A button under a section's text."""

    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)] = (
        Field(
            description="The words on the button, at most 60 characters.", examples=["Book a place"]
        )
    )
    url: Url = Field(
        description="Where the button goes: a link starting with https://, http:// or mailto:.",
        examples=["https://example.org/events/winter-gathering"],
    )


class Section(Strict):
    """One section of the issue: a title, its text, and optionally a picture and a button."""

    title: Text = Field(
        description="The section's heading.", examples=["Put your warm space on the map"]
    )
    body: Markdown = Field(
        description="The section's text, in Markdown: **bold**, *italic*, [words](https://…) "
        "and lists with '- '. Member fields such as {{ first_name | there }} work here.",
        examples=["Add your dates by **Friday 18 December** so they appear in local listings."],
    )
    image: Image | None = Field(
        None,
        description="A picture: its url, its alt text and, if you like, a link (optional).",
        examples=[{"url": "https://images.example.org/hall.jpg", "alt": "A busy community hall"}],
    )
    # Where the image goes: above the text, or beside it in a two-column block
    # (stacked on narrow screens).
    layout: Literal["stacked", "image-left", "image-right"] = Field(
        "stacked",
        description="Where the image goes: stacked (above the text, the default), image-left or "
        "image-right (beside the text; stacked on phones).",
        examples=["image-right"],
    )
    button: Button | None = Field(
        None,
        description="A button under the text: its label and its url (optional).",
        examples=[{"label": "Book a place", "url": "https://example.org/book"}],
    )
    audience: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(
        default_factory=list,
        description="The segments whose members see this section. Leave it out and everyone "
        "sees it.",
        examples=[["youth"], ["scotland", "in-person"]],
    )

    def is_for(self, segments: frozenset[str]) -> bool:
        """Whether a member in exactly these segments sees this section."""
        return not self.audience or not segments.isdisjoint(self.audience)


class SegmentOverride(Strict):
    """What members of one segment get instead of the issue's subject, preheader or intro."""

    subject: HeaderText | None = Field(
        None,
        description="The subject line for this segment's members instead of the issue's.",
        examples=["Shwmae! Winter connections from across Wales"],
    )
    preheader: HeaderText | None = Field(
        None,
        description="The preheader for this segment's members instead of the issue's.",
        examples=["Events near you in Wales this winter."],
    )
    intro: Markdown | None = Field(
        None,
        description="The opening words for this segment's members instead of the issue's "
        "(Markdown).",
        examples=["Hello {{ first_name | there }},\n\nThis fortnight starts in Wales."],
    )


class Issue(Strict):
    """One fortnightly issue, as the editor wrote it."""

    slug: str = Field(description="The issue's name, from its file name; not written in the file.")
    subject: Annotated[HeaderText, StringConstraints(max_length=150)] = Field(
        description="The subject line members see in their inbox. At most 150 characters; "
        "phones show about the first 40, so put what matters first.",
        examples=["Winter connections: warm spaces and your January invitation"],
    )
    preheader: Annotated[HeaderText, StringConstraints(max_length=200)] = Field(
        description="The short line most inboxes show after the subject. At most 200 characters.",
        examples=["Christmas opening hours, a free online session and booking for our gathering."],
    )
    headline: Annotated[Text, StringConstraints(max_length=120)] | None = Field(
        None,
        description="The big line at the top of the email, under the newsletter's name, that "
        "tells this issue from the others. At most 120 characters; the subject if unset.",
        examples=["Warm spaces, a winter gathering and your January invitation"],
    )
    date: Annotated[dt.date, BeforeValidator(_check_date)] = Field(
        description="The date of the fortnightly slot the issue is for, written year-month-day. "
        "It should match the file name.",
        examples=["2026-12-03"],
    )
    status: Status = Field(
        description="draft while you are working on it; ready once it is checked and proofread "
        "and may go out on its slot.",
        examples=["draft", "ready"],
    )
    intro: Markdown = Field(
        description="The opening words, above the sections (Markdown). Member fields such as "
        "{{ first_name | there }} work here.",
        examples=["Hello {{ first_name | there }},\n\nHere is what is happening this fortnight."],
    )
    sections: list[Section] = Field(
        min_length=1,
        description="The issue's sections, in order: a list with at least one, each with a "
        "title and a body.",
        examples=[[{"title": "Put your warm space on the map", "body": "Add your dates."}]],
    )
    segments: dict[str, SegmentOverride] = Field(
        default_factory=dict,
        description="A different subject, preheader or intro for members of a segment: the "
        "segment's name, then those fields indented below it.",
        examples=[{"wales": {"subject": "Shwmae! Winter connections from across Wales"}}],
    )
    sign_off: Markdown | None = Field(
        None,
        description="The closing words, after the sections (Markdown; each line stays a line).",
        examples=["Take care of yourselves this winter,\n\nAmara Okafor\nNetwork Coordinator"],
    )

    def segments_named(self) -> set[str]:
        """Every segment the issue refers to, in audiences or overrides."""
        names = set(self.segments)
        for section in self.sections:
            names.update(section.audience)
        return names


Loc = tuple[str | int, ...]
"""A place in an issue's data, as pydantic gives it: ``("sections", 2, "image", "alt")``."""


@dataclass(frozen=True)
class IssueCheck:
    """The outcome of checking one issue file: the Issue when there is no error."""

    path: str
    issue: Issue | None
    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors
