"""`mailer serve` as an operator starts it: the checks `mailer send` makes, the development
key only where it is harmless, and bounds on what one client can hold."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from helpers.project import ROOT
from helpers.serving import Served
from helpers.web import LiveServer, Web

from mailer.config import Settings, TransportName, load_newsletter
from mailer.errors import ConfigError
from mailer.tokens import DEVELOPMENT_KEY, Purpose, TokenSigner, secret_keys
from mailer.web import create_app
from mailer.web.server import KEEP_ALIVE_SECONDS, server_config


class TestTheDevelopmentKey:
    def test_after_the_demo_the_outbox_links_open_with_no_setting(
        self, serve: Callable[..., Served]
    ) -> None:
        """scripts/demo signs the outbox's links with the public key; serve on loopback reads them."""
        served = serve()
        served.wait_until_serving()
        token = TokenSigner([DEVELOPMENT_KEY]).token(1, Purpose.unsubscribe)
        page = httpx.get(f"http://127.0.0.1:{served.port}/unsubscribe/{token}")
        assert 200 == page.status_code  # the member is not there: the "not on our list" page
        assert "prove nothing" in served.output

    def test_not_beyond_this_machine(self, serve: Callable[..., Served]) -> None:
        served = serve("--host", "0.0.0.0")
        assert 2 == served.process.wait(20)
        assert "MAILER_SECRET_KEY is not set" in served.output

    @pytest.mark.parametrize("transport", [TransportName.smtp, TransportName.sendgrid])
    def test_never_with_a_transport_that_sends_real_mail(self, transport: TransportName) -> None:
        """Wherever it appears in the list, naming its place and never the real key."""
        real = "a-real-secret-key-0123456789"
        settings = Settings(
            transport=transport, secret_key=f"{real},{DEVELOPMENT_KEY}", base_url="https://x.org"
        )
        with pytest.raises(ConfigError, match=r"key 2 .* public development key") as caught:
            secret_keys(settings)
        assert real not in str(caught.value)

    def test_mailer_serve_refuses_it_at_start(self, serve: Callable[..., Served]) -> None:
        served = serve(
            MAILER_TRANSPORT="smtp",
            MAILER_SMTP_URL="smtp://127.0.0.1:1",
            MAILER_BASE_URL="https://news.example.org",
            MAILER_SECRET_KEY=f"a-real-secret-key-0123456789,{DEVELOPMENT_KEY}",
        )
        assert 2 == served.process.wait(20)
        assert "public development key" in served.output


class TestTheChecksSendMakes:
    def test_real_mail_needs_https_links(self) -> None:
        settings = Settings(
            database_url="sqlite://",
            transport=TransportName.smtp,
            smtp_url="smtp://127.0.0.1:1",
            secret_key="a-real-secret-key-0123456789",
            base_url="http://news.example.org",
        )
        with pytest.raises(ConfigError, match=r"MAILER_BASE_URL .* https://"):
            create_app(settings, load_newsletter(ROOT / "mailer.toml"))

    def test_beyond_this_machine_it_warns_about_plain_http(
        self, serve: Callable[..., Served]
    ) -> None:
        served = serve(
            "--host",
            "0.0.0.0",
            MAILER_SECRET_KEY="a-real-secret-key-0123456789",
            MAILER_TRANSPORT="outbox",
        )
        served.wait_until_serving()
        assert "over plain HTTP" in served.output
        assert "docs/deploying.md" in served.output

    def test_on_loopback_it_does_not(self, serve: Callable[..., Served]) -> None:
        served = serve(MAILER_SECRET_KEY="a-real-secret-key-0123456789")
        served.wait_until_serving()
        assert "plain HTTP" not in served.output
        assert "prove nothing" not in served.output


class TestStartChecks:
    """The checks `mailer doctor` and the scheduler make, at start: every problem named at once."""

    def test_it_refuses_to_start_naming_each_problem(self, serve: Callable[..., Served]) -> None:
        served = serve(
            MAILER_TRANSPORT="sendgrid",
            MAILER_SECRET_KEY="a-real-secret-key-0123456789",
            MAILER_BASE_URL="http://news.example.org",
            MAILER_DATABASE_URL="postgresql://mailer@127.0.0.1:1/mailer",
            MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY="not-a-key",
            PROMETHEUS_MULTIPROC_DIR="/nonexistent/prometheus",
        )
        assert 2 == served.process.wait(30)
        output = served.output
        assert "mailer serve will not start" in output
        for problem in (
            "SENDGRID_API_KEY is not set",
            "MAILER_BASE_URL is http://news.example.org",
            "database: cannot reach",
            "MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY",
            "PROMETHEUS_MULTIPROC_DIR is /nonexistent/prometheus",
        ):
            assert problem in output, problem

    def test_beyond_this_machine_the_transport_must_be_chosen(
        self, serve: Callable[..., Served]
    ) -> None:
        """A typo in MAILER_TRANSPORT's name must not turn public sign-ups into files."""
        served = serve("--host", "0.0.0.0", MAILER_SECRET_KEY="a-real-secret-key-0123456789")
        assert 2 == served.process.wait(30)
        assert "MAILER_TRANSPORT is not set" in served.output
        assert "loopback" in served.output

    def test_on_loopback_the_outbox_is_the_default_and_the_banner_says_so(
        self, serve: Callable[..., Served]
    ) -> None:
        served = serve(MAILER_SECRET_KEY="a-real-secret-key-0123456789")
        served.wait_until_serving()
        assert "MAILER_TRANSPORT is not set: on this machine only" in served.output
        assert "transport outbox" in served.output

    def test_chosen_on_purpose_it_says_nothing_more(self, serve: Callable[..., Served]) -> None:
        served = serve(MAILER_SECRET_KEY="a-real-secret-key-0123456789", MAILER_TRANSPORT="outbox")
        served.wait_until_serving()
        assert "MAILER_TRANSPORT is not set" not in served.output


class TestLogs:
    """Every line `mailer serve` writes, uvicorn's included, in MAILER_LOG_FORMAT with a time."""

    def run(self, serve: Callable[..., Served], **env: str) -> list[str]:
        served = serve(MAILER_SECRET_KEY="a-real-secret-key-0123456789", **env)
        served.wait_until_serving()
        assert 200 == httpx.get(f"http://127.0.0.1:{served.port}/archive/").status_code
        assert 404 == httpx.get(f"http://127.0.0.1:{served.port}/nowhere").status_code
        served.stop()
        return [line for line in served.output.splitlines() if line]

    def test_json(self, serve: Callable[..., Served]) -> None:
        entries = [json.loads(line) for line in self.run(serve, MAILER_LOG_FORMAT="json")]
        assert all(re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z$", entry["time"]) for entry in entries)
        loggers = {entry["logger"] for entry in entries}
        assert {"mailer.serve", "uvicorn.error", "uvicorn.access"} <= loggers, loggers
        access = [e["message"] for e in entries if e["logger"] == "uvicorn.access"]
        assert any('"GET /archive/ HTTP/1.1" 200' in line for line in access), access
        assert any("Shutting down" in e["message"] for e in entries)

    def test_text(self, serve: Callable[..., Served]) -> None:
        lines = self.run(serve, MAILER_TRANSPORT="outbox")
        stamped = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (INFO|WARNING|ERROR) [\w.]+: ")
        assert all(stamped.match(line) for line in lines), lines
        assert any(" INFO uvicorn.access: " in line for line in lines), lines
        assert any(" INFO uvicorn.error: " in line for line in lines), lines

    def test_the_level(self, serve: Callable[..., Served]) -> None:
        lines = self.run(serve, MAILER_TRANSPORT="outbox", MAILER_LOG_LEVEL="WARNING")
        assert [] == [line for line in lines if " INFO " in line]


class TestBoundedConnections:
    @pytest.fixture
    def limited(self, tmp_path: Path) -> Iterator[LiveServer]:
        """The app under the configuration `mailer serve` uses, at most two connections."""
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'mailer.db'}",
            secret_key="a-real-secret-key-0123456789",
        )
        app = create_app(settings, load_newsletter(ROOT / "mailer.toml"))
        server = LiveServer.bind()
        config = server_config(app, "127.0.0.1", server.port, max_connections=2)
        config.log_config = None
        uvicorn_server = uvicorn.Server(config)
        server.server = uvicorn_server
        server.thread = threading.Thread(
            target=uvicorn_server.run, kwargs={"sockets": [server.sock]}, daemon=True
        )
        server.thread.start()
        while not uvicorn_server.started:
            time.sleep(0.01)
        yield server
        server.stop()

    def test_an_idle_connection_is_closed(self, limited: LiveServer) -> None:
        with socket.create_connection(("127.0.0.1", limited.port), timeout=30) as conn:
            conn.sendall(b"GET /static/icon.svg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            response = b""
            while b"</svg>" not in response:  # the whole answer, however it arrives
                chunk = conn.recv(65536)
                assert chunk, response
                response += chunk
            assert response.startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            assert b"" == conn.recv(1)  # then the server hangs up on the idle connection
            assert KEEP_ALIVE_SECONDS - 1 <= time.monotonic() - started <= KEEP_ALIVE_SECONDS + 5

    def test_past_the_limit_new_connections_are_turned_away(self, limited: LiveServer) -> None:
        """Slow clients that never finish their headers cannot queue everyone else forever."""
        held = [socket.create_connection(("127.0.0.1", limited.port)) for _ in range(2)]
        try:
            for conn in held:  # headers that never end
                conn.sendall(b"GET /static/site.css HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            time.sleep(0.3)
            response = httpx.get(f"{limited.url}/static/site.css", timeout=10)
            assert 503 == response.status_code
        finally:
            for conn in held:
                conn.close()
        time.sleep(0.3)
        assert 200 == httpx.get(f"{limited.url}/static/site.css", timeout=10).status_code


class TestAClientThatGoesAway:
    def test_one_quiet_line_and_no_traceback(
        self, sqlite_web: Web, caplog: pytest.LogCaptureFixture
    ) -> None:
        """200 such requests once wrote 16,000 log lines."""
        [member] = sqlite_web.add("a@example.org")
        path = sqlite_web.link(member.id, Purpose.unsubscribe)
        with caplog.at_level(logging.DEBUG):
            for _ in range(5):
                with socket.create_connection(("127.0.0.1", sqlite_web.server.port)) as conn:
                    conn.sendall(
                        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: application/x-www-form-urlencoded\r\n"
                        "Content-Length: 1000\r\n\r\nList-Unsub".encode()
                    )
                    time.sleep(0.05)
            time.sleep(0.5)
        assert "active" == sqlite_web.store.get(member.id).status
        records = [r for r in caplog.records if r.name.startswith(("mailer", "uvicorn"))]
        assert [] == [r for r in records if r.levelno >= logging.WARNING or r.exc_info]
        gone = [r for r in records if "disconnected" in r.getMessage()]
        assert 5 == len(gone)
        assert all(r.levelno == logging.INFO for r in gone)
