"""Rendering: an Issue into one compiled email per variant, personalised per recipient.

The send stage calls :func:`render_issue` once per issue with the variant keys of
its audience (:func:`variant_key` for each member), then, for each recipient,
:meth:`CompiledVariant.personalise` (or, for a provider that substitutes values
itself, :meth:`CompiledVariant.html_with_markers` and :attr:`CompiledVariant.placeholders`).
"""

from mailer.render.build import (
    LIMIT_BYTES,
    WARN_BYTES,
    CompiledVariant,
    RenderedMessage,
    compile_variant,
    render_issue,
)
from mailer.render.placeholders import LINK_FIELDS, Placeholder, PlaceholderTemplate, member_fields
from mailer.render.variants import (
    GENERAL,
    VariantContent,
    variant_content,
    variant_key,
    variant_name,
)

__all__ = [
    "GENERAL",
    "LIMIT_BYTES",
    "LINK_FIELDS",
    "WARN_BYTES",
    "CompiledVariant",
    "Placeholder",
    "PlaceholderTemplate",
    "RenderedMessage",
    "VariantContent",
    "compile_variant",
    "member_fields",
    "render_issue",
    "variant_content",
    "variant_key",
    "variant_name",
]
