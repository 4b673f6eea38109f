"""The members API under ``/api/v1``: for the website and the CRM.

Every request carries ``Authorization: Bearer KEY`` (a key from ``mailer
api-keys create``); the key is looked up on every request, so a revoked key stops
at once. Each key has scopes (``members:read``, ``members:write``,
``reports:read``) and a limit of MAILER_API_REQUESTS_PER_MINUTE requests (then
429 with ``Retry-After``). Errors are RFC 9457 problem details naming the field.

The pages' rules hold here too: profile text passes the header-safety check, an
address is normalised before it is stored or looked up, an update never moves a
member out of unsubscribed, bounced or complained (the import's rules), a
forgotten address is never added back, and nothing answers with a member's link
tokens. A ``POST`` with an ``Idempotency-Key`` is done once: a retry with the same
key and body gets the first answer again (``Idempotent-Replayed: true``).

The form tokens that guard the pages' forms are not needed: a browser never
sends the bearer key by itself, so no other site can make a request with it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailer.audience.choices import check_choices, chosen_interests, record_for
from mailer.audience.segments import SegmentRules, segments_of
from mailer.audience.segmentsql import segment_condition
from mailer.errors import (
    InvalidChoice,
    ReportError,
    RequestRefused,
    StoreError,
    SubscriberNotFound,
)
from mailer.store import MemberRecord, Subscriber, SubscriberStatus
from mailer.store.apikeys import ApiKey, Scope, authenticate, keep_answer, kept_answer
from mailer.store.emails import InvalidEmail, normalise_email
from mailer.store.ledger import Ledger, SendRow
from mailer.store.preferences import opted_out, save_member_choices
from mailer.store.signups import attempt, limit_key
from mailer.store.transact import read
from mailer.web.api.models import (
    IssueOut,
    IssuesOut,
    MemberCreate,
    MemberOut,
    MemberPage,
    MemberUpdate,
    SegmentOut,
    SegmentsOut,
    SendProgress,
)
from mailer.web.api.problems import ApiProblem, from_validation, problem_response
from mailer.web.archive import SLUG
from mailer.web.context import WebContext, context_of
from mailer.web.security import read_body
from mailer.web.signup import send_confirmation

__all__ = ["api_routes"]

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
API_BODY = 64 * 1024
MAX_PAGE = 200
DEFAULT_PAGE = 50

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request, WebContext, ApiKey, bytes], Awaitable[Response]]


def endpoint(scope: Scope, *, idempotent_post: bool = False) -> Callable[[Handler], Any]:
    """Wrap a handler: the key, its scope and rate, the body, problems, idempotent retries."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            web = context_of(request)
            try:
                key = await _key(request, web, scope)
                body = b""
                if request.method in ("POST", "PATCH"):
                    body = await read_body(request, API_BODY)
                if idempotent_post and request.headers.get("idempotency-key"):
                    return await _idempotent(request, web, key, body, handler)
                return await handler(request, web, key, body)
            except ApiProblem as problem:
                return problem_response(problem)
            except RequestRefused as refused:  # a body over the cap, a bad Content-Length
                return problem_response(ApiProblem(refused.status, refused.public))

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        return run

    return wrap


async def _key(request: Request, web: WebContext, scope: Scope) -> ApiKey:
    challenge = {"WWW-Authenticate": 'Bearer realm="mailer"'}
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiProblem(401, "send the API key as 'Authorization: Bearer KEY'", headers=challenge)
    key = await run_in_threadpool(authenticate, web.store.engine, given.strip())
    if key is None:
        raise ApiProblem(401, "the API key is not valid, or was revoked", headers=challenge)
    if scope not in key.scopes:
        raise ApiProblem(403, f"the API key {key.name!r} does not have the scope {scope.value}")
    per_minute = web.settings.api_requests_per_minute
    now = dt.datetime.fromtimestamp(web.clock(), dt.UTC)
    counted = limit_key("api", str(key.id))
    over = await run_in_threadpool(
        attempt, web.store.engine, {counted: per_minute}, window=dt.timedelta(minutes=1), now=now
    )
    if over:
        raise ApiProblem(
            429,
            f"over {per_minute} requests a minute for this key; try again in a minute",
            headers={"Retry-After": "60"},
        )
    return key


async def _idempotent(
    request: Request, web: WebContext, key: ApiKey, body: bytes, handler: Handler
) -> Response:
    """Do a POST once per Idempotency-Key; a retry gets the first answer again."""
    idem = request.headers["idempotency-key"].strip()
    if not 1 <= len(idem) <= 200:
        raise ApiProblem(
            400, "Idempotency-Key must be 1 to 200 characters", field="Idempotency-Key"
        )
    fingerprint = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
    ).hexdigest()
    kept = await run_in_threadpool(kept_answer, web.store.engine, key.id, idem)
    if kept is not None:
        request_hash, status, stored = kept
        if request_hash != fingerprint:
            raise ApiProblem(
                422,
                "this Idempotency-Key was used for a different request; use a new key",
                field="Idempotency-Key",
            )
        return _replayed(status, stored)
    response = await handler(request, web, key, body)
    if response.status_code < 500:
        stored = bytes(response.body).decode() if response.body else ""
        await run_in_threadpool(
            keep_answer, web.store.engine, key.id, idem, fingerprint, response.status_code, stored
        )
    return response


def _replayed(status: int, body: str) -> Response:
    headers = {"Idempotent-Replayed": "true"}
    if not body:
        return Response(status_code=status, headers=headers)
    media = "application/problem+json" if status >= 400 else "application/json"
    return Response(body, status_code=status, media_type=media, headers=headers)


def _json(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(model.model_dump(mode="json"), status_code=status, headers=headers)


def _parse(model: type[M], body: bytes) -> M:
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(400, "the body is not JSON", field="body") from None
    if not isinstance(data, dict):
        raise ApiProblem(422, "the body must be a JSON object", field="body")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise from_validation(error) from None


def _source(key: ApiKey) -> str:
    return f"api:{key.name}"


# -- members ------------------------------------------------------------------------------------


def _member_out(
    web: WebContext, member: Subscriber, out: frozenset[str] | None = None
) -> MemberOut:
    newsletter = web.newsletter
    if out is None:
        out = opted_out(web.store.engine, [member.id]).get(member.id, frozenset())
    segments = segments_of(member, newsletter) - out
    ordered = [s.name for s in newsletter.segments if s.name in segments]
    chosen = chosen_interests(member, newsletter)
    return MemberOut.of(member, [name for name in ordered if name in chosen], ordered)


def _ref(value: str) -> int | str:
    return int(value) if value.isdigit() and len(value) < 12 else value


async def _find(web: WebContext, ref: str) -> Subscriber:
    try:
        return await run_in_threadpool(web.store.get, _ref(ref))
    except SubscriberNotFound:
        raise ApiProblem(404, "there is no member with this id or address", field="ref") from None


def _cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode().rstrip("=")


def _after(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind != "after" or not number.isdigit() or len(number) > 12:
            raise ValueError(text)
        return int(number)
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(400, "the cursor is not one this API gave", field="cursor") from None


def _query_filters(web: WebContext, request: Request) -> dict[str, Any]:
    params = request.query_params
    status = params.get("status")
    if status is not None and status not in SubscriberStatus.__members__:
        raise ApiProblem(
            400, "status must be one of: " + ", ".join(SubscriberStatus), field="status"
        )
    segment = params.get("segment")
    if segment is not None and segment not in web.newsletter.segment_names:
        listed = ", ".join(web.newsletter.segment_names)
        raise ApiProblem(400, f"segment must be one of: {listed}", field="segment")
    since = None
    if params.get("updated_since") is not None:
        try:
            since = dt.datetime.fromisoformat(params["updated_since"])
        except ValueError:
            since = None
        if since is None or since.tzinfo is None:
            raise ApiProblem(
                400,
                "updated_since must be a date-time with its offset, e.g. 2026-12-01T00:00:00Z",
                field="updated_since",
            )
    raw_limit = params.get("limit", str(DEFAULT_PAGE))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
        raise ApiProblem(400, f"limit must be a number from 1 to {MAX_PAGE}", field="limit")
    return {
        "status": SubscriberStatus(status) if status else None,
        "segment": segment,
        "since": since,
        "limit": int(raw_limit),
        "after": _after(params.get("cursor")),
    }


@endpoint(Scope.members_read)
async def list_members(request: Request, web: WebContext, key: ApiKey, body: bytes) -> Response:
    """Members in id order, filtered by status, segment and updated_since; a page at a time."""
    filters = _query_filters(web, request)
    page = await run_in_threadpool(_members_page, web, filters)
    return _json(page)


def _members_page(web: WebContext, filters: dict[str, Any]) -> MemberPage:
    limit: int = filters["limit"]
    after: int = filters["after"]
    found: list[MemberOut] = []
    rules = SegmentRules.of(web.newsletter)
    # The database skips the members outside the segment; the rules below stay the judge.
    where = None
    if filters["segment"] in rules.names:
        chosen = rules.segment(filters["segment"])
        where = segment_condition(chosen, web.store.engine.dialect.name)
    while len(found) <= limit:
        batch = web.store.page(
            after_id=after,
            limit=500,
            status=filters["status"],
            updated_since=filters["since"],
            where=where,
        )
        if not batch:
            break
        outs = opted_out(web.store.engine, [m.id for m in batch])
        for member in batch:
            out = outs.get(member.id, frozenset())
            segment = filters["segment"]
            if segment is None or segment in rules.of_member(member) - out:
                found.append(_member_out(web, member, out))
            if len(found) > limit:
                break
        after = batch[-1].id
    more = len(found) > limit
    data = found[:limit]
    return MemberPage(data=data, next_cursor=_cursor(data[-1].id) if more and data else None)


@endpoint(Scope.members_read)
async def get_member(request: Request, web: WebContext, key: ApiKey, body: bytes) -> Response:
    """One member, by id or address."""
    member = await _find(web, request.path_params["ref"])
    return _json(await run_in_threadpool(_member_out, web, member))


@endpoint(Scope.members_write, idempotent_post=True)
async def create_member(request: Request, web: WebContext, key: ApiKey, body: bytes) -> Response:
    """Add a member: a double opt-in (pending, confirmation email) or with consent held."""
    given = _parse(MemberCreate, body)
    try:
        address = normalise_email(given.email).email
    except InvalidEmail as error:
        raise ApiProblem(422, f"not a valid email address: {error.reason}", field="email") from None
    choices = _choices(web, given.name, given.organisation, given.region, given.interests)
    if given.double_opt_in and given.consent is not None:
        raise ApiProblem(
            422,
            "consent is for double_opt_in: false; a double opt-in gets its own",
            field="consent",
        )
    if not given.double_opt_in and given.consent is None:
        raise ApiProblem(
            422,
            "a member added without double opt-in needs consent: {source, at}",
            field="consent",
        )
    chosen = record_for(address, choices, web.newsletter)
    record = MemberRecord(
        email=address,
        name=choices.name or None,
        organisation=choices.organisation or None,
        region=choices.region or None,
        tags=chosen.tags or None,
        status=SubscriberStatus.pending if given.double_opt_in else SubscriberStatus.active,
    )
    if given.consent is not None:
        consent = given.consent
        note = f"consent given to the caller: {consent.source} at {consent.at.isoformat()}"
    else:
        note = "double opt-in started: a confirmation email was sent"
    try:
        [member] = await run_in_threadpool(
            lambda: web.store.add([record], source=_source(key), note=note)
        )
    except StoreError as error:
        forgotten = "forgotten" in str(error)
        detail = (
            "this address was forgotten at its owner's request and may not be added again"
            if forgotten
            else "this address is already a member's; look it up, or update it with PATCH"
        )
        raise ApiProblem(409, detail, field="email") from None
    if given.double_opt_in and not await run_in_threadpool(
        send_confirmation, web, member, "members API"
    ):
        log.warning("api: the confirmation for subscriber=%d was not sent", member.id)
    log.info("api: subscriber=%d added by key %s (%s)", member.id, key.name, member.status.value)
    out = await run_in_threadpool(_member_out, web, member)
    return _json(out, 201, {"Location": f"{PREFIX}/members/{member.id}"})


def _choices(
    web: WebContext,
    name: str | None,
    organisation: str | None,
    region: str | None,
    interests: list[str] | None,
) -> Any:
    try:
        return check_choices(
            web.newsletter,
            name=name,
            organisation=organisation,
            region=region,
            interests=interests,
        )
    except InvalidChoice as problem:
        raise ApiProblem(422, str(problem), field=problem.field) from None


@endpoint(Scope.members_write)
async def update_member(request: Request, web: WebContext, key: ApiKey, body: bytes) -> Response:
    """Change name, organisation, region or interests; the status is never changed."""
    given = _parse(MemberUpdate, body)
    member = await _find(web, request.path_params["ref"])
    choices = _choices(web, given.name, given.organisation, given.region, given.interests)
    record = record_for(member.email, choices, web.newsletter, member.tags)
    try:
        await run_in_threadpool(
            lambda: save_member_choices(web.store.engine, record, source=_source(key))
        )
    except SubscriberNotFound:
        raise ApiProblem(404, "there is no member with this id or address", field="ref") from None
    member = await run_in_threadpool(web.store.get, member.id)
    return _json(await run_in_threadpool(_member_out, web, member))


@endpoint(Scope.members_write, idempotent_post=True)
async def unsubscribe_member(
    request: Request, web: WebContext, key: ApiKey, body: bytes
) -> Response:
    """Unsubscribe a member (again: no change; a bounced or complained member stays so)."""
    member = await _find(web, request.path_params["ref"])
    if member.status in (SubscriberStatus.active, SubscriberStatus.pending):
        member = await run_in_threadpool(
            lambda: web.store.unsubscribe(
                member.id, reason="unsubscribed through the members API", source=_source(key)
            )
        )
    return _json(await run_in_threadpool(_member_out, web, member))


@endpoint(Scope.members_write, idempotent_post=True)
async def forget_member(request: Request, web: WebContext, key: ApiKey, body: bytes) -> Response:
    """Erase a member and their history; the address is kept only as a hash, never re-added."""
    member = await _find(web, request.path_params["ref"])
    await run_in_threadpool(
        lambda: web.store.forget(
            member.email, reason="forgotten through the members API", source=_source(key)
        )
    )
    log.info("api: subscriber=%d forgotten by key %s", member.id, key.name)
    return Response(status_code=204)


# -- segments, issues, sends, reports ----------------------------------------------------------


@endpoint(Scope.members_read)
async def list_segments(request: Request, web: WebContext, key: ApiKey, body: bytes) -> Response:
    """Every segment, with how many active members get its sections."""
    return _json(await run_in_threadpool(_segments, web))


def _segments(web: WebContext) -> SegmentsOut:
    newsletter = web.newsletter
    rules = SegmentRules.of(newsletter)
    counts = dict.fromkeys(newsletter.segment_names, 0)
    batch: list[Subscriber] = []

    def count() -> None:
        outs = opted_out(web.store.engine, [m.id for m in batch])
        for member in batch:
            for name in rules.of_member(member) - outs.get(member.id, frozenset()):
                counts[name] += 1
        batch.clear()

    for member in web.store.active(batch_size=1000):
        batch.append(member)
        if len(batch) == 1000:
            count()
    count()
    return SegmentsOut(
        data=[
            SegmentOut(
                name=s.name,
                label=s.label,
                description=s.description,
                choosable=s.choosable,
                active_members=counts[s.name],
            )
            for s in newsletter.segments
        ],
        regions=list(newsletter.regions),
    )


@endpoint(Scope.reports_read)
async def list_issues(request: Request, web: WebContext, key: ApiKey, body: bytes) -> Response:
    """Every issue file: its date, status, the slot that sends it, and its send's state."""
    return _json(await run_in_threadpool(_issues, web))


def _issues(web: WebContext) -> IssuesOut:
    from mailer.scheduling.issues import read_catalogue
    from mailer.scheduling.slots import slots_from

    newsletter = web.newsletter
    with read(web.store.engine) as connection:
        states: dict[str, str] = {
            issue: status
            for issue, status in connection.execute(select(SendRow.issue, SendRow.status))
        }
    found: list[IssueOut] = []
    for day, checks in sorted(read_catalogue(newsletter).by_day.items()):
        slot = None
        if newsletter.schedule is not None:
            first = next(slots_from(newsletter.schedule, day))
            slot = first.utc if first.date == day else None
        for check in checks:
            issue = check.issue
            slug = issue.slug if issue is not None else _stem(check.path)
            found.append(
                IssueOut(
                    slug=slug,
                    date=issue.date if issue is not None else day,
                    subject=issue.subject if issue is not None else None,
                    status="invalid" if issue is None else issue.status,
                    slot=slot,
                    send_state=states.get(slug, "not sent"),
                )
            )
    return IssuesOut(data=found)


def _stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0]


def _slug(request: Request) -> str:
    slug = request.path_params["issue"]
    if not SLUG.fullmatch(slug):
        raise ApiProblem(404, "there is no issue by this name", field="issue")
    return str(slug)


@endpoint(Scope.reports_read)
async def send_progress(request: Request, web: WebContext, key: ApiKey, body: bytes) -> Response:
    """How far an issue's send has got: its status and recipients by delivery state."""
    slug = _slug(request)
    progress = await run_in_threadpool(_progress, web, slug)
    if progress is None:
        raise ApiProblem(404, f"the issue {slug!r} has not been sent", field="issue")
    return _json(progress)


def _progress(web: WebContext, slug: str) -> SendProgress | None:
    with read(web.store.engine) as connection:
        row = connection.execute(
            select(SendRow.started_at, SendRow.finished_at, SendRow.status).where(
                SendRow.issue == slug
            )
        ).first()
        if row is None:
            return None
        started, finished, status = row
    deliveries: dict[str, int] = {}
    for count in Ledger(web.store.engine).counts(slug):
        deliveries[count.state.value] = deliveries.get(count.state.value, 0) + count.count
    return SendProgress(
        issue=slug,
        status=status,
        started_at=started,
        finished_at=finished,
        deliveries=deliveries,
    )


@endpoint(Scope.reports_read)
async def issue_report(request: Request, web: WebContext, key: ApiKey, body: bytes) -> Response:
    """The report on a sent issue, as ``mailer report ISSUE --json`` gives it."""
    from mailer.report.build import issue_report as build_report

    slug = _slug(request)
    try:
        report = await run_in_threadpool(
            lambda: build_report(
                web.store.engine, slug, web.newsletter, base_url=web.settings.base_url
            )
        )
    except ReportError:
        raise ApiProblem(404, f"the issue {slug!r} has not been sent", field="issue") from None
    return _json(report)


async def openapi_document(request: Request) -> Response:
    """The OpenAPI 3.1 document (public: it holds nothing of the list)."""
    from mailer.web.api.openapi import document

    return JSONResponse(document(context_of(request).settings.base_url))


def api_routes() -> list[Route]:
    return [
        Route("/api/openapi.json", openapi_document, methods=["GET"]),
        Route(f"{PREFIX}/members", list_members, methods=["GET"]),
        Route(f"{PREFIX}/members", create_member, methods=["POST"]),
        Route(f"{PREFIX}/members/{{ref}}", get_member, methods=["GET"]),
        Route(f"{PREFIX}/members/{{ref}}", update_member, methods=["PATCH"]),
        Route(f"{PREFIX}/members/{{ref}}/unsubscribe", unsubscribe_member, methods=["POST"]),
        Route(f"{PREFIX}/members/{{ref}}/forget", forget_member, methods=["POST"]),
        Route(f"{PREFIX}/segments", list_segments, methods=["GET"]),
        Route(f"{PREFIX}/issues", list_issues, methods=["GET"]),
        Route(f"{PREFIX}/sends/{{issue}}", send_progress, methods=["GET"]),
        Route(f"{PREFIX}/reports/{{issue}}", issue_report, methods=["GET"]),
    ]
