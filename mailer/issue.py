"""The Issue: what an editor writes, as validated data.

The models are strict (unknown fields are errors) because a typo in a field name
must never silently drop a section from a newsletter. Messages are written for
editors; :mod:`mailer.load` pins each one to its line in the file.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

# Members' own fields an editor may use in the text, as {{ first_name }} or
# {{ first_name | there }} (the text after the bar is used when the field is empty).
MERGE_FIELDS: dict[str, str] = {
    "first_name": "the member's first name",
    "name": "the member's full name",
    "organisation": "the member's organisation",
    "region": "the member's region",
}
MERGE_TAG = re.compile(r"\{\{\s*(?P<field>[A-Za-z_][\w]*)\s*(?:\|\s*(?P<fallback>[^{}]*?)\s*)?\}\}")
ALLOWED_SCHEMES = ("http", "https", "mailto")


def _check_url(value: str) -> str:
    value = value.strip()
    scheme, sep, rest = value.partition(":")
    if not sep or scheme.lower() not in ALLOWED_SCHEMES or not rest.strip("/"):
        raise ValueError(
            f"'{value}' is not a web or email link: links must start with https://, http:// or mailto:"
        )
    if scheme.lower() in ("http", "https") and not rest.startswith("//"):
        raise ValueError(f"'{value}' is missing the // after {scheme}:")
    return value


def _check_image_url(value: str) -> str:
    value = _check_url(value)
    if value.lower().startswith("mailto:"):
        raise ValueError(f"'{value}' is an email address, not an image: images need an https:// link")
    return value


def _check_merge_tags(value: str) -> str:
    for match in MERGE_TAG.finditer(value):
        if match["field"] not in MERGE_FIELDS:
            known = ", ".join(MERGE_FIELDS)
            raise ValueError(
                f"'{{{{ {match['field']} }}}}' is not a member field; you can use: {known}"
            )
    stray = MERGE_TAG.sub("", value)
    if "{{" in stray or "}}" in stray or "{%" in stray:
        raise ValueError(
            "has a '{{' or '}}' that is not a member field; write {{ first_name }} "
            "or {{ first_name | friend }} (the text after | is used when the field is empty)"
        )
    return value


Url = Annotated[str, AfterValidator(_check_url)]
ImageUrl = Annotated[str, AfterValidator(_check_image_url)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_check_merge_tags)]
Markdown = Annotated[str, StringConstraints(min_length=1), AfterValidator(_check_merge_tags)]
Status = Literal["draft", "ready"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, frozen=True)


class Image(Strict):
    url: ImageUrl
    alt: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        description="Describes the image for people who cannot see it. Required."
    )
    link: Url | None = None


class Button(Strict):
    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    url: Url


class Section(Strict):
    title: Text
    body: Markdown
    image: Image | None = None
    # Where the image goes: above the text, or beside it in a two-column block
    # (stacked on narrow screens).
    layout: Literal["stacked", "image-left", "image-right"] = "stacked"
    button: Button | None = None
    audience: list[str] = Field(
        default_factory=list, description="Segment names; empty means everyone."
    )

    def is_for(self, segments: frozenset[str]) -> bool:
        """Whether a member in exactly these segments sees this section."""
        return not self.audience or not segments.isdisjoint(self.audience)


class SegmentOverride(Strict):
    subject: Text | None = None
    preheader: Text | None = None
    intro: Markdown | None = None


class Issue(Strict):
    """One fortnightly issue, as the editor wrote it."""

    slug: str = Field(description="The issue's name, from its file name; not written in the file.")
    subject: Annotated[Text, StringConstraints(max_length=150)]
    preheader: Annotated[Text, StringConstraints(max_length=200)]
    date: dt.date = Field(description="The date of the fortnightly slot this issue is for.")
    status: Status
    intro: Markdown
    sections: list[Section] = Field(min_length=1)
    segments: dict[str, SegmentOverride] = Field(
        default_factory=dict, description="Per-segment overrides of subject, preheader or intro."
    )
    sign_off: Markdown | None = None

    def segments_named(self) -> set[str]:
        """Every segment the issue refers to, in audiences or overrides."""
        names = set(self.segments)
        for section in self.sections:
            names.update(section.audience)
        return names
