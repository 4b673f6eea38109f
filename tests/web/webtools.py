"""Helpers for the web app's tests: a real uvicorn server in a thread, signed webhook batches."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from mailer.config import Settings
from mailer.events.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER
from mailer.store import MemberRecord, Subscriber, SubscriberStore
from mailer.store.eventlog import WebhookEventRow
from mailer.store.schema import SubscriberEventRow, SubscriberRow
from mailer.tokens import Purpose, TokenSigner

ROOT = Path(__file__).resolve().parent.parent.parent
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


# -- SendGrid's signed Event Webhook --------------------------------------------------------


@dataclass
class Signer:
    """Signs webhook bodies as SendGrid does, with a key made for the test."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def public_key(self) -> str:
        """Base64 DER (SubjectPublicKeyInfo), as SendGrid shows it."""
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    def signature(self, body: bytes, timestamp: str) -> str:
        signed = self.private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signed).decode("ascii")

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: self.signature(body, stamp),
            TIMESTAMP_HEADER: stamp,
        }


_ids = itertools.count(1)


def at(minutes: float) -> int:
    """A Unix timestamp ``minutes`` from now (events must come after members joined)."""
    return int(time.time() + minutes * 60)


def sg_event(
    event: str,
    email: str,
    *,
    timestamp: int | None = None,
    subscriber: int | None = None,
    issue: str | None = None,
    sg_event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One event as SendGrid posts it, with our custom_args when given."""
    body: dict[str, Any] = {
        "email": email,
        "timestamp": at(1) if timestamp is None else timestamp,
        "event": event,
        "sg_event_id": sg_event_id or f"evt-{next(_ids):08d}-{event}",
        "sg_message_id": "msg123.filter0001.16648.5515E0B88.0",
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        **extra,
    }
    if subscriber is not None:
        body["subscriber"] = str(subscriber)
    if issue is not None:
        body["issue"] = issue
    return body


def body_of(events: list[Mapping[str, Any]]) -> bytes:
    return json.dumps(events).encode()


# -- looking at the database ---------------------------------------------------------------------


def snapshot(store: SubscriberStore) -> dict[str, Any]:
    """What a refused request must leave alone: statuses, history, the event log."""
    with store.engine.connect() as connection:
        statuses = sorted(
            tuple(row) for row in connection.execute(select(SubscriberRow.id, SubscriberRow.status))
        )
        history = connection.scalar(select(func.count()).select_from(SubscriberEventRow))
        logged = connection.scalar(select(func.count()).select_from(WebhookEventRow))
    return {"statuses": statuses, "history": history, "events": logged}


def logged_effects(store: SubscriberStore) -> dict[str, str]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(WebhookEventRow.sg_event_id, WebhookEventRow.effect))
        return {key: effect for key, effect in rows}


def iso(timestamp: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


def links_in(text: str) -> Iterator[str]:
    import re

    yield from re.findall(r"https?://[^\s<>\"]+", text)


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
    tokens: TokenSigner = field(default_factory=lambda: TokenSigner([SECRET]))

    def add(self, *emails: str, **fields: Any) -> list[Subscriber]:
        return self.store.add([MemberRecord(email=e, **fields) for e in emails], source="test")

    def link(self, subscriber_id: int, purpose: Purpose) -> str:
        return f"/{purpose.value}/{self.tokens.token(subscriber_id, purpose)}"

    def post_events(self, body: bytes, **headers: str) -> httpx.Response:
        return self.client.post(
            "/webhooks/sendgrid", content=body, headers={**self.signer.headers(body), **headers}
        )
