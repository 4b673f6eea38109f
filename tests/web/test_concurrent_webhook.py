"""SendGrid posts in parallel: 16 signed 1,000-event batches at once to a real `mailer serve` on
PostgreSQL are all answered 2xx, and every event is applied exactly once (issue 14).

Before, write transactions were SERIALIZABLE and 16 batches in flight lost most of
their posts to 503 (serialization failures); now each batch locks its members in id
order under READ COMMITTED (mailer.events.apply).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.events import Signer, at, body_of, sg_event
from helpers.project import ROOT
from sqlalchemy import func, select

from mailer.store import MemberRecord, open_store
from mailer.store.eventlog import WebhookEventRow
from mailer.store.schema import SubscriberEventRow

MAILER = str(Path(sys.executable).with_name("mailer"))
BATCHES, SIZE, SHARED, MEMBERS = 16, 1000, 100, 300
# What a member's events make of them, by member number: the most serious wins.
TARGETS = {0: "unsubscribe", 1: "spamreport", 2: "bounce"}
FINAL = {0: "unsubscribed", 1: "complained", 2: "bounced"}


def _batches(ids: list[int], emails: list[str]) -> list[list[dict[str, Any]]]:
    """16 batches: 900 events of their own each, and 100 of the next batch's (SendGrid's retries)."""
    own: list[list[dict[str, Any]]] = []
    for b in range(BATCHES):
        events = []
        for n in range(SIZE - SHARED):
            m = (b * 37 + n) % MEMBERS
            kind = "open" if n % 3 else "delivered"
            if n % 50 == 0 and m % 4 in TARGETS:
                kind = TARGETS[m % 4]
            extra = {"type": "bounce"} if kind == "bounce" else {}
            events.append(
                sg_event(
                    kind,
                    emails[m],
                    subscriber=ids[m],
                    issue="2026-12-03-x",
                    timestamp=at(1 + n / 1000),
                    sg_event_id=f"b{b:02d}-{n:04d}",
                    **extra,
                )
            )
        own.append(events)
    return [own[b] + own[(b + 1) % BATCHES][:SHARED] for b in range(BATCHES)]


@pytest.mark.postgres
def test_sixteen_concurrent_thousand_event_batches(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    signer = Signer()
    with open_store(postgres_schema_url) as store:
        members = store.add(
            [MemberRecord(email=f"m{n:03d}@example.org") for n in range(MEMBERS)], source="test"
        )
    ids, emails = [m.id for m in members], [m.email for m in members]
    batches = _batches(ids, emails)
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILER_")},
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
        "MAILER_DATABASE_URL": postgres_schema_url,
        "MAILER_OUTBOX_DIR": str(tmp_path / "outbox"),
        "MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_key,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [MAILER, "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait(port, process, log)
        bodies = [body_of(batch) for batch in batches]

        def post(body: bytes) -> int:
            response = httpx.post(
                f"http://127.0.0.1:{port}/webhooks/sendgrid",
                content=body,
                headers=signer.headers(body),
                timeout=120,
            )
            return response.status_code

        started = time.monotonic()
        with ThreadPoolExecutor(BATCHES) as pool:
            statuses = list(pool.map(post, bodies))
        elapsed = time.monotonic() - started
    finally:
        process.terminate()
        process.wait(10)
    print(f"16 concurrent 1,000-event batches: {elapsed:.1f} s, {BATCHES / elapsed:.1f} batches/s")
    assert [200] * BATCHES == statuses, log.read_text()[-3000:]

    unique = {event["sg_event_id"] for batch in batches for event in batch}
    with open_store(postgres_schema_url) as store, store.engine.connect() as connection:
        logged = Counter(connection.scalars(select(WebhookEventRow.sg_event_id)))
        changes = Counter(
            connection.scalars(
                select(SubscriberEventRow.subscriber_id).where(SubscriberEventRow.kind == "status")
            )
        )
        statuses_now = {m.id: store.get(m.id).status.value for m in members}
        owned = connection.scalar(
            select(func.count()).where(WebhookEventRow.subscriber_id.is_not(None))
        )
    assert unique == set(logged) and {1} == set(logged.values())
    assert len(unique) == owned
    hit = {
        ids[(b * 37 + n) % MEMBERS]
        for b in range(BATCHES)
        for n in range(0, SIZE - SHARED, 50)
        if (b * 37 + n) % MEMBERS % 4 in TARGETS
    }
    for n, member_id in enumerate(ids):
        expected = FINAL[n % 4] if member_id in hit else "active"
        assert expected == statuses_now[member_id], n
        # One status entry per change: each member here gets one kind of event only.
        assert (1 if member_id in hit else 0) == changes[member_id], n


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/static/site.css", timeout=1)
            return
        except httpx.TransportError:
            if process.poll() is not None:
                raise AssertionError(f"mailer serve exited: {log.read_text()}") from None
            time.sleep(0.1)
    raise AssertionError(f"mailer serve did not start: {log.read_text()}")
