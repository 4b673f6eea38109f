"""The SendGrid double refuses what SendGrid refuses, so a green test means a valid request."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from doubles.sendgrid import SendGridDouble, check_mail_send

NOW = 1_767_000_000.0


def payload(**overrides: Any) -> dict[str, Any]:
    """A minimal valid Mail Send body."""
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": "ann@example.com"}], "subject": "Hi"}],
        "from": {"email": "news@example.org", "name": "News"},
        "content": [
            {"type": "text/plain", "value": "Hi"},
            {"type": "text/html", "value": "<p>Hi</p>"},
        ],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def people(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"to": [{"email": f"p{i}@example.com"}]} for i in range(start, start + count)]


def fields(body: dict[str, Any]) -> list[str | None]:
    return [e["field"] for e in check_mail_send(body, now=NOW)]


class TestRules:
    def test_the_fast_schema_check_agrees_with_jsonschema(self) -> None:
        """jsonschema-rs (the quick yes or no) and jsonschema (the errors) judge alike."""
        from doubles.sendgrid.rules import fast_validator, validator

        bodies = [
            payload(),
            payload(**{"from": None}),
            payload(personalizations=[{"to": [{"email": "not-an-address"}], "subject": "x"}]),
            payload(custom_args={"subscriber": 7}),
            payload(personalizations=[{"to": [], "subject": "x"}]),
            payload(personalizations=people(1001)),
        ]
        assert [validator().is_valid(b) for b in bodies] == [
            fast_validator().is_valid(b) for b in bodies
        ]

    def test_valid(self) -> None:
        """A well-formed body has no errors."""
        assert [] == check_mail_send(payload(), now=NOW)

    def test_schema_from_required(self) -> None:
        """The schema's own rules apply: `from` is required."""
        assert ["from"] == fields(payload(**{"from": None}))

    def test_schema_email_format(self) -> None:
        """Formats are checked: a `to` email must look like an address."""
        body = payload(personalizations=[{"to": [{"email": "not-an-address"}], "subject": "x"}])
        assert ["personalizations.0.to.0.email"] == fields(body)

    def test_custom_args_must_be_strings(self) -> None:
        """custom_args values must be strings (the corrected schema)."""
        assert ["custom_args.subscriber"] == fields(payload(custom_args={"subscriber": 7}))

    def test_empty_to(self) -> None:
        """Every personalization needs at least one `to`."""
        assert ["personalizations.0.to"] == fields(
            payload(personalizations=[{"to": [], "subject": "x"}])
        )

    def test_more_than_1000_personalizations(self) -> None:
        """1001 personalizations are refused."""
        assert ["personalizations"] == fields(payload(subject="x", personalizations=people(1001)))

    def test_more_than_1000_recipients(self) -> None:
        """More than 1000 recipients in all (to + cc + bcc) are refused."""
        items = people(600)
        items[0]["cc"] = [{"email": f"c{i}@example.com"} for i in range(401)]
        assert ["personalizations"] == fields(payload(subject="x", personalizations=items))

    def test_duplicate_address(self) -> None:
        """An address may appear only once per request, in any case."""
        items = [{"to": [{"email": "a@example.com"}]}, {"to": [{"email": "A@example.com"}]}]
        assert ["personalizations.1.to"] == fields(payload(subject="x", personalizations=items))

    def test_html_before_text(self) -> None:
        """text/plain must come before text/html."""
        content = [{"type": "text/html", "value": "<p>x</p>"}, {"type": "text/plain", "value": "x"}]
        assert ["content"] == fields(payload(content=content))

    def test_content_required(self) -> None:
        """Without a template, content is required."""
        assert ["content"] == fields(payload(content=None))

    def test_subject_required(self) -> None:
        """A subject is needed at the top or in every personalization."""
        assert ["subject"] == fields(
            payload(personalizations=[{"to": [{"email": "a@example.com"}]}])
        )

    def test_custom_args_size(self) -> None:
        """custom_args over 10,000 bytes are refused."""
        assert ["personalizations.0.custom_args"] == fields(
            payload(custom_args={"x": "y" * 10_000})
        )

    def test_substitutions_size(self) -> None:
        """substitutions over 10,000 bytes in one personalization are refused."""
        item = {
            "to": [{"email": "a@example.com"}],
            "subject": "x",
            "substitutions": {"-a-": "y" * 10_000},
        }
        assert ["personalizations.0.substitutions"] == fields(payload(personalizations=[item]))

    @pytest.mark.parametrize(
        "name",
        [
            "To",
            "from",
            "Subject",
            "Reply-To",
            "CC",
            "bcc",
            "Content-Type",
            "x-sg-id",
            "DKIM-Signature",
        ],
    )
    def test_forbidden_headers(self, name: str) -> None:
        """Headers SendGrid sets itself cannot be given, at the top or per personalization."""
        item = {"to": [{"email": "a@example.com"}], "subject": "x", "headers": {name: "v"}}
        assert [f"headers.{name}", f"personalizations.0.headers.{name}"] == fields(
            payload(headers={name: "v"}, personalizations=[item])
        )

    def test_header_values_are_strings(self) -> None:
        """Header values must be strings."""
        assert ["headers.X-Count"] == fields(payload(headers={"X-Count": 3}))

    def test_too_many_categories(self) -> None:
        """At most 10 categories."""
        assert ["categories"] == fields(payload(categories=[f"c{i}" for i in range(11)]))

    def test_long_category(self) -> None:
        """A category is 255 characters at most."""
        assert ["categories.0"] == fields(payload(categories=["x" * 256]))

    def test_non_ascii_category(self) -> None:
        """Categories are ASCII."""
        assert ["categories.0"] == fields(payload(categories=["café"]))

    def test_send_at_too_far(self) -> None:
        """send_at may be 72 hours ahead at most."""
        assert ["send_at"] == fields(payload(send_at=int(NOW) + 72 * 3600 + 60))

    def test_send_at_within_72_hours(self) -> None:
        """send_at within 72 hours is fine."""
        assert [] == fields(payload(send_at=int(NOW) + 71 * 3600))

    def test_reply_to_and_list(self) -> None:
        """reply_to and reply_to_list cannot both be given."""
        both = payload(
            reply_to={"email": "a@example.com"}, reply_to_list=[{"email": "b@example.com"}]
        )
        assert ["reply_to"] == fields(both)


@pytest.fixture
def double() -> Iterator[SendGridDouble]:
    with SendGridDouble(clock=lambda: NOW) as double:
        yield double


def post(
    double: SendGridDouble,
    body: bytes | dict[str, Any],
    *,
    key: str | None = "SG.test-key",
    content_type: str = "application/json",
) -> http.client.HTTPResponse:
    """POST to the double's /v3/mail/send and return the response."""
    host, port = double.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    connection.request("POST", "/v3/mail/send", body=data, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


class TestSendGridDouble:
    def test_accepts(self, double: SendGridDouble) -> None:
        """A valid request is answered 202 with an X-Message-Id, and recorded."""
        response = post(double, payload())
        assert (202, double.accepted[0].message_id) == (
            response.status,
            response.headers["X-Message-Id"],
        )

    def test_missing_key(self, double: SendGridDouble) -> None:
        """No Authorization header: 401, nothing accepted."""
        assert (401, []) == (post(double, payload(), key=None).status, double.accepted)

    def test_wrong_key(self, double: SendGridDouble) -> None:
        """A key other than the double's: 401."""
        assert 401 == post(double, payload(), key="SG.other").status

    @pytest.mark.parametrize(
        "content_type", ["application/json", "application/json; charset=utf-8"]
    )
    def test_json_content_types_are_taken(self, double: SendGridDouble, content_type: str) -> None:
        """A JSON body is taken with or without a charset parameter."""
        assert 202 == post(double, payload(), content_type=content_type).status

    def test_other_content_types_are_refused(self, double: SendGridDouble) -> None:
        """A body that does not say it is JSON: 400, nothing accepted."""
        response = post(double, payload(), content_type="text/plain")
        assert (400, []) == (response.status, double.accepted)

    def test_invalid_json(self, double: SendGridDouble) -> None:
        """A body that is not JSON: 400."""
        assert 400 == post(double, b"{not json").status

    def test_invalid_payload(self, double: SendGridDouble) -> None:
        """An invalid body: 400 with SendGrid's error list, nothing accepted."""
        post(
            double,
            payload(
                content=[{"type": "text/html", "value": "x"}, {"type": "text/plain", "value": "x"}]
            ),
        )
        assert (400, []) == (double.received[0].status, double.accepted)

    def test_error_body(self, double: SendGridDouble) -> None:
        """400 answers carry {"errors": [{"message", "field", "help"}]}."""
        host, port = double.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        connection.request(
            "POST",
            "/v3/mail/send",
            body=json.dumps(payload(**{"from": None})),
            headers={"Authorization": "Bearer SG.test-key"},
        )
        body = json.loads(connection.getresponse().read())
        connection.close()
        assert ["field", "help", "message"] == sorted(body["errors"][0])

    def test_too_large(self, double: SendGridDouble) -> None:
        """A body at or over the size limit: 413."""
        double.max_body_bytes = 200
        assert 413 == post(double, payload(subject="x" * 300)).status

    def test_sandbox(self, double: SendGridDouble) -> None:
        """Sandbox mode: 200, nothing accepted."""
        response = post(double, payload(mail_settings={"sandbox_mode": {"enable": True}}))
        assert (200, []) == (response.status, double.accepted)

    def test_scripted_statuses_in_order(self, double: SendGridDouble) -> None:
        """Scripted failures answer the next requests in order, then it works again."""
        double.fail_next(500)
        double.fail_next(503)
        assert [500, 503, 202] == [post(double, payload()).status for _ in range(3)]

    def test_rate_limit(self, double: SendGridDouble) -> None:
        """A scripted 429 carries X-RateLimit-Reset from the double's clock."""
        double.rate_limit_next(reset_in=10)
        response = post(double, payload())
        assert (429, str(int(NOW) + 10)) == (response.status, response.headers["X-RateLimit-Reset"])

    def test_drop(self, double: SendGridDouble) -> None:
        """A scripted drop closes the connection without an answer."""
        double.drop_next()
        with pytest.raises(http.client.RemoteDisconnected):
            post(double, payload())
        assert (None, []) == (double.received[0].status, double.accepted)

    def test_drop_after_accepting(self, double: SendGridDouble) -> None:
        """The ambiguous drop records the request as accepted before closing."""
        double.drop_next(accept=True)
        with pytest.raises(http.client.RemoteDisconnected):
            post(double, payload())
        assert 1 == double.count("ann@example.com")

    def test_counts_deliveries(self, double: SendGridDouble) -> None:
        """Deliveries are counted per address across requests, case-insensitively."""
        post(double, payload(subject="x", personalizations=people(2)))
        post(double, payload(subject="x", personalizations=[{"to": [{"email": "P0@example.com"}]}]))
        assert {"p0@example.com": 2, "p1@example.com": 1} == dict(double.delivery_counts())

    def test_records_request_sizes_without_bodies(self) -> None:
        """Without the bodies kept (a benchmark), the personalizations of each accepted
        request are still counted, in order: a refused request is not among them."""
        with SendGridDouble(keep_bodies=False) as lean:
            post(lean, payload(subject="x", personalizations=people(3)))
            post(lean, payload(subject="x", personalizations=people(2)), key="SG.wrong")
            post(lean, payload(subject="x", personalizations=people(1)))
            assert ([3, 1], b"") == (lean.request_sizes, lean.received[0].body)

    def test_substitutes(self, double: SendGridDouble) -> None:
        """A delivery shows the content with the personalization's substitutions applied."""
        item = {
            "to": [{"email": "a@example.com"}],
            "subject": "Hi -n-",
            "substitutions": {"-n-": "Ann"},
        }
        post(
            double,
            payload(personalizations=[item], content=[{"type": "text/plain", "value": "Dear -n-"}]),
        )
        got = double.delivered_to("a@example.com")
        assert ("Hi Ann", "Dear Ann") == (got.subject, got.text)
