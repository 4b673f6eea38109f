"""An optional CAPTCHA on the sign-up form: the provider's widget, and the server-side check.

Off unless MAILER_CAPTCHA_PROVIDER is set. The form then carries the provider's
widget (its script and a placeholder element); what the widget puts in the form is
sent, with our secret, to the provider's verify endpoint, and a sign-up goes on only
if the provider says ``"success": true``. A provider that cannot be reached counts
as a failed check: the requester is asked to try again, and nothing is sent.

The three providers' verify calls, as their documentation gives them:

=================  ==================================================  =======================
provider           verify endpoint                                     form field
=================  ==================================================  =======================
turnstile          https://challenges.cloudflare.com/turnstile/v0/     cf-turnstile-response
                   siteverify (form: secret, response, remoteip)
hcaptcha           https://api.hcaptcha.com/siteverify                 h-captcha-response
                   (form: secret, response, remoteip, sitekey)
friendly-captcha   https://api.friendlycaptcha.com/api/v1/siteverify   frc-captcha-solution
                   (JSON: solution, secret, sitekey)
=================  ==================================================  =======================
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from mailer.config import CaptchaProvider, Settings
from mailer.errors import ConfigError

__all__ = ["Captcha", "captcha_for"]

log = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds to wait for the provider


@dataclass(frozen=True)
class _Provider:
    verify_url: str
    field: str  # the form field the widget fills in
    script: str  # the widget's script
    widget_class: str  # the element the script turns into the widget
    sources: tuple[str, ...]  # where its script, frames and requests come from (for the CSP)
    json_body: bool  # Friendly Captcha takes JSON; the others a form
    module: bool = False  # the widget's script is an ES module


PROVIDERS = {
    CaptchaProvider.turnstile: _Provider(
        "https://challenges.cloudflare.com/turnstile/v0/siteverify",
        "cf-turnstile-response",
        "https://challenges.cloudflare.com/turnstile/v0/api.js",
        "cf-turnstile",
        ("https://challenges.cloudflare.com",),
        json_body=False,
    ),
    CaptchaProvider.hcaptcha: _Provider(
        "https://api.hcaptcha.com/siteverify",
        "h-captcha-response",
        "https://js.hcaptcha.com/1/api.js",
        "h-captcha",
        ("https://hcaptcha.com", "https://*.hcaptcha.com"),
        json_body=False,
    ),
    CaptchaProvider.friendly_captcha: _Provider(
        "https://api.friendlycaptcha.com/api/v1/siteverify",
        "frc-captcha-solution",
        "https://cdn.jsdelivr.net/npm/friendly-challenge@0.9.18/widget.module.min.js",
        "frc-captcha",
        ("https://cdn.jsdelivr.net", "https://api.friendlycaptcha.com"),
        json_body=True,
        module=True,
    ),
}


@dataclass(frozen=True)
class Captcha:
    """One provider, with our keys: what the form shows, and the check of what it sends."""

    provider: CaptchaProvider
    site_key: str
    secret: str
    verify_url: str

    @property
    def _spec(self) -> _Provider:
        return PROVIDERS[self.provider]

    @property
    def script(self) -> str:
        return self._spec.script

    @property
    def widget_class(self) -> str:
        return self._spec.widget_class

    @property
    def module(self) -> bool:
        """Whether the widget's script is an ES module (Friendly Captcha's is)."""
        return self._spec.module

    def csp(self, base: str) -> str:
        """The sign-up page's Content-Security-Policy: *base*, plus the provider's widget."""
        sources = " ".join(self._spec.sources)
        extra = "; ".join(
            f"{directive} {sources}" for directive in ("script-src", "frame-src", "connect-src")
        )
        return base.replace("style-src 'self'", f"style-src 'self' {sources}") + f"; {extra}"

    def verify(self, form: Mapping[str, object], client: str) -> bool:
        """Whether the provider accepts what its widget put in the form (blocking: run in a thread)."""
        answer = form.get(self._spec.field)
        if not isinstance(answer, str) or not answer.strip():
            return False
        if self._spec.json_body:
            fields = {"solution": answer, "secret": self.secret, "sitekey": self.site_key}
            data = json.dumps(fields).encode()
            content_type = "application/json"
        else:
            fields = {"secret": self.secret, "response": answer, "remoteip": client}
            if self.provider is CaptchaProvider.hcaptcha:
                fields["sitekey"] = self.site_key
            data = urllib.parse.urlencode(fields).encode()
            content_type = "application/x-www-form-urlencoded"
        request = urllib.request.Request(
            self.verify_url, data=data, headers={"Content-Type": content_type}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                verdict = json.loads(response.read(64 * 1024))
        except (OSError, ValueError) as error:  # unreachable, timed out, or not JSON
            log.warning("sign-up: the %s check failed: %s", self.provider.value, error)
            return False
        return isinstance(verdict, dict) and verdict.get("success") is True


def captcha_for(settings: Settings) -> Captcha | None:
    """The configured CAPTCHA, or None; ConfigError naming what is missing."""
    provider = settings.captcha_provider
    if provider is None:
        return None
    secret = settings.captcha_secret.get_secret_value() if settings.captcha_secret else ""
    if not settings.captcha_site_key or not secret:
        raise ConfigError(
            f"MAILER_CAPTCHA_PROVIDER is {provider.value} but MAILER_CAPTCHA_SITE_KEY and "
            "MAILER_CAPTCHA_SECRET are not both set: copy them from the provider's dashboard"
        )
    verify_url = settings.captcha_verify_url or PROVIDERS[provider].verify_url
    if not verify_url.startswith(("https://", "http://")):
        raise ConfigError(f"MAILER_CAPTCHA_VERIFY_URL must be an http(s) URL, not {verify_url!r}")
    return Captcha(provider, settings.captcha_site_key, secret, verify_url)
