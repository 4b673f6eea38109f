"""`GET /healthz` shows the scheduler: whether one is running, its last run and the next slot.

The app is the real one (create_app on a real database) under a real uvicorn server in
a thread, asked with httpx, while time-machine moves the clock the app reads.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from helpers.members import add_members
from helpers.scheduling import Project, london, schedule_toml
from time_machine import TimeMachineFixture

from mailer.config import Settings, load_newsletter
from mailer.scheduling.runner import Runner
from mailer.store import SubscriberStore
from mailer.web import create_app


@pytest.fixture
def healthz(settings: Settings, project: Project) -> Iterator[Callable[[], dict[str, Any]]]:
    """GET /healthz from the app, started on first use (after the test set mailer.toml up)."""
    servers: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def get() -> dict[str, Any]:
        if not servers:
            servers.append(_serve(create_app(settings, load_newsletter(project.config))))
        response = servers[0][2].get("/healthz")
        body: dict[str, Any] = response.json()
        assert "ok" == body["database"]
        healthy = 200 if not body.get("problems") else 503
        assert (healthy, "ok" if healthy == 200 else "error") == (
            response.status_code,
            body["status"],
        )
        return body

    yield get
    for server, thread, client in servers:
        client.close()
        server.should_exit = True
        thread.join(10)


def _serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, httpx.Client]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = time.monotonic()
    while not server.started:
        assert thread.is_alive() and time.monotonic() - started < 10, "the app did not start"
        time.sleep(0.01)
    return server, thread, httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}")


def test_before_any_scheduler_ran(
    healthz: Callable[[], dict[str, Any]], time_machine: TimeMachineFixture
) -> None:
    """Nothing has run yet: not running, no last run; the next slot comes from mailer.toml."""
    time_machine.move_to(london(2026, 11, 30), tick=False)
    assert {
        "running": False,
        "last_check": None,
        "last_run": None,
        "last_slot": None,
        "next_run": "2026-12-03T09:00:00+00:00",
    } == healthz()["scheduler"]


def test_after_the_scheduler_sent_a_slot(
    healthz: Callable[[], dict[str, Any]],
    project: Project,
    settings: Settings,
    store: SubscriberStore,
    time_machine: TimeMachineFixture,
) -> None:
    """A running scheduler that sent the 3 December issue: its last run, and the next slot."""
    add_members(store, 3)
    project.write_issue("2026-12-03")
    time_machine.move_to(london(2026, 12, 3), tick=False)
    scheduler = Runner(settings, load_newsletter(project.config), store)
    scheduler.tick()
    time_machine.move_to(london(2026, 12, 3, 9, 1), tick=False)
    health = healthz()["scheduler"]
    assert {
        "slot": "2026-12-03T09:00:00+00:00",
        "issue": "2026-12-03-bulletin",
        "outcome": "sent",
        "finished_at": "2026-12-03T09:00:00+00:00",
    } == {k: v for k, v in health["last_run"].items() if k != "detail"}
    assert (True, "2026-12-03T09:00:00+00:00", "2026-12-17T09:00:00+00:00") == (
        health["running"],
        health["last_check"],
        health["next_run"],
    )

    assert "problems" not in healthz()  # 200: the newsletter is going out
    # Silent for ten minutes (the service beats every 15 s): not running any more, and 503.
    time_machine.move_to(london(2026, 12, 3, 9, 10), tick=False)
    body = healthz()
    assert body["scheduler"]["running"] is False
    assert ["the scheduler's heartbeat is stale: last at 2026-12-03 09:00:00 UTC"] == body[
        "problems"
    ]
    # Checked again, then stopped cleanly: not running either.
    scheduler.tick()
    assert healthz()["scheduler"]["running"] is True
    scheduler.stopped()
    assert healthz()["scheduler"]["running"] is False


def test_next_run_in_summer_is_eight_utc(
    healthz: Callable[[], dict[str, Any]], time_machine: TimeMachineFixture
) -> None:
    time_machine.move_to(dt.datetime(2027, 4, 1, tzinfo=dt.UTC), tick=False)
    health = healthz()["scheduler"]
    assert ("2027-04-08T08:00:00+00:00", "2027-03-25T09:00:00+00:00") == (
        health["next_run"],
        health["last_slot"],
    )


def test_without_a_schedule_there_is_no_scheduler(
    healthz: Callable[[], dict[str, Any]], project: Project
) -> None:
    project.config.write_text(project.config.read_text().replace(schedule_toml(), ""))
    assert healthz()["scheduler"] is None
