"""SendGrid's Event Webhook: the signed request, and the events in it. Pure functions.

:func:`verify` checks the ECDSA P-256 / SHA-256 signature SendGrid puts in
``X-Twilio-Email-Event-Webhook-Signature`` (base64 DER) over the
``X-Twilio-Email-Event-Webhook-Timestamp`` header's bytes followed by the raw
body, exactly as received, and the timestamp's age. :func:`parse` turns a
verified body into :class:`SendGridEvent` objects and :class:`RejectedEvent`
ones: the endpoint receives every event of the SendGrid account, not only the
newsletter's, so odd events are normal, and one of them must never cost the
good events beside it. :func:`verify` raises, and :func:`parse` raises for a
body that is not a JSON array, a :class:`~mailer.errors.WebhookError` whose
``status`` the route answers with.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from mailer.errors import (
    ConfigError,
    WebhookPayloadError,
    WebhookSignatureError,
)

__all__ = [
    "FUTURE_SKEW",
    "MAX_BODY",
    "MAX_SUBSCRIBER_ID",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Parsed",
    "RejectedEvent",
    "SendGridEvent",
    "load_public_key",
    "member_id",
    "parse",
    "storable",
    "verify",
]

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# SendGrid posts batches of about 768 KB at most; anything far larger is not SendGrid.
MAX_BODY = 4 * 1024 * 1024
# Seconds a timestamp may be ahead of our clock: clocks differ a little.
FUTURE_SKEW = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_MAX_SIGNATURE = 200  # characters of base64: a P-256 DER signature is at most 72 bytes


# -- the events ---------------------------------------------------------------------------

# The largest timestamp a datetime can hold (9999-12-31T23:59:59Z).
MAX_TIMESTAMP = 253_402_300_799


def storable(value: str) -> bool:
    """Whether text can be stored: no NUL (PostgreSQL refuses it), no lone surrogate (not UTF-8)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _storable(value: str) -> str:
    if not storable(value):
        raise ValueError("must not contain NUL or unpaired surrogate characters")
    return value


def _text_or_none(value: object) -> str | None:
    """Optional fields are read leniently: a number becomes text, anything else is absent."""
    if isinstance(value, str):
        return value if storable(value) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


Lenient = Annotated[str | None, BeforeValidator(_text_or_none)]
Required = Annotated[StrictStr, AfterValidator(_storable)]


class SendGridEvent(BaseModel):
    """One event as SendGrid posts it: strict on the fields every event has, lenient on the rest.

    Unknown fields are kept (``model_extra``): SendGrid adds fields over time, and
    our ``custom_args`` arrive as top-level keys (``issue``, ``subscriber``, ``test``).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    email: Annotated[Required, Field(min_length=1, max_length=320)]
    timestamp: Annotated[StrictInt, Field(ge=0, le=MAX_TIMESTAMP)]
    event: Annotated[Required, Field(min_length=1, max_length=40)]
    sg_event_id: Annotated[Required, Field(min_length=1, max_length=128)]
    sg_message_id: Lenient = None
    type: Lenient = None
    reason: Lenient = None
    response: Lenient = None
    status: Lenient = None
    url: Lenient = None
    issue: Lenient = None
    subscriber: Lenient = None
    test: Lenient = None

    @property
    def at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp, dt.UTC)

    @property
    def subscriber_id(self) -> int | None:
        """Our subscriber id from custom_args, when it is one (else the address decides)."""
        return member_id(self.subscriber)

    @property
    def issue_slug(self) -> str | None:
        value = (self.issue or "").strip()
        return value if 0 < len(value) <= 100 else None

    @property
    def source(self) -> str:
        """Where the event came from, in members' history (:class:`mailer.events.rules.Event`)."""
        return "SendGrid"

    def as_mapping(self) -> dict[str, Any]:
        """The fields :mod:`mailer.events.reconcile` reads."""
        return {
            "event": self.event,
            "issue": self.issue_slug,
            "subscriber": self.subscriber,
            "test": self.test,
            "sg_message_id": self.sg_message_id,
            "reason": self.reason,
        }


# Ids are 32-bit on PostgreSQL: a larger number is no member's, and must not reach a query.
MAX_SUBSCRIBER_ID = 2**31 - 1


def member_id(value: object) -> int | None:
    """A subscriber id from custom_args: ASCII digits naming an id a member can have, else None."""
    text = str(value).strip() if isinstance(value, str | int) and value is not True else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        return None
    number = int(text)
    return number if 0 < number <= MAX_SUBSCRIBER_ID else None


# -- the request --------------------------------------------------------------------------


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key SendGrid shows (base64 DER, or PEM); ConfigError naming the setting."""
    problem = "MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY"
    stripped = text.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(stripped.encode("ascii"))
        else:
            key = serialization.load_der_public_key(base64.b64decode(stripped, validate=True))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise ConfigError(
            f"{problem} is not a public key: paste the Verification Key from SendGrid's "
            "Mail Settings > Event Webhook > Signature Verification, as shown (base64)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"{problem} is not an ECDSA P-256 key, which is what SendGrid uses")
    return key


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict: look case-insensitively
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def verify(
    raw_body: bytes,
    headers: Mapping[str, str],
    public_key: ec.EllipticCurvePublicKey | None,
    max_age: int,
    now: float,
) -> None:
    """Return if SendGrid signed this body with ``public_key`` within ``max_age`` seconds of ``now``.

    ``max_age`` 0 turns the age check off. Raises WebhookSignatureError otherwise.
    """
    if public_key is None:
        raise WebhookSignatureError(
            "MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY is not set: the Event Webhook is refused "
            "until it is (turn on Signature Verification in SendGrid and copy its key)"
        )
    signature_text = _header(headers, SIGNATURE_HEADER)
    timestamp_text = _header(headers, TIMESTAMP_HEADER)
    if not signature_text or not timestamp_text:
        raise WebhookSignatureError("the signature or timestamp header is missing")
    timestamp_text = timestamp_text.strip()
    if not _TIMESTAMP.fullmatch(timestamp_text):
        raise WebhookSignatureError("the timestamp header is not a Unix time")
    signature = _decode_signature(signature_text)
    try:
        public_key.verify(
            signature, timestamp_text.encode("ascii") + raw_body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError):
        raise WebhookSignatureError("the signature does not match the body") from None
    age = now - int(timestamp_text)
    if age < -FUTURE_SKEW:
        raise WebhookSignatureError(f"the timestamp is {-age:.0f} s in the future")
    if max_age and age > max_age:
        raise WebhookSignatureError(
            f"the signature is {age:.0f} s old, over MAILER_SENDGRID_WEBHOOK_MAX_AGE ({max_age} s)"
        )


def _decode_signature(text: str) -> bytes:
    text = text.strip()
    if len(text) > _MAX_SIGNATURE:
        raise WebhookSignatureError("the signature header is too long")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise WebhookSignatureError("the signature header is not base64") from None


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


# A rejected event is kept whole up to this many characters of JSON, then cut.
MAX_REJECTED_TEXT = 20_000


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """An item of a verified batch that is not an event we can apply, and why."""

    position: int  # in the batch, from 0
    reason: str
    text: str  # the item as JSON, ASCII only (NULs and lone surrogates escaped), maybe cut
    email: str  # its ``email`` when that is text, else ""

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the item's JSON: the same item posted again is kept once."""
        return hashlib.sha256(self.text.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class Parsed:
    """A verified batch: the events to apply, and the items that are not events we can apply."""

    events: list[SendGridEvent]
    rejected: list[RejectedEvent]


def parse(raw_body: bytes) -> Parsed:
    """The events in a body, a JSON array: each item a valid SendGrid event or rejected, with why.

    Only a body that is not a JSON array is refused (WebhookPayloadError).
    """
    try:
        data = json.loads(raw_body, parse_constant=_no_constants)
    except (ValueError, RecursionError) as error:
        raise WebhookPayloadError(f"the body is not JSON: {error}") from None
    if not isinstance(data, list):
        raise WebhookPayloadError(
            f"the body is a JSON {type(data).__name__}, not an array of events"
        )
    parsed = Parsed([], [])
    for index, item in enumerate(data):
        try:
            event = _event(item)
        except ValueError as problem:
            parsed.rejected.append(_rejected(index, item, str(problem)))
        else:
            parsed.events.append(event)
    return parsed


def _event(item: object) -> SendGridEvent:
    """One item as an event; ValueError saying what is wrong with it."""
    if not isinstance(item, dict):
        raise ValueError(f"not a JSON object but a JSON {_json_type(item)}")
    try:
        return SendGridEvent.model_validate(item)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise ValueError(f"{where}: {first['msg']}") from None


def _json_type(item: object) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if item is None else names.get(type(item), type(item).__name__)


def _rejected(index: int, item: object, reason: str) -> RejectedEvent:
    try:
        text = json.dumps(item, ensure_ascii=True, sort_keys=True)
    except RecursionError:
        text = json.dumps("(nested too deeply to keep)")
    if len(text) > MAX_REJECTED_TEXT:
        text = text[:MAX_REJECTED_TEXT] + " ...(cut)"
    email = item.get("email") if isinstance(item, dict) else None
    address = email if isinstance(email, str) and storable(email) and len(email) <= 320 else ""
    return RejectedEvent(index, reason[:1000], text, address)
