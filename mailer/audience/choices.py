"""What members choose for themselves: name, organisation, nation/region and interests.

The preference centre, the sign-up form and the members API take the same
choices, checked the same way (:func:`check_choices`), and turn them into the
same import record (:func:`record_for`), which the store writes under the
import's rules: a profile change never moves a member out of a sticky status.

Interests are the segments marked ``choosable`` in mailer.toml; such a segment is
defined by tags alone, so choosing it gives the member its first tag and
un-choosing it takes all of its tags away. Region segments follow from the
region, chosen from mailer.toml's ``regions``; other segments follow from what
the editors imported (tags, attributes), which members cannot change here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailer.audience.segments import Profile, segments_of
from mailer.config import Newsletter
from mailer.errors import InvalidChoice
from mailer.headersafety import one_line, profile_text_problem
from mailer.store.models import MemberRecord

__all__ = ["Choices", "check_choices", "chosen_interests", "record_for", "sections_in_words"]

MAX_NAME = 200
MAX_ORGANISATION = 200


@dataclass(frozen=True)
class Choices:
    """A member's choices; ``None`` means "not given, keep what is stored"."""

    name: str | None = None
    organisation: str | None = None
    region: str | None = None
    interests: frozenset[str] | None = None


def _profile_text(field: str, value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    text = one_line(value).strip()
    if "\x00" in text:  # no part of a name, and PostgreSQL cannot store it
        raise InvalidChoice(field, f"the {field} holds a NUL character; write it as plain text")
    problem = profile_text_problem(field, text)
    if problem:
        raise InvalidChoice(field, problem)
    if len(text) > limit:
        raise InvalidChoice(field, f"the {field} is {len(text)} characters; at most {limit}")
    return text


def check_choices(
    newsletter: Newsletter,
    *,
    name: str | None = None,
    organisation: str | None = None,
    region: str | None = None,
    interests: Iterable[str] | None = None,
) -> Choices:
    """The choices, checked; InvalidChoice naming the field otherwise.

    A region must be one of mailer.toml's ``regions`` (any capitals) or empty; an
    interest must be a choosable segment's name.
    """
    chosen_region = None
    if region is not None:
        if not region.strip():
            chosen_region = ""
        else:
            chosen_region = newsletter.region_named(region)
            if chosen_region is None:
                listed = ", ".join(newsletter.regions) or "none are configured"
                raise InvalidChoice(
                    "region", f"'{region[:60]}' is not one of the regions: {listed}"
                )
    chosen_interests = None
    if interests is not None:
        chosen_interests = frozenset(interests)
        allowed = {segment.name for segment in newsletter.choosable_segments}
        unknown = sorted(chosen_interests - allowed)
        if unknown:
            listed = ", ".join(sorted(allowed)) or "none are configured"
            raise InvalidChoice(
                "interests", f"'{unknown[0][:60]}' is not an interest members choose: {listed}"
            )
    return Choices(
        name=_profile_text("name", name, MAX_NAME),
        organisation=_profile_text("organisation", organisation, MAX_ORGANISATION),
        region=chosen_region,
        interests=chosen_interests,
    )


def chosen_interests(member: Profile, newsletter: Newsletter) -> frozenset[str]:
    """The choosable segments the member is in now."""
    choosable = {segment.name for segment in newsletter.choosable_segments}
    return segments_of(member, newsletter) & choosable


def tags_with(
    tags: Iterable[str], interests: frozenset[str], newsletter: Newsletter
) -> tuple[str, ...]:
    """The member's tags with their interests set to ``interests``; other tags kept, in order.

    A chosen interest the member already has keeps the tag that gives it; one they
    do not have gets the segment's first tag; one not chosen loses all its tags.
    """
    current = list(tags)
    result = list(current)
    for segment in newsletter.choosable_segments:
        mine = {tag.strip().casefold() for tag in segment.tags}
        held = [tag for tag in result if tag.strip().casefold() in mine]
        if segment.name in interests:
            if not held:
                result.append(segment.tags[0])
        else:
            result = [tag for tag in result if tag not in held]
    return tuple(dict.fromkeys(result))


def record_for(
    email: str, choices: Choices, newsletter: Newsletter, current_tags: Iterable[str] = ()
) -> MemberRecord:
    """The import record that makes the choices: fields not chosen are left as stored."""
    tags = None
    if choices.interests is not None:
        tags = tags_with(current_tags, choices.interests, newsletter)
    return MemberRecord(
        email=email,
        name=choices.name,
        organisation=choices.organisation,
        region=choices.region,
        tags=tags,
    )


def sections_in_words(
    segments: Iterable[str], opted_out: Iterable[str], newsletter: Newsletter
) -> str:
    """Which sections the member gets, as a sentence."""
    out = set(opted_out)
    labels = [s.label for s in newsletter.segments if s.name in set(segments) and s.name not in out]
    if not labels:
        return "You get the sections every member gets."
    extra = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
    return f"You get the sections every member gets, and those for {extra}."
