"""Outlook for Windows: the widths it lays the email out by match the official MJML compiler's.

mjml-python gave dividers' Outlook tables the full 600 px and two-column images
220 px, where the official compiler gives 536 px (the divider's padding taken
off) and 206 px (the column's inner width): Outlook drew those rows too wide.
The reference output was made once by the official compiler (see
tests/render/data/mjml-reference/README.md); npm is not needed here.
"""

from __future__ import annotations

import re

import mjml
import pytest
from helpers.outlook import REFERENCE, VARIANTS, outlook_widths

from mailer.config import Newsletter
from mailer.issues.model import Issue
from mailer.render import render_issue
from mailer.render.finish import finish, outlook_divider_widths
from mailer.render.preview import sample_member
from mailer.render.theme import theme_for


def reference(name: str) -> str:
    return (REFERENCE / f"{name}.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", VARIANTS)
def test_compiled_reference_mjml_has_the_official_outlook_widths(name: str) -> None:
    """The same MJML, compiled as mailer compiles it, gives Outlook the official widths."""
    source = (REFERENCE / f"{name}.mjml").read_text(encoding="utf-8")
    ours = finish(mjml.mjml2html(source, fonts={}), theme_for("#1f5c4a"), {})
    expected = outlook_widths(reference(name))
    assert any(width.endswith("=536px") for width in expected)  # the reference has dividers
    assert expected == outlook_widths(ours)


@pytest.mark.parametrize("name", VARIANTS)
def test_the_template_still_gives_the_official_outlook_widths(
    name: str, sample: Issue, newsletter: Newsletter
) -> None:
    """The email as sent today, not only the MJML kept with the reference: a change to the
    template's widths (an image back at 220px) shows here."""
    [variant] = render_issue(
        sample, newsletter, [VARIANTS[name]], archive_url="https://x.example/a"
    )
    html = variant.personalise(sample_member("https://x.example")).html
    assert outlook_widths(reference(name)) == outlook_widths(html)


def test_no_outlook_table_is_wider_than_the_body(sample: Issue, newsletter: Newsletter) -> None:
    """Nothing Outlook sizes by is wider than the 600 px body."""
    [variant] = render_issue(sample, newsletter, [VARIANTS["two-columns"]])
    html = variant.personalise(sample_member("https://x.example")).html
    widths = [int(float(w.split("=")[1].removesuffix("px"))) for w in outlook_widths(html)]
    assert widths and max(widths) <= 600


def test_divider_padding_is_taken_off_whatever_its_shorthand() -> None:
    """Padding written with one, two or four values is read as CSS reads it."""
    template = (
        '<td align="center" class="dm-rule" style="font-size:0px;padding:{};word-break:break-word;">'
        '<p style="border-top:solid 1px #ccc;width:100%;"></p><!--[if mso | IE]><table border="0" '
        'align="center" width="600px" style="border-top:solid 1px #ccc;width:600px;">'
    )
    for padding, width in (("10px", 580), ("0 32px", 536), ("0 10px 0 30px", 560)):
        fixed = outlook_divider_widths(template.format(padding))
        assert f'width="{width}px" style="border-top:solid 1px #ccc;width:{width}px;"' in fixed


def test_button_cells_match_the_official_compiler(sample: Issue, newsletter: Newsletter) -> None:
    """Neither the official output nor mailer's has a vertical-align attribute on a cell."""
    [variant] = render_issue(sample, newsletter, [VARIANTS["two-columns"]])
    html = variant.personalise(sample_member("https://x.example")).html
    for document in (reference("two-columns"), html):
        assert "dm-button" in document
        assert not re.search(r"<td[^>]*\svertical-align=", document)
