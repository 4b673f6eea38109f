"""The issue-file loader: every mistake an editor can make, at its line, in their words."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailer.config import Newsletter
from mailer.errors import IssueFileError
from mailer.issues.check import check_issue, check_text, load_issue
from mailer.issues.model import Issue, IssueCheck
from mailer.issues.source import IssueYamlLoader

# Each test works in its own folder, so that paths read as an editor would type them.
pytestmark = pytest.mark.usefixtures("in_tmp")

NAME = "2026-12-03-test.yaml"

# A small valid issue; tests change one thing in it, so each line number below is this file's.
VALID = """\
subject: Winter connections
preheader: Warm spaces and a new youth toolkit
date: 2026-12-03
status: ready
intro: Hello {{ first_name | there }},
sections:
  - title: Put your warm space on the map
    body: Add your opening times by 18 December.
"""

SEGMENTS = "youth, intergenerational, in-person, wales, scotland, northern-ireland"
MISSING_SUBJECT = (
    f"{NAME}:1: 'subject' is missing from the issue: "
    "write the subject line members see in their inbox"
)


def check(newsletter: Newsletter, content: str | bytes, name: str = NAME) -> IssueCheck:
    path = Path(name)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(textwrap.dedent(content), encoding="utf-8")
    return check_issue(path, newsletter)


def errors(newsletter: Newsletter, content: str | bytes, name: str = NAME) -> list[str]:
    return [str(problem) for problem in check(newsletter, content, name).errors]


def warnings(newsletter: Newsletter, content: str | bytes, name: str = NAME) -> list[str]:
    return [str(problem) for problem in check(newsletter, content, name).warnings]


class TestLoadIssue:
    def test_a_valid_file_gives_its_issue(self, newsletter: Newsletter) -> None:
        """A file without problems loads as an Issue with every field it gave."""
        Path(NAME).write_text(VALID, encoding="utf-8")

        issue = load_issue(Path(NAME), newsletter)

        assert ("Winter connections", dt.date(2026, 12, 3), "ready") == (
            issue.subject,
            issue.date,
            issue.status,
        )
        assert ["Put your warm space on the map"] == [s.title for s in issue.sections]

    def test_the_slug_is_the_file_name(self, newsletter: Newsletter) -> None:
        """The issue's slug comes from its file name, without the folder or .yaml."""
        Path("issues").mkdir()
        Path("issues", NAME).write_text(VALID, encoding="utf-8")

        assert "2026-12-03-test" == load_issue("issues/" + NAME, newsletter).slug

    def test_a_file_with_problems_raises_them_all(self, newsletter: Newsletter) -> None:
        """load_issue raises IssueFileError carrying every problem, pinned to PATH:LINE."""
        Path(NAME).write_text(VALID.replace("subject:", "subjcet:"), encoding="utf-8")

        with pytest.raises(IssueFileError) as raised:
            load_issue(Path(NAME), newsletter)

        assert [f"{NAME}:1: 'subjcet' is not a field of the issue; did you mean 'subject'?"] == [
            str(problem) for problem in raised.value.problems
        ]
        assert str(raised.value).endswith("1 problem in the issue file; nothing was changed.")

    def test_problems_name_the_path_as_given(self, newsletter: Newsletter) -> None:
        """The path in each problem is the one the caller gave, not a resolved one."""
        Path("issues").mkdir()
        Path("issues", NAME).write_text(VALID.replace("status: ready", "status: sent"), "utf-8")

        report = check_issue(Path("issues") / NAME, newsletter)

        assert [
            f"issues/{NAME}:4: 'sent' is not a choice for 'status': use 'draft' or 'ready'"
        ] == [str(problem) for problem in report.errors]

    def test_check_text_checks_content_as_if_read_from_the_path(
        self, newsletter: Newsletter
    ) -> None:
        """check_text takes the content directly; the path names it and gives the slug."""
        report = check_text(VALID, Path("issues/2026-12-03-from-text.yaml"), newsletter)

        assert report.issue is not None
        assert "2026-12-03-from-text" == report.issue.slug


class TestIssueYamlLoader:
    @pytest.mark.parametrize("word", ["yes", "no", "on", "off", "Yes", "NO", "y", "n"])
    def test_yes_and_no_stay_words(self, word: str) -> None:
        """yes/no/on/off are text, not booleans (the Norway problem)."""
        assert {"country": word} == yaml.load(f"country: {word}", Loader=IssueYamlLoader)

    @pytest.mark.parametrize(("word", "value"), [("true", True), ("false", False), ("TRUE", True)])
    def test_true_and_false_are_booleans(self, word: str, value: bool) -> None:
        """Only true and false are booleans."""
        assert {"flag": value} == yaml.load(f"flag: {word}", Loader=IssueYamlLoader)

    @pytest.mark.parametrize("text", ["2026-12-03", "10:30", "1_000", "0x1F", "3.10", "1e3"])
    def test_dates_times_and_numbers_stay_as_written(self, text: str) -> None:
        """Dates, times and numbers stay exactly as written, for pydantic to judge."""
        assert {"value": text} == yaml.load(f"value: {text}", Loader=IssueYamlLoader)

    def test_empty_values_are_null(self) -> None:
        """An empty value, ~ and null mean nothing."""
        assert {"a": None, "b": None, "c": None} == yaml.load(
            "a:\nb: ~\nc: null\n", Loader=IssueYamlLoader
        )


class TestTheFileItself:
    def test_a_file_that_does_not_exist(self, newsletter: Newsletter) -> None:
        """A missing file is one problem, not a traceback."""
        report = check_issue(Path("issues/nope.yaml"), newsletter)

        assert [
            "issues/nope.yaml:1: no such file: check the name and the folder "
            "(issue files end in .yaml)"
        ] == [str(problem) for problem in report.errors]

    def test_a_folder(self, newsletter: Newsletter) -> None:
        """A folder given as an issue file is one problem."""
        Path("issues").mkdir()

        report = check_issue(Path("issues"), newsletter)

        assert ["issues:1: this is a folder, not an issue file"] == [
            str(problem) for problem in report.errors
        ]

    def test_an_empty_file(self, newsletter: Newsletter) -> None:
        """An empty file (or only blank lines) says what an issue needs."""
        assert [
            f"{NAME}:1: the file is empty: an issue needs subject, preheader, date, status, "
            "intro and sections"
        ] == errors(newsletter, "\n\n")

    def test_a_file_of_only_comments(self, newsletter: Newsletter) -> None:
        """Comments alone are no fields."""
        assert [
            f"{NAME}:1: the file has no fields: an issue needs subject, preheader, date, "
            "status, intro and sections"
        ] == errors(newsletter, "# winter issue, to do\n")

    def test_a_list_at_the_top(self, newsletter: Newsletter) -> None:
        """A file that is a list, not fields, is one problem at its first line."""
        assert [
            f"{NAME}:2: the file should be a list of fields, one per line, like 'subject: …', "
            "but it is a list"
        ] == errors(newsletter, "# notes\n- subject\n- preheader\n")

    def test_plain_text_at_the_top(self, newsletter: Newsletter) -> None:
        """A file of prose, not fields, is one problem."""
        assert [
            f"{NAME}:1: the file should be a list of fields, one per line, like 'subject: …', "
            "but it is a single piece of text"
        ] == errors(newsletter, "Dear members, this fortnight\n")

    def test_bytes_that_are_not_utf8(self, newsletter: Newsletter) -> None:
        """A Windows-1252 character is reported at its line, and the rest is still checked."""
        content = VALID.replace("status: ready", "status: ready\nsign_off: Caf\xe9 time").encode(
            "cp1252"
        )

        assert [
            f"{NAME}:5: this line has a character that is not UTF-8: the byte 0xE9 (perhaps 'é' "
            "saved in the Windows-1252 encoding); save the file as UTF-8 and retype that "
            "character",
        ] == errors(newsletter, content)

    def test_utf16(self, newsletter: Newsletter) -> None:
        """A file saved as UTF-16 (Windows' "Unicode") is named as such."""
        assert [
            f"{NAME}:1: the file is saved as UTF-16: save it as UTF-8 (plain text) instead"
        ] == errors(newsletter, VALID.encode("utf-16"))

    def test_binary(self, newsletter: Newsletter) -> None:
        """A binary file (an image saved as .yaml) is one problem."""
        assert [
            f"{NAME}:1: this is not a text file (is it a Word document or an image?): an issue "
            "file is plain text, saved as UTF-8"
        ] == errors(newsletter, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

    def test_control_characters(self, newsletter: Newsletter) -> None:
        """An invisible control character is reported at its line; the rest is still checked."""
        assert [
            f"{NAME}:2: this line has an invisible control character (U+000B), often pasted "
            "from a PDF or a word processor: delete it and retype the text around it",
        ] == errors(newsletter, VALID.replace("Warm spaces", "Warm\x0bspaces"))

    def test_a_byte_order_mark_is_fine(self, newsletter: Newsletter) -> None:
        """A UTF-8 byte order mark, as some Windows editors write, is allowed."""
        assert [] == errors(newsletter, b"\xef\xbb\xbf" + VALID.encode())


class TestYamlSyntax:
    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            pytest.param(
                ("preheader: Warm spaces", "preheader: Warm spaces: and more"),
                "2: a colon followed by a space inside a value (or a line indented too far): "
                "put the whole value in quotes, or put '|' after the field name and the text on "
                "the lines below it, indented",
                id="colon in a value",
            ),
            pytest.param(
                ("    body:", "\tbody:"),
                "8: this line has a tab where YAML needs spaces: use spaces to indent, and after "
                "colons",
                id="tab",
            ),
            pytest.param(
                ("subject: Winter connections", 'subject: "Winter connections'),
                "1: a quote opens here but never closes: add the closing quote",
                id="unclosed quote",
            ),
            pytest.param(
                ("title: Put", "title: **New:** Put"),
                "7: a value that starts with '*' must be in quotes (or in a block after '|'): "
                "YAML reads a leading * as a reference, so Markdown like **bold** needs quotes "
                "here",
                id="markdown bold at the start",
            ),
            pytest.param(
                ("status: ready", "status: ready\nthis line has no colon"),
                "5: this line should be 'name: value' but has no colon; if it belongs to the "
                "text above, put '|' after that field name and indent the text like the line "
                "before",
                id="no colon",
            ),
            pytest.param(
                ("    body:", "     body:"),
                "8: a colon followed by a space inside a value (or a line indented too far): put "
                "the whole value in quotes, or put '|' after the field name and the text on the "
                "lines below it, indented",
                id="indented too far",
            ),
            pytest.param(
                ("    body:", "   body:"),
                "8: this line is not indented like the lines around it: fields of the same thing "
                "must start in the same column, and list entries start with '- '",
                id="indented too little",
            ),
            pytest.param(
                ("subject: Winter connections", 'subject: "Winter" connections'),
                "1: there is more text after a closing quote or bracket: put the whole value in "
                "quotes (text that starts with a quote, '[' or '{{' needs them)",
                id="text after a closing quote",
            ),
            pytest.param(
                ("status: ready", "status: ready\n---\nstatus: draft"),
                "5: a second '---' line: an issue file holds one issue, so remove it",
                id="second document",
            ),
            pytest.param(
                ("    body: Add", "    body: | Add"),
                "8: nothing may follow '|' on its line: start the text on the next line, indented",
                id="text after the bar",
            ),
        ],
    )
    def test_syntax_errors_are_explained_at_their_line(
        self, newsletter: Newsletter, change: tuple[str, str], expected: str
    ) -> None:
        """A YAML syntax error is one problem, at the line to fix, with what to do."""
        assert [f"{NAME}:{expected}"] == errors(newsletter, VALID.replace(*change))

    def test_a_hash_that_would_lose_text(self, newsletter: Newsletter) -> None:
        """Text after ' #' would silently vanish as a comment, so it is a problem."""
        content = VALID.replace(
            "title: Put your warm space on the map",
            "title: Join us for #LonelinessAwarenessWeek",
        )

        assert [
            f"{NAME}:7: '#LonelinessAwarenessWeek' would be left out: after a space, '#' starts "
            "a comment; put the whole value in quotes to keep it"
        ] == errors(newsletter, content)

    def test_comments_meant_as_comments_are_fine(self, newsletter: Newsletter) -> None:
        """A comment after a value, '#' then a space, and a '#' inside quotes are both fine."""
        content = VALID.replace("status: ready", "status: ready  # proofread by Gwen").replace(
            "title: Put your warm space on the map", "title: 'Our #1 job: the warm-space map'"
        )

        assert [] == errors(newsletter, content)

    def test_an_unquoted_merge_tag_at_the_start(self, newsletter: Newsletter) -> None:
        """A value starting with {{ (which YAML reads as a mapping) is asked to be quoted."""
        assert [
            f"{NAME}:1: text that starts with '{{{{' must be in quotes, like subject: "
            '"{{ first_name | there }} …"'
        ] == errors(
            newsletter,
            VALID.replace("subject: Winter connections", "subject: {{ first_name | there }}"),
        )

    def test_yaml_tags_are_refused(self, newsletter: Newsletter) -> None:
        """YAML tags such as !!python/object are reported and never acted on."""
        assert [
            f"{NAME}:5: '!!python/object:os.system' is a YAML tag, which issue files do not "
            "use: remove it"
        ] == errors(newsletter, VALID.replace("Hello", "!!python/object:os.system Hello"))


class TestUnknownFields:
    def test_a_misspelt_field_suggests_the_nearest(self, newsletter: Newsletter) -> None:
        """A typo in a field name is one problem, suggesting the field (not also 'missing')."""
        assert [
            f"{NAME}:1: 'subjcet' is not a field of the issue; did you mean 'subject'?"
        ] == errors(newsletter, VALID.replace("subject:", "subjcet:"))

    def test_a_typo_and_a_missing_field_are_told_apart(self, newsletter: Newsletter) -> None:
        """A missing field is still reported when the unknown one is not a typo of it."""
        assert [
            f"{NAME}:1: 'author' is not a field of the issue; the fields of the issue are: "
            "subject, preheader, headline, date, status, intro, sections, segments, sign_off",
            MISSING_SUBJECT,
        ] == errors(newsletter, VALID.replace("subject:", "author:"))

    def test_a_misspelt_section_field(self, newsletter: Newsletter) -> None:
        """Inside a section, the suggestion comes from the section's fields."""
        assert [f"{NAME}:8: 'bdoy' is not a field of section 1; did you mean 'body'?"] == errors(
            newsletter, VALID.replace("body:", "bdoy:")
        )

    def test_a_misspelt_image_field(self, newsletter: Newsletter) -> None:
        """Inside an image, the suggestion comes from the image's fields."""
        content = VALID + (
            "    image:\n"
            "      url: https://images.example.org/hall.jpg\n"
            "      alt: A community hall\n"
            "      lnik: https://example.org/\n"
        )

        assert [
            f"{NAME}:12: 'lnik' is not a field of the image of section 1; did you mean 'link'?"
        ] == errors(newsletter, content)

    def test_a_field_at_the_wrong_level(self, newsletter: Newsletter) -> None:
        """A known field in the wrong place says where it belongs."""
        assert [
            f"{NAME}:9: 'audience' is not a field of the issue; 'audience' belongs in a "
            "section: check the indentation"
        ] == errors(newsletter, VALID + "audience: [youth]\n")

    def test_an_unknown_field_lists_the_fields(self, newsletter: Newsletter) -> None:
        """With nothing close, the fields of that place are listed."""
        assert [
            f"{NAME}:9: 'author' is not a field of section 1; the fields of section 1 are: "
            "title, body, image, layout, button, audience"
        ] == errors(newsletter, VALID + "    author: Amara\n")

    def test_slug_is_not_written_in_the_file(self, newsletter: Newsletter) -> None:
        """The slug comes from the file name, so writing it is a problem."""
        assert [
            f"{NAME}:9: 'slug' is not written in the file: the issue's name is its file name"
        ] == errors(newsletter, VALID + "slug: winter\n")


class TestMissingFields:
    def test_a_missing_top_level_field_points_at_the_first_field(
        self, newsletter: Newsletter
    ) -> None:
        """A field missing from the issue is reported at the start of its fields."""
        content = "# December\n" + VALID.replace(
            "preheader: Warm spaces and a new youth toolkit\n", ""
        )

        assert [
            f"{NAME}:2: 'preheader' is missing from the issue: write the short line most "
            "inboxes show after the subject"
        ] == errors(newsletter, content)

    def test_a_missing_section_field_points_at_the_section(self, newsletter: Newsletter) -> None:
        """A field missing from a section is reported at the section's first line."""
        content = VALID + "  - title: A second section\n"

        assert [f"{NAME}:9: 'body' is missing from section 2: write the section's text"] == errors(
            newsletter, content
        )

    def test_a_missing_alt_points_at_the_image(self, newsletter: Newsletter) -> None:
        """An image without alt text is reported at its 'image:' line."""
        content = VALID + "    image:\n      url: https://images.example.org/hall.jpg\n"

        assert [
            f"{NAME}:9: 'alt' is missing from the image of section 1: every image needs alt "
            "text describing it for people who cannot see it"
        ] == errors(newsletter, content)

    def test_an_empty_alt(self, newsletter: Newsletter) -> None:
        """Alt text of only spaces is as good as none."""
        content = VALID + (
            "    image:\n      url: https://images.example.org/hall.jpg\n      alt: '  '\n"
        )

        assert [
            f"{NAME}:11: 'alt' is empty: every image needs alt text describing it for people "
            "who cannot see it"
        ] == errors(newsletter, content)

    def test_an_empty_value(self, newsletter: Newsletter) -> None:
        """A field with nothing after the colon is empty, and says what to write."""
        assert [
            f"{NAME}:1: 'subject' is empty: write the subject line members see in their inbox"
        ] == errors(newsletter, VALID.replace("subject: Winter connections", "subject:"))

    def test_no_sections(self, newsletter: Newsletter) -> None:
        """An issue needs at least one section."""
        content = VALID.split("sections:")[0] + "sections: []\n"

        assert [
            f"{NAME}:6: 'sections' is empty: an issue needs at least one section, each with a "
            "title and a body"
        ] == errors(newsletter, content)


class TestTextForHeaders:
    """The subject and preheader go into mail headers (the preheader into none, but it
    is the subject's companion line in every inbox)."""

    def test_a_line_break_in_the_subject(self, newsletter: Newsletter) -> None:
        content = VALID.replace("subject: Winter connections", 'subject: "Winter\\nconnections"')
        assert [
            f"{NAME}:1: 'subject' must be on one line: a line break would end the mail header"
        ] == errors(newsletter, content)

    def test_an_encoded_word_in_the_subject(self, newsletter: Newsletter) -> None:
        content = VALID.replace(
            "subject: Winter connections", "subject: Winter =?utf-8?q?news=0D=0ABcc:_x@y?="
        )
        assert [
            f"{NAME}:1: 'subject' contains an encoded header ('=?...?='), which mail programs "
            "decode; write the text itself"
        ] == errors(newsletter, content)

    def test_a_question_after_an_equals_sign_is_plain_text(self, newsletter: Newsletter) -> None:
        content = VALID.replace("subject: Winter connections", 'subject: "Quiz: 2+2=?"')
        assert [] == errors(newsletter, content)


class TestWrongTypes:
    def test_a_list_where_text_belongs(self, newsletter: Newsletter) -> None:
        """A Markdown list written without '|' is explained."""
        content = VALID.replace(
            "    body: Add your opening times by 18 December.\n",
            "    body:\n      - opening times\n      - contact details\n",
        )

        assert [
            f"{NAME}:8: 'body' should be text, not a list: to write a bulleted list, put '|' "
            "after 'body:' and indent the lines below it"
        ] == errors(newsletter, content)

    def test_sections_without_dashes(self, newsletter: Newsletter) -> None:
        """Sections written as fields rather than a list are explained."""
        content = VALID.replace("  - title", "  title").replace("    body", "  body")

        assert [
            f"{NAME}:6: 'sections' should be a list, one entry per line starting with '- ', "
            "not a group of fields"
        ] == errors(newsletter, content)

    def test_a_section_that_is_only_text(self, newsletter: Newsletter) -> None:
        """A section needs fields, not a single line of text."""
        assert [
            f"{NAME}:9: section 2 should be fields like 'title:' and 'body:' indented below "
            "it, not a piece of text"
        ] == errors(newsletter, VALID + "  - Winter events\n")

    def test_a_boolean_where_text_belongs(self, newsletter: Newsletter) -> None:
        """true in a text field is explained (it must be quoted to mean the word)."""
        assert [
            f"{NAME}:1: 'subject' should be text, not true or false (put it in quotes if you "
            "mean the word)"
        ] == errors(newsletter, VALID.replace("subject: Winter connections", "subject: true"))

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            (
                ("status: ready", "status: Ready"),
                "4: 'Ready' is not a choice for 'status': use 'draft' or 'ready'",
            ),
            (
                ("    body: Add", "    layout: left\n    body: Add"),
                "8: 'left' is not a choice for 'layout': use 'stacked', 'image-left' or "
                "'image-right'",
            ),
        ],
    )
    def test_a_choice_that_is_not_offered(
        self, newsletter: Newsletter, change: tuple[str, str], expected: str
    ) -> None:
        """Fields with a fixed set of choices list them."""
        assert [f"{NAME}:{expected}"] == errors(newsletter, VALID.replace(*change))

    def test_a_subject_that_is_too_long(self, newsletter: Newsletter) -> None:
        """The subject has a length limit, given with its actual length."""
        content = VALID.replace("Winter connections", "Winter " * 30)

        assert [f"{NAME}:1: 'subject' is 209 characters long: keep it to 150 at most"] == errors(
            newsletter, content
        )

    def test_a_button_label_that_is_too_long(self, newsletter: Newsletter) -> None:
        """A button's label has a length limit."""
        content = VALID + (
            f"    button:\n      label: {'Book ' * 13}\n      url: https://example.org/\n"
        )

        assert [f"{NAME}:10: 'label' is 64 characters long: keep it to 60 at most"] == errors(
            newsletter, content
        )


class TestLinks:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            (
                "javascript:alert(1)",
                "'javascript:alert(1)' is not a web or email link: links must start with "
                "https://, http:// or mailto:",
            ),
            (
                "ftp://files.example.org/a.pdf",
                "'ftp://files.example.org/a.pdf' is not a web or email link: links must start "
                "with https://, http:// or mailto:",
            ),
            (
                "www.example.org/book",
                "'www.example.org/book' is not a web or email link: links must start with "
                "https://, http:// or mailto:",
            ),
            ("https:example.org", "'https:example.org' is missing the // after https:"),
        ],
    )
    def test_a_button_link_must_be_web_or_email(
        self, newsletter: Newsletter, url: str, expected: str
    ) -> None:
        """Only http, https and mailto links are allowed, at the line of the link."""
        content = VALID + f"    button:\n      label: Book\n      url: {url}\n"

        assert [f"{NAME}:11: {expected}"] == errors(newsletter, content)

    def test_an_email_button_is_fine(self, newsletter: Newsletter) -> None:
        """A mailto: link is a good button link."""
        content = (
            VALID + "    button:\n      label: Email us\n      url: mailto:hello@example.org\n"
        )

        assert [] == errors(newsletter, content)

    def test_an_image_cannot_be_an_email_address(self, newsletter: Newsletter) -> None:
        """An image's url must be a web address."""
        content = VALID + "    image:\n      url: mailto:hello@example.org\n      alt: Logo\n"

        assert [
            f"{NAME}:10: 'mailto:hello@example.org' is an email address, not an image: images "
            "need an https:// link"
        ] == errors(newsletter, content)


class TestDates:
    @pytest.mark.parametrize(
        ("date", "expected"),
        [
            ("2026-02-30", "'2026-02-30' is not a real date: February 2026 has 28 days"),
            ("2026-04-31", "'2026-04-31' is not a real date: April 2026 has 30 days"),
            (
                "2026-13-03",
                "'2026-13-03' has no month 13: the month (in the middle) goes from 01 to 12",
            ),
            (
                "03/12/2026",
                "'03/12/2026' is not a date written as year-month-day: write it like 2026-12-03",
            ),
            (
                "2026-12-03T10:00",
                "'2026-12-03T10:00' is not a date written as year-month-day: write it like "
                "2026-12-03",
            ),
            (
                "3 December 2026",
                "'3 December 2026' is not a date written as year-month-day: write it like "
                "2026-12-03",
            ),
        ],
    )
    def test_impossible_and_unclear_dates(
        self, newsletter: Newsletter, date: str, expected: str
    ) -> None:
        """A date that does not exist, or is not written year-month-day, is explained."""
        assert [f"{NAME}:3: {expected}"] == errors(
            newsletter, VALID.replace("date: 2026-12-03", f"date: {date}")
        )

    def test_a_leap_day(self, newsletter: Newsletter) -> None:
        """29 February exists in leap years."""
        content = VALID.replace("date: 2026-12-03", "date: 2028-02-29")

        assert [] == errors(newsletter, content, "2028-02-29-leap.yaml")

    def test_a_quoted_date(self, newsletter: Newsletter) -> None:
        """A date in quotes is still a date."""
        assert [] == errors(newsletter, VALID.replace("2026-12-03", "'2026-12-03'"))


class TestDuplicateKeys:
    def test_a_field_given_twice(self, newsletter: Newsletter) -> None:
        """A field given twice is reported at the second, naming the first."""
        assert [f"{NAME}:9: 'subject' is given twice here (first on line 1): keep one"] == errors(
            newsletter, VALID + "subject: Another subject\n"
        )

    def test_a_section_field_given_twice(self, newsletter: Newsletter) -> None:
        """Duplicates are found inside sections too."""
        assert [f"{NAME}:9: 'title' is given twice here (first on line 7): keep one"] == errors(
            newsletter, VALID + "    title: A better title\n"
        )

    def test_the_same_field_in_two_sections_is_fine(self, newsletter: Newsletter) -> None:
        """Each section has its own fields."""
        assert [] == errors(newsletter, VALID + "  - title: Second\n    body: More news.\n")


class TestMergeTags:
    def test_fields_with_fallbacks_are_fine(self, newsletter: Newsletter) -> None:
        """Member fields, with or without a fallback, are valid merge tags."""
        content = VALID.replace(
            "18 December.", "18 December, {{ first_name }}, for {{ organisation | your team }}."
        )

        assert [] == errors(newsletter, content)

    def test_an_unknown_field_inside_a_block(self, newsletter: Newsletter) -> None:
        """A wrong merge tag in a multi-line body is reported at its own line."""
        content = VALID.replace(
            "    body: Add your opening times by 18 December.\n",
            "    body: |\n"
            "      Add your opening times by 18 December.\n"
            "\n"
            "      Is {{ organsation }} opening over Christmas?\n",
        )

        assert [
            f"{NAME}:11: '{{{{ organsation }}}}' is not a member field (did you mean "
            "{{ organisation }}?); you can use: first_name, name, organisation, region"
        ] == errors(newsletter, content)

    def test_stray_braces(self, newsletter: Newsletter) -> None:
        """Braces that do not make a merge tag are explained."""
        content = VALID.replace("Hello {{ first_name | there }},", "Hello {{ first name }},")

        assert [
            f"{NAME}:5: '{{{{ first name }}}}' is not a merge tag: write a member field in "
            "double braces, like {{ first_name }} or {{ first_name | there }} (the text after "
            "| is shown when the member's field is empty)"
        ] == errors(newsletter, content)

    def test_every_mistake_in_a_text_at_its_own_line(self, newsletter: Newsletter) -> None:
        """Several wrong tags in one text are each reported, each at its line."""
        content = VALID.replace(
            "intro: Hello {{ first_name | there }},\n",
            "intro: |\n"
            "  Hello {{ frist_name | there }},\n"
            "\n"
            "  News for {{ region }} and for {% if youth %}young people.\n",
        )

        assert [
            f"{NAME}:6: '{{{{ frist_name | there }}}}' is not a member field (did you mean "
            "{{ first_name }}?); you can use: first_name, name, organisation, region",
            f"{NAME}:8: '{{% if youth %}}' is not a merge tag: write a member field in double "
            "braces, like {{ first_name }} or {{ first_name | there }} (the text after | is "
            "shown when the member's field is empty)",
        ] == errors(newsletter, content)


class TestSegments:
    def test_an_unknown_audience(self, newsletter: Newsletter) -> None:
        """An audience names a segment from mailer.toml, with the nearest suggested."""
        assert [
            f"{NAME}:11: 'yuoth' is not a segment (did you mean 'youth'?); mailer.toml "
            f"defines: {SEGMENTS}"
        ] == errors(newsletter, VALID + "    audience:\n      - wales\n      - yuoth\n")

    def test_a_single_audience_without_brackets(self, newsletter: Newsletter) -> None:
        """`audience: youth` means a list of one segment."""
        Path(NAME).write_text(VALID + "    audience: youth\n", encoding="utf-8")

        assert ["youth"] == load_issue(Path(NAME), newsletter).sections[0].audience

    def test_an_unknown_single_audience(self, newsletter: Newsletter) -> None:
        """An unknown segment without brackets is reported too."""
        assert [
            f"{NAME}:9: 'cornwall' is not a segment; mailer.toml defines: {SEGMENTS}"
        ] == errors(newsletter, VALID + "    audience: cornwall\n")

    def test_an_unknown_override(self, newsletter: Newsletter) -> None:
        """Per-segment overrides are for segments mailer.toml defines."""
        content = VALID + "segments:\n  wales:\n    subject: Shwmae!\n  walse:\n    subject: x\n"

        assert [
            f"{NAME}:12: 'walse' is not a segment (did you mean 'wales'?); mailer.toml "
            f"defines: {SEGMENTS}"
        ] == errors(newsletter, content)

    def test_an_override_field_that_is_not_overridable(self, newsletter: Newsletter) -> None:
        """Only subject, preheader and intro can be overridden per segment."""
        content = VALID + "segments:\n  youth:\n    sections: []\n"

        assert [
            f"{NAME}:11: 'sections' is not a field of the 'youth' segment override; "
            "'sections' belongs in the issue itself (not indented): check the indentation"
        ] == errors(newsletter, content)


class TestWarnings:
    def test_warnings_are_not_errors(self, newsletter: Newsletter) -> None:
        """A file with only warnings loads, and its warnings are kept apart."""
        report = check(newsletter, VALID + "    layout: image-left\n")

        assert (True, ()) == (report.ok, report.errors)
        assert [
            f"{NAME}:9: layout 'image-left' puts an image beside the text, but section 1 has "
            "no image: add one, or remove the layout line"
        ] == [str(problem) for problem in report.warnings]

    def test_the_date_and_the_file_name_disagree(self, newsletter: Newsletter) -> None:
        """A dated file name and a different date field are flagged."""
        assert [
            "2026-12-17-test.yaml:3: the date is 2026-12-03 but the file name starts with "
            "2026-12-17: make them agree"
        ] == warnings(newsletter, VALID, "2026-12-17-test.yaml")

    def test_a_file_name_that_is_not_a_web_address(self, newsletter: Newsletter) -> None:
        """The slug becomes a web address, so odd file names are flagged."""
        assert [
            "Winter Issue.yaml:1: the file name 'Winter Issue' becomes the issue's web address: "
            "use only lower-case letters, digits and hyphens, like "
            "2026-12-03-winter-connections.yaml"
        ] == warnings(newsletter, VALID, "Winter Issue.yaml")


class TestAllAtOnce:
    def test_every_problem_in_one_report(self, newsletter: Newsletter) -> None:
        """Problems of every kind in one file are all reported together, in line order."""
        content = """\
            subjcet: Winter connections
            preheader: Warm spaces
            date: 2026-02-30
            status: ready
            intro: Hello {{ firstname | there }},
            sections:
              - title: Warm spaces
                body: Add your times.
                audience: [yuoth]
                image:
                  url: https://images.example.org/a.jpg
              - title: Events
                title: Events again
                body: See you there.
                button:
                  label: Book
                  url: javascript:void(0)
            """

        assert [
            f"{NAME}:1: 'subjcet' is not a field of the issue; did you mean 'subject'?",
            f"{NAME}:3: '2026-02-30' is not a real date: February 2026 has 28 days",
            f"{NAME}:5: '{{{{ firstname | there }}}}' is not a member field (did you mean "
            "{{ first_name }}?); you can use: first_name, name, organisation, region",
            f"{NAME}:9: 'yuoth' is not a segment (did you mean 'youth'?); mailer.toml "
            f"defines: {SEGMENTS}",
            f"{NAME}:10: 'alt' is missing from the image of section 1: every image needs alt "
            "text describing it for people who cannot see it",
            f"{NAME}:13: 'title' is given twice here (first on line 12): keep one",
            f"{NAME}:17: 'javascript:void(0)' is not a web or email link: links must start "
            "with https://, http:// or mailto:",
        ] == errors(newsletter, content)

    def test_not_utf8_and_wrong_fields_together(self, newsletter: Newsletter) -> None:
        """Encoding problems do not stop the rest of the file being checked."""
        content = VALID.replace("status: ready", "status: done").replace(
            "Warm spaces", "Warm spaces \u2013 and more"
        )

        assert [
            f"{NAME}:2: this line has a character that is not UTF-8: the byte 0x96 (perhaps "
            "'–' saved in the Windows-1252 encoding); save the file as UTF-8 and retype that "
            "character",
            f"{NAME}:4: 'done' is not a choice for 'status': use 'draft' or 'ready'",
        ] == errors(newsletter, content.encode("cp1252"))


class TestSamples:
    @pytest.mark.parametrize(
        ("name", "status"),
        [
            ("2026-12-03-winter-connections.yaml", "ready"),
            ("2026-12-17-nobody-alone-this-christmas.yaml", "draft"),
        ],
    )
    def test_the_sample_issues_are_clean(
        self, project_root: Path, newsletter: Newsletter, name: str, status: str
    ) -> None:
        """The sample issues validate with no errors and no warnings."""
        report = check_issue(project_root / "issues" / name, newsletter)

        assert ((), (), status) == (
            report.errors,
            report.warnings,
            report.issue.status if report.issue else None,
        )

    def test_the_samples_use_every_segment(
        self, project_root: Path, newsletter: Newsletter
    ) -> None:
        """Between them the samples show every segment, every layout and an override."""
        issues = [
            load_issue(path, newsletter)
            for path in sorted((project_root / "issues").glob("*.yaml"))
        ]

        assert set(newsletter.segment_names) <= set().union(*(i.segments_named() for i in issues))
        assert {"stacked", "image-left", "image-right"} == {
            section.layout for issue in issues for section in issue.sections
        }
        assert all(issue.segments for issue in issues)


class TestEditorGuide:
    @staticmethod
    def _guide(project_root: Path) -> str:
        readme = (project_root / "docs" / "editors.md").read_text(encoding="utf-8")
        return readme.split("<!-- editor-guide:start -->")[1].split("<!-- editor-guide:end -->")[0]

    def test_the_complete_example_validates(
        self, project_root: Path, newsletter: Newsletter
    ) -> None:
        """The editor's guide's complete example issue is a valid issue, without warnings."""
        example = self._guide(project_root).split("```yaml\n")[1].split("```")[0]

        report = check_text(example, Path("issues/2026-12-03-winter-connections.yaml"), newsletter)

        assert ((), ()) == (report.errors, report.warnings)

    def test_every_segment_is_listed(self, project_root: Path, newsletter: Newsletter) -> None:
        """The guide's table of segments names every segment in mailer.toml."""
        guide = self._guide(project_root)

        assert [] == [name for name in newsletter.segment_names if f"| `{name}` |" not in guide]


# --- Properties: whatever the file holds, the loader answers with an Issue or Problems ---------


def _assert_answers(newsletter: Newsletter, folder: Path, content: str | bytes) -> None:
    """load_issue gives an Issue, or raises IssueFileError with problems within the file."""
    path = folder / NAME
    if isinstance(content, bytes):
        path.write_bytes(content)
        text = content.decode("utf-8", errors="replace")
    else:
        path.write_text(content, encoding="utf-8", newline="")
        text = content
    last_line = max(1, len(text.splitlines()))
    try:
        issue = load_issue(path, newsletter)
    except IssueFileError as error:
        assert error.problems
        assert all(1 <= problem.line <= last_line for problem in error.problems), (
            error.problems,
            last_line,
        )
        assert all(problem.path == str(path) for problem in error.problems)
    else:
        assert isinstance(issue, Issue)


_FIELDS = st.sampled_from(
    [
        "subject", "preheader", "date", "status", "intro", "sections", "segments", "sign_off",
        "title", "body", "image", "url", "alt", "link", "layout", "button", "label", "audience",
        "youth", "wales", "slug", "subjcet",
    ]
)  # fmt: skip
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=20),
    st.sampled_from(
        [
            "2026-12-03", "2026-02-30", "ready", "draft", "image-left", "youth", "yuoth",
            "https://example.org/a.jpg", "mailto:a@example.org", "{{ first_name | there }}",
            "{{ x }}", "{{ first_name", "*bold*", "a: b", "- item",
        ]
    ),
)  # fmt: skip
_TREES = st.recursive(
    _LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_FIELDS, children, max_size=6)
    ),
    max_leaves=30,
)
_SAMPLE_LINES = VALID.splitlines(keepends=True)
# Pieces that drive the YAML parser down its error paths far more often than random text.
_YAMLISH = st.sampled_from(
    [
        *"{}[]:-#|>&*!'\"?,%@` \n\t\r~", "\ufeff", "\x85", "\u2028", "\x00", "\x07",
        "subject", "title", "sections", "audience", "youth", "{{", "}}", "- ", ": ",
        "\n  ", "\n    ", "2026-02-30",
    ]
)  # fmt: skip


# The function-scoped fixtures these tests use are safe to share between examples: the
# newsletter is read-only and every example overwrites the one file it checks.
_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class TestProperties:
    @_SETTINGS
    @given(content=st.text())
    @example(content="{{}}")  # a whole file that YAML reads as a mapping with a mapping key
    def test_any_text(self, newsletter: Newsletter, in_tmp: Path, content: str) -> None:
        """Any text at all gives an Issue or problems within the file, never another error."""
        _assert_answers(newsletter, in_tmp, content)

    @_SETTINGS
    @given(content=st.lists(_YAMLISH, max_size=40).map("".join))
    def test_any_yaml_like_text(self, newsletter: Newsletter, in_tmp: Path, content: str) -> None:
        """Text made of YAML's special characters and the issue's words always answers."""
        _assert_answers(newsletter, in_tmp, content)

    @_SETTINGS
    @given(content=st.binary())
    def test_any_bytes(self, newsletter: Newsletter, in_tmp: Path, content: bytes) -> None:
        """Any bytes at all give an Issue or problems within the file, never another error."""
        _assert_answers(newsletter, in_tmp, content)

    @settings(_SETTINGS, max_examples=150)  # generating trees is the slow part
    @given(data=st.dictionaries(_FIELDS, _TREES, max_size=8), flow=st.booleans())
    def test_any_yaml_structure(
        self, newsletter: Newsletter, in_tmp: Path, data: dict[str, object], flow: bool
    ) -> None:
        """Any YAML made of the issue's field names and odd values gives an Issue or problems."""
        content = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
        _assert_answers(newsletter, in_tmp, content)

    @_SETTINGS
    @given(
        edits=st.lists(
            st.tuples(
                st.integers(min_value=0),
                st.sampled_from(["delete", "repeat", "indent", "dedent", "insert"]),
                st.text(max_size=3),
            ),
            max_size=5,
        )
    )
    def test_a_valid_file_edited_at_random(
        self, newsletter: Newsletter, in_tmp: Path, edits: list[tuple[int, str, str]]
    ) -> None:
        """A valid file with lines deleted, repeated, re-indented or typed into still answers."""
        lines = list(_SAMPLE_LINES)
        for index, edit, typed in edits:
            if not lines:
                break
            i = index % len(lines)
            if edit == "delete":
                del lines[i]
            elif edit == "repeat":
                lines.insert(i, lines[i])
            elif edit == "indent":
                lines[i] = "  " + lines[i]
            elif edit == "dedent":
                lines[i] = lines[i][2:]
            else:
                lines[i] = lines[i][:6] + typed + lines[i][6:]
        _assert_answers(newsletter, in_tmp, "".join(lines))


# --- Checks added for what the newcomer test slipped past (issue 16) ----------------------------


class TestMarkdownLinks:
    @pytest.mark.parametrize(
        ("link", "expected"),
        [
            pytest.param(
                "[notes](www.example.org/guide)",
                "the link 'www.example.org/guide' has no https:// at the start, so the email "
                "would drop it: write https://www.example.org/guide",
                id="no scheme",
            ),
            pytest.param(
                "[write to us](hello@example.org)",
                "the link 'hello@example.org' has no mailto: at the start, so the email would "
                "drop it: write mailto:hello@example.org",
                id="an address without mailto",
            ),
            pytest.param(
                "[click](javascript:alert(1))",
                "the link 'javascript:alert(1)' is a javascript: link, which could run code: "
                "emails may only link to https://, http:// or mailto: addresses",
                id="javascript",
            ),
            pytest.param(
                "[open](data:text/html;base64,PHNjcmlwdD4=)",
                "the link 'data:text/html;base64,PHNjcmlwdD4=' is a data: link, which hides its "
                "content inside the link: emails may only link to https://, http:// or mailto: "
                "addresses",
                id="data",
            ),
            pytest.param(
                "[events](/events)",
                "the link '/events' is not a whole web address, so the email would drop it: "
                "write the full address, starting with https://",
                id="a path",
            ),
            pytest.param(
                "[files](ftp://files.example.org/a.pdf)",
                "the link 'ftp://files.example.org/a.pdf' is not a web or email link: links must "
                "start with https://, http:// or mailto:",
                id="another scheme",
            ),
            pytest.param(
                "[site](https:example.org)",
                "the link 'https:example.org' is missing the // after https:",
                id="no slashes",
            ),
            pytest.param(
                "[nothing]()",
                "a link has no address between its brackets: write the web address, like "
                "(https://example.org/page)",
                id="empty",
            ),
        ],
    )
    def test_a_link_the_email_would_drop_is_refused(
        self, newsletter: Newsletter, link: str, expected: str
    ) -> None:
        """A Markdown link the email could not carry is a problem at its line, saying what to write."""
        content = VALID.replace("by 18 December.", f"by 18 December, see {link}.")

        assert [f"{NAME}:8: {expected}"] == errors(newsletter, content)

    def test_each_link_at_its_own_line_in_a_block(self, newsletter: Newsletter) -> None:
        """Every bad link of a block is reported, each at the line where it is written."""
        content = VALID.replace(
            "    body: Add your opening times by 18 December.\n",
            "    body: |\n"
            "      Read [the guide](https://example.org/guide).\n"
            "\n"
            "      Then [the notes](www.example.org/notes) and\n"
            "      [the form](javascript:void(0)).\n",
        )

        assert [
            f"{NAME}:11: the link 'www.example.org/notes' has no https:// at the start, so the "
            "email would drop it: write https://www.example.org/notes",
            f"{NAME}:12: the link 'javascript:void(0)' is a javascript: link, which could run "
            "code: emails may only link to https://, http:// or mailto: addresses",
        ] == errors(newsletter, content)

    def test_a_reference_link_is_judged_too(self, newsletter: Newsletter) -> None:
        """A link whose address is given further down ([notes][1] ... [1]: www...) is checked."""
        content = VALID.replace(
            "intro: Hello {{ first_name | there }},",
            "intro: |\n  See [the notes][1].\n\n  [1]: www.example.org/notes",
        )

        assert [
            f"{NAME}:8: the link 'www.example.org/notes' has no https:// at the start, so the "
            "email would drop it: write https://www.example.org/notes"
        ] == errors(newsletter, content)

    @pytest.mark.parametrize(
        "link",
        [
            "[book](https://example.org/book)",
            "[email us](mailto:hello@example.org)",
            "[your page](https://example.org/?org={{ organisation | none }})",
            "<https://example.org/autolink>",
        ],
    )
    def test_links_the_email_keeps_are_fine(self, newsletter: Newsletter, link: str) -> None:
        """https, http and mailto links, with merge tags in them or not, are not problems."""
        assert [] == errors(newsletter, VALID.replace("18 December.", f"18 December, see {link}"))

    def test_a_link_in_a_title_is_plain_text(self, newsletter: Newsletter) -> None:
        """Titles are not Markdown, so brackets in them are just text."""
        content = VALID.replace(
            "title: Put your warm space on the map",
            "title: 'Put your [warm space](www) on the map'",
        )

        assert [] == errors(newsletter, content)


class TestScheduleDates:
    @pytest.mark.parametrize(
        ("date", "expected"),
        [
            pytest.param(
                "2026-12-16",
                "the date 2026-12-16 is a Wednesday, but issues go out every other Thursday: "
                "did you mean the slot on Thursday 17 December 2026 (2026-12-17)?",
                id="the day before a slot",
            ),
            pytest.param(
                "2026-12-21",
                "the date 2026-12-21 is a Monday, but issues go out every other Thursday: "
                "did you mean the slot on Thursday 17 December 2026 (2026-12-17)?",
                id="nearer the slot before",
            ),
            pytest.param(
                "2026-12-28",
                "the date 2026-12-28 is a Monday, but issues go out every other Thursday: "
                "did you mean the slot on Thursday 31 December 2026 (2026-12-31)?",
                id="nearer the slot after",
            ),
            pytest.param(
                "2026-12-10",
                "the date 2026-12-10 is a Thursday between two slots (issues go out every other "
                "Thursday): did you mean Thursday 3 December 2026 (2026-12-03) or Thursday 17 "
                "December 2026 (2026-12-17)?",
                id="the week between",
            ),
            pytest.param(
                "2026-11-19",
                "the date 2026-11-19 is before the first slot, Thursday 3 December 2026 "
                "(2026-12-03), so the scheduler would never send it: date the issue for a slot",
                id="before the anchor",
            ),
        ],
    )
    def test_a_date_off_the_schedule_names_the_nearest_slot(
        self, newsletter: Newsletter, date: str, expected: str
    ) -> None:
        """A date no slot falls on is a warning at the date's line, naming the slot meant."""
        content = VALID.replace("date: 2026-12-03", f"date: {date}")

        assert [f"{date}-test.yaml:3: {expected}"] == warnings(
            newsletter, content, f"{date}-test.yaml"
        )

    @pytest.mark.parametrize("date", ["2026-12-03", "2026-12-17", "2027-06-03"])
    def test_a_slot_date_is_fine(self, newsletter: Newsletter, date: str) -> None:
        """The anchor and every fortnight after it, however far ahead, are slots."""
        content = VALID.replace("date: 2026-12-03", f"date: {date}")

        assert [] == warnings(newsletter, content, f"{date}-test.yaml")

    def test_no_schedule_no_warning(self, newsletter: Newsletter) -> None:
        """Without a [schedule] in mailer.toml, any date is fine."""
        unscheduled = newsletter.model_copy(update={"schedule": None})
        content = VALID.replace("date: 2026-12-03", "date: 2026-12-16")

        assert [] == warnings(unscheduled, content, "2026-12-16-test.yaml")


class TestAltText:
    @pytest.mark.parametrize(
        ("alt", "why"),
        [
            ("IMG_2041.jpg", "looks like a file name"),
            ("warm-space-community-hall.png", "looks like a file name"),
            ("DSC01234", "looks like a file name"),
            ("image1", "looks like a placeholder"),
            ("Photo 2", "looks like a placeholder"),
            ("TODO", "looks like a placeholder"),
            ("alt text here", "looks like a placeholder"),
        ],
    )
    def test_alt_text_that_describes_nothing_is_a_warning(
        self, newsletter: Newsletter, alt: str, why: str
    ) -> None:
        """A file name or a placeholder as alt text is a warning at the alt line."""
        content = VALID + f"    image:\n      url: https://example.org/a.jpg\n      alt: {alt}\n"

        assert [
            f"{NAME}:11: the alt text '{alt}' of the image in section 1 {why}: describe what "
            'the picture shows, for people who cannot see it ("Volunteers serving soup in a '
            'chapel vestry")'
        ] == warnings(newsletter, content)

    @pytest.mark.parametrize(
        "alt", ["Volunteers serving soup in a chapel vestry", "Map", "A photo of the team"]
    )
    def test_a_description_or_a_single_word_is_not_warned_about(
        self, newsletter: Newsletter, alt: str
    ) -> None:
        """Descriptions pass; a single word is left to the studio's notes, not validate."""
        content = VALID + f"    image:\n      url: https://example.org/a.jpg\n      alt: {alt}\n"

        assert [] == warnings(newsletter, content)


class TestAfterASyntaxError:
    def test_every_tab_and_unquoted_colon_in_one_run(self, newsletter: Newsletter) -> None:
        """After YAML's first error, every other line with a tab or an unquoted ': ' is reported."""
        content = """\
            subject: Winter connections: the big one
            preheader: Warm spaces
            date: 2026-12-03
            status: ready
            intro: Hello,
            sections:
              - title: Warm spaces
            \tbody: Add your times.
              - title: Events: in Wales
                body: See you there.
            """

        assert [
            f"{NAME}:1: a colon followed by a space inside a value (or a line indented too far): "
            "put the whole value in quotes, or put '|' after the field name and the text on the "
            "lines below it, indented",
            f"{NAME}:8: this line has a tab where YAML needs spaces: use spaces to indent, and "
            "after colons",
            f"{NAME}:9: a colon followed by a space inside a value (or a line indented too far): "
            "put the whole value in quotes, or put '|' after the field name and the text on the "
            "lines below it, indented",
        ] == errors(newsletter, content)

    def test_colons_in_blocks_quotes_and_comments_are_text(self, newsletter: Newsletter) -> None:
        """Colons inside a | block, inside quotes or in a comment are not reported."""
        content = """\
            subject: "Winter connections"
            preheader: 'Warm spaces: and more'
            date: 2026-12-03  # note: the first slot
            status: ready
            intro: |
              Note: this is text.
            sections:
              - title: Warm spaces
                body: >
                  Times: all day.
                audience: [youth]
              - title: Events: in Wales
                body: See you.
            """

        assert [
            f"{NAME}:12: a colon followed by a space inside a value (or a line indented too far): "
            "put the whole value in quotes, or put '|' after the field name and the text on the "
            "lines below it, indented"
        ] == errors(newsletter, content)

    def test_a_quote_over_several_lines_is_text(self, newsletter: Newsletter) -> None:
        """A quoted value that runs over lines keeps its colons; the lines after it are checked."""
        content = """\
            subject: "Winter connections,
              with news: and more"
            preheader: Warm spaces
            date: 2026-12-03
            status: ready
            intro: Hello: you,
            sections:
              - title: Warm spaces
            \t  body: See you.
            """

        assert [
            f"{NAME}:6: a colon followed by a space inside a value (or a line indented too far): "
            "put the whole value in quotes, or put '|' after the field name and the text on the "
            "lines below it, indented",
            f"{NAME}:9: this line has a tab where YAML needs spaces: use spaces to indent, and "
            "after colons",
        ] == errors(newsletter, content)
