"""Which segments a member is in, from the rules in mailer.toml.

A member is in a segment when every kind of rule the segment gives matches
(tags, regions, attributes); within a kind, any listed value matches. Tags,
regions and attribute values are compared without regard to case or surrounding
space, and attribute names the way CSV headers are read (``Member type`` is
``member_type``). A member can be in several segments, or none.

The audience step calls :func:`segments_of` (or a :class:`SegmentRules` built
once per send) for each member to pick the rendering variant they get.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from mailer.config import Newsletter, Segment
from mailer.errors import ConfigError
from mailer.store.models import Subscriber, column_key


class Profile(Protocol):
    """What segment rules look at: a Subscriber, or the audience's lighter profile."""

    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def region(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, str]: ...


def _fold(value: str) -> str:
    return value.strip().casefold()


@dataclass(frozen=True)
class _Rule:
    name: str
    tags: frozenset[str]
    regions: frozenset[str]
    attributes: tuple[tuple[str, frozenset[str]], ...]

    @classmethod
    def of(cls, segment: Segment) -> _Rule:
        attributes = tuple(
            (
                column_key(name),
                frozenset(_fold(v) for v in ([value] if isinstance(value, str) else value)),
            )
            for name, value in segment.attributes.items()
        )
        return cls(
            name=segment.name,
            tags=frozenset(_fold(tag) for tag in segment.tags),
            regions=frozenset(_fold(region) for region in segment.regions),
            attributes=attributes,
        )

    def matches(self, tags: frozenset[str], region: str, attributes: Mapping[str, str]) -> bool:
        if self.tags and self.tags.isdisjoint(tags):
            return False
        if self.regions and region not in self.regions:
            return False
        return all(_fold(attributes.get(name, "")) in allowed for name, allowed in self.attributes)


class SegmentRules:
    """The newsletter's segments, prepared once for matching many members."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self._rules = [_Rule.of(segment) for segment in segments]
        self._segments = {segment.name: segment for segment in segments}
        self.names = [segment.name for segment in segments]
        # Every attribute some rule reads (column names), once each.
        self.attribute_names = tuple(
            dict.fromkeys(name for rule in self._rules for name, _ in rule.attributes)
        )

    @classmethod
    def of(cls, newsletter: Newsletter) -> SegmentRules:
        return cls(newsletter.segments)

    def of_member(self, subscriber: Profile) -> frozenset[str]:
        """The names of the segments this member is in."""
        return self.of_folded(
            *self.folded(subscriber.tags, subscriber.region, subscriber.attributes)
        )

    def folded(
        self, tags: Iterable[str], region: str, attributes: Mapping[str, str]
    ) -> tuple[frozenset[str], str, tuple[str, ...]]:
        """What the rules read of a member, folded: their tags, region, and the values of
        the attributes some rule names (in :attr:`attribute_names`' order). Members alike
        in these are in the same segments, however else they differ."""
        named = {column_key(name): value for name, value in attributes.items()}
        return (
            frozenset(_fold(tag) for tag in tags),
            _fold(region),
            tuple(_fold(named.get(name, "")) for name in self.attribute_names),
        )

    def of_folded(
        self, tags: frozenset[str], region: str, values: tuple[str, ...]
    ) -> frozenset[str]:
        """The names of the segments of a member read by :meth:`folded`."""
        attributes = dict(zip(self.attribute_names, values, strict=True))
        return frozenset(
            rule.name for rule in self._rules if rule.matches(tags, region, attributes)
        )

    def segment(self, name: str) -> Segment:
        """The segment called ``name``; ConfigError if there is none."""
        if name not in self._segments:
            raise ConfigError(
                f"there is no segment named '{name}'; mailer.toml defines: {', '.join(self.names)}"
            )
        return self._segments[name]

    def members_of(self, name: str, subscribers: Iterable[Subscriber]) -> Iterator[Subscriber]:
        """The subscribers in the segment called ``name``; ConfigError if there is none."""
        self.segment(name)
        return (subscriber for subscriber in subscribers if name in self.of_member(subscriber))


def rules_of(newsletter: Newsletter) -> SegmentRules:
    """The newsletter's segment rules, prepared (once for the segments last seen)."""
    return _rules_for(newsletter.segments)


def segments_of(subscriber: Profile, newsletter: Newsletter) -> frozenset[str]:
    """The names of the newsletter's segments this member is in.

    Called once per member of a send, so the rules prepared for the segments last
    seen are kept (the loaded settings are not changed while mailer runs).
    """
    return _rules_for(newsletter.segments).of_member(subscriber)


# The segments last prepared, held (so their ids cannot be reused) with their rules.
_prepared: tuple[list[Segment], tuple[Segment, ...], SegmentRules] | None = None


def _rules_for(segments: list[Segment]) -> SegmentRules:
    global _prepared
    if (
        _prepared is None
        or _prepared[0] is not segments
        or len(_prepared[1]) != len(segments)
        or any(a is not b for a, b in zip(_prepared[1], segments, strict=False))
    ):
        _prepared = (segments, tuple(segments), SegmentRules(segments))
    return _prepared[2]


def with_segments(
    subscribers: Iterable[Subscriber], newsletter: Newsletter
) -> Iterator[tuple[Subscriber, frozenset[str]]]:
    """Each subscriber with the segments they are in: what the audience step needs."""
    rules = SegmentRules.of(newsletter)
    for subscriber in subscribers:
        yield subscriber, rules.of_member(subscriber)
