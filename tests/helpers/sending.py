"""Sending the sample issue in a test: a send as `mailer send` makes it, a transport seam.

Members to send to are in :mod:`helpers.members`; what the outbox holds is read
with :mod:`helpers.outbox`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailer.config import Newsletter, Settings
from mailer.issues.model import Issue
from mailer.mail import Batch, Delivery
from mailer.sending.personalise import link_signer
from mailer.sending.run import SendRun, SendSummary
from mailer.store import SubscriberStore
from mailer.store.ledger import Ledger
from mailer.transports import Transport
from mailer.transports.base import TransportBase

SECRET = "test-secret-key-0123456789abcdef"
SG_KEY = "SG.test-key"


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
