"""Several batches in flight at once (SendGrid) and a pool of SMTP connections: still exactly once.

Each test sends through the real transports to the doubles over loopback, with a
round trip per request (the SendGrid double's latency, the SMTP server's delay per
message), so that several requests really are in flight when the faults land.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from doubles.sendgrid import SendGridDouble
from doubles.smtp import SmtpServer
from helpers.members import add_members
from helpers.sending import SG_KEY, Sending
from pydantic import SecretStr

from mailer.config import AUTO_PROCESSES_FROM, Settings, TransportName, cores
from mailer.events.reconcile import reconcile
from mailer.store.ledger import Ledger
from mailer.transports import open_transport
from mailer.transports.sendgrid import SendGridTransport
from mailer.transports.smtp import SmtpTransport, parse_smtp_url

ISSUE = "2026-12-03-winter-connections"


def ledger_states(ledger: Ledger) -> dict[str, int]:
    counts = Counter[str]()
    for row in ledger.counts(ISSUE):
        counts[row.state] += row.count
    return dict(counts)


def sendgrid(double: SendGridDouble, in_flight: int, **options: Any) -> SendGridTransport:
    return SendGridTransport(
        SecretStr(SG_KEY),
        api_url=double.url,
        timeout=1.0,
        in_flight=in_flight,
        backoff=0.05,
        jitter=lambda: 0.0,
        **options,
    )


def processed_events(double: SendGridDouble) -> list[dict[str, Any]]:
    """The `processed` events SendGrid would send for what the double accepted."""
    return [
        {
            "event": "processed",
            "email": d.email,
            "sg_message_id": f"{d.message_id}.filter0001",
            **d.custom_args,
        }
        for d in double.deliveries()
    ]


class TestSendGrid:
    def test_faults_in_some_requests_in_flight_still_deliver_each_member_once(
        self, sending: Sending
    ) -> None:
        """429, 500, 503, a timeout and dropped connections (before and after SendGrid took
        the request) among the requests in flight: retried, or unknown and reconciled."""
        members = add_members(sending.store, 60)
        with SendGridDouble(latency=0.05, jitter=0.05) as double:
            double.slow_next(0, times=2)  # the first two go through
            double.fail_next(500)
            double.rate_limit_next(reset_in=1)
            double.drop_next(accept=True)  # SendGrid took it; the answer is lost
            double.slow_next(0)
            double.slow_next(3.0)  # taken, answered after the client's 1 s timeout
            double.fail_next(503)
            double.drop_next(accept=False)  # lost before SendGrid took it
            first = sending.run(sendgrid(double, 4), batch_size=5)
            assert double.most_in_flight > 1
            assert (45, 15) == (first.total("sent"), first.total("unknown"))
            assert 10 == reconcile(sending.ledger, processed_events(double)).sent
            final = sending.run(sendgrid(double, 4), resolve_unknown="resend", batch_size=5)
            counts = double.delivery_counts()
        assert (5, True) == (final.total("sent"), final.complete)
        assert {m.email: 1 for m in members} == dict(counts)
        assert {"sent": 60} == ledger_states(sending.ledger)

    def test_a_429_holds_every_request_in_flight_until_the_reset(self, sending: Sending) -> None:
        """SendGrid's rate limit is the account's: after a 429, no request goes out before
        X-RateLimit-Reset, from any thread, and then all carry on."""
        members = add_members(sending.store, 40)
        with SendGridDouble(latency=0.1) as double:
            double.slow_next(0, times=2)
            double.rate_limit_next(reset_in=2)  # the reset is a whole second: 1 to 2 s away
            summary = sending.run(sendgrid(double, 4), batch_size=4)
            received = double.received
            counts = double.delivery_counts()
        assert 40 == summary.total("sent")
        assert {m.email: 1 for m in members} == dict(counts)
        [limited] = [r.at for r in received if r.status == 429]
        # A request another thread had begun before the 429 came may still arrive after
        # it, however late a loaded machine delivers it: at most one per other thread.
        # None is begun after it until the reset; without the shared pause, the other
        # threads would have posted the 7 requests left meanwhile.
        during = [r.at - limited for r in received if limited < r.at < limited + 0.9]
        assert len(during) <= 4 - 1, during
        assert any(r.at > limited + 0.9 for r in received)

    def test_the_send_rate_holds_across_the_requests_in_flight(
        self, sending: Sending, make_settings: Callable[..., Settings]
    ) -> None:
        """MAILER_SEND_RATE=50 with 4 requests in flight: never more than a second's worth
        (plus the first burst) in any stretch of time, however many threads post."""
        add_members(sending.store, 100)
        with SendGridDouble(latency=0.3) as double:
            settings = make_settings(
                transport=TransportName.sendgrid,
                sendgrid_api_url=double.url,
                send_rate=50,
                sendgrid_concurrency=4,
            )
            with open_transport(settings) as transport:
                assert 4 == transport.batches_in_flight
                summary = sending.run(transport, batch_size=5)
            received = sorted(double.received, key=lambda r: r.at)
            most = double.most_in_flight
        assert 100 == summary.total("sent")
        assert most >= 2  # several requests were in flight while the rate held
        for i, first in enumerate(received):
            for j in range(i, len(received)):
                seconds = received[j].at - first.at
                sent = 5 * (j - i + 1)
                # The bucket holds 50; a request's 5 are taken just before it is posted.
                assert sent <= 50 + 50 * seconds + 5, (i, j, seconds)
        assert received[-1].at - received[0].at >= 0.9  # (100 - 50) / 50 s, less a little

    def test_asked_to_stop_the_requests_in_flight_are_finished_and_recorded(
        self, sending: Sending
    ) -> None:
        """SIGTERM's way: nothing more is claimed, every request in flight is answered and
        recorded; no member is left in_flight."""
        add_members(sending.store, 100)
        stop = threading.Event()
        with SendGridDouble(latency=0.2) as double:
            transport = sendgrid(double, 4, should_stop=stop.is_set)

            def should_stop() -> bool:
                if double.most_in_flight >= 3:  # SendGrid has three requests in hand
                    stop.set()
                return stop.is_set()

            summary = sending.run(transport, batch_size=5, should_stop=should_stop)
            accepted = len(double.delivery_counts())
        assert "asked to stop" == summary.stopped
        assert 15 <= accepted < 100  # several requests were in flight when it stopped
        assert {"sent": accepted} == ledger_states(sending.ledger)
        assert sending.ledger.in_flight(ISSUE) == []


class TestSmtpPool:
    def test_a_batch_is_shared_between_the_connections_each_member_once(
        self, sending: Sending
    ) -> None:
        """Four connections to a relay taking 50 ms a message, a refused address and a drop
        before a message went out (retried on a new connection): each member once."""
        members = add_members(sending.store, 40)
        with SmtpServer(delay=0.05) as server:
            server.refuse(members[7].email)
            server.drop_next("MAIL")  # nothing sent yet: retried on a new connection
            url = parse_smtp_url(server.url())
            with SmtpTransport(url, timeout=5, connections=4) as transport:
                first = sending.run(transport, batch_size=20)
            received = Counter(r for m in server.messages for r in m.rcpt_tos)
            assert server.most_at_once >= 3  # the connections really worked at once
            assert server.connections >= 4
        assert (39, 1) == (first.total("sent"), first.total("failed"))
        assert {m.email: 1 for m in members if m != members[7]} == dict(received)
        assert {"sent": 39, "failed": 1} == ledger_states(sending.ledger)

    def test_connections_the_relay_refuses_leave_their_members_to_the_others(
        self, sending: Sending
    ) -> None:
        """A relay that takes two sessions, four asked for: the two it took send everyone."""
        members = add_members(sending.store, 30)
        with SmtpServer(delay=0.01, max_connections=2) as server:
            url = parse_smtp_url(server.url())
            with SmtpTransport(url, timeout=5, connections=4) as transport:
                summary = sending.run(transport, batch_size=10)
            received = Counter(r for m in server.messages for r in m.rcpt_tos)
            connections = {m.connection for m in server.messages}
        assert (30, True) == (summary.total("sent"), summary.complete)
        assert {m.email: 1 for m in members} == dict(received)
        assert {1, 2} == connections

    def test_an_answer_lost_on_one_connection_is_unknown_and_others_carry_on(
        self, sending: Sending
    ) -> None:
        members = add_members(sending.store, 20)
        with SmtpServer(delay=0.02) as server:
            server.drop_next("DATA")
            with SmtpTransport(parse_smtp_url(server.url()), timeout=5, connections=3) as transport:
                summary = sending.run(transport, batch_size=10)
            received = Counter(r for m in server.messages for r in m.rcpt_tos)
        assert (19, 1) == (summary.total("sent"), summary.total("unknown"))
        assert {m.email: 1 for m in members} == dict(received)  # the unknown one did arrive

    def test_asked_to_stop_each_connection_ends_after_its_message(self, sending: Sending) -> None:
        """SIGTERM's way: each connection finishes the message in hand; the rest of the batch
        is recorded as not handed over, and the next run sends it."""
        members = add_members(sending.store, 60)
        stop = threading.Event()
        with SmtpServer(delay=0.05) as server:
            url = parse_smtp_url(server.url())

            def stop_once_a_message_is_in() -> None:
                # Asked to stop mid-batch: once the relay has a message, not after a fixed
                # 0.3 s, which on a loaded machine could pass before the first connection
                # was even open (0 messages taken).
                deadline = time.monotonic() + 30
                while not server.messages and time.monotonic() < deadline:
                    time.sleep(0.01)
                stop.set()

            with SmtpTransport(url, timeout=5, connections=3, should_stop=stop.is_set) as smtp:
                stopper = threading.Thread(target=stop_once_a_message_is_in)
                stopper.start()
                summary = sending.run(smtp, batch_size=60, should_stop=stop.is_set)
                stopper.join()
            taken = len(server.messages)
            assert "asked to stop" == summary.stopped
            assert 0 < taken < 60
            states = ledger_states(sending.ledger)  # the batch in hand; no other was claimed
            assert (taken, []) == (states["sent"], sending.ledger.in_flight(ISSUE))
            assert states["failed"] > 0  # its recipients not begun: left for the next run
            with SmtpTransport(url, timeout=5, connections=3) as smtp:
                again = sending.run(smtp, batch_size=60)
            received = Counter(r for m in server.messages for r in m.rcpt_tos)
        assert 60 - taken == again.total("sent")
        assert {m.email: 1 for m in members} == dict(received)


class TestDefaults:
    def test_auto_sends_a_small_list_in_one_process_and_a_large_one_per_core(self) -> None:
        settings = Settings()
        assert ("auto", "auto", "auto") == (
            settings.send_processes,
            settings.sendgrid_concurrency,
            settings.smtp_connections,
        )
        assert 1 == settings.processes_for(AUTO_PROCESSES_FROM - 1)
        assert min(4, cores()) == settings.processes_for(AUTO_PROCESSES_FROM)
        assert 3 == Settings(send_processes=3).processes_for(10)

    def test_auto_or_a_number_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MAILER_SENDGRID_CONCURRENCY", "12")
        monkeypatch.setenv("MAILER_SMTP_CONNECTIONS", "auto")
        settings = Settings()
        assert 12 == settings.sendgrid_requests_in_flight
        assert settings.smtp_connection_count > 1
        monkeypatch.setenv("MAILER_SMTP_CONNECTIONS", "0")
        with pytest.raises(ValueError, match="smtp_connections"):
            Settings()
