"""The web app: members' links, SendGrid's Event Webhook, the archive and the sign-up form.

:func:`create_app` builds a Starlette app from the settings and the newsletter;
``mailer serve`` runs it under uvicorn. Routes are thin: each hands over to the
module that does the work (:mod:`~mailer.web.links`, :mod:`~mailer.events.sendgrid`
with :mod:`mailer.events`, :mod:`~mailer.web.archive`, :mod:`~mailer.web.signup`).

Routes::

    GET       /                       the home page: the newsletter, latest issues, sign-up form
    GET       /unsubscribe/{token}    confirmation page (changes nothing)
    POST      /unsubscribe/{token}    unsubscribe; RFC 8058 one-click too
    GET|POST  /preferences/{token}    the preference centre
    GET|POST  /change-address/{token} confirms a new address (the link emailed to it)
    POST      /webhooks/sendgrid      SendGrid's signed Event Webhook
    GET       /archive/               sent issues
    GET       /archive/{issue}        one issue's web version
    GET|POST  /subscribe              sign-up, with double opt-in
    GET       /confirm/{token}        a sign-up's confirmation page (changes nothing)
    POST      /confirm/{token}        confirms the sign-up (the page's form)
    GET|POST|PATCH /api/v1/...        the members API (bearer keys; see mailer.web.api.routes)
    GET       /api/openapi.json       its OpenAPI 3.1 document
    GET       /healthz                {"status": "ok", "database": "ok", "scheduler": {...}};
                                      503 with "problems" when the newsletter may not go out
    GET       /metrics                Prometheus text format (``mailer_*``)
    GET       /static/site.css        the stylesheet (and /static/icon.svg)

No input makes it answer 500: bad requests get 4xx, a database that cannot be
reached 503 (SendGrid retries), and only a bug leaves a 500 behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailer.config import Newsletter, Settings, TransportName
from mailer.errors import ConfigError, MailerError, RequestRefused
from mailer.events.apply import apply_events
from mailer.events.sendgrid import MAX_BODY, load_public_key, parse, verify
from mailer.scheduling.status import health_problems, scheduler_health
from mailer.sending.personalise import link_signer
from mailer.store import open_store
from mailer.store.signups import purge_unconfirmed
from mailer.tokens import DEVELOPMENT_KEY, TokenSigner, secret_keys
from mailer.transports import Transport, open_transport
from mailer.web.api.problems import ApiProblem, problem_response
from mailer.web.api.routes import api_routes
from mailer.web.archive import Archive, archive_index, archive_issue
from mailer.web.captcha import captcha_for
from mailer.web.context import SignupLimits, WebContext, context_of
from mailer.web.home import home
from mailer.web.links import change_address, preferences, unsubscribe
from mailer.web.logs import redact
from mailer.web.metrics import (
    RequestTimer,
    metrics,
    webhook_batch_rejected,
    webhook_events_applied,
    webhook_events_rejected,
)
from mailer.web.pages import Pages
from mailer.web.security import (
    AddressChangeTokens,
    ConfirmTokens,
    FormTokens,
    SecurityHeaders,
    read_body,
)
from mailer.web.signup import confirm, subscribe

__all__ = ["create_app"]

log = logging.getLogger("mailer.web")


def create_app(
    settings: Settings,
    newsletter: Newsletter,
    *,
    transport: Callable[[], Transport] | None = None,
    limits: SignupLimits | None = None,
    max_webhook_body: int = MAX_BODY,
    clock: Callable[[], float] | None = None,
    development_key_ok: bool = False,
) -> Starlette:
    """The web app. Raises ConfigError for settings it cannot run with (no MAILER_SECRET_KEY,
    a real transport with http links or the development key, a bad webhook key).

    ``development_key_ok``: with the outbox transport and no MAILER_SECRET_KEY, check
    links with the public development key, as the outbox signed them (``mailer
    serve`` on a loopback address). ``transport`` opens the transport for sign-up
    emails (default: the configured one); ``limits``, ``max_webhook_body`` and
    ``clock`` are for tests.
    """
    keys = secret_keys(settings)
    if not keys and development_key_ok and settings.transport == TransportName.outbox:
        keys = [DEVELOPMENT_KEY]  # the links of the outbox's files, which prove nothing
    if not keys:
        raise ConfigError(
            "MAILER_SECRET_KEY is not set: the web app checks the signed tokens in members' "
            "links with it, and must use the key the emails were sent with. Set it to a long "
            "random string, e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if settings.transport != TransportName.outbox:
        link_signer(settings)  # the checks `mailer send` makes: a real key, https links
    captcha = captcha_for(settings)
    webhook_key = None
    if settings.sendgrid_webhook_public_key:
        webhook_key = load_public_key(settings.sendgrid_webhook_public_key)
    signer = TokenSigner(keys, development=keys == [DEVELOPMENT_KEY])
    store = open_store(settings.database_url)
    web = WebContext(
        settings=settings,
        newsletter=newsletter,
        store=store,
        signer=signer,
        forms=FormTokens(keys),
        confirmations=ConfirmTokens(keys, signer),
        pages=Pages(newsletter),
        webhook_key=webhook_key,
        open_transport=transport or (lambda: open_transport(settings)),
        archive=Archive(newsletter, store, settings.base_url),
        address_changes=AddressChangeTokens(keys, signer),
        captcha=captcha,
        limits=limits or SignupLimits(),
        max_webhook_body=max_webhook_body,
    )
    if clock is not None:
        web.clock = clock

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if webhook_key is None:
            log.warning(
                "MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY is not set: SendGrid's Event Webhook "
                "is refused (403) until it is"
            )
        chores = asyncio.create_task(_hourly_chores(web))
        yield
        chores.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await chores
        store.close()

    routes = _routes()
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestTimer, routes=routes),
            Middleware(SecurityHeaders, hsts=settings.base_url.startswith("https://")),
            Middleware(TrustedHostMiddleware, allowed_hosts=served_hosts(settings)),
        ],
        exception_handlers={
            ClientDisconnect: _gone,
            HTTPException: _http_error,
            RequestRefused: _refused,
            MailerError: _unavailable,
            Exception: _bug,
        },
        lifespan=lifespan,
    )
    app.state.web = web
    return app


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def served_hosts(settings: Settings) -> list[str]:
    """The Host headers answered: MAILER_BASE_URL's, MAILER_ALLOWED_HOSTS, and loopback.

    Any other gets 400, so no page or redirect is ever built on a Host an attacker chose.
    """
    base = urlsplit(settings.base_url).hostname or ""
    extra = [host.strip().lower() for host in settings.allowed_hosts.split(",") if host.strip()]
    return list(dict.fromkeys([base.lower(), *extra, *LOOPBACK_HOSTS]))


CHORES_EVERY = 3600  # seconds between runs of the web app's housekeeping


async def _hourly_chores(web: WebContext) -> None:
    """Housekeeping while the app runs: at start, then every hour.

    Unconfirmed sign-ups are deleted, with their names, once their link has expired.
    A failure is logged and tried again the next hour: it never stops the app.
    """
    while True:
        try:
            await run_in_threadpool(purge_unconfirmed, web.store)
        except MailerError as error:
            log.error("housekeeping failed, trying again in an hour: %s", error)
        await asyncio.sleep(CHORES_EVERY)


def _routes() -> list[Route]:
    return [
        Route("/", home, methods=["GET"]),
        *api_routes(),
        Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
        Route("/preferences/{token}", preferences, methods=["GET", "POST"]),
        Route("/change-address/{token}", change_address, methods=["GET", "POST"]),
        Route("/webhooks/sendgrid", sendgrid_webhook, methods=["POST"]),
        Route("/archive/", archive_index, methods=["GET"]),
        Route("/archive/{issue}", archive_issue, methods=["GET"]),
        Route("/subscribe", subscribe, methods=["GET", "POST"]),
        Route("/confirm/{token}", confirm, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/static/site.css", stylesheet, methods=["GET"]),
        Route("/static/icon.svg", icon, methods=["GET"]),
    ]


async def sendgrid_webhook(request: Request) -> Response:
    """Verify, parse, then store and apply the batch in one transaction; 2xx once stored.

    A verified batch is answered 2xx whatever its items: each valid event is applied,
    each item that is not one is kept in the rejected events' table (logged the first
    time it comes), so no good event is lost to an odd one beside it.
    """
    web = context_of(request)
    settings = web.settings
    try:
        body = await read_body(request, web.max_webhook_body)
        verify(
            body, request.headers, web.webhook_key, settings.sendgrid_webhook_max_age, web.clock()
        )
        parsed = parse(body)
    except RequestRefused as error:
        webhook_batch_rejected(error)
        raise
    applied = await run_in_threadpool(
        partial(
            apply_events,
            web.store,
            parsed.events,
            soft_bounce_limit=settings.soft_bounce_limit,
            rejected=parsed.rejected,
        )
    )
    webhook_events_applied(max(0, applied.stored - applied.unknown_addresses))
    webhook_events_rejected("duplicate", applied.duplicates)
    webhook_events_rejected("unknown_address", applied.unknown_addresses)
    webhook_events_rejected("invalid", applied.rejected)
    for item in applied.rejected_new:
        log.warning(
            "webhook: event %d of a batch rejected (kept, see mailer events rejected): %s",
            item.position,
            item.reason,
        )
    log.info(
        "webhook batch: received=%d stored=%d duplicates=%d unknown=%d rejected=%d status=%s",
        applied.received + applied.rejected,
        applied.stored,
        applied.duplicates,
        applied.unknown_addresses,
        applied.rejected,
        dict(applied.status_changes) or "-",
    )
    return JSONResponse(applied.to_json())


async def healthz(request: Request) -> Response:
    web = context_of(request)

    def ping() -> None:
        with web.store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(ping)
    except Exception as error:  # any failure means "not healthy", never a 500
        log.error("health check: the database does not answer: %s", error)
        down = {
            "status": "error",
            "database": "error",
            "problems": ["the database does not answer"],
        }
        return JSONResponse(down, status_code=503)
    scheduler, problems = await run_in_threadpool(_scheduler, web)
    body: dict[str, Any] = {
        "status": "error" if problems else "ok",
        "database": "ok",
        "scheduler": scheduler,
    }
    if problems:
        body["problems"] = problems
        log.warning("health check: %s", "; ".join(problems))
    return JSONResponse(body, status_code=503 if problems else 200)


def _scheduler(web: WebContext) -> tuple[dict[str, Any] | None, list[str]]:
    """The scheduler's last and next run, and why the newsletter may not go out (if it may not)."""
    schedule = web.newsletter.schedule
    if schedule is None:
        return None, []
    now = dt.datetime.now(dt.UTC)
    try:
        engine = web.store.engine
        return scheduler_health(engine, schedule, now), health_problems(engine, schedule, now)
    except MailerError as error:  # e.g. the scheduler's tables are not there yet
        log.error("health check: cannot read the scheduler's state: %s", error)
        return {"error": "cannot read the scheduler's state"}, ["cannot read the scheduler's state"]


async def stylesheet(request: Request) -> Response:
    web = context_of(request)
    css = web.pages.text("site.css", brand=web.newsletter.brand_colour)
    return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


async def icon(request: Request) -> Response:
    """A plain disc in the brand colour, so browsers do not ask for a missing favicon."""
    colour = context_of(request).newsletter.brand_colour
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
        f'<circle cx="8" cy="8" r="8" fill="{colour}"/></svg>'
    )
    return Response(
        svg, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


# -- errors -----------------------------------------------------------------------------------


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/webhooks/")


def _api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if _api(request):
        return problem_response(
            ApiProblem(error.status_code, str(error.detail), headers=error.headers)
        )
    if _wants_json(request):
        return JSONResponse({"error": error.detail}, status_code=error.status_code)
    title = {404: "Page not found", 405: "Not allowed"}.get(error.status_code, "Something is wrong")
    pages = context_of(request).pages
    response = pages.message(title, [str(error.detail)], status=error.status_code)
    if error.headers:
        response.headers.update(error.headers)
    return response


async def _refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestRefused)
    log.warning("refused %s %s: %s", request.method, redact(request.url.path), error)
    if _api(request):
        return problem_response(ApiProblem(error.status, error.public))
    if _wants_json(request):
        return JSONResponse({"error": error.public}, status_code=error.status)
    pages = context_of(request).pages
    return pages.message(
        "That did not work", [error.public.capitalize() + "."], status=error.status
    )


async def _unavailable(request: Request, error: Exception) -> Response:
    """A store that failed (locked, unreachable): 503, so SendGrid retries and people try again."""
    log.error("%s %s failed: %s", request.method, redact(request.url.path), error)
    if _api(request):
        return problem_response(ApiProblem(503, "temporarily unavailable: try again"))
    if _wants_json(request):
        return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
    pages = context_of(request).pages
    return pages.message(
        "Please try again",
        ["Something went wrong on our side, and nothing was changed. Please try again shortly."],
        status=503,
    )


async def _gone(request: Request, error: Exception) -> Response:
    """The client went away before its request was all there: nothing to answer, nor to fix."""
    log.info("%s %s: the client disconnected mid-request", request.method, redact(request.url.path))
    return Response(status_code=400)


async def _bug(request: Request, error: Exception) -> Response:
    log.exception(
        "%s %s: unexpected error", request.method, redact(request.url.path), exc_info=error
    )
    return JSONResponse({"error": "internal error"}, status_code=500)
