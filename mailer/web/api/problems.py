"""RFC 9457 problem details: every error of the members API, as ``application/problem+json``."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError
from starlette.responses import JSONResponse

from mailer.web.api.models import Problem, ProblemField

__all__ = ["PROBLEM_JSON", "ApiProblem", "from_validation", "problem_response"]

PROBLEM_JSON = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Body too large",
    422: "Not valid",
    429: "Too many requests",
    503: "Unavailable",
}


class ApiProblem(Exception):
    """An answer that is a problem; ``field`` names what in the request was wrong."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = [ProblemField(field=field, message=detail)] if field else []
        self.headers = dict(headers or {})


def from_validation(error: ValidationError, prefix: str = "") -> ApiProblem:
    """A pydantic error as a 422 naming each field (``interests.0``, ``consent.at``)."""
    problem = ApiProblem(422, "the request does not validate: see errors")
    problem.errors = [
        ProblemField(
            field=prefix + ".".join(str(part) for part in e["loc"]) or "body",
            message=e["msg"],
        )
        for e in error.errors()
    ]
    if problem.errors:
        first = problem.errors[0]
        problem.detail = f"{first.field}: {first.message}"
    return problem


def problem_response(problem: ApiProblem) -> JSONResponse:
    body = Problem(
        title=TITLES.get(problem.status, "Error"),
        status=problem.status,
        detail=problem.detail,
        errors=problem.errors,
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )
