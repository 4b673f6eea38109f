"""Transports: how a rendered batch leaves mailer (outbox files, SMTP, SendGrid).

The send stage opens the configured transport once with :func:`open_transport`,
hands it batches (:class:`~mailer.mail.Batch`: one variant, up to 1000 recipients) and
records the :class:`~mailer.mail.Delivery` each ``send`` returns, one per recipient.
A backend's module (and its libraries: smtplib, the SendGrid client) is imported
only when that transport is opened. For example, into a folder of ``.eml`` files:

>>> import tempfile
>>> from pathlib import Path
>>> from mailer.config import Sender, Settings
>>> from mailer.mail import Batch, Content, Recipient
>>> outbox = Path(tempfile.mkdtemp())
>>> settings = Settings(transport="outbox", outbox_dir=outbox)
>>> batch = Batch(
...     issue="2026-12-03-winter",
...     sender=Sender(name="Connected Communities", email="news@example.org"),
...     content=Content(subject="Winter news", html="<p>Hello</p>", text="Hello"),
...     list_id="Connected Communities <news.example.org>",
...     recipients=[
...         Recipient(email="ann@example.org", unsubscribe_url="https://x.example/u/1")
...     ],
... )
>>> with open_transport(settings) as transport:
...     [delivery] = transport.send(batch)
>>> delivery.state
<DeliveryState.sent: 'sent'>
>>> sorted(path.name for path in (outbox / "2026-12-03-winter").iterdir())
['ann@example.org.eml']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import SecretStr

from mailer.config import Settings, TransportName
from mailer.errors import ConfigError
from mailer.transports.base import Transport, TransportBase

if TYPE_CHECKING:
    from mailer.transports.dkim import DkimSigner
    from mailer.transports.ratelimit import Limiter
    from mailer.transports.sendgrid import SendGridTransport
    from mailer.transports.smtp import SmtpTransport

__all__ = ["Transport", "TransportBase", "open_transport"]


def open_transport(
    settings: Settings,
    *,
    limiter: Limiter | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Transport:
    """The transport MAILER_TRANSPORT names, configured from the settings.

    Raises ConfigError, saying which variable to set, when one it needs is missing.
    Nothing connects yet: SMTP opens its connection on the first message.
    ``should_stop`` ends a rate limit's wait early (SIGTERM): nothing more is handed over.
    """
    from mailer.transports.ratelimit import limiter_for

    limiter = limiter or limiter_for(settings.send_rate, should_stop=should_stop or _never)
    if settings.transport == TransportName.outbox:
        from mailer.transports.outbox import OutboxTransport

        return OutboxTransport(settings.outbox_dir, limiter=limiter)
    if not _present(settings.secret_key):
        raise ConfigError(
            f"MAILER_SECRET_KEY is not set: the {settings.transport} transport sends real mail, "
            "whose unsubscribe links must be signed. Set it to a long random string, e.g. the "
            "output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if settings.transport == TransportName.smtp:
        return _smtp(settings, limiter, should_stop or _never)
    return _sendgrid(settings, limiter, should_stop or _never)


def _never() -> bool:
    return False


def _present(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value().strip())


def _dkim(settings: Settings) -> DkimSigner | None:
    """The DKIM signer, if the settings ask for one: dkimpy loads only then."""
    if settings.dkim_selector is None and settings.dkim_private_key is None:
        return None
    from mailer.transports.dkim import dkim_signer

    return dkim_signer(settings)


def _smtp(settings: Settings, limiter: Limiter, should_stop: Callable[[], bool]) -> SmtpTransport:
    from mailer.transports.smtp import SmtpTransport, parse_smtp_url

    if settings.smtp_url is None or not _present(settings.smtp_url):
        raise ConfigError(
            "MAILER_TRANSPORT is smtp but MAILER_SMTP_URL is not set; "
            "e.g. smtp://user:pass@smtp.example.org:587?starttls=true"
        )
    url = parse_smtp_url(settings.smtp_url.get_secret_value())
    ca_file = settings.smtp_ca_file
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"MAILER_SMTP_CA_FILE: {ca_file} is not a file")
    return SmtpTransport(
        url,
        timeout=settings.send_timeout,
        ca_file=ca_file,
        limiter=limiter,
        local_hostname=settings.smtp_ehlo_name,
        dkim=_dkim(settings),
        connections=settings.smtp_connection_count,
        should_stop=should_stop,
    )


def _sendgrid(
    settings: Settings, limiter: Limiter, should_stop: Callable[[], bool]
) -> SendGridTransport:
    from mailer.transports.sendgrid import SendGridTransport

    if settings.sendgrid_api_key is None or not _present(settings.sendgrid_api_key):
        raise ConfigError(
            "MAILER_TRANSPORT is sendgrid but SENDGRID_API_KEY is not set; create an API key "
            "with Mail Send permission in SendGrid (Settings > API Keys) and set it"
        )
    if not settings.sendgrid_api_url.startswith(("https://", "http://")):
        raise ConfigError(
            f"MAILER_SENDGRID_API_URL must be an http(s) URL, not {settings.sendgrid_api_url!r}"
        )
    return SendGridTransport(
        settings.sendgrid_api_key,
        api_url=settings.sendgrid_api_url,
        timeout=settings.send_timeout,
        limiter=limiter,
        in_flight=settings.sendgrid_requests_in_flight,
        should_stop=should_stop,
    )
