"""POST /webhooks/sendgrid under a real server: 2xx once stored, 403/400/413 otherwise, never a 500."""

from __future__ import annotations

import time
from collections.abc import Callable

from helpers.events import at, body_of, sg_event
from helpers.web import Web, snapshot

from mailer.events.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER


class TestAccepted:
    def test_a_signed_batch_is_stored_and_applied(self, web: Web) -> None:
        [m] = web.add("a@example.org")
        body = body_of(
            [
                sg_event("bounce", m.email, type="bounce", subscriber=m.id),
                sg_event("open", "x@example.org"),
            ]
        )
        response = web.post_events(body)
        assert 200 == response.status_code
        assert {"received": 2, "stored": 2, "duplicates": 0, "unknown_addresses": 1} == {
            k: response.json()[k] for k in ("received", "stored", "duplicates", "unknown_addresses")
        }
        assert "bounced" == web.store.get(m.id).status

    def test_a_replayed_batch_is_answered_2xx_and_changes_nothing(self, web: Web) -> None:
        """SendGrid retries on anything but 2xx: a duplicate must be a success."""
        [m] = web.add("a@example.org")
        body = body_of([sg_event("bounce", m.email, type="blocked", subscriber=m.id)])
        assert 200 == web.post_events(body).status_code
        before = snapshot(web.store)
        again = web.post_events(body)
        assert (200, 1) == (again.status_code, again.json()["duplicates"])
        assert before == snapshot(web.store)

    def test_out_of_order_batches_end_as_in_order(self, web: Web) -> None:
        """A complaint that arrives before the unsubscribe that preceded it still wins."""
        [m] = web.add("a@example.org")
        unsubscribe = body_of([sg_event("unsubscribe", m.email, timestamp=at(1))])
        complaint = body_of([sg_event("spamreport", m.email, timestamp=at(2))])
        assert 200 == web.post_events(complaint).status_code
        assert 200 == web.post_events(unsubscribe).status_code
        assert "complained" == web.store.get(m.id).status

    def test_a_thousand_event_batch(self, web: Web) -> None:
        members = web.add(*(f"m{n:03d}@example.org" for n in range(100)))
        body = body_of(
            [
                sg_event(
                    "delivered" if n % 2 else "open",
                    members[n % 100].email,
                    subscriber=members[n % 100].id,
                )
                for n in range(1000)
            ]
        )
        started = time.monotonic()
        response = web.post_events(body)
        assert (200, 1000) == (response.status_code, response.json()["stored"])
        assert time.monotonic() - started < 10

    def test_an_empty_batch_is_fine(self, sqlite_web: Web) -> None:
        assert 200 == sqlite_web.post_events(b"[]").status_code


class TestRefused:
    def _refused(self, web: Web, status: int, body: bytes, headers: dict[str, str]) -> None:
        if web.store.find("a@example.org") is None:
            web.add("a@example.org")
        before = snapshot(web.store)
        response = web.client.post("/webhooks/sendgrid", content=body, headers=headers)
        assert status == response.status_code, response.text
        assert "error" in response.json()
        assert before == snapshot(web.store)

    def test_no_signature(self, web: Web) -> None:
        body = body_of([sg_event("spamreport", "a@example.org")])
        self._refused(web, 403, body, {"Content-Type": "application/json"})

    def test_a_tampered_body(self, web: Web) -> None:
        body = body_of([sg_event("open", "a@example.org")])
        headers = web.signer.headers(body)
        self._refused(
            web,
            403,
            body.replace(b"open", b"spamreport"[:4]).replace(b'"open"', b'"spam"'),
            headers,
        )
        self._refused(web, 403, body + b" ", headers)

    def test_a_tampered_timestamp(self, web: Web) -> None:
        body = body_of([sg_event("spamreport", "a@example.org")])
        headers = web.signer.headers(body)
        headers[TIMESTAMP_HEADER] = str(int(headers[TIMESTAMP_HEADER]) + 1)
        self._refused(web, 403, body, headers)

    def test_a_signature_from_another_request(self, web: Web) -> None:
        body = body_of([sg_event("spamreport", "a@example.org")])
        other = web.signer.headers(body_of([sg_event("open", "a@example.org")]))
        self._refused(
            web, 403, body, {**web.signer.headers(body), SIGNATURE_HEADER: other[SIGNATURE_HEADER]}
        )

    def test_a_replayed_request_past_the_max_age(self, sqlite_web: Web) -> None:
        """A captured request sent again a day later is refused, however well signed."""
        body = body_of([sg_event("spamreport", "a@example.org")])
        self._refused(
            sqlite_web, 403, body, sqlite_web.signer.headers(body, int(time.time()) - 86400 - 60)
        )

    def test_a_body_that_is_not_a_json_array_is_400(self, web: Web) -> None:
        """Odd items in an array are kept, not refused (tests/web/test_odd_events.py)."""
        for body in (b"{not json", b'{"event": "open"}', b"[NaN]"):
            self._refused(web, 400, body, web.signer.headers(body))

    def test_an_oversized_body_is_413(self, make_web: Callable[..., Web]) -> None:
        small = make_web(app_options={"max_webhook_body": 1000})
        body = body_of([sg_event("open", "a@example.org") for _ in range(20)])
        self._refused(small, 413, body, small.signer.headers(body))

    def test_an_oversized_chunked_body_is_413(self, make_web: Callable[..., Web]) -> None:
        """No Content-Length to go by: the body is counted as it arrives."""
        small = make_web(app_options={"max_webhook_body": 1000})
        body = body_of([sg_event("open", "a@example.org") for _ in range(20)])

        def chunks():  # type: ignore[no-untyped-def]
            yield body[:500]
            yield body[500:]

        response = small.client.post(
            "/webhooks/sendgrid", content=chunks(), headers=small.signer.headers(body)
        )
        assert 413 == response.status_code

    def test_without_a_configured_key_the_webhook_is_closed(
        self, make_web: Callable[..., Web]
    ) -> None:
        closed = make_web(sendgrid_webhook_public_key=None)
        body = body_of([sg_event("spamreport", "a@example.org")])
        self._refused(closed, 403, body, closed.signer.headers(body))

    def test_get_is_not_allowed(self, sqlite_web: Web) -> None:
        assert 405 == sqlite_web.client.get("/webhooks/sendgrid").status_code


def test_a_database_that_fails_is_503_so_sendgrid_retries(make_web: Callable[..., Web]) -> None:
    """The store is gone (here: its tables dropped): 503, never 500; SendGrid will retry."""
    web = make_web()
    from sqlalchemy import text

    with web.store.engine.begin() as connection:
        connection.execute(text("DROP TABLE webhook_events"))
    body = body_of([sg_event("open", "a@example.org")])
    assert 503 == web.post_events(body).status_code
