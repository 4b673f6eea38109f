"""`GET /healthz` shows the scheduler: whether one is running, its last run and the next slot.

The app is the real one (create_app on a real database) under a real uvicorn server in
a thread, asked with httpx, while time-machine moves the clock the app reads.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from helpers.members import add_members
from helpers.owners import dead_slot_owner
from helpers.scheduling import Project, london, schedule_toml
from time_machine import TimeMachineFixture
from typer.testing import CliRunner, Result

from mailer.cli import app
from mailer.config import Settings, load_newsletter
from mailer.issues.check import load_issue
from mailer.mail import Batch, Delivery, DeliveryState
from mailer.scheduling.runner import Action, Runner
from mailer.sending.send import send_issue
from mailer.store import SubscriberStore
from mailer.transports import Transport
from mailer.transports.base import TransportBase
from mailer.transports.outbox import OutboxTransport
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


class Down(TransportBase):
    """A relay that refuses every issue batch (notices get through)."""

    name = "smtp"

    def __init__(self, notices: Transport) -> None:
        self.notices = notices

    def send(self, batch: Batch) -> list[Delivery]:
        if batch.issue.startswith("scheduler-"):
            return self.notices.send(batch)
        return [Delivery(r.email, DeliveryState.failed, error="refused") for r in batch.recipients]


class TestServiceUnavailable:
    """503 with the reason whenever the newsletter may not go out; 200 once it may again."""

    def test_a_failed_slot_until_its_issue_is_sent_by_hand(
        self,
        healthz: Callable[[], dict[str, Any]],
        project: Project,
        settings: Settings,
        store: SubscriberStore,
        time_machine: TimeMachineFixture,
    ) -> None:
        add_members(store, 3)
        path = project.write_issue("2026-12-03")
        newsletter = load_newsletter(project.config)
        outbox = OutboxTransport(settings.outbox_dir)
        scheduler = Runner(settings, newsletter, store, transport=lambda: Down(outbox))
        at = london(2026, 12, 3)
        seen: list[Action] = []
        while not seen or seen[-1] == Action.retrying:
            time_machine.move_to(at, tick=False)
            seen += [o.action for o in scheduler.tick()]
            at += dt.timedelta(minutes=1)
        assert Action.failed == seen[-1]
        problems = healthz()["problems"]
        assert 1 == len(problems) and "the slot of 2026-12-03 09:00 UTC failed" in problems[0]
        send_issue(load_issue(path, newsletter), newsletter, settings, store)
        scheduler.tick()
        assert "problems" not in healthz()

    def test_a_slot_stuck_with_a_claim_whose_owner_is_gone(
        self,
        healthz: Callable[[], dict[str, Any]],
        project: Project,
        settings: Settings,
        store: SubscriberStore,
        time_machine: TimeMachineFixture,
    ) -> None:
        project.write_issue("2026-12-03")
        at = london(2026, 12, 3).astimezone(dt.UTC)
        owner = dead_slot_owner(settings.database_url, at)
        time_machine.move_to(london(2026, 12, 3, 9, 5), tick=False)
        Runner(settings, load_newsletter(project.config), store).beat()  # a scheduler runs
        assert [f"the slot of 2026-12-03 09:00 UTC is stuck: its owner {owner} is gone"] == (
            healthz()["problems"]
        )

    def test_a_database_that_does_not_answer(
        self, settings: Settings, project: Project, tmp_path: Path
    ) -> None:
        folder = tmp_path / "data"
        folder.mkdir()
        settings.database_url = f"sqlite:///{folder / 'mailer.db'}"
        app = create_app(settings, load_newsletter(project.config))
        server, thread, client = _serve(app)
        try:
            assert 503 == client.get("/healthz").status_code  # no scheduler yet: 503 anyway
            shutil.rmtree(folder)
            app.state.web.store.engine.dispose()  # no pooled connection to the deleted file
            response = client.get("/healthz")
            assert 503 == response.status_code
            assert {
                "status": "error",
                "database": "error",
                "problems": ["the database does not answer"],
            } == response.json()
        finally:
            client.close()
            server.should_exit = True
            thread.join(10)


class TestMailerHealthAndDoctor:
    """The same answers without the web app, for the scheduler's container or systemd timer."""

    @pytest.fixture
    def cli(self, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
        monkeypatch.chdir(settings.config_path.parent)
        for name, value in (
            ("MAILER_CONFIG_PATH", str(settings.config_path)),
            ("MAILER_DATABASE_URL", settings.database_url),
            ("MAILER_OUTBOX_DIR", str(settings.outbox_dir)),
        ):
            monkeypatch.setenv(name, value)

        def run(*args: str, **env: str) -> Result:
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            return CliRunner().invoke(app, list(args))

        return run

    def test_health_exits_1_with_the_reasons_then_0(
        self,
        cli: Callable[..., Result],
        project: Project,
        settings: Settings,
        store: SubscriberStore,
        time_machine: TimeMachineFixture,
    ) -> None:
        time_machine.move_to(london(2026, 12, 1), tick=False)
        unhealthy = cli("health")
        assert 1 == unhealthy.exit_code
        assert "unhealthy: no scheduler has run on this database" in unhealthy.output
        Runner(settings, load_newsletter(project.config), store).beat()
        healthy = cli("health", "--json")
        assert 0 == healthy.exit_code, healthy.output
        data = json.loads(healthy.stdout)
        assert (True, []) == (data["healthy"], data["problems"])
        time_machine.move_to(london(2026, 12, 1, 9, 10), tick=False)  # the scheduler died
        dead = cli("health")
        assert 1 == dead.exit_code, dead.output

    def test_doctor_names_every_check_that_fails(
        self, cli: Callable[..., Result], store: SubscriberStore
    ) -> None:
        failing = cli(
            "doctor",
            "--json",
            MAILER_TRANSPORT="sendgrid",
            MAILER_SECRET_KEY="a-real-secret-key-0123456789",
            MAILER_BASE_URL="http://news.example.org",
            MAILER_NOTICE_URL="ftp://nowhere",
        )
        assert 1 == failing.exit_code
        dns = {"SPF", "DKIM", "DMARC", "bulk-sender rules"}  # the From domain's: test_doctor.py
        failed = {c["check"] for c in json.loads(failing.stdout) if not c["ok"]} - dns
        assert {"transport", "MAILER_BASE_URL", "MAILER_NOTICE_URL"} == failed
        passing = cli(
            "doctor",
            MAILER_TRANSPORT="outbox",
            MAILER_BASE_URL="https://news.example.org",
            MAILER_NOTICE_URL="https://hooks.example.org/notify",
        )
        assert 0 == passing.exit_code, passing.output
