"""The web app's tests: the app under a real uvicorn server in a thread, and what it stored.

Signed webhook batches are made with :mod:`helpers.events`.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, select

from helpers.events import Signer
from mailer.config import Settings
from mailer.store import MemberRecord, Subscriber, SubscriberStore
from mailer.store.eventlog import WebhookEventRow
from mailer.store.schema import SubscriberEventRow, SubscriberRow
from mailer.tokens import Purpose, TokenSigner
from mailer.web.security import ConfirmTokens

SECRET = "web-test-secret-key-0123456789abcdef"
OLD_SECRET = "web-test-old-secret-key-9876543210"


class LiveServer:
    """An ASGI app under a real uvicorn server, on a free port of 127.0.0.1, in a thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @classmethod
    def bind(cls) -> LiveServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        return cls(sock)

    def start(self, app: Any, **options: Any) -> LiveServer:
        settings = {
            "log_config": None,
            "access_log": False,
            "lifespan": "on",
            "ws": "none",
            **options,
        }
        config = uvicorn.Config(app, **settings)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(10)
        self.sock.close()


def snapshot(store: SubscriberStore) -> dict[str, Any]:
    """What a refused request must leave alone: statuses, history, the event log."""
    with store.engine.connect() as connection:
        statuses = sorted(
            tuple(row) for row in connection.execute(select(SubscriberRow.id, SubscriberRow.status))
        )
        history = connection.scalar(select(func.count()).select_from(SubscriberEventRow))
        logged = connection.scalar(select(func.count()).select_from(WebhookEventRow))
    return {"statuses": statuses, "history": history, "events": logged}


@dataclass
class Web:
    """A running app and what a test needs to talk to it and look at its database."""

    url: str
    client: httpx.Client
    store: SubscriberStore
    settings: Settings
    signer: Signer
    server: LiveServer
    outbox: Path
    app: Any = None  # the Starlette app, whose state the test can wait on
    tokens: TokenSigner = field(default_factory=lambda: TokenSigner([SECRET]))

    def add(self, *emails: str, **fields: Any) -> list[Subscriber]:
        return self.store.add([MemberRecord(email=e, **fields) for e in emails], source="test")

    def link(self, subscriber_id: int, purpose: Purpose, version: int = 0) -> str:
        return f"/{purpose.value}/{self.tokens.token(subscriber_id, purpose, version)}"

    def confirm_link(self, member: Subscriber) -> str:
        """The confirmation link the app would email this member now."""
        return f"/confirm/{ConfirmTokens([SECRET], self.tokens).token(member)}"

    def settle(self, timeout: float = 10.0) -> None:
        """Wait for the sign-ups the app has answered but is still working on (their emails)."""
        deadline = time.monotonic() + timeout
        while self.app.state.web.signups_in_flight:
            if time.monotonic() > deadline:
                raise AssertionError("the app's sign-up work did not finish")
            time.sleep(0.01)

    def post_events(self, body: bytes, **headers: str) -> httpx.Response:
        return self.client.post(
            "/webhooks/sendgrid", content=body, headers={**self.signer.headers(body), **headers}
        )


FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def sign_up(
    web: Web, address: str, name: str = "", *, client: str | None = None, **extra: str | list[str]
) -> httpx.Response:
    """The sign-up form, filled in and sent (as from *client*, through X-Forwarded-For when
    the server takes it), then the work the app does after answering, waited for."""
    form = web.client.get("/subscribe")
    token = FORM_TOKEN.search(form.text)
    assert token
    response = web.client.post(
        "/subscribe",
        data={"form_token": token[1], "email": address, "name": name, "website": "", **extra},
        headers={"X-Forwarded-For": client} if client else {},
    )
    web.settle()
    return response


def mark_sent(web: Web, slug: str) -> None:
    """A send of ``slug`` that reached one member, as the ledger records it: what puts an
    issue in the public archive (a send that reached nobody publishes nothing)."""
    from mailer.store.ledger import Ledger, new_owner

    reader = "first-reader@example.org"
    member = web.store.find(reader) or web.add(reader)[0]
    ledger, owner = Ledger(web.store.engine), new_owner()
    ledger.acquire(slug, "outbox", owner)
    ledger.claim(slug, "general", [member.id], owner)
    ledger.mark_accepted([(slug, member.id, None)])
