"""The SendGrid transport: one Mail Send request per batch, through the official client's HTTP.

A batch becomes one ``POST /v3/mail/send`` with a personalization per recipient
(their address, subject, ``List-Unsubscribe``, ``custom_args`` and placeholder values
as ``substitutions``) and the variant's content once. SendGrid substitutes in
the text and the HTML alike, so the HTML carries its own markers
(``[[mailer:name|html]]``) whose values are HTML-escaped.

Answers, and what happens:

* 202 (200 in sandbox mode): every recipient ``sent``, with the X-Message-Id.
* 429, 5xx, or no connection: retried with exponential backoff and jitter; a 429
  waits until X-RateLimit-Reset, and so does every other request of this
  transport's (the limit is the account's): none is sent before then. The wait is
  capped and the sleep injectable; asked to stop meanwhile, the request is not
  sent again (``NOT_HANDED_OVER``).
* 400, 401, 403, other 4xx: not retried; ``failed`` with SendGrid's messages.
* 413: the batch is split in halves and each is sent on its own.
* A timeout or a dropped connection after the request went out: ``unknown``.
  There is no idempotency key, so a retry could deliver twice; the ledger
  reconciles instead (``retry_unanswered=True`` trades that for at-least-once).

``send`` may be called from several threads at once (``in_flight`` of them: the
send stage keeps that many batches in flight, MAILER_SENDGRID_CONCURRENCY), each
request on its own connection.
"""

from __future__ import annotations

import html
import http.client
import json
import logging
import random
import threading
import time
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import orjson
from pydantic import SecretStr
from python_http_client import Client
from python_http_client.exceptions import HTTPError

from mailer.headersafety import HeaderInjectionError, check_header_value, header_safe
from mailer.mail import (
    PLACEHOLDER,
    Batch,
    Content,
    Delivery,
    DeliveryState,
    Recipient,
    fill,
    header_values,
    placeholder,
    refused,
    wrap_text,
)
from mailer.transports.base import TransportBase
from mailer.transports.message import ONE_CLICK
from mailer.transports.ratelimit import NOT_HANDED_OVER, Limiter, StopWaiting, Unlimited

JSON_UTF8 = "application/json; charset=utf-8"
USER_AGENT = "sendgrid/6;python (mailer)"

MAX_SUBSTITUTIONS_BYTES = 10_000
"""SendGrid's limit on one personalization's substitutions (keys and values)."""

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_POLL = 0.2  # how often a wait before a retry looks whether the send was asked to stop


class _NoSecretsInDebugLog(logging.Filter):
    """python_http_client logs every request's headers (the API key) and body at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("HEADERS:", "PAYLOAD:"))


def _install_log_filter() -> None:
    logger = logging.getLogger("python_http_client.client")
    if not any(isinstance(f, _NoSecretsInDebugLog) for f in logger.filters):
        logger.addFilter(_NoSecretsInDebugLog())


_install_log_filter()


def html_placeholder(name: str) -> str:
    """The marker for placeholder *name* in the HTML part, whose value is escaped."""
    return placeholder(name)[:-2] + "|html]]"


@lru_cache(maxsize=256)
def _markers(names: tuple[str, ...], *, in_html: bool) -> tuple[tuple[str, str], ...]:
    """(marker, placeholder name) for each placeholder: worked out once per variant, not per recipient."""
    return tuple((html_placeholder(name) if in_html else placeholder(name), name) for name in names)


@lru_cache(maxsize=16)
def _text(content: Content) -> str:
    return wrap_text(content.text) if content.wrap else content.text


def _html_with_markers(template: str) -> str:
    """The HTML part with its own markers, whose values SendGrid gets HTML-escaped."""
    return PLACEHOLDER.sub(lambda m: html_placeholder(m[1]), template)


@lru_cache(maxsize=16)
def _html(content: Content) -> str:
    return _html_with_markers(content.html)


def substitutions_size(subs: Mapping[str, str]) -> int:
    return sum(len(key.encode()) + len(value.encode()) for key, value in subs.items())


Personalization = dict[str, Any]


class Personalizations:
    """Each recipient's personalization; what is the same for the whole batch, worked out once."""

    def __init__(self, batch: Batch) -> None:
        content = batch.content
        self.content = content
        self.text_markers = _markers(content.text_placeholders, in_html=False)
        self.html_markers = _markers(content.html_placeholders, in_html=True)
        self.markers_size = sum(len(m.encode()) for m, _ in self.text_markers + self.html_markers)
        self.subject = None if PLACEHOLDER.search(content.subject) else content.subject
        # A subject the same for everyone is checked once, not once per recipient.
        self._subject_fits = self.subject is not None and _fits("Subject", self.subject)

    def substitutions(self, recipient: Recipient) -> dict[str, str]:
        """The recipient's placeholder values, keyed by the markers the payload's content carries."""
        values = recipient.values
        subs = {marker: values[name] for marker, name in self.text_markers}
        escape = html.escape
        for marker, name in self.html_markers:
            subs[marker] = escape(values[name], quote=True)
        return subs

    def oversized(self, subs: Mapping[str, str]) -> int | None:
        """The bytes these substitutions take when over SendGrid's limit, else None.

        Worked out exactly only past a cheap upper bound (a character takes at most
        4 bytes in UTF-8), which real values never reach.
        """
        if self.markers_size + 4 * sum(map(len, subs.values())) <= MAX_SUBSTITUTIONS_BYTES:
            return None
        size = substitutions_size(subs)
        return size if size > MAX_SUBSTITUTIONS_BYTES else None

    def item(self, recipient: Recipient, subs: dict[str, str]) -> Personalization:
        """The recipient's personalization: address, subject, headers, substitutions, tags.

        Raises HeaderInjectionError if the name or subject could break out of its header.
        """
        # header_safe leaves neither a line break nor '=?' in the name: what
        # check_header_value("To", ...) refuses cannot be in it (a test checks this).
        name = header_safe(recipient.name)
        to = {"email": recipient.email, "name": name} if name else {"email": recipient.email}
        if self._subject_fits:
            subject = self.subject
        else:
            subject = check_header_value(
                "Subject",
                self.subject
                or fill(self.content.subject, header_values(recipient.values), escape=False),
            )
        unsubscribe = recipient.list_unsubscribe
        headers = (
            {"List-Unsubscribe": unsubscribe, **recipient.headers}
            if recipient.headers
            else {"List-Unsubscribe": unsubscribe}
        )
        item: Personalization = {"to": [to], "subject": subject, "headers": headers}
        if subs:
            item["substitutions"] = subs
        if recipient.custom_args:
            item["custom_args"] = recipient.custom_args
        return item


def _fits(header: str, value: str) -> bool:
    try:
        check_header_value(header, value)
    except HeaderInjectionError:
        return False
    return True


def request_body(batch: Batch, *, sandbox: bool = False) -> str:
    """The Mail Send request body for a batch, as JSON text.

    ``json.loads`` of it is the request as SendGrid reads it (the tests check it
    against SendGrid's schema).
    """
    plan = Personalizations(batch)
    items = [plan.item(r, plan.substitutions(r)) for r in batch.recipients]
    return _body(batch, items, sandbox).decode()


def _body(batch: Batch, personalizations: list[Personalization], sandbox: bool) -> bytes:
    """A personalization per recipient, then the variant's content once, as UTF-8 JSON.

    Written by orjson: at 1,000 recipients a request, the standard library's JSON
    took a fifth of a send's time. Kept as the bytes orjson writes: decoding them
    and encoding again cost a tenth of the transport's time.
    """
    sender = batch.sender
    payload: dict[str, Any] = {
        "personalizations": personalizations,
        "from": {"email": sender.email, "name": sender.name},
        # text/plain first: SendGrid requires it, and clients show the last part they can.
        "content": [
            # SendGrid fills the fields after this: wrapped with the markers in place.
            {"type": "text/plain", "value": _text(batch.content)},
            {"type": "text/html", "value": _html(batch.content)},
        ],
        "headers": {"List-Id": batch.list_id, "List-Unsubscribe-Post": ONE_CLICK, **batch.headers},
    }
    if sender.reply_to:
        payload["reply_to"] = {"email": sender.reply_to}
    if batch.categories:
        payload["categories"] = list(batch.categories)
    if sandbox:
        payload["mail_settings"] = {"sandbox_mode": {"enable": True}}
    return orjson.dumps(payload)


def _encoded(batch: Batch, personalizations: list[Personalization], sandbox: bool) -> _Encoded:
    return _Encoded(_body(batch, personalizations, sandbox))


def _halves(body: bytes) -> tuple[_Encoded, _Encoded]:
    """A request body split in two, each with half the personalizations (after a 413)."""
    payload = orjson.loads(memoryview(body))  # orjson takes no subclass of bytes
    items = payload["personalizations"]
    half = len(items) // 2
    first = {**payload, "personalizations": items[:half]}
    return _Encoded(orjson.dumps(first)), _Encoded(
        orjson.dumps({**first, "personalizations": items[half:]})
    )


class _Body:
    """A request body, which python_http_client 'encodes' before sending: it is bytes already."""

    __slots__ = ("data",)

    def __init__(self, data: _Encoded) -> None:
        self.data = data

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.data


class _Encoded(bytes):
    """A request body that prints as its size.

    python_http_client formats every request's body into a DEBUG message, whether
    DEBUG logging is on or not: a megabyte's repr for each request took a twentieth
    of a send's time (and would put members' tokens in a log).
    """

    def __str__(self) -> str:
        return f"<{len(self)} bytes>"

    __repr__ = __str__


@dataclass(frozen=True)
class _Outcome:
    """What one request (with its retries) came to."""

    kind: Literal["accepted", "rejected", "unanswered"]
    status: int | None = None
    message_id: str | None = None
    error: str | None = None


class SendGridTransport(TransportBase):
    """Sends each batch as one Mail Send request, retrying what is safe to retry."""

    name = "sendgrid"

    def __init__(
        self,
        api_key: SecretStr,
        *,
        api_url: str = "https://api.sendgrid.com",
        timeout: float = 30.0,
        limiter: Limiter | None = None,
        max_attempts: int = 5,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        retry_unanswered: bool = False,
        sandbox: bool = False,
        in_flight: int = 1,
        should_stop: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if in_flight < 1:
            raise ValueError("in_flight must be at least 1")
        self.batches_in_flight = in_flight
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.max_attempts, self.backoff, self.max_wait = max_attempts, backoff, max_wait
        self.retry_unanswered, self.sandbox = retry_unanswered, sandbox
        self._limiter = limiter or Unlimited()
        self._should_stop = should_stop
        self._sleep = self._sleep_unless_stopped if sleep is None else sleep
        self._clock, self._jitter = clock, jitter
        # Until when (by ``clock``) no request goes out: a 429's X-RateLimit-Reset, which
        # holds every request in flight, not only the one that was told.
        self._resume_at = 0.0
        self._pause = threading.Lock()
        # The HTTP client of SendGrid's official library, set up as its SendGridAPIClient
        # does, without importing the rest of that library (its Mail helpers, the Event
        # Webhook's elliptic-curve code), which cost a send's start-up a tenth of a second.
        # python_http_client serialises a body itself unless the content type is other
        # than exactly 'application/json'; ours is JSON text already (request_body).
        headers = {
            "Authorization": f"Bearer {api_key.get_secret_value()}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Content-Type": JSON_UTF8,
        }
        client = Client(host=self.api_url, request_headers=headers, version=3)
        self._mail_send = client.mail.send  # POST /v3/mail/send

    def __repr__(self) -> str:
        return f"SendGridTransport(api_url={self.api_url!r})"

    def send(self, batch: Batch) -> list[Delivery]:
        return self.prepare(batch)()

    def prepare(self, batch: Batch) -> Callable[[], list[Delivery]]:
        """Build the batch's request now, in the caller's thread (the CPU's part); the call
        returned posts it (the network's part, in a worker thread) and says what became of
        each recipient. In between only the request body is kept, not the batch: with
        several requests in flight, that is most of a send's memory."""
        plan = Personalizations(batch)
        emails = [recipient.email for recipient in batch.recipients]
        results: dict[str, Delivery] = {}  # recipients refused before any request
        fitting: list[str] = []
        items: list[Personalization] = []
        limit = MAX_SUBSTITUTIONS_BYTES
        for recipient in batch.recipients:
            subs = plan.substitutions(recipient)
            size = plan.oversized(subs)
            if size is not None:
                results[recipient.email] = Delivery(
                    email=recipient.email,
                    state=DeliveryState.failed,
                    error=f"the placeholder values take {size} bytes; SendGrid allows {limit}",
                )
                continue
            try:
                items.append(plan.item(recipient, subs))
            except HeaderInjectionError as error:
                results[recipient.email] = refused(recipient, error)
                continue
            fitting.append(recipient.email)
        body = _encoded(batch, items, self.sandbox) if items else None
        del items

        def hand_over() -> list[Delivery]:
            if body is not None:
                for delivery in self._send(body, fitting):
                    results[delivery.email] = delivery
            return [results[email] for email in emails]

        return hand_over

    def _send(self, body: _Encoded, emails: list[str]) -> list[Delivery]:
        """One request for these recipients' personalizations; a 413 sends each half on its own."""
        try:
            self._limiter.acquire(len(emails))
        except StopWaiting:
            return [
                Delivery(email=email, state=DeliveryState.failed, error=NOT_HANDED_OVER)
                for email in emails
            ]
        outcome = self._post(body)
        if outcome.status == 413 and len(emails) > 1:
            first, second = _halves(body)
            half = len(emails) // 2
            return self._send(first, emails[:half]) + self._send(second, emails[half:])
        return [_delivery(email, outcome) for email in emails]

    def _post(self, body: _Encoded) -> _Outcome:
        """One request, retried while the answer says trying again may work."""
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self.max_attempts
            if not self._hold(retrying=attempt > 1):
                return _Outcome("rejected", error=NOT_HANDED_OVER)
            try:
                response = self._mail_send.post(request_body=_Body(body), timeout=self.timeout)
            except HTTPError as error:
                status = int(error.status_code)
                if status == 429 and not last:
                    self._pause_all(self._wait(attempt, error.headers))
                    continue
                if status in _RETRY_STATUSES and not last:
                    self._sleep(self._wait(attempt, error.headers))
                    continue
                error_text = _rejection(status, error.body, attempt)
                return _Outcome("rejected", status=status, error=error_text)
            except urllib.error.URLError as error:
                # Raised while connecting or sending: SendGrid has not got the whole request.
                if not last:
                    self._sleep(self._wait(attempt, None))
                    continue
                where = f"{self.api_url} ({attempt} tries)"
                return _Outcome(
                    "rejected", error=f"could not reach SendGrid at {where}: {error.reason}"
                )
            except (OSError, http.client.HTTPException) as error:
                # Raised while waiting for the answer: the request went out.
                if self.retry_unanswered and not last:
                    self._sleep(self._wait(attempt, None))
                    continue
                return _Outcome("unanswered", error=_unanswered(error, self.timeout))
            message_id = response.headers.get("X-Message-Id")
            return _Outcome("accepted", status=response.status_code, message_id=message_id)

    def _pause_all(self, seconds: float) -> None:
        """Hold every request of this transport (the one told included) for ``seconds``."""
        with self._pause:
            self._resume_at = max(self._resume_at, self._clock() + seconds)

    def _hold(self, *, retrying: bool) -> bool:
        """Wait out a 429's pause, if any. False when the send was asked to stop before a
        retry or during a pause: the request is then not sent (again)."""
        with self._pause:
            wait = self._resume_at - self._clock()
        if wait > 0:
            self._sleep(wait)
        return not ((retrying or wait > 0) and self._should_stop())

    def _sleep_unless_stopped(self, seconds: float) -> None:
        """Sleep ``seconds``, a little at a time, ending early when the send is asked to stop."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self._should_stop():
            time.sleep(min(left, _POLL))

    def _wait(self, attempt: int, headers: Mapping[str, str] | None) -> float:
        """Seconds before the next try: until X-RateLimit-Reset if given, else exponential."""
        reset = _number(headers.get("X-RateLimit-Reset")) if headers is not None else None
        if reset is not None:
            wait = max(0.0, reset - self._clock()) + self._jitter()
        else:
            wait = self.backoff * 2 ** (attempt - 1) * (0.5 + self._jitter() / 2)
        return min(self.max_wait, wait)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _delivery(email: str, outcome: _Outcome) -> Delivery:
    if outcome.kind == "accepted":
        return Delivery(email=email, state=DeliveryState.sent, message_id=outcome.message_id)
    rejected = outcome.kind == "rejected"
    state = DeliveryState.failed if rejected else DeliveryState.unknown
    return Delivery(email=email, state=state, error=outcome.error)


def error_messages(body: bytes | str | None) -> str:
    """SendGrid's error messages from a response body, as one line."""
    try:
        errors = json.loads(body or b"")["errors"]
        parts = [
            f"{e['field']}: {e['message']}" if e.get("field") else str(e["message"]) for e in errors
        ]
    except (ValueError, KeyError, TypeError):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
        return text.strip()[:500] or "(no details)"
    return "; ".join(parts)


def _rejection(status: int, body: bytes | str | None, attempts: int) -> str:
    messages = error_messages(body)
    if status in (401, 403):
        return f"SendGrid refused the API key ({status}): {messages}; check SENDGRID_API_KEY"
    if status in _RETRY_STATUSES:
        return f"SendGrid answered {status} to {attempts} tries; giving up for now: {messages}"
    if status == 413:
        return f"SendGrid refused the message as too large (413): {messages}"
    return f"SendGrid rejected the request ({status}): {messages}"


def _unanswered(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimeoutError):
        what = f"no answer within {timeout:g} s"
    else:
        what = f"the connection dropped before the answer ({type(error).__name__})"
    return f"SendGrid may or may not have accepted this: {what}; reconcile before resending"
