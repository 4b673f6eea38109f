"""Alt text that says nothing: a file name, a placeholder, or a single word.

Alt text is read aloud to people who cannot see the picture and shown where
pictures are turned off. ``IMG_2041.jpg`` or ``image1`` tells them nothing; a
single word ("Logo") rarely does. ``mailer validate`` warns about the first two;
the studio also notes the third.
"""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = ["AltProblem", "alt_problem"]


class AltProblem(StrEnum):
    """Why an alt text is probably not a description."""

    file_name = "looks like a file name"
    placeholder = "looks like a placeholder"
    one_word = "is a single word"


_IMAGE_EXTENSIONS = "jpe?g|png|gif|webp|avif|svg|heic|heif|bmp|tiff?"
_FILE_NAME = re.compile(
    rf"\S*\.(?:{_IMAGE_EXTENSIONS})"  # warm-space.jpg, photos/hall.PNG
    r"|(?:img|dsc|dscn|dscf|pxl|p)[_-]?\d[\w-]*"  # IMG_2041, PXL_20261203, P1010123
    r"|\S*[/\\]\S*",  # a path
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(
    r"(?:an? )?(?:image|img|photo|picture|pic|graphic|banner|illustration|figure|alt|alt text"
    r"|placeholder|untitled|screenshot|logo|icon|hero|thumbnail|header)(?:[ _-]?\d+)?"
    r"|todo|tbc|tbd|x+|\?+|-+|\.+|alt text (?:here|goes here|to come)|(?:add|insert) .*"
    r"|lorem ipsum.*|description|caption|text|image here|photo here",
    re.IGNORECASE,
)


def alt_problem(alt: str) -> AltProblem | None:
    """Why this alt text is probably not a description of the picture; None when it may be one."""
    text = " ".join(alt.split())
    if _FILE_NAME.fullmatch(text):
        return AltProblem.file_name
    if _PLACEHOLDER.fullmatch(text.rstrip(".")) or _PLACEHOLDER.fullmatch(text):
        return AltProblem.placeholder
    if len(text.split()) == 1:
        return AltProblem.one_word
    return None
