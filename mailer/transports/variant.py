"""From the renderer's compiled variant to a batch's Content and each recipient's values.

The only place the delivery layer meets rendering. It relies on four things of
:class:`mailer.render.CompiledVariant`, written here as a protocol so that the
transports do not import the renderer: its ``slots`` (each a member ``field``
and a ``fallback``), ``subject_with_markers``/``html_with_markers``/
``text_with_markers`` (the outputs with each slot written as a marker we
choose), and ``values(recipient)`` (each slot's raw value, fallbacks applied).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from mailer.mail import Content, slot


class SlotLike(Protocol):
    @property
    def field(self) -> str: ...
    @property
    def fallback(self) -> str: ...


class MarkedVariant(Protocol):
    """What the delivery layer needs of a compiled variant."""

    @property
    def slots(self) -> Sequence[SlotLike]: ...
    def values(self, recipient: Mapping[str, str]) -> list[str]: ...
    def subject_with_markers(self, marker: Callable[[SlotLike], str]) -> str: ...
    def html_with_markers(self, marker: Callable[[SlotLike], str]) -> str: ...
    def text_with_markers(self, marker: Callable[[SlotLike], str]) -> str: ...


def slot_names(slots: Sequence[SlotLike]) -> list[str]:
    """A readable, unique name per slot: the field, plus its position when it has a fallback.

    ``{{ first_name }}`` is ``first_name``; ``{{ first_name | there }}`` (the 3rd
    slot) is ``first_name_2``, since fallbacks are free text.
    """
    names = []
    for index, item in enumerate(slots):
        base = item.field.lower()
        names.append(f"{base}_{index}" if item.fallback else base)
    return names


def content_of(variant: MarkedVariant) -> Content:
    """The variant's subject, HTML and text with a slot marker for each per-recipient value."""
    slots = list(variant.slots)
    names = slot_names(slots)

    def marker(item: SlotLike) -> str:
        return slot(names[slots.index(item)])

    return Content(
        subject=variant.subject_with_markers(marker),
        html=variant.html_with_markers(marker),
        text=variant.text_with_markers(marker),
    )


def values_of(variant: MarkedVariant, recipient: Mapping[str, str]) -> dict[str, str]:
    """One recipient's value for every slot of the variant, by slot name (for Recipient.values)."""
    return dict(zip(slot_names(variant.slots), variant.values(recipient), strict=True))
