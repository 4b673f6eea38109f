"""Colours for the email, derived from the newsletter's brand colour so that every
text/background pair meets WCAG AA (4.5:1), in light mode and in dark mode.

An editor may pick any brand colour in mailer.toml; a pale one must not give
white text on a pale header, nor pale links on white.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AA", "AAA", "Theme", "contrast_ratio", "mix", "readable_on", "theme_for"]

AA = 4.5
AAA = 7.0
_WHITE = "#ffffff"
_INK = "#1d2320"


@dataclass(frozen=True)
class Theme:
    brand: str
    on_brand: str  # text on the brand colour (header, buttons)
    page: str = "#f2efe9"
    card: str = _WHITE
    text: str = _INK
    muted: str = "#525a56"  # footer text, on the page colour
    rule: str = "#e3ded5"
    link: str = "#1f5c4a"
    # Dark mode (applied by @media (prefers-color-scheme: dark) where clients honour it).
    dark_page: str = "#101312"
    dark_card: str = "#1a1e1c"
    dark_text: str = "#e8e6e1"
    dark_muted: str = "#b3bab6"
    dark_rule: str = "#2e3431"
    dark_link: str = "#8fd1bb"
    dark_button: str = "#6d9589"  # buttons on the dark card: they stand out from it ...
    dark_on_button: str = _INK  # ... and their label readable on them (4.5:1)


def theme_for(brand: str) -> Theme:
    """The theme for a brand colour, with text colours adjusted until they pass AA."""
    brand = brand.lower()
    on_brand = readable_on(brand)
    if contrast_ratio(on_brand, brand) < AA:
        # Neither white nor black reads well on mid-tones such as pure red: darken the
        # header and buttons just enough for white text.
        brand, on_brand = _darken_until(brand, _WHITE), _WHITE
    base = Theme(brand=brand, on_brand=on_brand)
    # Links sit on the card and, in the footer, on the (darker) page colour.
    link = _darken_until(brand, base.page)
    # Dark backgrounds make AA-minimum colours look dim; aim for AAA there.
    dark_link = _lighten_until(brand, base.dark_card, AAA)
    dark_button, dark_on_button = _dark_button(brand, base.dark_card)
    return Theme(
        brand=brand,
        on_brand=on_brand,
        link=link,
        dark_link=dark_link,
        dark_button=dark_button,
        dark_on_button=dark_on_button,
    )


def _dark_button(brand: str, card: str) -> tuple[str, str]:
    """A button colour for dark mode and its label colour.

    The brand colour as it is when it already stands out from the dark card and carries
    a readable label (4.5:1 both; WCAG asks 3:1 of a control, but a dark brand colour
    at 3:1 on near-black still looks dim); otherwise lightened in steps until both hold.
    """
    step = 0.0
    candidate = brand
    while step < 1:
        label = readable_on(candidate)
        if contrast_ratio(candidate, card) >= AA and contrast_ratio(label, candidate) >= AA:
            return candidate, label
        step += 0.05
        candidate = mix(brand, _WHITE, step)
    return _WHITE, _INK


def readable_on(background: str) -> str:
    """White or near-black, whichever reads better on the background."""
    return (
        _WHITE if contrast_ratio(_WHITE, background) >= contrast_ratio(_INK, background) else _INK
    )


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours, from 1 to 21."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def mix(colour: str, other: str, amount: float) -> str:
    """``colour`` moved ``amount`` (0..1) of the way towards ``other``."""
    a, b = _rgb(colour), _rgb(other)
    return "#" + "".join(f"{round(x + (y - x) * amount):02x}" for x, y in zip(a, b, strict=True))


def _darken_until(colour: str, background: str, target: float = AA) -> str:
    return _shift_until(colour, "#000000", background, target)


def _lighten_until(colour: str, background: str, target: float = AA) -> str:
    return _shift_until(colour, _WHITE, background, target)


def _shift_until(colour: str, towards: str, background: str, target: float) -> str:
    step = 0.0
    candidate = colour
    while contrast_ratio(candidate, background) < target and step < 1:
        step += 0.05
        candidate = mix(colour, towards, step)
    return candidate


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
