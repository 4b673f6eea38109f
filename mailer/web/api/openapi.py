"""The members API's OpenAPI 3.1 document, made from the models that check its requests.

Pydantic writes JSON Schema draft 2020-12, which OpenAPI 3.1 takes as it is; each
model's definitions become ``components/schemas``. Served at ``/api/openapi.json``
and validated in the tests with openapi-spec-validator; Schemathesis fuzzes the
API against it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from mailer.report.models import IssueReport
from mailer.store import SubscriberStatus
from mailer.web.api.models import (
    IssuesOut,
    MemberCreate,
    MemberOut,
    MemberPage,
    MemberUpdate,
    Problem,
    SegmentsOut,
    SendProgress,
)

__all__ = ["document"]

REF = "#/components/schemas/{model}"
MODELS: tuple[tuple[type[BaseModel], str], ...] = (
    (MemberCreate, "validation"),
    (MemberUpdate, "validation"),
    (MemberOut, "serialization"),
    (MemberPage, "serialization"),
    (SegmentsOut, "serialization"),
    (IssuesOut, "serialization"),
    (SendProgress, "serialization"),
    (IssueReport, "serialization"),
    (Problem, "serialization"),
)


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model, mode in MODELS:
        schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }


def _ok(
    name: str, description: str = "OK", headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(name)}},
    }
    if headers:
        answer["headers"] = headers
    return answer


ERRORS = {
    "400": "The request is malformed: the problem names the parameter.",
    "401": "No API key, or one that is not valid or was revoked.",
    "403": "The key does not have the scope this needs.",
    "404": "No such member or issue.",
    "413": "The body is over 64 KB.",
    "422": "The body does not validate: the problem's errors name each field.",
    "429": "Over the key's requests per minute: try again after Retry-After seconds.",
    "503": "The store is unavailable for a moment: try again.",
}


def _operation(
    summary: str,
    scope: str,
    responses: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: str | None = None,
    idempotent: bool = False,
    errors: tuple[str, ...] = ("400", "401", "403", "429", "503"),
    operation_id: str,
) -> dict[str, Any]:
    all_parameters = list(parameters or [])
    if idempotent:
        all_parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Any unique string (a UUID): a retry with the same key and body "
                "gets the first answer and does nothing again, for 24 hours.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 200},
            }
        )
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "description": f"Needs the scope `{scope}`.",
        "security": [{"bearer": []}],
        "responses": {**responses, **{code: _problem(ERRORS[code]) for code in errors}},
    }
    if all_parameters:
        operation["parameters"] = all_parameters
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return operation


REF_PARAMETER = {
    "name": "ref",
    "in": "path",
    "required": True,
    "description": "The member's id, or their email address.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 320},
}
ISSUE_PARAMETER = {
    "name": "issue",
    "in": "path",
    "required": True,
    "description": "The issue's name: its file name without .yaml.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 100},
}


@cache
def document(base_url: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``/api/v1``."""
    member_write = ("400", "401", "403", "404", "413", "422", "429", "503")
    paths: dict[str, Any] = {
        "/api/v1/members": {
            "get": _operation(
                "List members",
                "members:read",
                {"200": _ok("MemberPage")},
                operation_id="listMembers",
                parameters=[
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": [s.value for s in SubscriberStatus]},
                    },
                    {"name": "segment", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "updated_since",
                        "in": "query",
                        "description": "Members changed at or after this time (with its offset).",
                        "schema": {"type": "string", "format": "date-time"},
                    },
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                    },
                ],
            ),
            "post": _operation(
                "Add a member (double opt-in, or with consent held)",
                "members:write",
                {
                    "201": _ok(
                        "MemberOut",
                        "Added: pending (a confirmation email went out) or active.",
                        {"Location": {"schema": {"type": "string"}}},
                    ),
                    "409": _problem("The address is a member's already, or was forgotten."),
                },
                operation_id="createMember",
                body="MemberCreate",
                idempotent=True,
                errors=("400", "401", "403", "413", "422", "429", "503"),
            ),
        },
        "/api/v1/members/{ref}": {
            "get": _operation(
                "Look up a member",
                "members:read",
                {"200": _ok("MemberOut")},
                operation_id="getMember",
                parameters=[REF_PARAMETER],
                errors=("400", "401", "403", "404", "429", "503"),
            ),
            "patch": _operation(
                "Update a member's profile and interests (never their status)",
                "members:write",
                {"200": _ok("MemberOut")},
                operation_id="updateMember",
                parameters=[REF_PARAMETER],
                body="MemberUpdate",
                errors=member_write,
            ),
        },
        "/api/v1/members/{ref}/unsubscribe": {
            "post": _operation(
                "Unsubscribe a member",
                "members:write",
                {"200": _ok("MemberOut")},
                operation_id="unsubscribeMember",
                parameters=[REF_PARAMETER],
                idempotent=True,
                errors=member_write,
            )
        },
        "/api/v1/members/{ref}/forget": {
            "post": _operation(
                "Forget a member (erase them; the address is never added again)",
                "members:write",
                {"204": {"description": "Forgotten."}},
                operation_id="forgetMember",
                parameters=[REF_PARAMETER],
                idempotent=True,
                errors=member_write,
            )
        },
        "/api/v1/segments": {
            "get": _operation(
                "Segments with their active members, and the regions",
                "members:read",
                {"200": _ok("SegmentsOut")},
                operation_id="listSegments",
            )
        },
        "/api/v1/issues": {
            "get": _operation(
                "Issues with their schedule slot and send state",
                "reports:read",
                {"200": _ok("IssuesOut")},
                operation_id="listIssues",
            )
        },
        "/api/v1/sends/{issue}": {
            "get": _operation(
                "A send's progress",
                "reports:read",
                {"200": _ok("SendProgress")},
                operation_id="getSend",
                parameters=[ISSUE_PARAMETER],
                errors=("400", "401", "403", "404", "429", "503"),
            )
        },
        "/api/v1/reports/{issue}": {
            "get": _operation(
                "The report on a sent issue",
                "reports:read",
                {"200": _ok("IssueReport")},
                operation_id="getReport",
                parameters=[ISSUE_PARAMETER],
                errors=("400", "401", "403", "404", "429", "503"),
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mailer members API",
            "version": "1",
            "description": "Add, update and look up members; read segments, issues, sends and "
            "reports. See docs/api.md.",
        },
        "servers": [{"url": base_url or "/"}],
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A key from `mailer api-keys create NAME --scope ...`.",
                }
            },
        },
        "paths": paths,
    }
