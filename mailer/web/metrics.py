"""``GET /metrics``: Prometheus's text format, from the database and from the web app itself.

Two sources, each for what it knows best:

* **The database**, read at every scrape, for what other processes do: the
  scheduler and ``mailer send`` run apart from ``mailer serve`` (often as other
  containers or on other machines) and expose no port. The send ledger is where
  exactly-once is decided, so its counts are the truth whichever process sent,
  survive restarts, and agree with ``mailer report``: recipients by transport and
  state, sends in progress, the next slot's time and readiness, the scheduler's
  heartbeat, the problems ``/healthz`` would name, members by status.
* **This process**, with ``prometheus_client`` counters, for what only the web
  app sees: webhook events applied and rejected, sign-ups, request latency. With
  ``PROMETHEUS_MULTIPROC_DIR`` set (several ``mailer serve`` processes on one
  machine, e.g. behind one proxy) prometheus_client keeps them in files in that
  folder, and each process's scrape adds up every process's counts.

Access: with ``MAILER_METRICS_TOKEN`` set, a request needs ``Authorization:
Bearer <token>``; without it, only a request made on this machine itself (from
a loopback address, not passed on by a proxy) is answered. See docs/deploying.md.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import logging
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailer.config import is_loopback
from mailer.errors import (
    BodyTooLarge,
    MailerError,
    RequestRefused,
    WebhookPayloadError,
    WebhookSignatureError,
)
from mailer.scheduling.slots import next_after
from mailer.scheduling.status import health_problems, slot_views
from mailer.store.ledger import DeliveryRow, Ledger, SendRow, SendStatus
from mailer.store.schema import SubscriberRow
from mailer.store.slots import SlotStore
from mailer.web.context import context_of

if TYPE_CHECKING:
    from mailer.web.context import WebContext

__all__ = [
    "CONTENT_TYPE",
    "RequestTimer",
    "metrics",
    "signup",
    "webhook_batch_rejected",
    "webhook_events_applied",
    "webhook_events_rejected",
]

log = logging.getLogger("mailer.web")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Own:
    """The web app's own counters, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhook_applied = Counter(
            "mailer_webhook_events_applied",
            "SendGrid webhook events stored and applied (members' statuses, the ledger).",
            registry=self.registry,
        )
        self.webhook_rejected = Counter(
            "mailer_webhook_events_rejected",
            "SendGrid webhook events in verified batches that were not applied, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.batches_rejected = Counter(
            "mailer_webhook_batches_rejected",
            "Webhook requests refused whole (nothing in them applied), by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.signups = Counter(
            "mailer_signups",
            "Sign-up form posts and confirmations, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "mailer_http_request_duration_seconds",
            "Time to answer a request, by route (its pattern, never a member's token).",
            ["method", "route", "status"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )


@functools.cache
def _own() -> _Own:
    """Made on first use, not on import: in multiprocess mode making a counter opens a file
    in PROMETHEUS_MULTIPROC_DIR, which `mailer serve` checks first (and one per process)."""
    return _Own()


SIGNUP_OUTCOMES = ("requested", "confirmed", "refused", "honeypot")


# -- what the web app counts -----------------------------------------------------------------


def webhook_events_applied(count: int) -> None:
    """Events of a verified batch stored and applied."""
    if count:
        _own().webhook_applied.inc(count)


def webhook_events_rejected(reason: str, count: int = 1) -> None:
    """Events of a verified batch that were not applied, and why (a short snake_case word).

    The one hook for every event the webhook turns away: today ``duplicate`` (already
    received: SendGrid retries) and ``unknown_address`` (no member of ours). Code that
    refuses events for another reason (e.g. a table of rejected events) calls this too.
    """
    if count:
        _own().webhook_rejected.labels(reason=reason).inc(count)


def webhook_batch_rejected(error: RequestRefused) -> None:
    """A webhook request refused before any of its events was read."""
    if isinstance(error, WebhookSignatureError):
        reason = "signature"
    elif isinstance(error, WebhookPayloadError):
        reason = "payload"
    elif isinstance(error, BodyTooLarge):
        reason = "too_large"
    else:
        reason = "other"
    _own().batches_rejected.labels(reason=reason).inc()


def signup(outcome: str) -> None:
    """A sign-up post or confirmation: one of :data:`SIGNUP_OUTCOMES`."""
    _own().signups.labels(outcome=outcome).inc()


class RequestTimer:
    """ASGI middleware timing every HTTP request, labelled by the route's pattern.

    The pattern (``/unsubscribe/{token}``), not the path: paths hold members' tokens,
    and every distinct path would be a new time series. Paths no route matches are
    ``other``.
    """

    def __init__(self, app: ASGIApp, routes: list[Route]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self._route_of(scope)
        status = 500
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            _own().request_seconds.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - started
            )

    def _route_of(self, scope: Scope) -> str:
        for route in self.routes:
            if route.matches(scope)[0] is Match.FULL:
                return route.path
        return "other"


# -- what the database says ------------------------------------------------------------------


class StoreCollector(Collector):
    """Reads the figures other processes leave in the database, at every scrape."""

    def __init__(self, web: WebContext) -> None:
        self.web = web

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "mailer_database_up", "1 when the scrape could read the database, else 0."
        )
        try:
            families = list(self._families())
        except (SQLAlchemyError, MailerError) as error:
            log.error("metrics: cannot read the database: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        engine = self.web.store.engine
        with engine.connect() as connection:
            recipients = connection.execute(
                select(SendRow.transport, DeliveryRow.state, func.count())
                .join(SendRow, SendRow.issue == DeliveryRow.issue)
                .group_by(SendRow.transport, DeliveryRow.state)
            ).all()
            sending = list(
                connection.scalars(
                    select(SendRow.issue).where(SendRow.status == SendStatus.sending)
                )
            )
            members = connection.execute(
                select(SubscriberRow.status, func.count()).group_by(SubscriberRow.status)
            ).all()
        family = GaugeMetricFamily(
            "mailer_recipients",
            "Members' copies of issues in the send ledger, by transport and state "
            "(sent, failed, unknown, in_flight, queued); a gauge, as failed copies are retried.",
            labels=["transport", "state"],
        )
        for transport, state, count in recipients:
            family.add_metric([transport, state], count)
        yield family
        yield from self._sends(sending)
        family = GaugeMetricFamily("mailer_subscribers", "Members by status.", labels=["status"])
        for status, count in members:
            family.add_metric([status], count)
        yield family
        yield from self._schedule()

    def _sends(self, sending: list[str]) -> list[Metric]:
        """Sends marked ``sending`` whose owner still runs (a dead owner's is stuck, not sending)."""
        ledger = Ledger(self.web.store.engine)
        running = 0
        for issue in sending:
            holder = ledger.holder(issue)
            running += bool(holder and holder.running)
        family = GaugeMetricFamily(
            "mailer_sends_in_progress", "Issues being sent now by a running process."
        )
        family.add_metric([], running)
        stuck = GaugeMetricFamily(
            "mailer_sends_interrupted",
            "Sends left unfinished by a process that is gone (resumed by the next run).",
        )
        stuck.add_metric([], len(sending) - running)
        return [family, stuck]

    def _schedule(self) -> Iterator[Metric]:
        schedule = self.web.newsletter.schedule
        if schedule is None:
            return
        engine = self.web.store.engine
        now = dt.datetime.now(dt.UTC)
        upcoming = next_after(schedule, now)
        [view] = slot_views(self.web.newsletter, engine, [upcoming])
        at = GaugeMetricFamily(
            "mailer_next_slot_timestamp_seconds", "When the next slot is due (Unix time)."
        )
        at.add_metric([], upcoming.utc.timestamp())
        yield at
        ready = GaugeMetricFamily(
            "mailer_next_slot_ready",
            "1 when the next slot's issue is ready to go out (or already sent), else 0; "
            "state is the issue's: ready, draft, missing, invalid, ambiguous, sent.",
            labels=["state"],
        )
        ready.add_metric([view.state], 1 if view.state in ("ready", "sent") else 0)
        yield ready
        beat = SlotStore(engine).last_beat()
        heartbeat = GaugeMetricFamily(
            "mailer_scheduler_heartbeat_timestamp_seconds",
            "When a scheduler last wrote its heartbeat (Unix time; 0: none ever ran).",
        )
        heartbeat.add_metric([], beat.beat_at.timestamp() if beat else 0)
        yield heartbeat
        problems = GaugeMetricFamily(
            "mailer_health_problems",
            "Reasons GET /healthz answers 503 now (0 when the newsletter will go out).",
        )
        problems.add_metric([], len(health_problems(engine, schedule, now)))
        yield problems


# -- the route -------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    """prometheus_client's multiprocess folder, when set (it reads the same variable)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(web: WebContext) -> bytes:
    """Every metric, in Prometheus's text format."""
    own: CollectorRegistry
    if multiprocess_dir():
        own = CollectorRegistry()
        MultiProcessCollector(own)  # type: ignore[no-untyped-call]
    else:
        own = _own().registry
    store = CollectorRegistry(auto_describe=False)
    store.register(StoreCollector(web))
    return generate_latest(own) + generate_latest(store)


def allowed(request: Request, token: str | None) -> bool:
    """Whether the request may read the metrics (see the module's docstring)."""
    if token is not None:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), token.encode()
        )
    # uvicorn has already replaced the client by X-Forwarded-For's when a trusted proxy
    # sent it; a proxy's header still there means the request came from further away.
    forwarded = any(h in request.headers for h in ("x-forwarded-for", "forwarded", "x-real-ip"))
    host = request.client.host if request.client else ""
    return is_loopback(host) and not forwarded


async def metrics(request: Request) -> Response:
    web = context_of(request)
    token = web.settings.metrics_token
    if not allowed(request, token.get_secret_value() if token else None):
        if token is not None:
            return PlainTextResponse(
                "a bearer token is needed\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return PlainTextResponse(
            "metrics are answered on this machine only; set MAILER_METRICS_TOKEN to scrape "
            "them from elsewhere\n",
            status_code=403,
        )
    body = await run_in_threadpool(exposition, web)
    return Response(body, media_type=CONTENT_TYPE)
