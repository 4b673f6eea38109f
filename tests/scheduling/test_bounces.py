"""The scheduler reads the bounce mailbox on its own, and a mailbox that is down never stops it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.bounces import dsn, envelope, signer
from helpers.project import BASE_URL, ROOT
from helpers.scheduling import SECRET, Project, schedule_toml
from servers.mail import free_port

from mailer.config import Settings, load_newsletter
from mailer.scheduling.bounces import BouncePoller
from mailer.scheduling.runner import Runner
from mailer.scheduling.service import build_scheduler
from mailer.store import MemberRecord, SubscriberStatus, SubscriberStore, open_store

BOUNCES = "bounces@news.example.org"


def maildir(root: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def settings(database_url: str, mailbox: str, **extra: object) -> Settings:
    return Settings(
        database_url=database_url,
        bounce_address=BOUNCES,
        bounce_mailbox=mailbox,
        secret_key=SECRET,
        **extra,  # type: ignore[arg-type]
    )


def bounced_member(store: SubscriberStore, box: Path) -> str:
    """A member, and a DSN for them in the Maildir."""
    [ann] = store.add([MemberRecord("ann@example.net")], source="test")
    to = envelope(signer(BOUNCES, SECRET), ann.id, ann.email)
    (box / "new" / "1.dsn.host").write_bytes(dsn(to, ann.email, message_id="b1@mx.example.net"))
    return ann.email


class TestThePoller:
    def test_a_mailbox_that_is_down_is_reported_and_tried_again(
        self, sqlite_store: SubscriberStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Nothing answers on the port: the poll logs why and returns, and counts the failures."""
        down = f"imaps://bounces%40news.example.org:secret@127.0.0.1:{free_port()}/INBOX"
        poller = BouncePoller(settings(str(sqlite_store.engine.url), down), sqlite_store)

        with caplog.at_level(logging.WARNING, logger="mailer.scheduler"):
            results = [poller.poll(), poller.poll()]

        assert ([None, None], 2) == (results, poller.failures)
        assert "bounce mailbox not read (2 time(s) in a row; trying again in 300 s)" in caplog.text

    def test_once_the_mailbox_answers_it_is_read(
        self, sqlite_store: SubscriberStore, tmp_path: Path
    ) -> None:
        """After failures, the next poll that reaches the mailbox applies it and resets the count."""
        box = maildir(tmp_path / "bounces")
        email = bounced_member(sqlite_store, box)
        url = str(sqlite_store.engine.url)
        poller = BouncePoller(settings(url, f"maildir://{tmp_path / 'missing'}"), sqlite_store)
        poller.poll()
        poller.settings = settings(url, f"maildir://{box}")

        report = poller.poll()

        assert report is not None
        assert (0, SubscriberStatus.bounced) == (poller.failures, sqlite_store.get(email).status)


class TestTheBounceJob:
    def test_the_scheduler_has_a_bounce_job_at_the_configured_interval(
        self, sqlite_store: SubscriberStore, tmp_path: Path
    ) -> None:
        """With a bounce mailbox: a job every MAILER_BOUNCE_POLL_INTERVAL seconds, from start-up."""
        project = Project.make(tmp_path / "project", schedule_toml())
        scheduled = load_newsletter(project.config)
        given = settings(
            str(sqlite_store.engine.url), "maildir:///var/mail/b", bounce_poll_interval=120
        )
        runner = Runner(given, scheduled, sqlite_store)

        with_bounces = build_scheduler(runner, bounces=BouncePoller(given, sqlite_store))
        without = build_scheduler(runner)

        job = with_bounces.get_job("bounces")
        assert 120 == job.trigger.interval.total_seconds()
        assert ["check", "slot"] == sorted(j.id for j in without.get_jobs())


class TestARealScheduler:
    def test_python_scheduler_py_reads_the_bounce_mailbox(self, tmp_path: Path) -> None:
        """`python scheduler.py` with MAILER_BOUNCE_MAILBOX bounces the member a DSN names, at
        start-up, and stops cleanly on SIGTERM."""
        project = Project.make(tmp_path / "project", schedule_toml())
        database = f"sqlite:///{tmp_path / 'mailer.db'}"
        box = maildir(tmp_path / "bounces")
        with open_store(database) as store:
            email = bounced_member(store, box)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "SENDGRID_"))},
            "MAILER_CONFIG_PATH": str(project.config),
            "MAILER_DATABASE_URL": database,
            "MAILER_TRANSPORT": "outbox",
            "MAILER_OUTBOX_DIR": str(tmp_path / "outbox"),
            "MAILER_SECRET_KEY": SECRET,
            "MAILER_BASE_URL": BASE_URL,
            "MAILER_BOUNCE_ADDRESS": BOUNCES,
            "MAILER_BOUNCE_MAILBOX": f"maildir://{box}",
        }
        log = tmp_path / "scheduler.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, str(ROOT / "scheduler.py")], env=env, stdout=output, stderr=output
            )
        try:
            deadline = time.monotonic() + 30
            while True:
                with open_store(database) as store:
                    if store.get(email).status == SubscriberStatus.bounced:
                        break
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            assert 0 == process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert "bounce mailbox read every 300 s" in log.read_text()
