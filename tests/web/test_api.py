"""The members API: keys and scopes, each endpoint, idempotent retries, limits, problems.

Against the app under a real uvicorn server, on SQLite and PostgreSQL where the
rule is the store's.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from helpers.outbox import read_eml
from helpers.web import Web, snapshot
from typer.testing import CliRunner

from mailer.cli import app as cli
from mailer.store import SubscriberStatus
from mailer.store.apikeys import Scope, create_key, revoke_key
from mailer.store.ledger import Ledger, new_owner
from mailer.web.logs import redact

ALL = (Scope.members_read, Scope.members_write, Scope.reports_read)
PROBLEM = "application/problem+json"


def key(web: Web, *scopes: Scope, name: str | None = None) -> dict[str, str]:
    """Headers with a new key of these scopes."""
    _, secret = create_key(web.store.engine, name or f"key-{uuid.uuid4().hex[:8]}", scopes or ALL)
    return {"Authorization": f"Bearer {secret}"}


def problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert status == response.status_code, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert status == body["status"] and body["title"] and body["detail"]
    if field is not None:
        assert field in [error["field"] for error in body["errors"]], body
    return body


class TestKeys:
    def test_no_key_a_wrong_key_and_a_revoked_key_get_401(self, sqlite_web: Web) -> None:
        c = sqlite_web.client
        no_key = c.get("/api/v1/members")
        problem(no_key, 401)
        assert no_key.headers["www-authenticate"].startswith("Bearer")
        problem(c.get("/api/v1/members", headers={"Authorization": "Bearer mlr_x_y"}), 401)
        headers = key(sqlite_web, name="website")
        assert 200 == c.get("/api/v1/members", headers=headers).status_code
        revoke_key(sqlite_web.store.engine, "website")  # mid-test: the next request is refused
        problem(c.get("/api/v1/members", headers=headers), 401)

    @pytest.mark.parametrize(
        ("method", "path", "needed"),
        [
            ("GET", "/api/v1/members", Scope.members_read),
            ("GET", "/api/v1/members/1", Scope.members_read),
            ("GET", "/api/v1/segments", Scope.members_read),
            ("POST", "/api/v1/members", Scope.members_write),
            ("PATCH", "/api/v1/members/1", Scope.members_write),
            ("POST", "/api/v1/members/1/unsubscribe", Scope.members_write),
            ("POST", "/api/v1/members/1/forget", Scope.members_write),
            ("GET", "/api/v1/issues", Scope.reports_read),
            ("GET", "/api/v1/sends/x", Scope.reports_read),
            ("GET", "/api/v1/reports/x", Scope.reports_read),
        ],
    )
    def test_each_endpoint_needs_its_scope(
        self, sqlite_web: Web, method: str, path: str, needed: Scope
    ) -> None:
        [m] = sqlite_web.add("a@example.org")
        path = path.replace("/1", f"/{m.id}")
        others = [s for s in ALL if s is not needed]
        before = snapshot(sqlite_web.store)
        refused = sqlite_web.client.request(method, path, headers=key(sqlite_web, *others), json={})
        problem(refused, 403)
        assert needed.value in refused.json()["detail"]
        assert before == snapshot(sqlite_web.store)
        allowed = sqlite_web.client.request(method, path, headers=key(sqlite_web, needed), json={})
        assert allowed.status_code != 403

    def test_over_the_limit_429_with_retry_after(self, make_web: Callable[..., Web]) -> None:
        web = make_web(api_requests_per_minute=3)
        headers = key(web)
        answers = [web.client.get("/api/v1/segments", headers=headers) for _ in range(4)]
        assert [200, 200, 200] == [a.status_code for a in answers[:3]]
        problem(answers[3], 429)
        assert "60" == answers[3].headers["retry-after"]
        assert 200 == web.client.get("/api/v1/segments", headers=key(web)).status_code  # per key

    def test_the_pages_form_tokens_are_not_asked_of_the_api(self, sqlite_web: Web) -> None:
        """A bearer key is the credential: no form token, no cookie."""
        created = sqlite_web.client.post(
            "/api/v1/members",
            headers=key(sqlite_web),
            json={"email": "a@example.org", "double_opt_in": True},
        )
        assert 201 == created.status_code and "set-cookie" not in created.headers


class TestMembers:
    def test_sign_up_from_a_website_is_a_double_opt_in(self, web: Web) -> None:
        created = web.client.post(
            "/api/v1/members",
            headers=key(web),
            json={
                "email": " Gwen@Example.ORG ",
                "name": "Gwen",
                "region": "wales",
                "interests": ["youth"],
            },
        )
        assert 201 == created.status_code, created.text
        body = created.json()
        assert ("Gwen@example.org", "pending", "Wales") == (
            body["email"],
            body["status"],
            body["region"],
        )
        assert ["youth"] == body["interests"] and ["youth", "wales"] == body["segments"]
        assert created.headers["location"] == f"/api/v1/members/{body['id']}"
        mail = read_eml(web.outbox / "confirmations" / "gwen@example.org.eml")
        text = mail.get_body(("plain",))
        assert text is not None and "/confirm/" in str(text.get_content())
        history = web.store.history(body["id"])
        assert "double opt-in started" in history[-1].detail
        assert "api:" in history[-1].source

    def test_consent_held_by_the_caller_makes_an_active_member(self, web: Web) -> None:
        created = web.client.post(
            "/api/v1/members",
            headers=key(web, name="crm"),
            json={
                "email": "rhys@example.org",
                "double_opt_in": False,
                "consent": {"source": "CRM: event form, Cardiff", "at": "2026-11-30T10:00:00Z"},
            },
        )
        assert (201, "active") == (created.status_code, created.json()["status"])
        history = web.store.history(created.json()["id"])
        assert [
            ("added", "api:crm"),
            ("updated", "api:crm"),
        ] == [(e.kind, e.source) for e in history]
        assert "consent given to the caller: CRM: event form, Cardiff at 2026-11-30" in (
            history[-1].detail
        )
        assert not (web.outbox / "confirmations").exists()  # no email for consent already held

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"email": "not an address"}, "email"),
            ({"email": "a@example.org", "double_opt_in": False}, "consent"),
            ({"email": "a@example.org", "name": "=?utf-8?q?Bcc=3A_x?="}, "name"),
            ({"email": "a@example.org", "organisation": "=?utf-8?b?eA==?="}, "organisation"),
            ({"email": "a@example.org", "region": "Atlantis"}, "region"),
            ({"email": "a@example.org", "interests": ["wales"]}, "interests"),
            ({"email": "a@example.org", "colour": "blue"}, "colour"),
            (
                {"email": "a@example.org", "consent": {"source": "x", "at": "2026-11-30"}},
                "consent.at",
            ),
        ],
    )
    def test_a_bad_member_is_refused_naming_the_field(
        self, sqlite_web: Web, body: dict[str, Any], field: str
    ) -> None:
        before = snapshot(sqlite_web.store)
        problem(
            sqlite_web.client.post("/api/v1/members", headers=key(sqlite_web), json=body),
            422,
            field,
        )
        assert before == snapshot(sqlite_web.store)

    def test_a_body_that_is_not_json_is_400(self, sqlite_web: Web) -> None:
        response = sqlite_web.client.post(
            "/api/v1/members", headers=key(sqlite_web), content=b"{not json"
        )
        problem(response, 400, "body")

    def test_an_existing_or_forgotten_address_is_409(self, web: Web) -> None:
        web.add("here@example.org")
        web.add("gone@example.org")
        web.store.forget("gone@example.org", reason="asked", source="test")
        headers = key(web)
        for address in ("HERE@example.org", "gone@example.org"):
            answer = web.client.post("/api/v1/members", headers=headers, json={"email": address})
            problem(answer, 409, "email")
        assert web.store.find("gone@example.org") is None

    def test_look_up_by_id_or_address(self, web: Web) -> None:
        [m] = web.add("gwen@example.org", tags=("youth-loneliness",), region="Wales")
        headers = key(web, Scope.members_read)
        by_id = web.client.get(f"/api/v1/members/{m.id}", headers=headers)
        by_address = web.client.get("/api/v1/members/GWEN@example.org", headers=headers)
        assert 200 == by_id.status_code and by_id.json() == by_address.json()
        assert ["youth", "wales"] == by_id.json()["segments"]
        assert "link_version" not in by_id.json()  # nothing that makes a member's links
        problem(web.client.get("/api/v1/members/nobody@example.org", headers=headers), 404, "ref")

    def test_list_with_filters_and_cursor_pages(self, web: Web) -> None:
        members = web.add(*[f"m{i}@example.org" for i in range(5)], tags=("in-person",))
        web.add("y@example.org", tags=("youth-loneliness",))
        web.store.unsubscribe(members[0].id, reason="t", source="t")
        headers = key(web, Scope.members_read)
        seen: list[str] = []
        url = "/api/v1/members?status=active&segment=in-person&limit=2"
        page = web.client.get(url, headers=headers).json()
        seen += [m["email"] for m in page["data"]]
        while page["next_cursor"]:
            page = web.client.get(f"{url}&cursor={page['next_cursor']}", headers=headers).json()
            seen += [m["email"] for m in page["data"]]
        assert [f"m{i}@example.org" for i in range(1, 5)] == seen
        later = web.client.get(
            "/api/v1/members?updated_since=2999-01-01T00:00:00%2B00:00", headers=headers
        )
        assert [] == later.json()["data"]
        problem(web.client.get("/api/v1/members?status=gone", headers=headers), 400, "status")
        problem(web.client.get("/api/v1/members?segment=nope", headers=headers), 400, "segment")
        problem(web.client.get("/api/v1/members?cursor=xyz", headers=headers), 400, "cursor")
        problem(
            web.client.get("/api/v1/members?updated_since=yesterday", headers=headers),
            400,
            "updated_since",
        )

    def test_update_interests_and_region(self, web: Web) -> None:
        [m] = web.add("gwen@example.org", tags=("youth-loneliness", "board"), region="Wales")
        updated = web.client.patch(
            "/api/v1/members/gwen@example.org",
            headers=key(web, Scope.members_write),
            json={"interests": ["intergenerational"], "region": "Scotland"},
        )
        assert 200 == updated.status_code, updated.text
        assert ["intergenerational"] == updated.json()["interests"]
        assert ["intergenerational", "scotland"] == updated.json()["segments"]
        member = web.store.get(m.id)
        assert (("board", "intergenerational"), "Scotland") == (member.tags, member.region)

    @pytest.mark.parametrize(
        "status",
        [SubscriberStatus.unsubscribed, SubscriberStatus.bounced, SubscriberStatus.complained],
    )
    def test_an_update_never_reactivates(self, web: Web, status: SubscriberStatus) -> None:
        [m] = web.add("gwen@example.org")
        web.store.set_status(m.id, status, reason="t", source="t")
        answer = web.client.patch(
            f"/api/v1/members/{m.id}",
            headers=key(web),
            json={"name": "Gwen", "status": "active"},
        )
        problem(answer, 422, "status")  # there is no status to set
        fine = web.client.patch(f"/api/v1/members/{m.id}", headers=key(web), json={"name": "Gwen"})
        assert (200, status.value) == (fine.status_code, fine.json()["status"])
        assert status == web.store.get(m.id).status

    def test_unsubscribe_and_forget(self, web: Web) -> None:
        [m] = web.add("gwen@example.org")
        headers = key(web, Scope.members_write, Scope.members_read)
        out = web.client.post(f"/api/v1/members/{m.id}/unsubscribe", headers=headers)
        assert (200, "unsubscribed") == (out.status_code, out.json()["status"])
        assert 204 == web.client.post(f"/api/v1/members/{m.id}/forget", headers=headers).status_code
        assert web.store.is_suppressed("gwen@example.org")
        problem(web.client.get(f"/api/v1/members/{m.id}", headers=headers), 404)
        again = web.client.post(
            "/api/v1/members", headers=headers, json={"email": "gwen@example.org"}
        )
        problem(again, 409, "email")


class TestIdempotency:
    def test_a_retried_post_is_done_once(self, web: Web) -> None:
        headers = {**key(web), "Idempotency-Key": str(uuid.uuid4())}
        body = {"email": "gwen@example.org"}
        first = web.client.post("/api/v1/members", headers=headers, json=body)
        second = web.client.post("/api/v1/members", headers=headers, json=body)
        assert (201, 201) == (first.status_code, second.status_code)
        assert first.json() == second.json()
        assert "true" == second.headers["idempotent-replayed"]
        member = web.store.find("gwen@example.org")
        assert member is not None and 2 == len(web.store.history(member.id))  # added, opt-in
        other = web.client.post(
            "/api/v1/members", headers=headers, json={"email": "rhys@example.org"}
        )
        problem(other, 422, "Idempotency-Key")
        assert web.store.find("rhys@example.org") is None
        fresh = web.client.post("/api/v1/members", headers=key(web), json=body)  # no key: 409
        problem(fresh, 409, "email")

    def test_a_retried_unsubscribe_is_logged_once(self, sqlite_web: Web) -> None:
        [m] = sqlite_web.add("gwen@example.org")
        headers = {**key(sqlite_web), "Idempotency-Key": "u-1"}
        for _ in range(3):
            answer = sqlite_web.client.post(f"/api/v1/members/{m.id}/unsubscribe", headers=headers)
            assert 200 == answer.status_code
        assert 2 == len(sqlite_web.store.history(m.id))


class TestReports:
    def test_segments_issues_sends_and_reports(self, sqlite_web: Web) -> None:
        sqlite_web.add("a@example.org", tags=("youth-loneliness",), region="Wales")
        sqlite_web.add("b@example.org", region="Wales")
        read = key(sqlite_web, Scope.members_read)
        segments = sqlite_web.client.get("/api/v1/segments", headers=read).json()
        counts = {s["name"]: s["active_members"] for s in segments["data"]}
        assert (1, 2, 0) == (counts["youth"], counts["wales"], counts["scotland"])
        assert "Wales" in segments["regions"]
        reports = key(sqlite_web, Scope.reports_read)
        slug = "2026-12-03-winter-connections"
        issues = sqlite_web.client.get("/api/v1/issues", headers=reports).json()["data"]
        winter = next(i for i in issues if i["slug"] == slug)
        assert ("not sent", "2026-12-03T09:00:00Z") == (winter["send_state"], winter["slot"])
        problem(sqlite_web.client.get(f"/api/v1/sends/{slug}", headers=reports), 404, "issue")
        problem(sqlite_web.client.get(f"/api/v1/reports/{slug}", headers=reports), 404, "issue")
        Ledger(sqlite_web.store.engine).acquire(slug, "outbox", new_owner())
        progress = sqlite_web.client.get(f"/api/v1/sends/{slug}", headers=reports)
        assert (200, "sending") == (progress.status_code, progress.json()["status"])
        report = sqlite_web.client.get(f"/api/v1/reports/{slug}", headers=reports)
        assert (200, slug) == (report.status_code, report.json()["issue"])
        issues = sqlite_web.client.get("/api/v1/issues", headers=reports).json()["data"]
        assert "sending" == next(i for i in issues if i["slug"] == slug)["send_state"]

    def test_unknown_api_paths_answer_problems(self, sqlite_web: Web) -> None:
        problem(sqlite_web.client.get("/api/v1/nothing"), 404)
        problem(sqlite_web.client.delete("/api/v1/members"), 405)


def test_the_confirmation_link_from_the_api_confirms(sqlite_web: Web) -> None:
    """The double opt-in the API starts ends as the sign-up form's does."""
    sqlite_web.client.post(
        "/api/v1/members", headers=key(sqlite_web), json={"email": "gwen@example.org"}
    )
    mail = read_eml(sqlite_web.outbox / "confirmations" / "gwen@example.org.eml")
    text = mail.get_body(("plain",))
    assert text is not None
    link = re.search(r"/confirm/\S+", str(text.get_content()))
    assert link
    page = sqlite_web.client.get(link[0])
    token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert token
    sqlite_web.client.post(link[0], data={"form_token": token[1]})
    member = sqlite_web.store.find("gwen@example.org")
    assert member is not None and SubscriberStatus.active == member.status


class TestCommand:
    """`mailer api-keys create|list|revoke`: the key printed once, only its hash kept."""

    def test_create_list_revoke(
        self, make_web: Callable[..., Web], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        web = make_web()
        monkeypatch.setenv("MAILER_DATABASE_URL", web.settings.database_url)
        runner = CliRunner()
        made = runner.invoke(
            cli,
            [
                "api-keys",
                "create",
                "website",
                "--scope",
                "members:write",
                "--scope",
                "members:read",
            ],
        )
        assert 0 == made.exit_code, made.output
        secret = made.output.strip().splitlines()[-1]
        assert secret.startswith("mlr_")
        headers = {"Authorization": f"Bearer {secret}"}
        assert 200 == web.client.get("/api/v1/members", headers=headers).status_code
        listed = runner.invoke(cli, ["api-keys", "list", "--json"])
        [entry] = json.loads(listed.output)
        assert ("website", ["members:read", "members:write"]) == (entry["name"], entry["scopes"])
        assert entry["last_used_at"] is not None and entry["revoked_at"] is None
        assert secret not in listed.output
        assert 0 == runner.invoke(cli, ["api-keys", "revoke", "website"]).exit_code
        problem(web.client.get("/api/v1/members", headers=headers), 401)
        twice = runner.invoke(cli, ["api-keys", "create", "website", "--scope", "reports:read"])
        assert 1 <= twice.exit_code and "already an API key named 'website'" in twice.output
        bad = runner.invoke(cli, ["api-keys", "create", "x", "--scope", "everything"])
        assert 2 == bad.exit_code


class TestLogs:
    def test_addresses_in_api_paths_and_change_address_tokens_are_kept_out_of_logs(
        self,
    ) -> None:
        assert 'GET /api/v1/members/[address] HTTP/1.1" 200' == redact(
            'GET /api/v1/members/Gwen%40example.org HTTP/1.1" 200'
        )
        assert "PATCH /api/v1/members/[address]/unsubscribe" == redact(
            "PATCH /api/v1/members/gwen@example.org/unsubscribe"
        )
        assert "GET /api/v1/members/42 HTTP/1.1" == redact("GET /api/v1/members/42 HTTP/1.1")
        assert "/change-address/[token]" == redact("/change-address/gAAAAABn-x_y=")
