"""The members API's OpenAPI 3.1 document: valid, and the API keeps to it under fuzzing.

Schemathesis generates requests from the document served at /api/openapi.json
(valid ones and, for the negative mode, invalid ones) and checks each answer: no
5xx, a status code, content type, headers and body the document allows. The run
is kept small (a few examples per operation) so it takes well under a minute.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from helpers.web import Web
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mailer.store.apikeys import Scope, create_key
from mailer.web.api.openapi import document

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_the_document_is_valid_openapi_3_1(sqlite_web: Web) -> None:
    response = sqlite_web.client.get("/api/openapi.json")
    assert 200 == response.status_code
    document = response.json()
    assert "3.1.0" == document["openapi"]
    validate(document)  # openapi-spec-validator: raises on anything not OpenAPI 3.1
    # Generated from the models that check requests: a field added there shows here.
    create = document["components"]["schemas"]["MemberCreate"]
    assert {"email", "interests", "double_opt_in", "consent"} <= set(create["properties"])


@pytest.fixture
def fuzzed(make_web: Callable[..., Web]) -> tuple[Web, dict[str, str]]:
    web = make_web(api_requests_per_minute=100_000)
    web.add("gwen@example.org", tags=("youth-loneliness",), region="Wales")
    _, secret = create_key(web.store.engine, "fuzz", list(Scope))
    return web, {"Authorization": f"Bearer {secret}"}


OPERATIONS = [
    f"{op.method.upper()} {op.path}"
    for op in (
        result.ok() for result in schemathesis.openapi.from_dict(document()).get_all_operations()
    )
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_api_keeps_to_its_document(
    fuzzed: tuple[Web, dict[str, str]], operation: str, mode: GenerationMode
) -> None:
    """Each operation of the document the app serves, fuzzed: valid requests and invalid ones.

    (Driven with Hypothesis directly: schemathesis.pytest's fixture loader reaches into
    pytest internals that pytest 9 no longer has.)
    """
    web, headers = fuzzed
    served = schemathesis.openapi.from_url(f"{web.url}/api/openapi.json")
    method, path = operation.split(" ", 1)
    [found] = [
        op
        for op in (result.ok() for result in served.get_all_operations())
        if op.method.upper() == method and op.path == path
    ]

    @given(case=found.as_strategy(generation_mode=mode))
    @settings(
        max_examples=6,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=web.url, headers=headers, checks=CHECKS)

    fuzz()
