"""A member's placeholder values on a send's hot path: the same as the general construction."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailer.config import Newsletter
from mailer.errors import RenderError
from mailer.issues.model import Issue
from mailer.render import variant_key
from mailer.render.placeholders import Placeholder
from mailer.sending.personalise import Variant, Variants, member_values
from mailer.transports.variant import placeholder_names

# Text a member may have: spaces and line breaks of every kind, an encoded-word opener,
# HTML and URL specials, letters beyond ASCII.
MEMBER_TEXT = st.text(
    alphabet=st.sampled_from(list("Ann Lee&<>\"'=?/%é\u00a0\t\r\n\u2028\x85\x1c")), max_size=12
)


@dataclasses.dataclass(frozen=True)
class Someone:
    name: str
    first_name: str
    organisation: str
    region: str


def variant_with(
    placeholders: tuple[Placeholder, ...], issue: Issue, newsletter: Newsletter
) -> Variant:
    """The sample issue's variant with these placeholders in place of its own."""
    sample = Variants(issue, newsletter, "https://news.example.org/archive/x").get(
        variant_key(issue, frozenset())
    )
    compiled = dataclasses.replace(sample.compiled, placeholders=placeholders)
    return Variant(compiled, sample.content, tuple(placeholder_names(placeholders)))


PLACEHOLDERS = st.lists(
    st.builds(
        Placeholder,
        field=st.sampled_from(
            ["name", "first_name", "organisation", "region", "unsubscribe_url", "preferences_url"]
        ),
        fallback=st.sampled_from(["", "there", "your & group"]),
        in_url=st.booleans(),
    ),
    min_size=1,
    max_size=6,
    unique=True,
).map(tuple)


class TestValuesFor:
    @given(
        placeholders=PLACEHOLDERS,
        member=st.builds(
            Someone,
            name=MEMBER_TEXT,
            first_name=MEMBER_TEXT,
            organisation=MEMBER_TEXT,
            region=MEMBER_TEXT,
        ),
    )
    def test_is_values_of_member_values_for_any_member(
        self,
        issue: Issue,
        newsletter: Newsletter,
        placeholders: tuple[Placeholder, ...],
        member: Someone,
    ) -> None:
        """Whatever the member's text and the placeholders (fallbacks, in a URL), the one-pass
        values are those of the general construction, which the test sends and previews use."""
        variant = variant_with(placeholders, issue, newsletter)
        unsubscribe = "https://news.example.org/unsubscribe/v1.a"
        preferences = "https://news.example.org/preferences/v1.b"
        expected = variant.values(
            member_values(member, {"unsubscribe_url": unsubscribe, "preferences_url": preferences})
        )
        assert expected == variant.values_for(member, unsubscribe, preferences)

    def test_a_member_without_links_is_refused_as_before(
        self, issue: Issue, newsletter: Newsletter
    ) -> None:
        """No unsubscribe link, no email: the general construction's error, not an empty value."""
        variant = variant_with((Placeholder("unsubscribe_url"),), issue, newsletter)
        with pytest.raises(RenderError, match="unsubscribe_url"):
            variant.values_for(Someone("Ann", "", "", ""), "", "https://news.example.org/p")
