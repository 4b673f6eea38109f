"""The email as different inboxes show it: dark mode, and pictures turned off.

* Dark mode: clients that honour ``@media (prefers-color-scheme: dark)`` apply its
  rules when the reader's device is dark. A frame cannot be told its own colour
  scheme, so the studio applies those rules unconditionally (``@media all``), as
  such a client does.
* Pictures off: most clients first show an email without its pictures, each one's
  alt text in its place. Each ``<img>`` becomes a box of its width holding its alt
  text (nothing at all for an empty alt, as clients show decorative images).
"""

from __future__ import annotations

import html
import re

__all__ = ["dark_mode", "images_off"]

_DARK = re.compile(r"@media\s*\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.IGNORECASE)
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""\s([a-zA-Z-]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""")
_ALT_BOX = (
    "display:block;box-sizing:border-box;width:100%;max-width:{width};min-height:48px;"
    "margin:0 auto;padding:12px 14px;border:1px dashed #8a8f8c;background:#f4f2ed;"
    "color:#3b423e;font:italic 14px/1.45 -apple-system,'Segoe UI',Roboto,Arial,sans-serif;"
    "text-align:left;"
)


def dark_mode(page: str) -> str:
    """The email with its dark-mode rules in force, as a dark device's client shows it."""
    return _DARK.sub("@media all", page)


def images_off(page: str) -> str:
    """The email with every picture replaced by its alt text, as clients show it before loading them."""
    return _IMG.sub(_alt_box, page)


def _alt_box(match: re.Match[str]) -> str:
    attributes = {
        name.lower(): html.unescape(value.strip("'\""))
        for name, value in _ATTRIBUTE.findall(match[0])
    }
    alt = attributes.get("alt", "").strip()
    if not alt:
        return ""
    width = attributes.get("width", "")
    shown = f"{width}px" if width.isdigit() else "100%"
    return (
        f'<span class="mailer-alt-text" role="img" style="{_ALT_BOX.format(width=shown)}">'
        f"{html.escape(alt)}</span>"
    )
