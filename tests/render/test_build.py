"""Rendering: variants per segment set, personalisation after one MJML compile, safe Markdown."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mjml
import pytest

from mailer.config import Newsletter
from mailer.errors import RenderError, SizeBudgetError
from mailer.issues.model import Issue
from mailer.render import (
    LIMIT_BYTES,
    WARN_BYTES,
    CompiledVariant,
    Placeholder,
    render_issue,
    variant_content,
    variant_key,
    variant_name,
)
from mailer.render.markdown import markdown_to_html, markdown_to_text
from mailer.render.placeholders import PlaceholderRegistry
from mailer.render.theme import AA, contrast_ratio, theme_for

TOKEN = re.compile(r"mlr[0-9a-f]{8}z\d+z")
MEMBER = {
    "name": "Alex Morgan",
    "organisation": "Example Community Trust",
    "unsubscribe_url": "https://news.example.org/unsubscribe/tok1?a=1&b=2",
    "preferences_url": "https://news.example.org/preferences/tok1",
}


def make_issue(**fields: Any) -> Issue:
    """A small valid issue; keyword arguments replace its fields."""
    data: dict[str, Any] = {
        "slug": "2025-07-10-test",
        "subject": "July news",
        "preheader": "What is new this fortnight",
        "date": "2025-07-10",
        "status": "ready",
        "intro": "Hi {{ first_name | there }},\n\nWelcome.",
        "sections": [{"title": "For everyone", "body": "News for all members."}],
    }
    data.update(fields)
    return Issue.model_validate(data)


def render_one(
    issue: Issue, newsletter: Newsletter, key: frozenset[str] = frozenset(), **kw: Any
) -> CompiledVariant:
    [variant] = render_issue(issue, newsletter, [key], **kw)
    return variant


class TestVariantKey:
    def test_member_in_no_relevant_segment_gets_the_empty_key(self, sample: Issue) -> None:
        """A member only in segments the issue ignores gets the general variant's key."""
        assert frozenset() == variant_key(sample, {"scotland", "northern-ireland"})

    def test_segments_the_issue_does_not_name_are_dropped(self, sample: Issue) -> None:
        """Only the issue's own segments count towards the key."""
        assert frozenset({"youth", "wales"}) == variant_key(sample, ["youth", "wales", "scotland"])

    def test_members_differing_only_in_ignored_segments_share_a_key(self, sample: Issue) -> None:
        """Two members who differ only in segments the issue ignores get the same variant."""
        assert variant_key(sample, {"youth"}) == variant_key(sample, {"youth", "scotland"})


class TestVariantName:
    def test_empty_key_is_general(self, newsletter: Newsletter) -> None:
        """The empty key is called 'general'."""
        assert "general" == variant_name(frozenset(), newsletter)

    def test_names_follow_mailer_toml_order(self, newsletter: Newsletter) -> None:
        """Segments are joined with '+' in the order mailer.toml defines them."""
        assert "youth+in-person+wales" == variant_name({"wales", "in-person", "youth"}, newsletter)

    def test_unknown_names_go_last(self, newsletter: Newsletter) -> None:
        """A name mailer.toml does not define sorts after the defined ones."""
        assert "wales+zzz" == variant_name({"zzz", "wales"}, newsletter)


class TestVariantContent:
    def test_general_variant_has_only_untargeted_sections(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """Sections with an audience are left out of the general variant."""
        content = variant_content(sample, newsletter, frozenset())
        assert ["Tell us what you need from us"] == [s.title for s in content.sections]

    def test_targeted_sections_join_in_issue_order(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """A variant has the sections for everyone and those for its segments, in file order."""
        content = variant_content(sample, newsletter, frozenset({"wales", "youth"}))
        assert [
            "What 2,000 young people told us about loneliness",
            "Events in Wales this month",
            "Tell us what you need from us",
        ] == [s.title for s in content.sections]

    def test_general_variant_uses_the_issue_texts(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """Without overrides, subject, preheader and intro are the issue's own."""
        content = variant_content(sample, newsletter, frozenset())
        assert (sample.subject, sample.preheader, sample.intro) == (
            content.subject,
            content.preheader,
            content.intro,
        )

    def test_first_segment_in_mailer_toml_order_wins(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """When two segments override the subject, the one defined first in mailer.toml wins."""
        content = variant_content(sample, newsletter, frozenset({"wales", "youth"}))
        assert sample.segments["youth"].subject == content.subject

    def test_each_field_falls_through_to_the_next_override(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """A field the first segment leaves alone comes from the next segment that overrides it."""
        content = variant_content(sample, newsletter, frozenset({"wales", "youth"}))
        assert sample.segments["wales"].preheader == content.preheader
        assert sample.segments["youth"].intro == content.intro

    def test_segment_without_override_keeps_issue_texts(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """A segment that only has sections keeps the issue's subject."""
        assert (
            sample.subject == variant_content(sample, newsletter, frozenset({"in-person"})).subject
        )


class TestRenderIssue:
    def test_one_variant_per_distinct_key(self, sample: Issue, newsletter: Newsletter) -> None:
        """Repeated keys are compiled once; variants come back in the order first given."""
        keys = [frozenset({"youth"}), frozenset(), frozenset({"youth"})]
        assert ["youth", "general"] == [v.name for v in render_issue(sample, newsletter, keys)]

    def test_mjml_compiles_once_per_variant_not_per_recipient(
        self, sample: Issue, newsletter: Newsletter, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Personalising many recipients never compiles MJML again."""
        calls: list[str] = []
        original: Callable[..., str] = mjml.mjml2html

        def counting(source: str, **kwargs: Any) -> str:
            calls.append(source)
            return original(source, **kwargs)

        monkeypatch.setattr(mjml, "mjml2html", counting)
        variants = render_issue(
            sample, newsletter, [frozenset(), frozenset({"youth"}), frozenset({"wales"})]
        )
        for variant in variants:
            for n in range(50):
                variant.personalise({**MEMBER, "name": f"Member {n}"})
        assert 3 == len(calls)

    def test_html_declares_language_and_colour_schemes(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """The HTML has lang from mailer.toml, colour-scheme metas and a dark-mode style block."""
        html = render_one(sample, newsletter).personalise(MEMBER).html
        assert '<html lang="en-GB"' in html
        assert '<meta name="color-scheme" content="light dark"' in html
        assert '<meta name="supported-color-schemes" content="light dark"' in html
        assert "@media (prefers-color-scheme: dark)" in html

    def test_html_has_real_headings(self, sample: Issue, newsletter: Newsletter) -> None:
        """The headline (the variant's subject when the issue has none) is the h1 and each
        section title an h2, with the newsletter's name and the date above the h1."""
        html = render_one(sample, newsletter, frozenset({"youth"})).personalise(MEMBER).html
        [h1] = re.findall(r"<h1[^>]*>(.*?)</h1>", html, re.S)
        assert "New research: what 2,000 young people told us about loneliness" == h1
        assert re.search(r"Connected Communities</a> &middot; 12 June 2025\s*</p>\s*<h1", html)
        titles = re.findall(r"<h2[^>]*>(.*?)</h2>", html)
        assert [
            "What 2,000 young people told us about loneliness",
            "Tell us what you need from us",
        ] == titles

    def test_preheader_is_the_hidden_preview_text(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """The preheader opens the body, hidden, where inboxes take their preview line."""
        html = render_one(sample, newsletter).personalise(MEMBER).html
        body = html.split("<body", 1)[1]
        assert re.match(
            r"[^>]*><div style=\"display:none;[^>]*>New research on youth loneliness", body
        )

    def test_preheader_is_hidden_without_a_colour(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """No colour or tiny font on the hidden preheader: spam filters read light text on a
        light page as hidden low-contrast text (SpamAssassin's HTML_FONT_LOW_CONTRAST)."""
        html = render_one(sample, newsletter).personalise(MEMBER).html
        style = re.search(r"<body[^>]*><div style=\"([^\"]*)\"", html)
        assert style is not None
        assert "display:none;" in style[1] and "mso-hide:all;" in style[1]
        assert "color" not in style[1] and "font-size" not in style[1]

    def test_headline_comes_from_the_issue(self, newsletter: Newsletter) -> None:
        """An issue's headline, merge tags filled, is the h1 and the text part's opening line."""
        issue = make_issue(headline="Your July, {{ first_name | friend }}")
        message = render_one(issue, newsletter).personalise({**MEMBER, "first_name": "Sam"})
        assert re.search(r"<h1[^>]*>Your July, Sam</h1>", message.html)
        assert "10 July 2025\n\nYour July, Sam\n" in message.text

    def test_in_this_issue_links_each_section_title(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """'In this issue' lists the variant's section titles, each linking to its h2's id."""
        html = render_one(sample, newsletter, frozenset({"youth"})).personalise(MEMBER).html
        toc = html.split("In this issue", 1)[1].split("</ul>", 1)[0]
        links = re.findall(r'<a href="#([a-z0-9-]+)"[^>]*>(.*?)</a>', toc)
        headings = re.findall(r'<h2 id="([a-z0-9-]+)"[^>]*>(.*?)</h2>', html)
        assert 2 == len(links)
        assert headings == links

    def test_one_section_has_no_contents_list(self, newsletter: Newsletter) -> None:
        """A list of one would only repeat the section below it."""
        html = render_one(make_issue(), newsletter).personalise(MEMBER).html
        assert "In this issue" not in html

    def test_logo_has_alt_text_and_a_fixed_size(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """The logo from mailer.toml heads the email at its width and height, with alt text."""
        assert newsletter.logo is not None
        html = render_one(sample, newsletter).personalise(MEMBER).html
        logo = re.search(
            rf'<img alt="([^"]*)" height="(\d+)" src="{newsletter.logo.url}" '
            r'width="(\d+)" style="([^"]*)"',
            html,
        )
        assert logo is not None
        assert ("Connected Communities", "48", "48") == logo.groups()[:3]
        assert "height:48px;" in logo[4] and "color:#ffffff;" in logo[4]

    def test_no_logo_without_one_in_mailer_toml(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """The logo is optional: without it the header starts with the name and the date."""
        html = (
            render_one(sample, newsletter.model_copy(update={"logo": None}))
            .personalise(MEMBER)
            .html
        )
        assert "logo-email.png" not in html
        assert re.search(r"<h1[^>]*>", html)

    def test_button_cells_have_no_vertical_align_attribute(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """vertical-align is CSS, not an HTML attribute (mjml-python writes it, MJML does not)."""
        html = render_one(sample, newsletter, frozenset({"youth"})).personalise(MEMBER).html
        assert 2 == html.count('class="dm-button"')
        assert not re.search(r"<td[^>]* vertical-align=", html)

    def test_images_off_alt_text_is_styled_and_the_height_kept(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """Alt text in the email's font and a muted colour, never blue and underlined, and
        each picture's shape reserved (its own size when the editor gives it, else 3:2)."""
        sections = [dict(s) for s in yaml_sections(sample)]
        sections[1]["image"] = {**sections[1]["image"], "width": 1200, "height": 900}
        issue = sample.model_copy(
            update={"sections": [type(sample.sections[0]).model_validate(s) for s in sections]}
        )
        html = (
            render_one(issue, newsletter, frozenset({"youth", "intergenerational"}))
            .personalise(MEMBER)
            .html
        )
        styles = dict(
            re.findall(r'<img alt="[^"]*" height="auto" src="([^"]*)"[^>]*style="([^"]*)"', html)
        )
        assert 2 == len(styles)
        for src, style in styles.items():
            assert "font-family:-apple-system" in style and "color:#525a56;" in style
            ratio = "1200 / 900" if "garden" in src else "3 / 2"
            assert f"aspect-ratio:auto {ratio};" in style
        assert (
            '<a href="https://connected-communities.example.org/grants/bridging" target="_blank" style="color:inherit;text-decoration:none;"><img'
            in html
        )

    def test_images_have_alt_text_and_width(self, sample: Issue, newsletter: Newsletter) -> None:
        """Every image (the logo and the sections') carries alt text and a width attribute."""
        html = (
            render_one(sample, newsletter, frozenset({"youth", "in-person"}))
            .personalise(MEMBER)
            .html
        )
        images = re.findall(r"<img [^>]*>", html)
        assert 3 == len(images)
        for tag in images:
            assert re.search(r'alt="[^"]+"', tag) and re.search(r'width="\d+"', tag)

    def test_two_column_sections_use_columns(self, sample: Issue, newsletter: Newsletter) -> None:
        """image-left and image-right sections are two columns; image-right is laid out rtl."""
        html = (
            render_one(sample, newsletter, frozenset({"youth", "intergenerational"}))
            .personalise(MEMBER)
            .html
        )
        assert 2 == html.count("mj-column-per-42 two-col image-col")
        assert "direction:rtl" in html

    def test_footer_has_address_and_links(self, sample: Issue, newsletter: Newsletter) -> None:
        """The footer has the postal address, preferences, unsubscribe and view-in-browser links."""
        archive = "https://news.example.org/archive/2025-06-12"
        html = render_one(sample, newsletter, archive_url=archive).personalise(MEMBER).html
        assert newsletter.postal_address in html
        assert f'<a href="{archive}"' in html
        assert '<a href="https://news.example.org/preferences/tok1"' in html
        assert '<a href="https://news.example.org/unsubscribe/tok1?a=1&amp;b=2"' in html

    def test_no_view_in_browser_link_without_an_archive(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """Without an archive URL there is no view-in-browser link to a page that does not exist."""
        html = render_one(sample, newsletter).personalise(MEMBER).html
        assert "in your browser" not in html

    def test_missing_template_is_a_render_error(
        self, sample: Issue, newsletter: Newsletter, tmp_path: Path
    ) -> None:
        """A templates folder without the email template gives a RenderError naming it."""
        broken = newsletter.model_copy(update={"templates_dir": tmp_path})
        with pytest.raises(RenderError, match=r"email\.mjml\.j2"):
            render_issue(sample, broken, [frozenset()])


class TestPersonalise:
    def test_merge_tag_gets_the_first_name(self, newsletter: Newsletter) -> None:
        """{{ first_name | there }} becomes the member's first name."""
        message = render_one(make_issue(), newsletter).personalise({**MEMBER, "first_name": "Sam"})
        assert "Hi Sam," in message.html and "Hi Sam," in message.text

    def test_first_name_comes_from_the_full_name(self, newsletter: Newsletter) -> None:
        """Without a first name, the first word of the full name is used."""
        message = render_one(make_issue(), newsletter).personalise(MEMBER)
        assert "Hi Alex," in message.text

    def test_fallback_when_no_name(self, newsletter: Newsletter) -> None:
        """With no name at all, the merge tag's fallback is used."""
        message = render_one(make_issue(), newsletter).personalise({**MEMBER, "name": "  "})
        assert "Hi there," in message.html and "Hi there," in message.text

    def test_values_are_escaped_in_html_and_raw_in_text(self, newsletter: Newsletter) -> None:
        """A name with <script> or & is HTML-escaped in the HTML part and verbatim in the text."""
        issue = make_issue(intro="Dear {{ name }}, of {{ organisation }}.")
        message = render_one(issue, newsletter).personalise(
            {**MEMBER, "name": "<script>alert(1)</script>", "organisation": "Smith & Daughters"}
        )
        assert "<script>" not in message.html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message.html
        assert "Smith &amp; Daughters" in message.html
        assert "Dear <script>alert(1)</script>, of Smith & Daughters." in message.text

    def test_merge_tags_in_the_subject_are_raw(self, newsletter: Newsletter) -> None:
        """The subject gets values raw, whitespace collapsed so no newline reaches a header."""
        issue = make_issue(subject="News for {{ organisation | your group }}")
        variant = render_one(issue, newsletter)
        assert (
            "News for Smith & Daughters"
            == variant.personalise({**MEMBER, "organisation": "Smith &\r\nDaughters"}).subject
        )
        assert "News for your group" == variant.personalise(MEMBER | {"organisation": ""}).subject

    def test_merge_tag_inside_a_link_is_filled(self, newsletter: Newsletter) -> None:
        """A merge tag in a Markdown link's URL survives Markdown and is filled in."""
        issue = make_issue(
            sections=[
                {
                    "title": "Map",
                    "body": "[Your region](https://example.org/map?r={{ region | all }})",
                }
            ]
        )
        message = render_one(issue, newsletter).personalise({**MEMBER, "region": "Wales"})
        assert 'href="https://example.org/map?r=Wales"' in message.html
        assert "Your region: https://example.org/map?r=Wales" in message.text

    def test_values_in_a_link_are_percent_encoded(self, newsletter: Newsletter) -> None:
        """In a link's URL a value is percent-encoded, so '&' or a space cannot break the link."""
        body = "[Tell us](https://forms.example/?org={{ organisation }}&n={{ name }}) or write."
        issue = make_issue(sections=[{"title": "Survey", "body": body}])
        message = render_one(issue, newsletter).personalise(
            {**MEMBER, "organisation": "Smith & Daughters"}
        )
        url = "https://forms.example/?org=Smith%20%26%20Daughters&amp;n=Alex%20Morgan"
        assert f'href="{url}"' in message.html
        assert "Tell us (https://forms.example/?org=Smith%20%26%20Daughters&n=Alex%20Morgan)" in (
            " ".join(message.text.split())
        )

    def test_a_value_outside_links_is_not_percent_encoded(self, newsletter: Newsletter) -> None:
        """The same merge tag in running text keeps its spaces and ampersands."""
        body = "For {{ organisation }}: [form](https://forms.example/?org={{ organisation }})"
        issue = make_issue(sections=[{"title": "Survey", "body": body}])
        message = render_one(issue, newsletter).personalise({**MEMBER, "organisation": "A & B"})
        assert "For A &amp; B:" in message.html and "?org=A%20%26%20B" in message.html

    def test_no_placeholder_is_left(self, sample: Issue, newsletter: Newsletter) -> None:
        """Every placeholder token is replaced in subject, preheader, HTML and text."""
        [variant] = render_issue(sample, newsletter, [frozenset({"youth", "wales"})])
        message = variant.personalise(MEMBER)
        for part in (message.subject, message.preheader, message.html, message.text):
            assert not TOKEN.search(part)

    def test_a_recipient_without_an_unsubscribe_link_is_refused(
        self, newsletter: Newsletter
    ) -> None:
        """Every email must carry a working unsubscribe link: a recipient without one is refused."""
        variant = render_one(make_issue(), newsletter)
        with pytest.raises(RenderError, match="unsubscribe_url"):
            variant.personalise({"name": "Alex Morgan", "preferences_url": "https://x.example/p"})


class TestPlaceholders:
    def test_placeholders_are_links_then_merge_tags_in_first_use_order(
        self, newsletter: Newsletter
    ) -> None:
        """The list of placeholders: the two links, then each distinct merge tag as first met."""
        issue = make_issue(
            subject="For {{ organisation }}",
            intro="Hi {{ first_name | there }}, {{ organisation }} and {{ first_name }}.",
        )
        expected = (
            Placeholder("unsubscribe_url"),
            Placeholder("preferences_url"),
            Placeholder("organisation"),
            Placeholder("first_name", "there"),
            Placeholder("first_name"),
        )
        assert expected == render_one(issue, newsletter).placeholders

    def test_placeholder_ids_are_safe_and_stable(self) -> None:
        """Placeholder ids use only letters, digits and '_' and depend only on the field and fallback."""
        placeholder = Placeholder("first_name", "dear friend & co")
        assert re.fullmatch(r"[a-z0-9_]+", placeholder.id)
        assert (
            placeholder.id
            == Placeholder("first_name", "dear friend & co").id
            != Placeholder("first_name", "there").id
        )
        assert "first_name" == Placeholder("first_name").id

    def test_markers_replace_every_placeholder(self, newsletter: Newsletter) -> None:
        """html_with_markers writes each placeholder as the caller's marker and leaves no token."""
        variant = render_one(make_issue(subject="News for {{ organisation }}"), newsletter)
        html = variant.html_with_markers(lambda placeholder: f"-{placeholder.id}-")
        assert "-unsubscribe_url-" in html and "-preferences_url-" in html
        assert "Hi -first_name_or_" in html
        assert not TOKEN.search(html)
        assert not TOKEN.search(
            variant.text_with_markers(lambda placeholder: f"-{placeholder.id}-")
        )
        assert "News for -organisation-" == variant.subject_with_markers(
            lambda placeholder: f"-{placeholder.id}-"
        )

    def test_markers_filled_by_a_provider_match_personalise(self, newsletter: Newsletter) -> None:
        """Substituting escaped placeholder_values for the markers gives exactly what personalise gives."""
        variant = render_one(
            make_issue(intro="Hi {{ first_name | there }} of {{ organisation }}"), newsletter
        )
        recipient = {**MEMBER, "organisation": "A & B <Ltd>"}
        html = variant.html_with_markers(lambda placeholder: f"[[{placeholder.id}]]")
        for placeholder_id, value in variant.placeholder_values(recipient).items():
            escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            html = html.replace(
                f"[[{placeholder_id}]]", escaped.replace('"', "&quot;").replace("'", "&#x27;")
            )
        assert variant.personalise(recipient).html == html

    def test_a_new_nonce_is_chosen_if_the_text_contains_it(self) -> None:
        """Editors' text that contains the placeholder prefix cannot be mistaken for a placeholder."""
        registry = PlaceholderRegistry(nonce="deadbeef")
        registry.avoid("an odd word: mlrdeadbeefz0z")
        assert "deadbeef" != registry.nonce


class TestMarkdown:
    def test_raw_html_is_stripped(self) -> None:
        """Inline tags are dropped (their text kept) and script blocks vanish with their content."""
        html = markdown_to_html(
            'Say <b onclick="x()">hello</b>.\n\n<script>alert(1)</script>\n\n<div>Kept</div>'
        )
        assert "<p>Say hello.</p>\n<p>Kept</p>" == html

    def test_javascript_links_are_removed(self) -> None:
        """A javascript: link keeps its label but loses the link."""
        html = markdown_to_html("[Click](javascript:alert(1)) and <a href='javascript:x'>this</a>")
        assert "javascript" not in html
        assert "<p>Click and this</p>" == html

    def test_only_web_and_mailto_links_are_kept(self) -> None:
        """http, https and mailto links stay, with rel="noopener"; relative and other schemes go."""
        html = markdown_to_html(
            "[a](https://a.example) [b](http://b.example) [c](mailto:c@c.example) [d](/d) [e](ftp://e.example)"
        )
        assert 3 == html.count('rel="noopener"')
        assert "/d" not in html and "ftp:" not in html

    def test_only_allowlisted_tags_come_out(self) -> None:
        """Every tag in the output is on the email allowlist."""
        source = "# Head\n\n## Sub\n\n**b** *i* `c`\n\n> q\n\n- x\n\n1. y\n\n---\n\nline  \nbreak ![pic](https://i.example/p.png)"
        tags = set(re.findall(r"</?([a-z0-9]+)", markdown_to_html(source)))
        assert tags <= {
            "p",
            "a",
            "strong",
            "em",
            "ul",
            "ol",
            "li",
            "h3",
            "h4",
            "blockquote",
            "br",
            "hr",
            "code",
        }

    def test_headings_are_shifted_below_the_section_title(self) -> None:
        """Markdown headings become h3/h4, under the email's h1 and h2."""
        assert "<h3>One</h3>\n<h4>Three</h4>" == markdown_to_html("# One\n\n### Three")

    def test_images_become_links(self) -> None:
        """A Markdown image becomes a link to it: pictures belong in a section's image."""
        assert (
            '<p><a href="https://i.example/p.png" rel="noopener">A pie chart</a></p>'
            == markdown_to_html("![A pie chart](https://i.example/p.png)")
        )

    def test_placeholders_survive(self) -> None:
        """Alphanumeric placeholder tokens pass through text and link URLs unchanged."""
        html = markdown_to_html("Hi mlrdeadbeefz0z, [go](https://x.example/?n=mlrdeadbeefz1z)")
        assert "Hi mlrdeadbeefz0z," in html and "?n=mlrdeadbeefz1z" in html

    def test_newlines_are_spaces_unless_line_breaks_are_kept(self) -> None:
        """Wrapped lines join up; with line_breaks (for sign-offs) each newline is a break."""
        source = "Amara Okafor\nNetwork Coordinator"
        assert "<p>Amara Okafor\nNetwork Coordinator</p>" == markdown_to_html(source)
        assert "<p>Amara Okafor<br>\nNetwork Coordinator</p>" == markdown_to_html(
            source, line_breaks=True
        )
        assert "Amara Okafor Network Coordinator" == markdown_to_text(source)
        assert source == markdown_to_text(source, line_breaks=True)

    def test_text_writes_links_out(self) -> None:
        """In text, a link in a sentence reads 'label (URL)'; a link alone reads 'label: URL'."""
        text = markdown_to_text(
            "Read [the report](https://r.example) now.\n\n[Book a place](https://b.example)"
        )
        assert "Read the report (https://r.example) now.\n\nBook a place: https://b.example" == text

    def test_text_lists_quotes_and_emails(self) -> None:
        """Lists get '- ', quotes '> ', and mailto links show the address."""
        text = markdown_to_text("- one\n- two\n\n> quoted\n\nWrite to [us](mailto:hi@x.example).")
        assert "- one\n- two\n\n> quoted\n\nWrite to us (hi@x.example)." == text


class TestTextPart:
    def test_headings_are_underlined(self, sample: Issue, newsletter: Newsletter) -> None:
        """The newsletter name is underlined with '=', each section title with '-' of its length."""
        text = render_one(sample, newsletter, frozenset({"wales"})).personalise(MEMBER).text
        assert text.startswith("Connected Communities\n=====================\n12 June 2025\n")
        assert "Events in Wales this month\n--------------------------\n" in text

    def test_buttons_are_label_and_url(self, sample: Issue, newsletter: Newsletter) -> None:
        """A button is written 'Label: URL', the URL whole on its own line when both don't fit."""
        text = render_one(sample, newsletter).personalise(MEMBER).text
        assert (
            "Take the members' survey:\nhttps://connected-communities.example.org/survey\n" in text
        )

    def test_lines_are_wrapped_after_the_names_are_filled_in(self, newsletter: Newsletter) -> None:
        """Wrapping comes after personalisation: a long name does not leave a ragged line
        past 72 characters, and a short one no half-empty line."""
        words = "We are glad you are here and hope the winter has been kind to you and yours."
        issue = make_issue(intro=f"Dear {{{{ first_name | friend }}}}, {words} {words}")
        variant = render_one(issue, newsletter)
        for name in ("Al", "Maximiliana-Alexandra"):
            text = variant.personalise({**MEMBER, "first_name": name}).text
            paragraph = text.split(f"Dear {name},", 1)[1].split("\n\n", 1)[0]
            lines = f"Dear {name},{paragraph}".splitlines()
            assert all(len(line) <= 72 for line in lines)
            assert all(len(line) > 72 - 12 for line in lines[:-1])

    def test_long_urls_stay_whole_on_their_own_line(self, newsletter: Newsletter) -> None:
        """A URL longer than a line is never broken: it sits alone on its line."""
        url = "https://connected-communities.example.org/" + "a-very-long-path/" * 5 + "end"
        issue = make_issue(intro=f"Read the [full guidance on applying]({url}) before you start.")
        text = render_one(issue, newsletter).personalise(MEMBER).text
        assert f"\n({url})" in text and "\nend" not in text

    def test_footer_has_unsubscribe_and_address(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """The text footer has the raw unsubscribe and preferences URLs and the postal address."""
        text = render_one(sample, newsletter).personalise(MEMBER).text
        assert "Unsubscribe: https://news.example.org/unsubscribe/tok1?a=1&b=2" in text
        assert "Manage your email preferences: https://news.example.org/preferences/tok1" in text
        assert " ".join(text.split()).endswith(newsletter.postal_address)

    def test_text_has_only_the_variants_sections(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """The text part leaves out sections aimed at other segments, like the HTML."""
        text = render_one(sample, newsletter).personalise(MEMBER).text
        assert "Events in Wales" not in text and "young people told us about loneliness" not in text

    def test_sign_off_keeps_its_lines(self, newsletter: Newsletter) -> None:
        """The sign-off keeps the editor's line breaks: a name, then a role below it."""
        issue = make_issue(sign_off="Best wishes,\n\nAmara Okafor\nNetwork Coordinator")
        message = render_one(issue, newsletter).personalise(MEMBER)
        assert "Amara Okafor\nNetwork Coordinator\n" in message.text
        assert re.search(r"Amara Okafor<br ?/?>", message.html)

    def test_text_has_no_markup(self, sample: Issue, newsletter: Newsletter) -> None:
        """No HTML tags or Markdown emphasis reach the text part."""
        text = render_one(sample, newsletter, frozenset({"youth"})).personalise(MEMBER).text
        assert not re.search(r"</?[a-z]+[ >]", text)
        assert "**" not in text


def big_issue(newsletter: Newsletter, target: int) -> Issue:
    """An issue whose general variant's HTML is close to ``target`` bytes."""
    base = render_one(make_issue(), newsletter).html_size
    filler = ("Lorem ipsum dolor sit amet. " * 40 + "\n\n") * ((target - base) // 1150 + 1)
    body = filler[: max(target - base - 200, 1)]
    return make_issue(sections=[{"title": "Long read", "body": body}])


class TestSizeBudget:
    def test_an_ordinary_issue_has_no_warning(self, sample: Issue, newsletter: Newsletter) -> None:
        """The sample issue is far below the warning line."""
        assert () == render_one(sample, newsletter).warnings

    def test_warns_above_85_kb(self, newsletter: Newsletter) -> None:
        """A variant between 85 and 100 KB of HTML renders, with a warning about Gmail clipping."""
        variant = render_one(big_issue(newsletter, 92_000), newsletter)
        assert WARN_BYTES < variant.html_size <= LIMIT_BYTES
        [warning] = variant.warnings
        assert "Gmail" in warning

    def test_refuses_above_100_kb(self, newsletter: Newsletter) -> None:
        """A variant over 100 KB of HTML is refused with a SizeBudgetError naming it."""
        with pytest.raises(SizeBudgetError) as caught:
            render_one(big_issue(newsletter, 110_000), newsletter)
        assert ("general", LIMIT_BYTES) == (caught.value.variant, caught.value.limit)

    def test_size_allows_for_personal_values(self, sample: Issue, newsletter: Newsletter) -> None:
        """The budgeted size is at least the size of a real personalised message."""
        variant = render_one(sample, newsletter, frozenset({"youth"}))
        long_member = {
            **MEMBER,
            "name": "Alexandra Montgomery-Fitzwilliam",
            "organisation": "A" * 60,
        }
        assert len(variant.personalise(long_member).html.encode()) <= variant.html_size


def yaml_sections(issue: Issue) -> list[dict[str, Any]]:
    return [section.model_dump(exclude_none=True) for section in issue.sections]


class TestTheme:
    @pytest.mark.parametrize(
        "brand", ["#1f5c4a", "#ffcc00", "#e0f0ff", "#000000", "#ff0000", "#777777", "#3355ff"]
    )
    def test_dark_mode_buttons_stand_out_and_read_well(self, brand: str) -> None:
        """In dark mode a button stands out from the dark card and its label is readable on
        it, both at WCAG AA's 4.5:1 (WCAG asks 3:1 of a control; a dim button is missed)."""
        t = theme_for(brand)
        assert contrast_ratio(t.dark_button, t.dark_card) >= AA
        assert contrast_ratio(t.dark_on_button, t.dark_button) >= AA

    def test_the_default_brand_was_barely_visible_in_dark_mode(self) -> None:
        """Why there is a dark-mode button colour: the brand green on the dark card is 2:1."""
        t = theme_for("#1f5c4a")
        assert contrast_ratio(t.brand, t.dark_card) < 3
        assert t.dark_button != t.brand

    @pytest.mark.parametrize(
        "brand", ["#1f5c4a", "#ffcc00", "#e0f0ff", "#000000", "#ff0000", "#777777"]
    )
    def test_every_colour_pair_meets_aa(self, brand: str) -> None:
        """Whatever the brand colour, every text colour meets WCAG AA, light and dark."""
        t = theme_for(brand)
        pairs = [
            (t.text, t.card),
            (t.muted, t.page),
            (t.link, t.card),
            (t.link, t.page),
            (t.on_brand, t.brand),
            (t.dark_text, t.dark_card),
            (t.dark_muted, t.dark_page),
            (t.dark_link, t.dark_card),
            (t.dark_link, t.dark_page),
        ]
        assert all(contrast_ratio(fg, bg) >= AA for fg, bg in pairs)
