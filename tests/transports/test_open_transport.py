"""open_transport: the configured transport, or a ConfigError that says what to set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from doubles.sendgrid import SendGridDouble
from doubles.smtp import SmtpServer

from mailer.config import Settings
from mailer.errors import ConfigError
from mailer.mail import Batch
from mailer.transports import open_transport
from mailer.transports.outbox import OutboxTransport
from mailer.transports.ratelimit import RateLimiter, Unlimited
from mailer.transports.sendgrid import SendGridTransport
from mailer.transports.smtp import SmtpTransport

MakeBatch = Callable[..., Batch]
SECRET = "a-long-random-secret-key-for-signing"


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """Settings from exactly these environment variables (and no .env file)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


class TestOpenTransport:
    def test_outbox_by_default(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """With nothing set, mail goes to the outbox folder; no secret is needed."""
        transport = open_transport(settings(monkeypatch, MAILER_OUTBOX_DIR=str(tmp_path)))
        assert (OutboxTransport, tmp_path) == (type(transport), transport.root)  # type: ignore[attr-defined]

    @pytest.mark.parametrize("name", ["smtp", "sendgrid"])
    def test_real_transports_need_the_secret_key(
        self, monkeypatch: pytest.MonkeyPatch, name: str
    ) -> None:
        """SMTP and SendGrid send real mail with signed links: MAILER_SECRET_KEY is required."""
        env = settings(
            monkeypatch,
            MAILER_TRANSPORT=name,
            MAILER_SMTP_URL="smtp://relay",
            SENDGRID_API_KEY="SG.x",
        )
        with pytest.raises(ConfigError, match="MAILER_SECRET_KEY is not set"):
            open_transport(env)

    def test_sendgrid_needs_a_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The SendGrid transport without SENDGRID_API_KEY says to set it."""
        env = settings(monkeypatch, MAILER_TRANSPORT="sendgrid", MAILER_SECRET_KEY=SECRET)
        with pytest.raises(ConfigError, match="SENDGRID_API_KEY is not set"):
            open_transport(env)

    def test_sendgrid_blank_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A blank key counts as missing."""
        env = settings(
            monkeypatch, MAILER_TRANSPORT="sendgrid", MAILER_SECRET_KEY=SECRET, SENDGRID_API_KEY=" "
        )
        with pytest.raises(ConfigError, match="SENDGRID_API_KEY"):
            open_transport(env)

    def test_sendgrid_bad_url(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """MAILER_SENDGRID_API_URL must be an http(s) URL."""
        env = settings(
            monkeypatch,
            MAILER_TRANSPORT="sendgrid",
            MAILER_SECRET_KEY=SECRET,
            SENDGRID_API_KEY="SG.x",
            MAILER_SENDGRID_API_URL="api.sendgrid.com",
        )
        with pytest.raises(ConfigError, match="MAILER_SENDGRID_API_URL"):
            open_transport(env)

    def test_smtp_needs_a_url(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The SMTP transport without MAILER_SMTP_URL says to set it, with an example."""
        env = settings(monkeypatch, MAILER_TRANSPORT="smtp", MAILER_SECRET_KEY=SECRET)
        with pytest.raises(ConfigError, match=r"MAILER_SMTP_URL is not set; e\.g\. smtp://"):
            open_transport(env)

    def test_smtp_bad_url(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A malformed MAILER_SMTP_URL is a ConfigError."""
        env = settings(
            monkeypatch,
            MAILER_TRANSPORT="smtp",
            MAILER_SECRET_KEY=SECRET,
            MAILER_SMTP_URL="mail.example.org",
        )
        with pytest.raises(ConfigError, match="smtp:// or smtps://"):
            open_transport(env)

    def test_smtp_ca_file_must_exist(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """MAILER_SMTP_CA_FILE must name a file."""
        env = settings(
            monkeypatch,
            MAILER_TRANSPORT="smtp",
            MAILER_SECRET_KEY=SECRET,
            MAILER_SMTP_URL="smtp://relay",
            MAILER_SMTP_CA_FILE=str(tmp_path / "missing.pem"),
        )
        with pytest.raises(ConfigError, match="MAILER_SMTP_CA_FILE"):
            open_transport(env)

    def test_smtp(
        self, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer, make_batch: MakeBatch
    ) -> None:
        """MAILER_TRANSPORT=smtp sends through MAILER_SMTP_URL with MAILER_SEND_TIMEOUT."""
        env = settings(
            monkeypatch,
            MAILER_TRANSPORT="smtp",
            MAILER_SECRET_KEY=SECRET,
            MAILER_SMTP_URL=smtp_server.url(),
            MAILER_SEND_TIMEOUT="7",
        )
        with open_transport(env) as transport:
            deliveries = transport.send(make_batch(2))
        assert (SmtpTransport, 7.0, ["sent", "sent"]) == (
            type(transport),
            transport.timeout,
            [d.state for d in deliveries],  # type: ignore[attr-defined]
        )

    def test_sendgrid(
        self,
        monkeypatch: pytest.MonkeyPatch,
        sendgrid_double: SendGridDouble,
        make_batch: MakeBatch,
    ) -> None:
        """MAILER_TRANSPORT=sendgrid sends to MAILER_SENDGRID_API_URL with SENDGRID_API_KEY."""
        env = settings(
            monkeypatch,
            MAILER_TRANSPORT="sendgrid",
            MAILER_SECRET_KEY=SECRET,
            SENDGRID_API_KEY=sendgrid_double.api_key,
            MAILER_SENDGRID_API_URL=sendgrid_double.url,
        )
        with open_transport(env) as transport:
            deliveries = transport.send(make_batch(2))
        assert (SendGridTransport, ["sent", "sent"]) == (
            type(transport),
            [d.state for d in deliveries],
        )

    def test_send_rate(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """MAILER_SEND_RATE gives the transport a token bucket at that rate; 0 means none."""
        limited = open_transport(settings(monkeypatch, MAILER_SEND_RATE="12.5"))
        unlimited = open_transport(settings(monkeypatch, MAILER_SEND_RATE="0"))
        assert ((RateLimiter, 12.5), Unlimited) == (
            (type(limited._limiter), limited._limiter.rate),  # type: ignore[attr-defined]
            type(unlimited._limiter),  # type: ignore[attr-defined]
        )


class TestSecretsStaySecret:
    def test_settings_repr(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The settings' repr hides the SMTP password and the SendGrid key."""
        env = settings(
            monkeypatch,
            MAILER_SMTP_URL="smtp://u:hunter2@mail.example.org?starttls=true",
            SENDGRID_API_KEY="SG.topsecret",
            MAILER_SECRET_KEY=SECRET,
        )
        text = repr(env)
        assert (False, False, False) == ("hunter2" in text, "SG.topsecret" in text, SECRET in text)
