"""Finishing touches on mjml-python's output, where it differs from what mail clients need.

Each step is a small rewrite of the compiled HTML, applied once per variant:

* **Outlook widths**: mjml-python gives a divider's Outlook-only table the full
  body width (``width="600px"``) where the official MJML compiler takes off the
  divider's padding; Outlook sizes by that attribute and draws the row too wide.
  Images are sized in the template (``email.mjml.j2``) so both compilers agree.
* **Button cells**: ``vertical-align`` is not an HTML attribute of ``<td>``
  (the official compiler does not write it).
* **Preheader**: mjml hides it with white 1 px text, which SpamAssassin's
  ``HTML_FONT_LOW_CONTRAST`` reads as hidden low-contrast text. ``display:none``
  with ``mso-hide:all`` hides it just as well, with no colour to compare.
* **Images off**: alt text takes the email's font, a muted colour and no link
  underline, and each image keeps its height (``aspect-ratio: auto W / H``:
  the picture's own ratio once loaded, the reserved one while it is not).
* **Landmarks**: the email's content sits in a ``main`` landmark (axe-core's
  ``landmark-one-main`` and ``region``), also on the archive page, which shows it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from mailer.render.theme import Theme

__all__ = ["BODY_WIDTH", "FONT_STACK", "finish"]

BODY_WIDTH = 600
FONT_STACK = "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"

_PREVIEW = re.compile(r'(<body[^>]*>)<div style="display:none;[^"]*">')
_PREVIEW_STYLE = "display:none;max-height:0;max-width:0;overflow:hidden;mso-hide:all;"
# A divider: its cell's padding, the visible rule, then the Outlook-only table.
_DIVIDER = re.compile(
    r'(<td align="center"[^>]*style="font-size:0px;padding:(?P<padding>[^;"]*);[^"]*">'
    r'<p style="border-top:[^"]*"></p><!--\[if mso \| IE\]><table [^>]*)'
    r'width="(?P<attr>\d+)px" style="(?P<style>[^"]*)width:\d+px;"'
)
_BUTTON_VALIGN = re.compile(r'(<td align="[a-z]+") vertical-align="[a-z]+"( class="[^"]*dm-button)')
_IMAGE = re.compile(r'<img alt="[^"]*"[^>]*src="(?P<src>[^"]*)"[^>]*style="(?P<style>[^"]*)"')
_IMAGE_LINK = re.compile(r'(<a href="[^"]*" target="_blank")(><img )')
# mjml's body div (role="article", aria-roledescription="email"), through to the end.
_ARTICLE = re.compile(r'(<div [^>]*role="article"[^>]*>.*</div>)(\s*</body>)', re.S)


def finish(
    html: str,
    theme: Theme,
    ratios: Mapping[str, tuple[int, int]],
    logo_url: str | None = None,
) -> str:
    """Apply every step to one compiled variant.

    ``ratios``: image URL -> (width, height) where the editor gave them; the logo
    (on the brand colour, with a fixed size) gets its alt text in the header's colour.
    """
    html = _preheader(html)
    html = outlook_divider_widths(html)
    html = _BUTTON_VALIGN.sub(r"\1\2", html)
    html = _images(html, theme, ratios, logo_url)
    return _main_landmark(html)


def _preheader(html: str) -> str:
    return _PREVIEW.sub(rf'\1<div style="{_PREVIEW_STYLE}">', html, count=1)


def outlook_divider_widths(html: str, body_width: int = BODY_WIDTH) -> str:
    """Each divider's Outlook table as wide as the body less the divider's own padding."""

    def fix(match: re.Match[str]) -> str:
        width = body_width - _horizontal_padding(match["padding"])
        return f'{match[1]}width="{width}px" style="{match["style"]}width:{width}px;"'

    return _DIVIDER.sub(fix, html)


def _horizontal_padding(padding: str) -> int:
    """Left plus right of a CSS padding shorthand in px ('0 32px', '10px 25px 0 20px')."""
    sides = [int(float(value.removesuffix("px") or 0)) for value in padding.split()]
    if len(sides) == 1:
        return 2 * sides[0]
    if len(sides) in (2, 3):
        return 2 * sides[1]
    return sides[1] + sides[3]


def _images(
    html: str, theme: Theme, ratios: Mapping[str, tuple[int, int]], logo_url: str | None
) -> str:
    def style(match: re.Match[str]) -> str:
        old = match["style"].replace("font-size:13px;", "")
        alt = f"font-family:{FONT_STACK};"
        if match["src"] == logo_url:  # fixed width and height: small alt text fits better
            alt += f"font-size:11px;line-height:1.2;color:{theme.on_brand};"
        else:
            width, height = ratios.get(match["src"], DEFAULT_RATIO)
            alt += "font-size:14px;line-height:1.4;"
            alt += f"color:{theme.muted};aspect-ratio:auto {width} / {height};"
        return match[0].replace(f'style="{match["style"]}"', f'style="{old}{alt}"')

    html = _IMAGE.sub(style, html)
    # A linked image's alt text would otherwise be blue and underlined.
    return _IMAGE_LINK.sub(r'\1 style="color:inherit;text-decoration:none;"\2', html)


DEFAULT_RATIO = (3, 2)


def _main_landmark(html: str) -> str:
    # Around the article, not inside it: axe-core's `region` rule then finds nothing
    # outside a landmark (the hidden preheader does not count).
    return _ARTICLE.sub(r'<div role="main">\1</div>\2', html, count=1)
