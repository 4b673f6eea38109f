"""Transports: how a rendered batch leaves mailer (outbox files, SMTP, SendGrid).

The send stage builds :class:`Batch`es (one variant, up to 1000 recipients),
opens the configured transport once with :func:`open_transport`, and records
the :class:`Delivery` each ``send`` returns. See :mod:`mailer.transports.base`
for the contract. In outline::

    list_header = list_id(newsletter.name, newsletter.list_id)
    with open_transport(settings) as transport:
        for variant in render_issue(issue, newsletter, keys):
            content = content_of(variant)  # once per variant
            for members in chunks(audience[variant.key], MAX_BATCH):
                recipients = [
                    Recipient(
                        email=m.email, name=m.name, unsubscribe_url=links[m].unsubscribe,
                        values=values_of(variant, {**m.fields, **links[m].as_fields()}),
                        custom_args={"issue": issue.slug, "subscriber": str(m.id)},
                    )
                    for m in members
                ]
                batch = Batch(issue=issue.slug, sender=newsletter.sender, content=content,
                              list_id=list_header, recipients=recipients)
                ledger.record(transport.send(batch))  # sent / failed / unknown per member
"""

from __future__ import annotations

from pydantic import SecretStr

from mailer.config import Settings, TransportName
from mailer.errors import ConfigError
from mailer.transports.base import (
    MAX_BATCH,
    Batch,
    Content,
    Delivery,
    DeliveryState,
    Recipient,
    Transport,
    personalise,
    slot,
)
from mailer.transports.message import MessageTemplate, list_id
from mailer.transports.outbox import OutboxTransport
from mailer.transports.ratelimit import Limiter, RateLimiter, limiter_for
from mailer.transports.sendgrid import SendGridTransport
from mailer.transports.smtp import SmtpTransport, parse_smtp_url
from mailer.transports.variant import content_of, values_of

__all__ = [
    "MAX_BATCH",
    "Batch",
    "Content",
    "Delivery",
    "DeliveryState",
    "Limiter",
    "MessageTemplate",
    "OutboxTransport",
    "RateLimiter",
    "Recipient",
    "SendGridTransport",
    "SmtpTransport",
    "Transport",
    "content_of",
    "list_id",
    "open_transport",
    "personalise",
    "slot",
    "values_of",
]


def open_transport(settings: Settings, *, limiter: Limiter | None = None) -> Transport:
    """The transport MAILER_TRANSPORT names, configured from the settings.

    Raises ConfigError, saying which variable to set, when one it needs is missing.
    Nothing connects yet: SMTP opens its connection on the first message.
    """
    limiter = limiter or limiter_for(settings.send_rate)
    if settings.transport == TransportName.outbox:
        return OutboxTransport(settings.outbox_dir, limiter=limiter)
    if not _present(settings.secret_key):
        raise ConfigError(
            f"MAILER_SECRET_KEY is not set: the {settings.transport} transport sends real mail, "
            "whose unsubscribe links must be signed. Set it to a long random string, e.g. the "
            "output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if settings.transport == TransportName.smtp:
        return _smtp(settings, limiter)
    return _sendgrid(settings, limiter)


def _present(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value().strip())


def _smtp(settings: Settings, limiter: Limiter) -> SmtpTransport:
    if settings.smtp_url is None or not _present(settings.smtp_url):
        raise ConfigError(
            "MAILER_TRANSPORT is smtp but MAILER_SMTP_URL is not set; "
            "e.g. smtp://user:pass@smtp.example.org:587?starttls=true"
        )
    url = parse_smtp_url(settings.smtp_url.get_secret_value())
    ca_file = settings.smtp_ca_file
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"MAILER_SMTP_CA_FILE: {ca_file} is not a file")
    return SmtpTransport(url, timeout=settings.send_timeout, ca_file=ca_file, limiter=limiter)


def _sendgrid(settings: Settings, limiter: Limiter) -> SendGridTransport:
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
    )
