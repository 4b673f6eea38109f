"""GET /metrics of a real `mailer serve`, read with prometheus_client's own parser.

What the scheduler and `mailer send` did comes from the database (they are other
processes); what the web app saw is counted in it, and added up across processes
sharing PROMETHEUS_MULTIPROC_DIR. Only this machine, or a bearer token, may read it.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from helpers.databases import BACKENDS, backend_url
from helpers.events import Signer, body_of, sg_event
from helpers.project import ROOT
from helpers.serving import Served
from prometheus_client.parser import text_string_to_metric_families

from mailer.config import load_newsletter
from mailer.mail import Delivery, DeliveryState
from mailer.scheduling.slots import next_after
from mailer.store import MemberRecord, open_store
from mailer.store.ledger import Ledger, SendStatus, new_owner
from mailer.tokens import Purpose, TokenSigner

ISSUE = "2026-12-03-winter-connections"
SECRET = "a-real-secret-key-0123456789"
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(served: Served, **headers: str) -> Samples:
    response = httpx.get(f"http://127.0.0.1:{served.port}/metrics", headers=headers, timeout=30)
    assert 200 == response.status_code, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def sign_up(served: Served, address: str) -> None:
    base = f"http://127.0.0.1:{served.port}"
    form = httpx.get(f"{base}/subscribe")
    token = FORM_TOKEN.search(form.text)
    assert token
    answer = httpx.post(
        f"{base}/subscribe",
        data={"form_token": token[1], "email": address, "name": "", "website": ""},
    )
    assert 200 == answer.status_code


def post_events(served: Served, signer: Signer, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{served.port}/webhooks/sendgrid",
        content=body,
        headers={**signer.headers(body), **headers},
        timeout=30,
    )


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store whose ledger says 3 members got the issue through SendGrid and 1 did not
    (SQLite, and a PostgreSQL schema)."""
    url = backend_url(request.param, request, tmp_path)
    with open_store(url) as store:
        members = store.add(
            [MemberRecord(email=f"m{i}@example.org") for i in range(4)], source="test"
        )
        ledger, owner = Ledger(store.engine), new_owner()
        ledger.acquire(ISSUE, "sendgrid", owner)
        claim = ledger.claim(ISSUE, "default", [m.id for m in members], owner)
        states = [DeliveryState.sent] * 3 + [DeliveryState.failed]
        ledger.record(
            ISSUE,
            owner,
            [
                (claim.claimed[m.id], Delivery(m.email, state, error="refused" * (state != "sent")))
                for m, state in zip(members, states, strict=True)
            ],
        )
        ledger.release(ISSUE, owner, SendStatus.finished)
    return url


def test_a_scrape_says_what_was_sent_received_and_signed_up(
    serve: Callable[..., Served], database: str, webhook_signer: Signer
) -> None:
    served = serve(
        MAILER_DATABASE_URL=database,
        MAILER_TRANSPORT="outbox",
        MAILER_SECRET_KEY=SECRET,
        MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY=webhook_signer.public_key,
    )
    served.wait_until_serving()
    with open_store(database) as store:
        first, second = store.list_subscribers()[:2]
    batch = body_of(
        [
            sg_event("delivered", first.email, subscriber=first.id, issue=ISSUE),
            sg_event("open", second.email, subscriber=second.id, issue=ISSUE),
            sg_event("delivered", "stranger@example.org"),
        ]
    )
    assert 200 == post_events(served, webhook_signer, batch).status_code
    assert 200 == post_events(served, webhook_signer, batch).status_code  # SendGrid retried
    forged = post_events(served, Signer(), body_of([sg_event("dropped", first.email)]))
    assert 403 == forged.status_code
    sign_up(served, "new@example.org")
    token = TokenSigner([SECRET]).token(first.id, Purpose.unsubscribe)
    assert 200 == httpx.get(f"http://127.0.0.1:{served.port}/unsubscribe/{token}").status_code

    samples = scrape(served)

    assert 1 == value(samples, "mailer_database_up")
    assert 3 == value(samples, "mailer_recipients", transport="sendgrid", state="sent")
    assert 1 == value(samples, "mailer_recipients", transport="sendgrid", state="failed")
    assert 0 == value(samples, "mailer_sends_in_progress")
    assert 2 == value(samples, "mailer_webhook_events_applied_total")
    assert 3 == value(samples, "mailer_webhook_events_rejected_total", reason="duplicate")
    assert 1 == value(samples, "mailer_webhook_events_rejected_total", reason="unknown_address")
    assert 1 == value(samples, "mailer_webhook_batches_rejected_total", reason="signature")
    assert 1 == value(samples, "mailer_signups_total", outcome="requested")
    assert 1 == value(samples, "mailer_subscribers", status="pending")
    webhook = {"method": "POST", "route": "/webhooks/sendgrid", "status": "200"}
    assert 2 == value(samples, "mailer_http_request_duration_seconds_count", **webhook)
    page = {"method": "GET", "route": "/unsubscribe/{token}", "status": "200"}
    assert 1 == value(samples, "mailer_http_request_duration_seconds_count", **page)
    assert token not in httpx.get(f"http://127.0.0.1:{served.port}/metrics").text
    schedule = load_newsletter(ROOT / "mailer.toml").schedule
    assert schedule is not None
    upcoming = next_after(schedule, dt.datetime.now(dt.UTC)).utc.timestamp()
    assert upcoming == value(samples, "mailer_next_slot_timestamp_seconds")
    [(state, ready)] = [
        (dict(labels)["state"], v)
        for (name, labels), v in samples.items()
        if name == "mailer_next_slot_ready"
    ]
    assert ready == (1 if state in ("ready", "sent") else 0)
    assert 1 == value(samples, "mailer_health_problems")  # no scheduler ever ran here


def test_a_send_in_progress_is_counted_while_its_owner_runs(
    serve: Callable[..., Served], database: str
) -> None:
    served = serve(
        MAILER_DATABASE_URL=database, MAILER_TRANSPORT="outbox", MAILER_SECRET_KEY=SECRET
    )
    served.wait_until_serving()
    with open_store(database) as store:
        ledger, owner = Ledger(store.engine), new_owner()
        ledger.acquire("2026-12-17-nobody-alone-this-christmas", "smtp", owner)
        assert 1 == value(scrape(served), "mailer_sends_in_progress")
        ledger.release("2026-12-17-nobody-alone-this-christmas", owner, SendStatus.finished)
    assert 0 == value(scrape(served), "mailer_sends_in_progress")


class TestWhoMayRead:
    def test_with_a_token_only_its_bearer(self, serve: Callable[..., Served]) -> None:
        served = serve(
            MAILER_TRANSPORT="outbox",
            MAILER_SECRET_KEY=SECRET,
            MAILER_METRICS_TOKEN="scrape-token-0123456789",
        )
        served.wait_until_serving()
        url = f"http://127.0.0.1:{served.port}/metrics"
        refused = httpx.get(url)
        assert 401 == refused.status_code
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert 401 == httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code
        scrape(served, Authorization="Bearer scrape-token-0123456789")

    def test_without_one_nothing_passed_on_by_a_proxy(self, serve: Callable[..., Served]) -> None:
        """A public request reaches a local proxy, which passes it on from 127.0.0.1."""
        served = serve(MAILER_TRANSPORT="outbox", MAILER_SECRET_KEY=SECRET)
        served.wait_until_serving()
        url = f"http://127.0.0.1:{served.port}/metrics"
        for header in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}):
            refused = httpx.get(url, headers=header)
            assert 403 == refused.status_code
            assert "MAILER_METRICS_TOKEN" in refused.text
        scrape(served)

    def test_without_one_nothing_from_another_machine(self, serve: Callable[..., Served]) -> None:
        """Listening on every interface, asked at this machine's own network address."""
        address = this_machines_address()
        served = serve("--host", "0.0.0.0", MAILER_TRANSPORT="outbox", MAILER_SECRET_KEY=SECRET)
        served.wait_until_serving()
        refused = httpx.get(
            f"http://{address}:{served.port}/metrics", headers={"Host": "127.0.0.1"}
        )
        assert 403 == refused.status_code
        scrape(served)


def this_machines_address() -> str:
    """An address of this machine that is not loopback (where a route out would leave from)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("203.0.113.1", 9))  # no packet is sent: this only picks the route
            address = str(probe.getsockname()[0])
    except OSError:  # no route out: the host name's address, then
        address = socket.gethostbyname(socket.gethostname())
    assert not address.startswith("127."), "this machine has no address but loopback"
    return address


def test_several_processes_add_up_through_prometheus_multiproc_dir(
    serve: Callable[..., Served], database: str, webhook_signer: Signer, tmp_path: Path
) -> None:
    """Two `mailer serve` on one machine and database: either one's scrape counts both."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {
        "MAILER_DATABASE_URL": database,
        "MAILER_TRANSPORT": "outbox",
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY": webhook_signer.public_key,
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    one, two = serve(**env), serve(**env)
    one.wait_until_serving()
    two.wait_until_serving()
    with open_store(database) as store:
        members = store.list_subscribers()
    for served, member in zip((one, two), members, strict=False):
        body = body_of([sg_event("delivered", member.email, subscriber=member.id, issue=ISSUE)])
        assert 200 == post_events(served, webhook_signer, body).status_code
        sign_up(served, f"new-{served.port}@example.org")
    for served in (one, two):
        samples = scrape(served)
        assert 2 == value(samples, "mailer_webhook_events_applied_total")
        assert 2 == value(samples, "mailer_signups_total", outcome="requested")
        assert 3 == value(samples, "mailer_recipients", transport="sendgrid", state="sent")
