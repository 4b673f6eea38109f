"""A real HTTP server standing in for SendGrid's ``POST /v3/mail/send``.

It checks the Bearer key, the size, SendGrid's schema and the rules in
:mod:`rules`, answers as SendGrid does (202 with ``X-Message-Id``, 400 with
``{"errors": [...]}``, 401, 413), and records what it accepted. Tests script
faults for the next requests: an error status (429 with ``X-RateLimit-Reset``,
500, 503, ...), a slow answer, or a connection closed without an answer, before
or after the request was accepted. ``latency`` (plus up to ``jitter`` more, at
random) holds every accepted request's answer, as the round trip to SendGrid
across the internet would; ``keep_bodies=False`` keeps only how many messages
each address got (a benchmark's million recipients), not the requests.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self

import orjson

from .rules import check_mail_send, error

MAX_BODY_BYTES = 30 * 1024 * 1024
PATH = "/v3/mail/send"

FaultKind = Literal["status", "slow", "drop"]


@dataclass(frozen=True)
class Fault:
    """What the double does to one request instead of (or on top of) answering normally.

    ``status``: answer *status* with *headers*, accept nothing. ``slow``: handle
    the request normally but answer only after *delay* seconds. ``drop``: close
    the connection without an answer; with *accept*, only after recording the
    request as accepted (SendGrid got it; the client cannot know).
    """

    kind: FaultKind
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    accept: bool = False


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and what the double answered (None: no answer)."""

    headers: dict[str, str]
    body: bytes
    status: int | None
    at: float = 0.0  # time.monotonic() when it arrived (its body read)

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True)
class Accepted:
    """A request SendGrid would have queued."""

    message_id: str
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        # Kept as bytes, read on demand: a benchmark's 100,000 personalizations kept as
        # objects would have Python's garbage collector walk them after every request.
        payload: dict[str, Any] = orjson.loads(self.body)
        return payload


@dataclass(frozen=True)
class Delivered:
    """One recipient of an accepted request, with substitutions applied as SendGrid would."""

    email: str
    name: str | None
    message_id: str
    subject: str
    text: str | None
    html: str | None
    headers: dict[str, str]
    custom_args: dict[str, str]
    substitutions: dict[str, str]


class SendGridDouble:
    """SendGrid's Mail Send endpoint on 127.0.0.1, in a thread. Use as a context manager."""

    def __init__(
        self,
        api_key: str = "SG.test-key",
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], float] = time.time,
        latency: float = 0.0,
        jitter: float = 0.0,
        keep_bodies: bool = True,
    ) -> None:
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.latency, self.jitter, self.keep_bodies = latency, jitter, keep_bodies
        self._counts: Counter[str] = Counter()  # without keep_bodies
        # Personalizations in each accepted request, in order (kept with or without bodies):
        # a benchmark's no-work client posts requests of the same sizes.
        self.request_sizes: list[int] = []
        self._in_flight = 0
        self.most_in_flight = 0  # the most requests being handled at once
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._received: list[Received] = []
        self._accepted: list[Accepted] = []
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.double = self
        self._server = server
        # A short poll interval: shutdown() waits up to one interval.
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="sendgrid-double", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes slow answers so no thread lingers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to give as MAILER_SENDGRID_API_URL."""
        assert self._server is not None, "start() the double first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- scripting faults ---------------------------------------------------------

    def fail_next(
        self, status: int, *, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next *times* requests with *status* (e.g. 500, 503, 403)."""
        self._script(Fault("status", status=status, headers=headers or {}), times)

    def rate_limit_next(self, *, times: int = 1, reset_in: float = 2.0) -> None:
        """Answer 429 with X-RateLimit-Reset *reset_in* seconds from the double's clock."""
        reset = str(int(self.clock() + reset_in))
        self.fail_next(
            429, times=times, headers={"X-RateLimit-Reset": reset, "X-RateLimit-Remaining": "0"}
        )

    def slow_next(self, delay: float, *, times: int = 1) -> None:
        """Handle the next requests normally (accepting them) but answer after *delay* seconds."""
        self._script(Fault("slow", delay=delay), times)

    def drop_next(self, *, times: int = 1, accept: bool = False) -> None:
        """Read the next requests, then close the connection without answering.

        With *accept*, each is first recorded as accepted: the ambiguous case.
        """
        self._script(Fault("drop", accept=accept), times)

    def _script(self, fault: Fault, times: int) -> None:
        with self._lock:
            self._faults.extend([fault] * times)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    # -- what happened ------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        """Every request that reached the endpoint, in order."""
        with self._lock:
            return list(self._received)

    @property
    def accepted(self) -> list[Accepted]:
        """The requests SendGrid would have queued, in order."""
        with self._lock:
            return list(self._accepted)

    def deliveries(self) -> list[Delivered]:
        """Every recipient of every accepted request, as they would receive it."""
        return [delivered for accepted in self.accepted for delivered in _expand(accepted)]

    def delivery_counts(self) -> Counter[str]:
        """How many messages each address (lower-cased) was sent."""
        if not self.keep_bodies:
            with self._lock:
                return Counter(self._counts)
        return Counter(
            address["email"].lower()
            for accepted in self.accepted
            for item in accepted.payload["personalizations"]
            for address in _addresses(item)
        )

    def count(self, email: str) -> int:
        return self.delivery_counts()[email.lower()]

    def delivered_to(self, email: str) -> Delivered:
        """The one message sent to *email*; fails if there were none or several."""
        found = [d for d in self.deliveries() if d.email.lower() == email.lower()]
        assert len(found) == 1, f"{email} got {len(found)} messages"
        return found[0]

    def wait_for_accepted(self, count: int, timeout: float = 5.0) -> list[Accepted]:
        """The accepted requests once there are *count* (for answers that come late)."""
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.accepted

    # -- handling (called from the server's threads) ------------------------------

    def _record(self, headers: dict[str, str], body: bytes, status: int | None, at: float) -> None:
        if not self.keep_bodies:
            body = b""
        with self._lock:
            self._received.append(Received(headers, body, status, at))

    def _accept(self, body: bytes, payload: dict[str, Any]) -> str:
        message_id = secrets.token_urlsafe(16)[:22]
        with self._lock:
            self.request_sizes.append(len(payload["personalizations"]))
            if self.keep_bodies:
                self._accepted.append(Accepted(message_id, body))
            else:
                self._counts.update(
                    address["email"].lower()
                    for item in payload["personalizations"]
                    for address in _addresses(item)
                )
        return message_id

    def _round_trip(self) -> float:
        """How long an accepted request's answer is held: the latency, plus jitter."""
        return self.latency + (random.uniform(0, self.jitter) if self.jitter else 0.0)

    def _entered(self, change: int) -> None:
        with self._lock:
            self._in_flight += change
            self.most_in_flight = max(self.most_in_flight, self._in_flight)

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    double: SendGridDouble

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) leaves a broken pipe behind: expected here.
        pass


@dataclass
class _Answer:
    status: int | None  # None: close without answering
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def _errors(status: int, *errors: dict[str, Any]) -> _Answer:
    return _Answer(status, {"errors": list(errors)})


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_POST(self) -> None:
        double = self.server.double
        double._entered(1)
        try:
            self._post(double)
        finally:
            double._entered(-1)

    def _post(self, double: SendGridDouble) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        at = time.monotonic()
        headers = dict(self.headers.items())
        if self.path.rstrip("/") != PATH:
            answer = _errors(404, error("Not found", None))
        else:
            answer = _handle(double, headers, body, double._next_fault())
        double._record(headers, body, answer.status, at)
        if answer.delay:
            double._sleep(answer.delay)
        if answer.status is None:
            self.close_connection = True
            return  # the server closes the socket: the client gets no answer
        self._answer(answer)

    def _answer(self, answer: _Answer) -> None:
        assert answer.status is not None
        data = json.dumps(answer.body).encode() if answer.body is not None else b""
        self.send_response(answer.status, HTTPStatus(answer.status).phrase)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


_BEARER = re.compile(r"^Bearer\s+(?P<key>\S+)$")


def _handle(
    double: SendGridDouble, headers: dict[str, str], body: bytes, fault: Fault | None
) -> _Answer:
    if fault is not None and fault.kind == "status":
        answer = _errors(fault.status, error(HTTPStatus(fault.status).phrase.lower()))
        return _with_headers(answer, fault.headers)
    if fault is not None and fault.kind == "drop" and not fault.accept:
        return _Answer(None)
    answer = _mail_send(double, headers, body)
    if fault is not None and fault.kind == "drop":
        return _Answer(None)
    if fault is not None and fault.kind == "slow":
        answer.delay = fault.delay
    elif answer.status in (200, 202):
        answer.delay = double._round_trip()
    return answer


def _mail_send(double: SendGridDouble, headers: dict[str, str], body: bytes) -> _Answer:
    auth = _BEARER.match(_header(headers, "Authorization") or "")
    if auth is None:
        return _errors(401, error("authorization required"))
    if not secrets.compare_digest(auth["key"], double.api_key):
        return _errors(
            401, error("The provided authorization grant is invalid, expired, or revoked")
        )
    media_type = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        return _errors(400, error("Content-Type should be application/json."))
    if len(body) >= double.max_body_bytes:
        return _errors(413, error("The request body is too large: it must be under 30 MB."))
    try:
        payload = orjson.loads(body)
    except ValueError:
        return _errors(400, error("Bad Request"))
    problems = check_mail_send(payload, now=double.clock())
    if problems:
        return _errors(400, *problems)
    if payload.get("mail_settings", {}).get("sandbox_mode", {}).get("enable"):
        return _Answer(200)
    message_id = double._accept(body, payload)
    return _Answer(202, headers={"X-Message-Id": message_id})


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _with_headers(answer: _Answer, headers: dict[str, str]) -> _Answer:
    answer.headers.update(headers)
    return answer


def _substitute(text: str | None, subs: dict[str, str]) -> str | None:
    if text is None or not subs:
        return text
    # One pass, longest key first, as a template engine would.
    pattern = re.compile("|".join(re.escape(k) for k in sorted(subs, key=len, reverse=True)))
    return pattern.sub(lambda m: subs[m[0]], text)


def _expand(accepted: Accepted) -> Iterator[Delivered]:
    payload = accepted.payload
    parts = {part["type"]: part["value"] for part in payload.get("content", [])}
    for item in payload["personalizations"]:
        subs = item.get("substitutions", {})
        headers = {**payload.get("headers", {}), **item.get("headers", {})}
        custom_args = {**payload.get("custom_args", {}), **item.get("custom_args", {})}
        subject = item.get("subject") or payload.get("subject", "")
        for address in _addresses(item):
            yield Delivered(
                email=address["email"],
                name=address.get("name"),
                message_id=accepted.message_id,
                subject=_substitute(subject, subs) or "",
                text=_substitute(parts.get("text/plain"), subs),
                html=_substitute(parts.get("text/html"), subs),
                headers=headers,
                custom_args=custom_args,
                substitutions=subs,
            )


def _addresses(personalization: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Everyone a personalization sends to: its to, cc and bcc."""
    for kind in ("to", "cc", "bcc"):
        yield from personalization.get(kind, ())
