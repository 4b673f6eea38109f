"""kill -9 during `mailer bounces fetch`, again and again: no message lost, none applied twice.

The bounce mailbox (IMAP, in the tests' Dovecot) holds a DSN for each of some
members (hard bounces) and two for each of others (a delay warning and then the
final 4.x.x failure, which together are one soft bounce). `mailer bounces fetch
--batch-size 7` runs as a real subprocess and is SIGKILLed a random few
milliseconds after it has committed a further batch, several times; then a last
run finishes. Every message must be in the log exactly once, every hard bounce
must have made its member bounced with exactly one history entry, every soft
member must have exactly one soft bounce logged, and the mailbox must be empty.

The seed is printed, so a failure can be replayed (MAILER_CRASH_SEED).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

from helpers.bounces import dsn, envelope, signer
from helpers.project import ROOT
from helpers.sending import SECRET
from imap_tools import MailBox
from servers.mail import PASSWORD, BounceMailbox, MailServers
from sqlalchemy import func, select

from mailer.store import MemberRecord, SubscriberEvent, SubscriberStatus, open_store
from mailer.store.bouncelog import BounceMessageRow
from mailer.store.eventlog import WebhookEventRow

HARD = 40
SOFT = 20  # two messages each
KILLS = 5
MAILER = [str(Path(sys.executable).with_name("mailer"))]


def fill_mailbox(
    mail_servers: MailServers, mailbox: BounceMailbox, url: str
) -> tuple[list[str], list[str]]:
    """The members, and one or two DSNs each in the mailbox (appended over IMAP)."""
    verp = signer(mailbox.address, SECRET)
    hard = [f"hard{n}@example.net" for n in range(HARD)]
    soft = [f"soft{n}@example.net" for n in range(SOFT)]
    messages: list[bytes] = []
    with open_store(url) as store:
        members = store.add([MemberRecord(email) for email in hard + soft], source="test")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    for member in members:
        to = envelope(verp, member.id, member.email)
        if member.email.startswith("hard"):
            messages.append(dsn(to, member.email, message_id=f"h{member.id}@mx.example.net"))
        else:
            messages.append(
                dsn(
                    to,
                    member.email,
                    action="delayed",
                    status="4.4.1",
                    message_id=f"d{member.id}@mx.example.net",
                )
            )
            messages.append(
                dsn(
                    to,
                    member.email,
                    status="4.4.1",
                    message_id=f"f{member.id}@mx.example.net",
                    date=later,
                )
            )
    assert mail_servers.tls is not None
    port = mail_servers.ports["imaps"]
    context = ssl.create_default_context(cafile=str(mail_servers.tls.ca))
    with MailBox("127.0.0.1", port, ssl_context=context).login(mailbox.address, PASSWORD) as box:
        for message in messages:
            box.append(message, "INBOX")
    return hard, soft


def logged(url: str) -> int:
    """Messages in the log so far (read with sqlite3 itself: cheap enough to poll)."""
    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)) as db:
        return int(
            db.execute(f"SELECT count(*) FROM {BounceMessageRow.__tablename__}").fetchone()[0]
        )


class TestKilledMidFetch:
    def test_nothing_is_lost_and_nothing_applied_twice(
        self,
        seed: int,
        tmp_path: Path,
        mail_servers: MailServers,
        bounce_mailbox: BounceMailbox,
    ) -> None:
        """After kills at random moments and a last run, each message counted exactly once."""
        rng = random.Random(seed)
        url = f"sqlite:///{tmp_path / 'mailer.db'}"
        hard, soft = fill_mailbox(mail_servers, bounce_mailbox, url)
        assert mail_servers.tls is not None
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "SENDGRID_"))},
            "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
            "MAILER_DATABASE_URL": url,
            "MAILER_TRANSPORT": "smtp",
            "MAILER_SECRET_KEY": SECRET,
            "MAILER_BOUNCE_ADDRESS": bounce_mailbox.address,
            "MAILER_BOUNCE_MAILBOX": bounce_mailbox.url("imaps"),
            "MAILER_BOUNCE_CA_FILE": str(mail_servers.tls.ca),
        }
        command = [*MAILER, "bounces", "fetch", "--batch-size", "7"]
        killed = 0
        for _ in range(KILLS):
            before = logged(url)
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while logged(url) <= before and process.poll() is None:
                assert time.monotonic() < deadline, "the fetch made no progress"
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.03))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
            process.wait()
        finished = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        assert 0 == finished.returncode, finished.stderr

        assert killed >= 1
        assert (HARD + 2 * SOFT, []) == (logged(url), bounce_mailbox.messages())
        with open_store(url) as store, store.engine.connect() as connection:
            statuses = {m.email: m.status for m in store.list_subscribers()}
            softs = connection.execute(
                select(WebhookEventRow.email, func.count())
                .where(WebhookEventRow.kind == "soft_bounce")
                .group_by(WebhookEventRow.email)
            ).all()
            changes = [
                event
                for member in store.list_subscribers()
                for event in store.history(member.id)
                if event.status_to == SubscriberStatus.bounced
            ]
        expected = {e: SubscriberStatus.bounced for e in hard} | {
            e: SubscriberStatus.active for e in soft
        }
        assert expected == statuses
        assert {(email, 1) for email in soft} == set(map(tuple, softs))
        assert HARD == len(changes) and all(isinstance(c, SubscriberEvent) for c in changes)
