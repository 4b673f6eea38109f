"""Variants: the distinct versions of an issue that members in different segments see.

A member's *variant key* is the set of the issue's segments (those named in a
section's audience or in a per-segment override) that the member belongs to.
Segments the issue never mentions change nothing, so they are left out: a
member in no relevant segment gets the "general" variant, and two members who
differ only in segments the issue ignores get the same one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mailer.config import Newsletter
from mailer.issues.model import Issue, Section

__all__ = [
    "GENERAL",
    "VariantContent",
    "ordered_segments",
    "variant_content",
    "variant_key",
    "variant_name",
]

GENERAL = "general"


@dataclass(frozen=True)
class VariantContent:
    """What members with one variant key read, before rendering (merge tags still in)."""

    key: frozenset[str]
    name: str
    segments: tuple[str, ...]  # the key, in mailer.toml order
    subject: str
    preheader: str
    intro: str
    sections: tuple[Section, ...]
    sign_off: str | None


def variant_key(issue: Issue, member_segments: Iterable[str]) -> frozenset[str]:
    """The variant a member in these segments gets: the segments the issue refers to."""
    return frozenset(member_segments) & issue.segments_named()


def ordered_segments(key: Iterable[str], newsletter: Newsletter) -> tuple[str, ...]:
    """Segment names in mailer.toml order; names it does not define go last, alphabetically."""
    order = {name: index for index, name in enumerate(newsletter.segment_names)}
    return tuple(sorted(key, key=lambda name: (order.get(name, len(order)), name)))


def variant_name(key: Iterable[str], newsletter: Newsletter) -> str:
    """'general' for the empty key, otherwise the segments joined with '+' in mailer.toml order."""
    return "+".join(ordered_segments(key, newsletter)) or GENERAL


def variant_content(issue: Issue, newsletter: Newsletter, key: frozenset[str]) -> VariantContent:
    """The sections and texts of one variant.

    Sections whose audience is empty or meets the key are kept, in the issue's order.
    Subject, preheader and intro come from the first segment of the key (mailer.toml
    order) that overrides that field, else from the issue.
    """
    segments = ordered_segments(key, newsletter)
    overrides = [issue.segments[name] for name in segments if name in issue.segments]
    return VariantContent(
        key=key,
        name=variant_name(key, newsletter),
        segments=segments,
        subject=_first([o.subject for o in overrides], issue.subject),
        preheader=_first([o.preheader for o in overrides], issue.preheader),
        intro=_first([o.intro for o in overrides], issue.intro),
        sections=tuple(section for section in issue.sections if section.is_for(key)),
        sign_off=issue.sign_off,
    )


def _first(candidates: Sequence[str | None], default: str) -> str:
    return next((value for value in candidates if value is not None), default)
