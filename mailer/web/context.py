"""What every route needs, built once by :func:`mailer.web.app.create_app`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ec
from starlette.requests import Request

from mailer.config import Newsletter, Settings
from mailer.store import Subscriber, SubscriberStore
from mailer.tokens import Purpose, TokenSigner
from mailer.transports import Transport
from mailer.web.pages import Pages
from mailer.web.security import AddressChangeTokens, ConfirmTokens, FormTokens

if TYPE_CHECKING:
    from mailer.web.archive import Archive
    from mailer.web.captcha import Captcha

__all__ = ["SignupLimits", "WebContext", "context_of"]


@dataclass(frozen=True)
class SignupLimits:
    """How many sign-ups the form takes, per address and per client, in ``window`` seconds."""

    per_address: int = 3
    per_client: int = 10
    window: int = 3600


@dataclass
class WebContext:
    settings: Settings
    newsletter: Newsletter
    store: SubscriberStore
    signer: TokenSigner
    forms: FormTokens
    confirmations: ConfirmTokens
    pages: Pages
    webhook_key: ec.EllipticCurvePublicKey | None
    open_transport: Callable[[], Transport]
    archive: Archive
    address_changes: AddressChangeTokens
    captcha: Captcha | None = None
    limits: SignupLimits = field(default_factory=SignupLimits)
    max_webhook_body: int = 4 * 1024 * 1024
    signups_in_flight: int = 0  # sign-ups answered whose work is still going (tests wait on it)
    clock: Callable[[], float] = time.time

    def link(self, member: Subscriber, purpose: Purpose) -> str:
        """A member's own link (relative: pages link within the site they are on)."""
        return f"/{purpose.value}/{self.signer.token(member.id, purpose, member.link_version)}"

    def absolute(self, path: str) -> str:
        """A link for an email: under MAILER_BASE_URL."""
        return f"{self.settings.base_url}{path}"

    @property
    def back(self) -> tuple[str, str]:
        """Where "back" goes from a page: the organisation's website, else the archive."""
        if self.newsletter.website:
            return self.newsletter.website, f"the {self.newsletter.name} website"
        return "/archive/", "past issues"


def context_of(request: Request) -> WebContext:
    web = request.app.state.web
    assert isinstance(web, WebContext)
    return web
