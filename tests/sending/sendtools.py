"""What the sending tests share (imported by name: every test folder has its own conftest):
the sample issue's path, members in three variants, a send, a transport seam, .eml reading.

Members come in three variants of the sample issue (2026-12-03-winter-connections):
number ``n`` is in ``youth`` when n % 3 == 0, in ``wales`` when n % 3 == 1, and in
no segment of the issue (``general``) otherwise.
"""

from __future__ import annotations

import email
import email.policy
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from mailer.config import Newsletter, Settings
from mailer.issues.model import Issue
from mailer.mail import Batch, Delivery
from mailer.sending.personalise import link_signer
from mailer.sending.run import SendRun, SendSummary
from mailer.store import MemberRecord, Subscriber, SubscriberStore
from mailer.store.ledger import Ledger
from mailer.transports import Transport
from mailer.transports.base import TransportBase

ROOT = Path(__file__).resolve().parent.parent.parent
ISSUE_PATH = ROOT / "issues" / "2026-12-03-winter-connections.yaml"
SECRET = "test-secret-key-0123456789abcdef"
BASE_URL = "https://news.example.org"
SG_KEY = "SG.test-key"


def member(n: int) -> MemberRecord:
    """Member number n, in the youth, wales or general variant by n % 3."""
    tags: tuple[str, ...] = ("youth-loneliness",) if n % 3 == 0 else ()
    region = "Wales" if n % 3 == 1 else "Yorkshire and the Humber"
    return MemberRecord(
        email=f"member{n:03d}@example.org",
        name=f"Member{n:03d} Tester",
        organisation=f"Group {n} & Co",
        region=region,
        tags=tags,
    )


def add_members(store: SubscriberStore, count: int, start: int = 0) -> list[Subscriber]:
    return store.add([member(n) for n in range(start, start + count)], source="test")


def dead_owner() -> str:
    """A lease owner on this host whose process has exited, as after a kill -9."""
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return f"{socket.gethostname()}:{finished.stdout.strip()}:0"


@dataclass
class Sending:
    """Sends the sample issue from a store through a transport, as `mailer send` does."""

    store: SubscriberStore
    issue: Issue
    newsletter: Newsletter
    settings: Settings
    runs: list[SendRun] = field(default_factory=list)

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.store.engine)

    def run(
        self,
        transport: Transport,
        *,
        batch_size: int = 1000,
        resolve_unknown: Any = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> SendSummary:
        send = SendRun(
            self.issue,
            self.newsletter,
            self.settings,
            self.store,
            self.ledger,
            transport,
            link_signer(self.settings),
            batch_size=batch_size,
        )
        self.runs.append(send)
        send.start(resolve_unknown=resolve_unknown)
        return send.run(should_stop=should_stop)


class AfterEachBatch(TransportBase):
    """A test seam: a real transport, with a hook run after each batch it sends.

    The hook gets the number of the batch just sent (1 for the first), so a test can
    act between batches, e.g. unsubscribe a member the way the web app would.
    """

    def __init__(self, transport: Transport, hook: Callable[[int], None]) -> None:
        self.transport = transport
        self.name = transport.name
        self.hook = hook
        self.batches: list[Batch] = []

    def send(self, batch: Batch) -> list[Delivery]:
        deliveries = self.transport.send(batch)
        self.batches.append(batch)
        self.hook(len(self.batches))
        return deliveries

    def close(self) -> None:
        self.transport.close()


def read_eml(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def outbox_files(folder: Path) -> dict[str, EmailMessage]:
    """Each .eml in a folder, parsed, by its recipient's address."""
    return {
        str(read_eml(path)["To"].addresses[0].addr_spec): read_eml(path)
        for path in sorted(folder.glob("*.eml"))
    }
