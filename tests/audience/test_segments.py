"""Segment membership from the rules in mailer.toml."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from mailer.audience.segments import SegmentRules, segments_of, with_segments
from mailer.config import Newsletter, Segment
from mailer.errors import ConfigError
from mailer.store import Subscriber, SubscriberStatus

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def member(
    tags: tuple[str, ...] = (), region: str = "", attributes: dict[str, str] | None = None
) -> Subscriber:
    return Subscriber(
        id=1,
        email="m@example.org",
        name="M",
        organisation="",
        region=region,
        tags=tags,
        attributes=attributes or {},
        status=SubscriberStatus.active,
        status_changed_at=NOW,
        status_reason="",
        created_at=NOW,
        updated_at=NOW,
    )


def rules(**segments: Mapping[str, object]) -> SegmentRules:
    return SegmentRules(
        [Segment.model_validate({"name": n, "label": n, **s}) for n, s in segments.items()]
    )


class TestSegmentRules:
    def test_a_tag_rule_matches_any_listed_tag(self) -> None:
        """tags = [a, b] means tag a or tag b."""
        youth = rules(youth={"tags": ["youth-loneliness", "young-carers"]})
        assert frozenset({"youth"}) == youth.of_member(member(tags=("young-carers",)))
        assert frozenset() == youth.of_member(member(tags=("in-person",)))

    def test_a_region_rule(self) -> None:
        """regions = [Wales] matches members in Wales."""
        wales = rules(wales={"regions": ["Wales"]})
        assert frozenset({"wales"}) == wales.of_member(member(region="Wales"))
        assert frozenset() == wales.of_member(member(region="Scotland"))

    def test_tags_and_regions_ignore_case_and_spaces(self) -> None:
        """Spreadsheets are not consistent about capitals: ' WALES ' is Wales."""
        both = rules(wales={"regions": ["Wales"]}, youth={"tags": ["Youth-Loneliness"]})
        assert frozenset({"wales", "youth"}) == both.of_member(
            member(tags=("youth-loneliness",), region=" WALES ")
        )

    def test_an_attribute_rule_matches_a_value_or_any_of_several(self) -> None:
        """attributes = {member_type = [charity, community group]} matches either value."""
        grassroots = rules(
            grassroots={"attributes": {"member_type": ["charity", "Community group"]}}
        )
        small = rules(small={"attributes": {"Size": "small"}})
        assert frozenset({"grassroots"}) == grassroots.of_member(
            member(attributes={"member_type": "community group"})
        )
        assert frozenset() == grassroots.of_member(member(attributes={"member_type": "partner"}))
        assert frozenset() == grassroots.of_member(member())
        assert frozenset({"small"}) == small.of_member(member(attributes={"size": "Small"}))

    def test_every_kind_of_rule_given_must_match(self) -> None:
        """A segment with tags and regions wants both: youth work in Wales."""
        welsh_youth = rules(**{"welsh-youth": {"tags": ["youth-loneliness"], "regions": ["Wales"]}})
        assert frozenset({"welsh-youth"}) == welsh_youth.of_member(
            member(tags=("youth-loneliness",), region="Wales")
        )
        assert frozenset() == welsh_youth.of_member(
            member(tags=("youth-loneliness",), region="Scotland")
        )
        assert frozenset() == welsh_youth.of_member(member(region="Wales"))

    def test_a_member_can_be_in_several_segments_or_none(self) -> None:
        """Membership is a set: any number of segments, including none."""
        several = rules(
            youth={"tags": ["youth"]},
            wales={"regions": ["Wales"]},
            scotland={"regions": ["Scotland"]},
        )
        assert frozenset({"youth", "wales"}) == several.of_member(
            member(tags=("youth",), region="Wales")
        )
        assert frozenset() == several.of_member(member(region="London"))

    def test_members_of_an_unknown_segment_is_a_config_error(self) -> None:
        """Asking for a segment mailer.toml does not define names the ones it does."""
        youth = rules(youth={"tags": ["youth"]})
        with pytest.raises(
            ConfigError,
            match=re.escape("there is no segment named 'yuoth'; mailer.toml defines: youth"),
        ):
            list(youth.members_of("yuoth", [member()]))


class TestSampleSegments:
    def test_segments_of_uses_the_newsletters_rules(self, newsletter: Newsletter) -> None:
        """The sample mailer.toml: youth by tag, wales by region."""
        someone = member(tags=("youth-loneliness", "in-person"), region="Wales")
        assert frozenset({"youth", "in-person", "wales"}) == segments_of(someone, newsletter)

    def test_segments_of_follows_a_newsletter_that_changed(self, newsletter: Newsletter) -> None:
        """Rules prepared for one set of segments are not reused for another."""
        someone = member(region="Wales")
        assert frozenset({"wales"}) == segments_of(someone, newsletter)
        other = newsletter.model_copy(update={"segments": [newsletter.segment("scotland")]})
        assert frozenset() == segments_of(someone, other)

    def test_with_segments_pairs_each_member_with_theirs(self, newsletter: Newsletter) -> None:
        """The audience step gets (member, segments) for every member."""
        members = [member(region="Scotland"), member(tags=("intergenerational",))]
        assert [frozenset({"scotland"}), frozenset({"intergenerational"})] == [
            segments for _, segments in with_segments(members, newsletter)
        ]

    def test_every_sample_member_is_in_a_sample_segment(
        self, newsletter: Newsletter, project_root: Path
    ) -> None:
        """The sample list in subscribers/ exercises the sample segments: each segment has members."""
        from mailer.store.csvio import read_members

        parsed = read_members(project_root / "subscribers" / "members.csv")
        assert [] == parsed.problems
        assert 55 <= len(parsed.records) <= 70
        found: set[str] = set()
        sample = SegmentRules.of(newsletter)
        for record in parsed.records:
            found |= sample.of_member(
                member(tags=record.tags or (), region=record.region or "", attributes={})
            )
        assert set(newsletter.segment_names) == found
