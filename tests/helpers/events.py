"""SendGrid's Event Webhook in tests: events as SendGrid posts them, signed as it signs them."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from mailer.events.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER
from mailer.store import SubscriberStore
from mailer.store.eventlog import WebhookEventRow


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


def logged_effects(store: SubscriberStore) -> dict[str, str]:
    """What the event log says each event did, by its sg_event_id."""
    with store.engine.connect() as connection:
        rows = connection.execute(select(WebhookEventRow.sg_event_id, WebhookEventRow.effect))
        return {key: effect for key, effect in rows}
