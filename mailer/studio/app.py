"""The studio's web app: the page, the email in its frames, live updates, and "send me a test".

Routes (all on the loopback address unless ``--allow-remote``):

    GET  /                      the next issue (the newest file)
    GET  /issues/{slug}         an issue: ?variant=youth+wales&member=ID&dark=1&images=off&view=text
    GET  /email/{slug}          the email's HTML for the frames (same query)
    GET  /spam/{slug}           SpamAssassin's score of the variant on screen, as a fragment
    GET  /members?q=WORDS       members to preview as, as JSON
    POST /send-test             the variant on screen to the editors of mailer.toml, as a test
    GET  /events                server-sent events: "change" whenever a watched file changes

Two guards, because the page can send mail: requests must name this server in
their Host header (no DNS rebinding), and a POST must carry the page's token in
``X-Studio-Token`` (a form on another site cannot set that header).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from watchfiles import Change, awatch

from mailer.errors import MailerError
from mailer.sending.personalise import link_signer
from mailer.sending.proofs import TEST_PREFIX, send_variant_test, variant_test_batch
from mailer.studio.members import find_members
from mailer.studio.page import Query, build_view, email_html, parse_variant
from mailer.studio.spam import score
from mailer.studio.workspace import Workspace
from mailer.transports import open_transport
from mailer.transports.message import MessageTemplate

__all__ = ["Changes", "create_studio"]

log = logging.getLogger("mailer.studio")

KEEPALIVE = 15.0  # seconds between comments on an idle event stream, so proxies keep it open
STATIC = Path(__file__).parent / "templates"


@dataclass
class Changes:
    """Tells every open page when the workspace's version moves on."""

    version: int = 0
    _waiters: set[asyncio.Event] = field(default_factory=set)

    def announce(self, version: int) -> None:
        self.version = version
        for waiter in list(self._waiters):
            waiter.set()

    async def wait(self, seen: int, timeout: float) -> int:
        """The version once it is past ``seen``, or ``seen`` after ``timeout`` seconds."""
        if self.version != seen:
            return self.version
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            self._waiters.discard(event)
        return self.version


class HostGuard:
    """Answer only requests addressed to this server by name (not a rebound DNS name)."""

    def __init__(self, app: Starlette, hosts: set[str]) -> None:
        self.app, self.hosts = app, hosts
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            host = headers.get(b"host", b"").decode("latin-1").lower()
            if host not in self.hosts:
                response = PlainTextResponse(
                    "This is mailer's studio: open it at its own address.", status_code=421
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def allowed_hosts(host: str, port: int) -> set[str]:
    """Host headers that name this server: the address it listens on, and loopback names."""
    names = {host, "127.0.0.1", "localhost", "[::1]"}
    if ":" in host and not host.startswith("["):
        names.add(f"[{host}]")
    return {f"{name.lower()}:{port}" for name in names}


def create_studio(
    workspace: Workspace,
    *,
    host: str,
    port: int,
    first: str | None = None,
    spamassassin: str = "spamassassin",
) -> HostGuard:
    """The studio for this workspace, as it will listen on ``host:port``.

    ``first`` is the issue ``/`` opens; ``spamassassin`` the program that scores messages.
    """
    token = secrets.token_urlsafe(24)
    changes = Changes(workspace.version)
    env = Environment(
        loader=PackageLoader("mailer.studio", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template("studio.html")

    async def page(request: Request) -> Response:
        slug = request.path_params.get("slug")
        if slug is None and first is not None:
            return RedirectResponse(f"/issues/{first}", status_code=303)
        params = dict(request.query_params)
        combined = request.query_params.getlist("segment")  # the combination form, without JS
        if combined:
            params["variant"] = "+".join(combined)
        query = Query.of(slug, params)
        view = await run_in_threadpool(build_view, workspace, query)
        if slug is not None and view.file is None and view.newsletter is not None:
            return HTMLResponse(_missing(slug, workspace), status_code=404)
        body = template.render(view=view, token=token, prefix=TEST_PREFIX.strip())
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    async def email(request: Request) -> Response:
        query = Query.of(request.path_params["slug"], dict(request.query_params))
        view = await run_in_threadpool(build_view, workspace, query)
        if view.message is None:
            return PlainTextResponse("This issue has problems: see the page.", status_code=409)
        return HTMLResponse(
            email_html(view.message, query),
            headers={
                "Cache-Control": "no-store",
                # The email never runs scripts here; same origin so the page can keep its scroll.
                "Content-Security-Policy": "sandbox allow-same-origin allow-popups",
            },
        )

    async def spam(request: Request) -> Response:
        query = Query.of(request.path_params["slug"], dict(request.query_params))
        fragment = await run_in_threadpool(_spam_fragment, workspace, query, env, spamassassin)
        return HTMLResponse(fragment, headers={"Cache-Control": "no-store"})

    async def members(request: Request) -> Response:
        words = request.query_params.get("q", "")
        if workspace.store is None or len(words.strip()) < 2:
            return JSONResponse([])
        found = await run_in_threadpool(find_members, workspace.store, words)
        return JSONResponse(found)

    async def send_test(request: Request) -> Response:
        if request.headers.get("x-studio-token") != token:
            return JSONResponse({"error": "refused: reload the studio's page"}, status_code=403)
        try:
            asked = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "not a request the page sends"}, status_code=400)
        if not isinstance(asked, dict):
            return JSONResponse({"error": "not a request the page sends"}, status_code=400)
        answer, status = await run_in_threadpool(_send_test, workspace, asked)
        return JSONResponse(answer, status_code=status)

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            seen = changes.version
            yield f"retry: 1000\nevent: hello\ndata: {seen}\n\n"
            while not await request.is_disconnected():
                version = await changes.wait(seen, KEEPALIVE)
                if version == seen:
                    yield ": still here\n\n"
                    continue
                seen = version
                yield f"event: change\ndata: {version}\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        kinds = {"studio.css": "text/css", "studio.js": "text/javascript"}
        if name not in kinds:
            return PlainTextResponse("Not found", status_code=404)
        return Response((STATIC / name).read_bytes(), media_type=kinds[name])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(_watch(workspace, changes, stop))
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 5)

    routes = [
        Route("/", page),
        Route("/issues/{slug:str}", page),
        Route("/email/{slug:str}", email),
        Route("/spam/{slug:str}", spam),
        Route("/members", members),
        Route("/send-test", send_test, methods=["POST"]),
        Route("/events", events),
        Route("/static/{name:str}", static),
    ]
    studio = Starlette(routes=routes, lifespan=lifespan)
    studio.state.workspace = workspace
    studio.state.changes = changes
    studio.state.token = token
    return HostGuard(studio, allowed_hosts(host, port))


def _missing(slug: str, workspace: Workspace) -> str:
    names = ", ".join(file.slug for file in workspace.files()) or "none yet"
    return (
        f"<!doctype html><title>No such issue</title><p>There is no issue file named "
        f"{html.escape(slug)}.yaml in the issues folder. Issues there: {html.escape(names)}. "
        f'<a href="/">Back to the studio</a></p>'
    )


def _relevant(config: Path) -> Callable[[Change, str], bool]:
    """Which changed paths matter: mailer.toml in its folder, anything but editors' scratch files
    in the issues and templates folders."""

    def relevant(change: Change, name: str) -> bool:
        path = Path(name)
        if path.name.startswith((".", "#")) or path.name.endswith(("~", ".swp", ".tmp")):
            return False  # editors' lock, swap and backup files
        return path == config or path.parent != config.parent

    return relevant


async def _watch(workspace: Workspace, changes: Changes, stop: asyncio.Event) -> None:
    """Follow the issues folder, the templates and mailer.toml until ``stop`` is set."""
    while not stop.is_set():
        watched = workspace.watched()
        folders = {path if path.is_dir() else path.parent for path in watched}
        async for batch in awatch(
            *folders,
            watch_filter=_relevant(workspace.settings.config_path.resolve()),
            debounce=80,
            step=20,
            stop_event=stop,
            recursive=False,
            rust_timeout=1000,
        ):
            paths = [Path(name) for _, name in batch]
            await run_in_threadpool(workspace.changed, paths)
            log.info("changed: %s", ", ".join(sorted(p.name for p in paths)))
            changes.announce(workspace.version)
            if workspace.watched() != watched:
                break  # mailer.toml moved the issues or templates folder: watch the new ones


def _spam_fragment(workspace: Workspace, query: Query, env: Environment, program: str) -> str:
    view = build_view(workspace, query)
    if view.message is None or view.variant is None or view.newsletter is None:
        return ""
    file = view.file
    assert file is not None and file.issue is not None
    batch = variant_test_batch(
        file.issue,
        view.newsletter,
        workspace.settings,
        view.variant.key,
        [view.editors[0] if view.editors else str(view.newsletter.sender.email)],
        view.chosen.values if view.chosen else None,
    )
    message = MessageTemplate(batch).message(batch.recipients[0])
    return env.get_template("spam.html").render(spam=score(message.data, program))


def _send_test(workspace: Workspace, asked: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Send the variant on screen to the editors; the page never names a recipient."""
    newsletter = workspace.newsletter
    if newsletter is None:
        return {"error": "mailer.toml has problems: fix them first"}, 409
    if newsletter.schedule is None or not newsletter.schedule.editors:
        return {
            "error": "mailer.toml lists no editors to send tests to: add them to [schedule] as "
            'editors = ["you@example.org"]'
        }, 409
    query = Query.of(
        str(asked.get("issue", "")),
        {"variant": str(asked.get("variant", "")), "member": str(asked.get("member", ""))},
    )
    view = build_view(workspace, query)
    if view.file is None or view.file.issue is None or view.variant is None:
        return {"error": "this issue has problems: fix them before sending a test"}, 409
    if query.variant and parse_variant(query.variant, newsletter) is None:
        return {"error": f"'{query.variant}' is not a variant of this issue"}, 400
    editors = view.editors
    try:
        link_signer(workspace.settings)  # the same checks as `mailer send --test`
        with open_transport(workspace.settings) as transport:
            deliveries = send_variant_test(
                view.file.issue,
                newsletter,
                workspace.settings,
                transport,
                view.variant.key,
                editors,
                view.chosen.values if view.chosen else None,
            )
            name = transport.name
    except MailerError as error:
        return {"error": str(error)}, 502
    failed = [d for d in deliveries if not d.ok]
    log.info(
        "test of %s (%s) sent to %s through %s",
        view.file.slug,
        view.variant.name,
        ", ".join(editors),
        name,
    )
    where = ""
    if name == "outbox":
        where = f" (in {workspace.settings.outbox_dir / (view.file.slug + '--test')}/)"
    if failed:
        said = "; ".join(f"{d.email}: {d.error}" for d in failed)
        return {"error": f"not every test went out: {said}"}, 502
    return {
        "sent": editors,
        "variant": view.variant.name,
        "message": f"Sent {view.variant.name} to {', '.join(editors)} through {name}{where}, "
        f"subject marked {TEST_PREFIX.strip()}.",
    }, 200
