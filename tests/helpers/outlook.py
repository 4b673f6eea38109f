"""The Outlook-only widths of compiled emails, and the MJML the reference output was made from.

Outlook for Windows lays an email out by the ``width`` attributes of the tables in
``<!--[if mso | IE]>`` comments and of images, not by CSS. tests/render/test_outlook.py
compares those widths with the official MJML compiler's output for the same MJML,
made once by ``scripts/mjml-reference`` and kept in tests/render/data/mjml-reference/.
"""

from __future__ import annotations

import re

import yaml

from helpers.project import RENDER_SAMPLE, ROOT
from mailer.config import load_newsletter
from mailer.issues.model import Issue
from mailer.render import variant_content
from mailer.render.build import variant_mjml

REFERENCE = ROOT / "tests" / "render" / "data" / "mjml-reference"
# Variants of the render sample with every kind of width: dividers, one-column and
# two-column images (left and right), buttons.
VARIANTS = {
    "general": frozenset[str](),
    "two-columns": frozenset({"youth", "intergenerational"}),
    "stacked-image": frozenset({"in-person", "wales"}),
}
_MSO = re.compile(r"<!--\[if mso \| IE\]>(.*?)<!\[endif\]-->", re.S)
_TAG = re.compile(r"<(table|td|img)\b([^>]*)>")
_WIDTH_ATTR = re.compile(r'\swidth="([^"]*)"')


def reference_sources() -> dict[str, str]:
    """Each reference variant's MJML, rendered from the project's template."""
    newsletter = load_newsletter(ROOT / "mailer.toml")
    raw = yaml.safe_load(RENDER_SAMPLE.read_text(encoding="utf-8"))
    issue = Issue.model_validate({**raw, "slug": RENDER_SAMPLE.stem})
    return {
        name: variant_mjml(
            variant_content(issue, newsletter, key),
            issue,
            newsletter,
            archive_url="https://x.example/a",
        )
        for name, key in VARIANTS.items()
    }


def outlook_widths(html: str) -> list[str]:
    """Width attributes Outlook sizes by: tables and cells in mso comments, and images.

    As 'tag=width' in document order, with '536px' and '536' told apart as Outlook
    reads them the same but the attribute should be as the official compiler writes it.
    """
    found: list[str] = []
    for block in _MSO.findall(html):
        for tag, attributes in _TAG.findall(block):
            if width := _WIDTH_ATTR.search(attributes):
                found.append(f"{tag}={width[1]}")
    outside = _MSO.sub("", html)
    for tag, attributes in _TAG.findall(outside):
        if tag == "img" and (width := _WIDTH_ATTR.search(attributes)):
            found.append(f"img={width[1]}")
    return found
