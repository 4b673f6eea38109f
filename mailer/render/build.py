"""Render an issue: one compiled variant per key, personalised per recipient afterwards.

For each variant, Jinja renders ``templates/email.mjml.j2`` to MJML with
placeholder tokens where per-recipient values go, mjml-python compiles it once,
and the output is cut into literal chunks and placeholders (:mod:`mailer.render.placeholders`).
The text part comes from its own template, ``templates/email.txt.j2``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import css_inline
import mjml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from markupsafe import Markup

from mailer.config import Newsletter
from mailer.errors import RenderError, SizeBudgetError
from mailer.issues.model import MERGE_TAG, Button, Image, Issue
from mailer.mail import wrap_text
from mailer.render.finish import finish
from mailer.render.markdown import markdown_to_html, markdown_to_text
from mailer.render.placeholders import (
    LINK_FIELDS,
    Placeholder,
    PlaceholderRegistry,
    PlaceholderTemplate,
    escape_values,
    member_fields,
    with_markers,
)
from mailer.render.theme import Theme, theme_for
from mailer.render.variants import VariantContent, variant_content

__all__ = [
    "HTML_TEMPLATE",
    "LIMIT_BYTES",
    "TEXT_TEMPLATE",
    "WARN_BYTES",
    "CompiledVariant",
    "RenderedMessage",
    "WebVersion",
    "compile_variant",
    "render_issue",
    "size_check",
    "variant_mjml",
]

HTML_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"
# Gmail clips a message's HTML near 102 KB, hiding the rest, unsubscribe link included.
WARN_BYTES = 85_000
LIMIT_BYTES = 100_000
# What a placeholder is assumed to weigh once filled and HTML-escaped, for the size budget:
# generous real-world lengths, so the budget holds for nearly every member.
PLACEHOLDER_ALLOWANCE = {
    "first_name": 24,
    "name": 48,
    "organisation": 96,
    "region": 32,
    "unsubscribe_url": 200,
    "preferences_url": 200,
}
DEFAULT_ALLOWANCE = 64


@dataclass(frozen=True)
class WebVersion:
    """The links of an issue's public web version (the archive), in place of a member's footer."""

    signup_url: str
    archive_index_url: str


@dataclass(frozen=True)
class RenderedMessage:
    """One recipient's email: ready for a transport."""

    subject: str
    preheader: str
    html: str
    text: str


@dataclass(frozen=True)
class CompiledVariant:
    """One variant of an issue, compiled once; :meth:`personalise` fills it per recipient.

    Recipients are mappings of member fields (``first_name``, ``name``,
    ``organisation``, ``region``) and per-recipient links (``unsubscribe_url``,
    ``preferences_url``). A missing or empty field takes the merge tag's fallback.
    """

    key: frozenset[str]
    name: str
    segments: tuple[str, ...]
    placeholders: tuple[Placeholder, ...]
    subject: PlaceholderTemplate
    preheader: PlaceholderTemplate
    html: PlaceholderTemplate
    text: PlaceholderTemplate
    html_size: int  # bytes, with every placeholder counted at its allowance
    text_size: int
    warnings: tuple[str, ...]

    def values(self, recipient: Mapping[str, str]) -> list[str]:
        """The raw value of every placeholder for this recipient, in :attr:`placeholders` order."""
        fields = member_fields(recipient)
        for link in LINK_FIELDS:
            if not fields.get(link):
                raise RenderError(
                    f"cannot personalise variant '{self.name}': the recipient has no {link}; "
                    "every email must carry working unsubscribe and preferences links"
                )
        return [placeholder.value(fields) for placeholder in self.placeholders]

    def placeholder_values(self, recipient: Mapping[str, str]) -> dict[str, str]:
        """Raw values by :attr:`Placeholder.id`, for a provider that substitutes them itself."""
        return {
            placeholder.id: value
            for placeholder, value in zip(self.placeholders, self.values(recipient), strict=True)
        }

    def personalise(self, recipient: Mapping[str, str]) -> RenderedMessage:
        """This variant for one recipient: values HTML-escaped in the HTML, raw elsewhere."""
        raw = self.values(recipient)
        return RenderedMessage(
            subject=self.subject.fill(raw),
            preheader=self.preheader.fill(raw),
            html=self.html.fill(escape_values(raw)),
            text=wrap_text(self.text.fill(raw)),
        )

    def html_with_markers(self, marker: Callable[[Placeholder], str]) -> str:
        """The HTML with each placeholder written as ``marker(placeholder)``, e.g. for SendGrid substitutions."""
        return with_markers(self.html, self.placeholders, marker)

    def text_with_markers(self, marker: Callable[[Placeholder], str]) -> str:
        """The text part with each placeholder written as ``marker(placeholder)``."""
        return with_markers(self.text, self.placeholders, marker)

    def subject_with_markers(self, marker: Callable[[Placeholder], str]) -> str:
        """The subject with each placeholder written as ``marker(placeholder)``."""
        return with_markers(self.subject, self.placeholders, marker)


def render_issue(
    issue: Issue,
    newsletter: Newsletter,
    keys: Iterable[frozenset[str]],
    *,
    archive_url: str | None = None,
    web_version: WebVersion | None = None,
) -> list[CompiledVariant]:
    """Compile one variant per distinct key, in the order given.

    ``web_version``: render the public web version, whose footer links to the
    sign-up page and the archive instead of a member's own links.
    Raises SizeBudgetError if a variant's HTML is over :data:`LIMIT_BYTES`.
    """
    unique = list(dict.fromkeys(frozenset(key) for key in keys))
    return [
        compile_variant(
            variant_content(issue, newsletter, key),
            issue,
            newsletter,
            archive_url=archive_url,
            web_version=web_version,
        )
        for key in unique
    ]


def compile_variant(
    content: VariantContent,
    issue: Issue,
    newsletter: Newsletter,
    *,
    archive_url: str | None = None,
    web_version: WebVersion | None = None,
) -> CompiledVariant:
    """Render and compile one variant (MJML once), then cut it into chunks and placeholders."""
    registry = PlaceholderRegistry()
    registry.avoid(repr(content), repr(newsletter), archive_url or "", repr(web_version))
    theme = theme_for(newsletter.brand_colour)
    common = _common_context(content, issue, newsletter, registry, archive_url)
    common["web_version"] = web_version
    _, text_env = _environments(newsletter.templates_dir)
    mjml_source = _mjml_source(content, newsletter, registry, theme, common)
    logo = newsletter.logo.url if newsletter.logo else None
    compiled_html = finish(_compile_mjml(mjml_source, content.name), theme, _ratios(content), logo)
    text = _tidy_text(
        _render(text_env, TEXT_TEMPLATE, {**common, **_text_context(content, registry)})
    )
    # What is the same for every member is wrapped now, once; lines with their values
    # after those are filled in (personalise, and the transports).
    text = wrap_text(text, skip=registry.prefix)

    html = registry.split(compiled_html)
    text_template = registry.split(text)
    subject = registry.split(registry.tokenize(content.subject))
    preheader = registry.split(registry.tokenize(content.preheader))
    placeholders = tuple(registry.placeholders)  # complete only after the last split
    html_size = _budget_size(html, placeholders)
    return CompiledVariant(
        key=content.key,
        name=content.name,
        segments=content.segments,
        placeholders=placeholders,
        subject=subject,
        preheader=preheader,
        html=html,
        text=text_template,
        html_size=html_size,
        text_size=_budget_size(text_template, placeholders),
        warnings=_size_warnings(content.name, html_size),
    )


def variant_mjml(
    content: VariantContent, issue: Issue, newsletter: Newsletter, *, archive_url: str | None = None
) -> str:
    """The MJML a variant compiles from (placeholders as tokens): for comparing compilers."""
    registry = PlaceholderRegistry()
    common = _common_context(content, issue, newsletter, registry, archive_url)
    return _mjml_source(content, newsletter, registry, theme_for(newsletter.brand_colour), common)


def _mjml_source(
    content: VariantContent,
    newsletter: Newsletter,
    registry: PlaceholderRegistry,
    theme: Theme,
    common: Mapping[str, Any],
) -> str:
    html_env, _ = _environments(newsletter.templates_dir)
    return _render(html_env, HTML_TEMPLATE, {**common, **_html_context(content, registry, theme)})


def _ratios(content: VariantContent) -> dict[str, tuple[int, int]]:
    """Image URL -> (width, height), for the images whose editor gave their size."""
    found: dict[str, tuple[int, int]] = {}
    for section in content.sections:
        if section.image and (ratio := section.image.ratio):
            found[section.image.url] = ratio
    return found


def size_check(
    issue: Issue, newsletter: Newsletter, keys: Iterable[frozenset[str]]
) -> tuple[list[str], list[str]]:
    """(problems, warnings) of these variants against the size budget, as ``send`` applies it.

    What ``mailer validate`` reports, so that an issue it passes is not refused later for
    its size. Other render errors (a template missing or broken) are the templates', not
    the issue's: ``preview`` and ``send`` report them, and the size is then not checked.
    """
    problems: list[str] = []
    warnings: list[str] = []
    for key in dict.fromkeys(frozenset(key) for key in keys):
        try:
            compiled = compile_variant(variant_content(issue, newsletter, key), issue, newsletter)
        except SizeBudgetError as error:
            problems.append(str(error))
        except RenderError:
            return problems, warnings
        else:
            warnings.extend(f"variant '{compiled.name}': {text}" for text in compiled.warnings)
    return problems, warnings


def _size_warnings(name: str, size: int) -> tuple[str, ...]:
    if size > LIMIT_BYTES:
        raise SizeBudgetError(name, size, LIMIT_BYTES)
    if size > WARN_BYTES:
        return (
            f"HTML is {size / 1000:.1f} KB, over {WARN_BYTES // 1000} KB: "
            "close to where Gmail clips the message (about 102 KB)",
        )
    return ()


def _budget_size(template: PlaceholderTemplate, placeholders: tuple[Placeholder, ...]) -> int:
    """Bytes of the output once filled, with each placeholder at its allowance."""
    return template.literal_size() + sum(_allowance(placeholders[ref]) for ref in template.refs)


def _allowance(placeholder: Placeholder) -> int:
    size = max(
        PLACEHOLDER_ALLOWANCE.get(placeholder.field, DEFAULT_ALLOWANCE), len(placeholder.fallback)
    )
    return size * 3 if placeholder.in_url else size  # percent-encoding can triple it


# --- template contexts -------------------------------------------------------


@dataclass(frozen=True)
class _SectionView:
    anchor: str  # the id of its heading, which "In this issue" links to
    title: str
    title_underline: str
    body: str
    image: Image | None
    layout: str
    button: Button | None


def _common_context(
    content: VariantContent,
    issue: Issue,
    newsletter: Newsletter,
    registry: PlaceholderRegistry,
    archive_url: str | None,
) -> dict[str, Any]:
    # Registered first, so every variant has these two placeholders at indexes 0 and 1.
    links = {field: registry.token(Placeholder(field)) for field in LINK_FIELDS}
    return {
        **links,
        "lang": newsletter.language,
        "newsletter_name": newsletter.name,
        "website": newsletter.website,
        "postal_address": newsletter.postal_address,
        "date_label": _date_label(issue.date),
        "logo": newsletter.logo,
        "headline": registry.tokenize(issue.headline or content.subject),
        "subject": registry.tokenize(content.subject),
        "preheader": registry.tokenize(content.preheader),
        "archive_url": archive_url,
        "web_version": None,  # the archive's public footer sets it (compile_variant, issue 22)
    }


def _html_context(
    content: VariantContent, registry: PlaceholderRegistry, theme: Theme
) -> dict[str, Any]:
    css = _fragment_css(theme)

    def html_of(markdown: str, *, line_breaks: bool = False) -> Markup:
        fragment = markdown_to_html(registry.tokenize(markdown), line_breaks=line_breaks)
        # Inline styles: some clients (Gmail with non-Google accounts) drop <style> blocks.
        return Markup(css_inline.inline_fragment(fragment, css))  # sanitised by nh3

    return {
        "theme": theme,
        "intro": html_of(content.intro),
        "sign_off": html_of(content.sign_off, line_breaks=True) if content.sign_off else None,
        "sections": [
            _SectionView(
                anchor=f"section-{number}",
                title=registry.tokenize(section.title),
                title_underline="",
                body=html_of(section.body),
                image=section.image,
                layout=section.layout,
                button=section.button,
            )
            for number, section in enumerate(content.sections, start=1)
        ],
    }


def _text_context(content: VariantContent, registry: PlaceholderRegistry) -> dict[str, Any]:
    def text_of(markdown: str, *, line_breaks: bool = False) -> str:
        # Unwrapped: lines are wrapped once the merge fields are filled in (mailer.mail.wrap_text).
        return markdown_to_text(registry.tokenize(markdown), None, line_breaks=line_breaks)

    return {
        "intro": text_of(content.intro),
        "sign_off": text_of(content.sign_off, line_breaks=True) if content.sign_off else None,
        "sections": [
            _SectionView(
                anchor=f"section-{number}",
                title=registry.tokenize(section.title),
                title_underline="-" * _display_length(section.title),
                body=text_of(section.body),
                image=section.image,
                layout=section.layout,
                button=section.button,
            )
            for number, section in enumerate(content.sections, start=1)
        ],
    }


def _display_length(text: str) -> int:
    """Length of a title as most members will see it: merge tags counted as their fallback."""
    return len(MERGE_TAG.sub(lambda match: match["fallback"] or "Alex", text))


def _date_label(date: dt.date) -> str:
    return f"{date.day} {date:%B %Y}"


def _fragment_css(theme: Theme) -> str:
    return f"""
    p {{ margin: 0 0 16px; }}
    p:last-child, ul:last-child, ol:last-child, blockquote:last-child {{ margin-bottom: 0; }}
    a {{ color: {theme.link}; text-decoration: underline; }}
    h3 {{ margin: 24px 0 8px; font-size: 18px; line-height: 1.35; color: {theme.text}; }}
    h4 {{ margin: 20px 0 8px; font-size: 16px; line-height: 1.4; color: {theme.text}; }}
    ul, ol {{ margin: 0 0 16px; padding-left: 24px; }}
    li {{ margin: 0 0 6px; }}
    blockquote {{ margin: 0 0 16px; padding: 2px 0 2px 16px;
                 border-left: 4px solid {theme.brand}; }}
    code {{ font-family: Menlo, Consolas, monospace; font-size: 14px; background: {theme.page};
           padding: 1px 4px; border-radius: 3px; }}
    hr {{ border: 0; border-top: 1px solid {theme.rule}; margin: 24px 0; }}
    """


# --- Jinja and MJML ----------------------------------------------------------


@cache
def _environments(templates_dir: Path) -> tuple[Environment, Environment]:
    """The MJML environment (autoescaped) and the text one (not), for a templates folder."""
    loader = FileSystemLoader(templates_dir)
    options: dict[str, Any] = {
        "loader": loader,
        "undefined": StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
    }
    return Environment(autoescape=True, **options), Environment(autoescape=False, **options)


def _render(env: Environment, name: str, context: Mapping[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except TemplateError as error:
        folder = env.loader.searchpath if isinstance(env.loader, FileSystemLoader) else "?"
        raise RenderError(f"template {name} (in {', '.join(map(str, folder))}): {error}") from error


def _compile_mjml(source: str, variant: str) -> str:
    try:
        # fonts={}: no web-font links; the system font stack needs none and members'
        # mail clients should not call out to a font service.
        return mjml.mjml2html(source, fonts={})
    except ValueError as error:
        raise RenderError(
            f"variant '{variant}': the MJML template did not compile: {error}"
        ) from error


def _tidy_text(text: str) -> str:
    """Collapse runs of blank lines left by template blocks; end with one newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy).strip("\n") + "\n"
