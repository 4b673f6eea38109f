"""Per-recipient values as placeholders: placeholders that survive Markdown, Jinja and MJML.

A variant is compiled once, with every per-recipient value (merge tags such as
``{{ first_name | there }}``, the unsubscribe and preferences links) written as
a placeholder token. Tokens are plain ASCII letters and digits, e.g.
``mlr3f9a1c02z4z``, so Markdown does not percent-encode them in links, autoescape
and MJML leave them alone, and they cannot be mistaken for editors' text (the
nonce is random per compilation and checked against the source).

After compilation each output is cut at the tokens into a :class:`PlaceholderTemplate`:
literal chunks with placeholder indexes between them. Personalising a recipient is then
one list join, with values HTML-escaped for the HTML part and raw for the text.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import quote

from mailer.headersafety import header_safe
from mailer.issues.model import MERGE_TAG

__all__ = [
    "LINK_FIELDS",
    "Placeholder",
    "PlaceholderRegistry",
    "PlaceholderTemplate",
    "escape_values",
    "member_fields",
    "with_markers",
]

# Per-recipient links, filled by the send stage (signed tokens in MAILER_BASE_URL links).
LINK_FIELDS = ("unsubscribe_url", "preferences_url")
# A token right after the start of a URL (in an href or written out in the text part)...
_URL_BEFORE = re.compile(r"(?:https?://|mailto:)[^\s\"'<>()]*$", re.IGNORECASE)
# ...and what ends a URL, in the text between two tokens.
_URL_END = re.compile(r"[\s\"'<>()]")


@dataclass(frozen=True, order=True)
class Placeholder:
    """One per-recipient value: a member field, and the text used when it is empty.

    ``in_url`` marks a merge tag written inside a link (``?org={{ organisation }}``):
    its value is percent-encoded, so that 'Smith & Daughters' stays one query value.
    """

    field: str
    fallback: str = ""
    in_url: bool = False

    @property
    def name(self) -> str:
        """How an editor wrote it: 'first_name' or 'first_name|there'."""
        return f"{self.field}|{self.fallback}" if self.fallback else self.field

    @property
    def id(self) -> str:
        """A stable id of letters, digits and '_': 'first_name', or 'first_name_or_1a2b3c4d'.

        Safe inside any provider's substitution marker; the same placeholder has the same id
        in every variant and every issue.
        """
        base = self.field
        if self.fallback:
            base += "_or_" + hashlib.sha256(self.fallback.encode()).hexdigest()[:8]
        return f"{base}_in_url" if self.in_url else base

    def value(self, fields: Mapping[str, str]) -> str:
        """The raw value for a member whose fields went through :func:`member_fields`."""
        value = fields.get(self.field, "") or self.fallback
        return quote(value, safe="") if self.in_url else value


def member_fields(recipient: Mapping[str, str]) -> dict[str, str]:
    """A recipient's values made safe for a header, with first_name derived from name when absent.

    Whitespace collapses, which keeps a stray newline in a name out of the Subject
    header, and a value holding an encoded-word opener counts as empty, so the merge
    tag's fallback stands in for it (see :mod:`mailer.headersafety`).
    """
    fields = {
        key: str(value) if key in LINK_FIELDS else header_safe(str(value))
        for key, value in recipient.items()
        if value
    }
    fields = {key: value for key, value in fields.items() if value}
    if not fields.get("first_name") and fields.get("name"):
        fields["first_name"] = fields["name"].split(" ", 1)[0]
    return fields


@dataclass(frozen=True)
class PlaceholderTemplate:
    """A text cut at its placeholders: ``chunks[0] + value(refs[0]) + chunks[1] + ...``."""

    chunks: tuple[str, ...]
    refs: tuple[int, ...]

    def fill(self, values: Sequence[str]) -> str:
        """The text with each placeholder replaced by ``values[placeholder index]``, escaped as needed."""
        if not self.refs:
            return self.chunks[0]
        parts = [self.chunks[0]]
        for ref, chunk in zip(self.refs, self.chunks[1:], strict=True):
            parts.append(values[ref])
            parts.append(chunk)
        return "".join(parts)

    def literal_size(self) -> int:
        """UTF-8 bytes of the text without its placeholders."""
        return sum(len(chunk.encode()) for chunk in self.chunks)


@dataclass
class PlaceholderRegistry:
    """Hands out placeholder tokens for placeholders while one variant is being built."""

    nonce: str = field(default_factory=lambda: secrets.token_hex(4))
    placeholders: list[Placeholder] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"mlr{self.nonce}z"

    def avoid(self, *texts: str) -> None:
        """Pick a new nonce if any source text happens to contain the current prefix."""
        while any(self.prefix in text for text in texts):
            self.nonce = secrets.token_hex(4)

    def token(self, placeholder: Placeholder) -> str:
        """The placeholder token for a placeholder, registering it on first use."""
        if placeholder not in self.placeholders:
            self.placeholders.append(placeholder)
        return f"{self.prefix}{self.placeholders.index(placeholder)}z"

    def tokenize(self, text: str) -> str:
        """Replace every merge tag in editors' text by its placeholder's token."""
        return MERGE_TAG.sub(
            lambda match: self.token(Placeholder(match["field"], match["fallback"] or "")), text
        )

    def split(self, compiled: str) -> PlaceholderTemplate:
        """Cut a compiled output at the tokens; tokens inside a URL become ``in_url`` placeholders.

        May register new placeholders, so read :attr:`placeholders` after the last split.
        """
        pieces = re.split(rf"{re.escape(self.prefix)}(\d+)z", compiled)
        chunks = pieces[0::2]
        refs: list[int] = []
        in_url = False
        for before, ref in zip(chunks[:-1], pieces[1::2], strict=True):
            # Still in the same URL if nothing since the last token could end it.
            in_url = bool(_URL_BEFORE.search(before)) or (in_url and not _URL_END.search(before))
            placeholder = self.placeholders[int(ref)]
            if in_url and placeholder.field not in LINK_FIELDS:
                placeholder = replace(placeholder, in_url=True)
                self.token(placeholder)
            refs.append(self.placeholders.index(placeholder))
        return PlaceholderTemplate(chunks=tuple(chunks), refs=tuple(refs))


def escape_values(values: Sequence[str]) -> list[str]:
    """Values as they go into HTML: <, >, & and quotes escaped (they may land in attributes)."""
    return [html.escape(value, quote=True) for value in values]


def with_markers(
    template: PlaceholderTemplate,
    placeholders: Sequence[Placeholder],
    marker: Callable[[Placeholder], str],
) -> str:
    """The text with each placeholder written as ``marker(placeholder)``, for a provider's own substitution."""
    return template.fill([marker(placeholder) for placeholder in placeholders])
