"""The app as a whole: health, errors, headers, `mailer serve`, tokens kept out of the logs."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from helpers.project import ROOT
from helpers.web import Web
from pydantic import SecretStr
from typer.testing import CliRunner

from mailer.cli import app as cli
from mailer.config import Settings, load_newsletter
from mailer.errors import ConfigError
from mailer.tokens import Purpose
from mailer.web import create_app
from mailer.web.logs import RedactTokens, log_config, redact


def test_healthz(web: Web) -> None:
    """mailer.toml has a [schedule]: with no scheduler ever run, the newsletter would not go out.

    The database is fine, and the answer says so; the rest: tests/scheduling/test_healthz.py.
    """
    response = web.client.get("/healthz")
    body = response.json()
    assert (503, "error", "ok") == (response.status_code, body["status"], body["database"])
    assert ["no scheduler has run on this database (start `python scheduler.py`)"] == body[
        "problems"
    ]


def test_an_unknown_page_is_a_404_page(sqlite_web: Web) -> None:
    response = sqlite_web.client.get("/nowhere")
    assert 404 == response.status_code
    assert "Page not found" in response.text
    assert "DENY" == response.headers["x-frame-options"]


def test_the_stylesheet_uses_the_brand_colour(sqlite_web: Web) -> None:
    response = sqlite_web.client.get("/static/site.css")
    assert "text/css" in response.headers["content-type"]
    assert "#1f5c4a" in response.text


def test_a_form_body_over_the_cap_is_413(sqlite_web: Web) -> None:
    [m] = sqlite_web.add("a@example.org")
    response = sqlite_web.client.post(
        sqlite_web.link(m.id, Purpose.unsubscribe), content=b"x=" + b"y" * 20_000
    )
    assert 413 == response.status_code
    assert "active" == sqlite_web.store.get(m.id).status


def test_a_broken_multipart_body_is_400(sqlite_web: Web) -> None:
    [m] = sqlite_web.add("a@example.org")
    response = sqlite_web.client.post(
        sqlite_web.link(m.id, Purpose.unsubscribe),
        content=b"--x\r\nnonsense",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code in (400, 200)
    assert "active" == sqlite_web.store.get(m.id).status


class TestConfiguration:
    def test_the_app_needs_the_secret_key(self, tmp_path: object) -> None:
        settings = Settings(database_url="sqlite://")
        with pytest.raises(ConfigError, match="MAILER_SECRET_KEY"):
            create_app(settings, load_newsletter(ROOT / "mailer.toml"))

    def test_a_bad_webhook_key_stops_it_at_start(self) -> None:
        settings = Settings(
            database_url="sqlite://",
            secret_key=SecretStr("x" * 32),
            sendgrid_webhook_public_key="nope",
        )
        with pytest.raises(ConfigError, match="MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY"):
            create_app(settings, load_newsletter(ROOT / "mailer.toml"))

    def test_mailer_serve_refuses_to_start_without_the_secret_key(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Beyond this machine, the outbox's public development key is no stand-in for one."""
        monkeypatch.setenv("MAILER_CONFIG_PATH", str(ROOT / "mailer.toml"))
        result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8999"])
        assert 2 == result.exit_code
        assert "MAILER_SECRET_KEY" in result.output


class TestLogs:
    def test_link_tokens_are_redacted(self) -> None:
        assert "GET /unsubscribe/[token] HTTP/1.1" == redact(
            "GET /unsubscribe/MQ.abc-DEF_123 HTTP/1.1"
        )
        assert "/preferences/[token]?x=1" == redact("/preferences/MQ.abc?x=1")
        assert "/confirm/[token]" == redact("/confirm/WzEs.abc.def")

    def test_the_access_log_never_shows_a_token(
        self, make_web: Callable[..., Web], caplog: pytest.LogCaptureFixture
    ) -> None:
        """uvicorn's real access records, through the filter mailer serve installs."""
        web = make_web(server_options={"access_log": True})
        caplog.handler.addFilter(RedactTokens())
        [m] = web.add("a@example.org")
        token = web.tokens.token(m.id, Purpose.unsubscribe)
        with caplog.at_level(logging.INFO, logger="uvicorn.access"):
            web.client.get(f"/unsubscribe/{token}")
            web.server.server.should_exit = True  # type: ignore[union-attr]
            web.server.thread.join(5)  # type: ignore[union-attr]
        lines = [
            record.getMessage() for record in caplog.records if record.name == "uvicorn.access"
        ]
        assert any("/unsubscribe/[token]" in line for line in lines), lines
        assert not any(token in line for line in lines)
        assert token not in caplog.text

    def test_the_serve_log_config_filters_every_handler(self) -> None:
        config = log_config()
        assert all("redact_tokens" in handler["filters"] for handler in config["handlers"].values())
        assert "mailer" in config["loggers"]
