"""The studio's checks of a variant as a member gets it: links, pictures, lengths, reading time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailer.config import Newsletter
from mailer.issues.model import Issue
from mailer.render import CompiledVariant, RenderedMessage, render_issue
from mailer.render.checks import check_variant
from mailer.render.preview import sample_member

BASE = "https://news.example.org"


@pytest.fixture(scope="module")
def compiled(issue: Issue, newsletter: Newsletter) -> CompiledVariant:
    return render_issue(issue, newsletter, [frozenset()])[0]


@pytest.fixture(scope="module")
def message(compiled: CompiledVariant) -> RenderedMessage:
    return compiled.personalise(sample_member(BASE))


def with_html(message: RenderedMessage, body: str) -> RenderedMessage:
    return replace(message, html=f"<html><body>{body}</body></html>")


class TestLinks:
    def test_every_link_with_its_words_and_target(
        self, compiled: CompiledVariant, message: RenderedMessage
    ) -> None:
        """Each link of the sample issue is listed, the footer's included, none flagged."""
        checks = check_variant(compiled, message, own_links=BASE)

        assert (
            "Add your warm space",
            "https://connected-communities.example.org/warm-spaces/add",
        ) in [(link.text, link.href) for link in checks.links]
        assert ("Unsubscribe from Connected Communities", f"{BASE}/unsubscribe/preview-token") == (
            checks.links[-1].text,
            checks.links[-1].href,
        )
        assert [] == [link for link in checks.links if link.problems]

    def test_the_same_words_to_different_places(
        self, compiled: CompiledVariant, message: RenderedMessage
    ) -> None:
        """'Read more' to two different pages is flagged on both."""
        html = '<a href="https://a.example.org/1">Read more</a> <a href="https://a.example.org/2">Read more</a>'

        links = check_variant(compiled, with_html(message, html)).links

        assert [("the same words 'Read more' link to 2 different places",)] * 2 == [
            link.problems for link in links
        ]

    def test_a_jump_to_a_section_of_the_email_is_fine_one_to_nowhere_is_not(
        self, compiled: CompiledVariant, message: RenderedMessage
    ) -> None:
        """'In this issue' links (#section-1) land on a heading of the email; #missing does not."""
        html = (
            '<a href="#section-1">News</a><a href="#missing">Gone</a><h2 id="section-1">News</h2>'
        )

        links = check_variant(compiled, with_html(message, html)).links

        assert [(), ("is not a whole web address: it will not open from an inbox",)] == [
            link.problems for link in links
        ]

    def test_http_and_addresses_that_are_not_whole(
        self, compiled: CompiledVariant, message: RenderedMessage
    ) -> None:
        """http:// and a link without a scheme are flagged; the web app's own links are not."""
        html = (
            '<a href="http://old.example.org/">Old site</a><a href="www.example.org">Site</a>'
            f'<a href="{BASE.replace("https", "http")}/unsubscribe/t">Unsubscribe</a>'
            '<a href="https://example.org/"><img src="https://example.org/a.png" alt="Our logo"></a>'
        )

        links = check_variant(
            compiled, with_html(message, html), own_links="http://news.example.org"
        ).links

        assert [
            (
                "Old site",
                (
                    "starts with http://: members' mail apps may warn; use https:// if the site has it",
                ),
            ),
            ("Site", ("is not a whole web address: it will not open from an inbox",)),
            ("Unsubscribe", ()),
            ("[picture: Our logo]", ()),
        ] == [(link.text, link.problems) for link in links]


class TestPictures:
    def test_alt_text_that_describes_nothing(
        self, compiled: CompiledVariant, message: RenderedMessage
    ) -> None:
        """File names, placeholders, single words and missing alt text are flagged."""
        html = "".join(
            f'<img src="https://example.org/{n}.jpg" alt="{alt}">'
            for n, alt in enumerate(
                ["IMG_2041.jpg", "image1", "Map", "", "Volunteers serving soup"]
            )
        )

        images = check_variant(compiled, with_html(message, html)).images

        assert [
            "alt text looks like a file name: describe what the picture shows instead",
            "alt text looks like a placeholder: describe what the picture shows instead",
            "alt text is a single word: describe what the picture shows instead",
            "has no alt text: people who cannot see it hear nothing",
            None,
        ] == [image.problem for image in images]


class TestLengthsAndReading:
    def test_a_long_subject_shows_what_a_phone_shows(
        self, compiled: CompiledVariant, message: RenderedMessage
    ) -> None:
        """The sample's 78-character subject: phones show its first 40."""
        subject = check_variant(compiled, message).subject

        assert (78, "Winter connections: warm spaces, Christ…") == (subject.length, subject.shown)
        assert (
            "phones show about the first 40 characters (“Winter connections: warm spaces, "
            "Christ…”) and desktop inboxes about 60: put what matters first"
        ) == subject.note

    @pytest.mark.parametrize(
        ("preheader", "note"),
        [
            (
                "Short.",
                "inboxes fill the rest of the line with the email's first words; 40 to 100 characters fill it with yours",
            ),
            ("x" * 60, None),
            ("x" * 130, "most inboxes show about the first 100 characters"),
        ],
    )
    def test_preheader_lengths(
        self, compiled: CompiledVariant, message: RenderedMessage, preheader: str, note: str | None
    ) -> None:
        """A preheader of 40 to 100 characters fills the inbox line; others get a note."""
        assert note == check_variant(compiled, replace(message, preheader=preheader)).preheader.note

    def test_reading_time(self, compiled: CompiledVariant, message: RenderedMessage) -> None:
        """Words of the text part at 230 a minute, rounded up."""
        words = " ".join(["word"] * 461)

        checks = check_variant(compiled, replace(message, text=words))

        assert (461, 3) == (checks.words, checks.minutes)
