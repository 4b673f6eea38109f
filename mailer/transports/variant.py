"""From the renderer's compiled variant to a batch's Content and each recipient's values.

The only place the delivery layer meets rendering. It relies on four things of
:class:`mailer.render.CompiledVariant`, written here as a protocol so that the
transports do not import the renderer: its ``placeholders`` (each a member ``field``
and a ``fallback``), ``subject_with_markers``/``html_with_markers``/
``text_with_markers`` (the outputs with each placeholder written as a marker we
choose), and ``values(recipient)`` (each placeholder's raw value, fallbacks applied).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from mailer.mail import Content, placeholder


class PlaceholderLike(Protocol):
    @property
    def field(self) -> str: ...
    @property
    def fallback(self) -> str: ...


class MarkedVariant(Protocol):
    """What the delivery layer needs of a compiled variant."""

    @property
    def placeholders(self) -> Sequence[PlaceholderLike]: ...
    def values(self, recipient: Mapping[str, str]) -> list[str]: ...
    def subject_with_markers(self, marker: Callable[[PlaceholderLike], str]) -> str: ...
    def html_with_markers(self, marker: Callable[[PlaceholderLike], str]) -> str: ...
    def text_with_markers(self, marker: Callable[[PlaceholderLike], str]) -> str: ...


def placeholder_names(placeholders: Sequence[PlaceholderLike]) -> list[str]:
    """A readable, unique name per placeholder: the field, plus its position when it has a fallback.

    ``{{ first_name }}`` is ``first_name``; ``{{ first_name | there }}`` (the 3rd
    placeholder) is ``first_name_2``, since fallbacks are free text.
    """
    names = []
    for index, item in enumerate(placeholders):
        base = item.field.lower()
        names.append(f"{base}_{index}" if item.fallback else base)
    return names


def content_of(variant: MarkedVariant) -> Content:
    """The variant's subject, HTML and text with a placeholder marker for each per-recipient value."""
    placeholders = list(variant.placeholders)
    names = placeholder_names(placeholders)

    def marker(item: PlaceholderLike) -> str:
        return placeholder(names[placeholders.index(item)])

    return Content(
        subject=variant.subject_with_markers(marker),
        html=variant.html_with_markers(marker),
        text=variant.text_with_markers(marker),
        wrap=True,  # its paragraphs are single lines until the values are in
    )


def values_of(variant: MarkedVariant, recipient: Mapping[str, str]) -> dict[str, str]:
    """One recipient's value for every placeholder of the variant, by placeholder name (for Recipient.values)."""
    return dict(
        zip(placeholder_names(variant.placeholders), variant.values(recipient), strict=True)
    )
