"""A batch that waits twenty minutes (a rate limit) keeps its send's lease: the clock is
moved with time-machine while another machine tries to take the send over."""

from __future__ import annotations

from helpers.members import add_members
from helpers.sending import Sending
from time_machine import TimeMachineFixture

from mailer.errors import SendRefused
from mailer.mail import Batch, Delivery
from mailer.store.ledger import Ledger
from mailer.transports.base import TransportBase
from mailer.transports.outbox import OutboxTransport

ISSUE = "2026-12-03-winter-connections"


class TwentyMinuteBatch(TransportBase):
    """The outbox, each batch taking twenty minutes (a rate limit), during which another
    machine tries to take the send."""

    name = "outbox"

    def __init__(self, outbox: OutboxTransport, clock: TimeMachineFixture, other: Ledger) -> None:
        self.outbox, self.clock, self.other = outbox, clock, other
        self.refusals: list[str] = []

    def send(self, batch: Batch) -> list[Delivery]:
        self.clock.shift(20 * 60)
        try:
            self.other.acquire(ISSUE, "sendgrid", "another-machine:4242:beef")
        except SendRefused as refused:
            self.refusals.append(str(refused))
        return self.outbox.send(batch)


def test_a_twenty_minute_batch_keeps_its_lease(
    sending: Sending, time_machine: TimeMachineFixture
) -> None:
    """A rate-limited batch that waits twenty minutes without a word: another machine is
    refused throughout, and every member ends sent (none `unknown`)."""
    time_machine.move_to("2026-12-03T09:00:00Z", tick=False)
    add_members(sending.store, 6)
    transport = TwentyMinuteBatch(
        OutboxTransport(sending.settings.outbox_dir), time_machine, Ledger(sending.store.engine)
    )
    summary = sending.run(transport, batch_size=2)
    assert 3 == len(transport.refusals)
    assert (6, 0) == (summary.total("sent"), summary.total("unknown"))
