"""Each member's part of a send: the values their merge tags and links take, per variant.

:class:`Variants` compiles each variant of an issue once; :func:`member_values` and
:func:`links` give a member's values, which :meth:`Variant.values` puts in the
variant's placeholders. Test sends (:mod:`mailer.sending.proofs`) use them; the
send (:mod:`mailer.sending.run`) makes the same values with :meth:`Variant.values_for`,
in one pass per member, from a batch's tokens made together (:meth:`TokenSigner.links_of`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol
from urllib.parse import quote

from mailer.config import Newsletter, Settings, TransportName
from mailer.errors import ConfigError
from mailer.headersafety import header_safe
from mailer.issues.model import Issue
from mailer.mail import Content
from mailer.render import CompiledVariant, render_issue
from mailer.tokens import TokenSigner, signer_for
from mailer.transports.variant import content_of, placeholder_names

__all__ = [
    "MergeFields",
    "Variant",
    "Variants",
    "archive_url",
    "link_signer",
    "links",
    "member_values",
]


def links(
    subscriber_id: int, signer: TokenSigner, base_url: str, link_version: int = 0
) -> dict[str, str]:
    """A member's unsubscribe and preferences URLs, each with its own signed token."""
    unsubscribe, preferences = signer.links(subscriber_id, link_version)
    return {
        "unsubscribe_url": f"{base_url}/unsubscribe/{unsubscribe}",
        "preferences_url": f"{base_url}/preferences/{preferences}",
    }


_MERGE_FIELD_NAMES = ("name", "first_name", "organisation", "region")
"""What :func:`member_values` takes of a member, in its order."""


class MergeFields(Protocol):
    """What merge tags take of a member: a stored Subscriber or the audience's Addressee."""

    @property
    def name(self) -> str: ...
    @property
    def first_name(self) -> str: ...
    @property
    def organisation(self) -> str: ...
    @property
    def region(self) -> str: ...


def member_values(subscriber: MergeFields, member_links: Mapping[str, str]) -> dict[str, str]:
    """The fields an issue's merge tags and links take for this member."""
    return {
        "name": subscriber.name,
        "first_name": subscriber.first_name,
        "organisation": subscriber.organisation,
        "region": subscriber.region,
        **member_links,
    }


@dataclass(frozen=True)
class Variant:
    """A variant compiled once: what the transport needs, and how to fill it per member."""

    compiled: CompiledVariant
    content: Content
    placeholder_names: tuple[str, ...]  # the transport's name for each of compiled.placeholders

    @property
    def name(self) -> str:
        return self.compiled.name

    def values(self, fields: Mapping[str, str]) -> dict[str, str]:
        """A member's value for every placeholder, by placeholder name (what Recipient.values wants)."""
        return dict(zip(self.placeholder_names, self.compiled.values(fields), strict=True))

    def values_for(
        self, member: MergeFields, unsubscribe_url: str, preferences_url: str
    ) -> dict[str, str]:
        """``values(member_values(member, links))``, on a send's hot path: only the fields
        some placeholder uses are made header-safe, in one pass with no dict of them all
        (the rules are :func:`mailer.render.placeholders.member_fields`; tests check that
        the two agree for any member)."""
        if not (unsubscribe_url and preferences_url):  # refused there, with the reason
            return self.values(
                member_values(
                    member, {"unsubscribe_url": unsubscribe_url, "preferences_url": preferences_url}
                )
            )
        fields = {"unsubscribe_url": unsubscribe_url, "preferences_url": preferences_url}
        for name in self._member_fields:
            value = getattr(member, name)
            if value:
                fields[name] = header_safe(str(value))
        if self._first_name_from_name and not fields.get("first_name") and fields.get("name"):
            fields["first_name"] = fields["name"].split(" ", 1)[0]
        return {
            name: (
                quote(fields.get(key, "") or fallback, safe="")
                if in_url
                else fields.get(key, "") or fallback
            )
            for name, key, fallback, in_url in self._slots
        }

    @cached_property
    def _slots(self) -> tuple[tuple[str, str, str, bool], ...]:
        """(placeholder name, member field, fallback, in_url) of each placeholder."""
        return tuple(
            (name, p.field, p.fallback, p.in_url)
            for name, p in zip(self.placeholder_names, self.compiled.placeholders, strict=True)
        )

    @cached_property
    def _member_fields(self) -> tuple[str, ...]:
        """The member's fields the placeholders read (a first name may come from the name)."""
        used = {key for _, key, _, _ in self._slots}
        if "first_name" in used:
            used.add("name")
        return tuple(name for name in _MERGE_FIELD_NAMES if name in used)

    @cached_property
    def _first_name_from_name(self) -> bool:
        return "first_name" in self._member_fields


@dataclass
class Variants:
    """Each variant compiled once, on first use."""

    issue: Issue
    newsletter: Newsletter
    archive_url: str
    _cache: dict[frozenset[str], Variant] = field(default_factory=dict)

    def prepare(self, keys: Iterable[frozenset[str]]) -> None:
        """Compile these now, so that a variant that cannot be rendered stops the send early."""
        missing = [key for key in dict.fromkeys(keys) if key not in self._cache]
        for compiled in render_issue(
            self.issue, self.newsletter, missing, archive_url=self.archive_url
        ):
            names = tuple(placeholder_names(compiled.placeholders))
            self._cache[compiled.key] = Variant(compiled, content_of(compiled), names)

    def get(self, key: frozenset[str]) -> Variant:
        if key not in self._cache:
            self.prepare([key])
        return self._cache[key]


def link_signer(settings: Settings) -> TokenSigner:
    """The signer for members' links, once the settings are fit for the transport.

    Real mail (SMTP, SendGrid) needs MAILER_SECRET_KEY and an https MAILER_BASE_URL:
    Gmail and Yahoo only honour one-click unsubscribe over https.
    """
    signer = signer_for(settings)
    if settings.transport != TransportName.outbox and not settings.base_url.startswith("https://"):
        raise ConfigError(
            f"MAILER_BASE_URL is {settings.base_url!r}: the {settings.transport} transport sends "
            "real mail, whose unsubscribe links must be https:// addresses of the web app "
            "(`mailer serve`) that members can reach, e.g. https://news.example.org"
        )
    return signer


def archive_url(settings: Settings, issue: Issue) -> str:
    return f"{settings.base_url}/archive/{issue.slug}"
