"""Sending the sample issue end to end: outbox, SMTP (aiosmtpd) and SendGrid (the double),
with every header checked, re-runs, fault injection, a mid-send unsubscribe and stopping."""

from __future__ import annotations

import gc
import html
import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from doubles.sendgrid import SendGridDouble
from doubles.smtp import SmtpServer
from helpers.members import add_members
from helpers.outbox import outbox_files
from helpers.owners import dead_sender
from helpers.project import BASE_URL
from helpers.sending import SG_KEY, AfterEachBatch, Sending
from pydantic import SecretStr

from mailer.config import TransportName
from mailer.errors import SendRefused
from mailer.events.reconcile import reconcile
from mailer.mail import DeliveryState
from mailer.sending.run import SEND_GC_THRESHOLDS, SendStopped
from mailer.store import Subscriber, SubscriberStatus
from mailer.store.ledger import Ledger
from mailer.tokens import Purpose, read_token
from mailer.transports import open_transport
from mailer.transports.outbox import OutboxTransport
from mailer.transports.sendgrid import SendGridTransport

ISSUE = "2026-12-03-winter-connections"
POSTAL = "Connected Communities Coalition, 12 Fairfield Court, Leeds LS2 7EW, United Kingdom"
SUBJECTS = {
    0: "Winter connections: a new youth toolkit, warm spaces and your January invitation",
    1: "Shwmae! Winter connections: warm spaces, Christmas support and your January invitation",
    2: "Winter connections: warm spaces, Christmas support and your January invitation",
}
LINK = re.compile(re.escape(BASE_URL) + r"/(unsubscribe|preferences)/([A-Za-z0-9_.-]+)")


def number(subscriber: Subscriber) -> int:
    return int(subscriber.email[len("member") : len("member") + 3])


def check_message(message: EmailMessage, member: Subscriber, sending: Sending) -> None:
    """Every header and part a newsletter email must have, for this member."""
    assert message["Message-ID"] and message["Date"]
    assert "Connected Communities <newsletter@connected-communities.example.org>" == str(
        message["From"]
    )
    assert "hello@connected-communities.example.org" == str(message["Reply-To"])
    assert member.email == message["To"].addresses[0].addr_spec
    assert SUBJECTS[number(member) % 3] == str(message["Subject"])
    assert '"Connected Communities" <news.connected-communities.example.org>' == str(
        message["List-Id"]
    )
    assert "List-Unsubscribe=One-Click" == str(message["List-Unsubscribe-Post"])
    header = str(message["List-Unsubscribe"])
    match = re.fullmatch(rf"<({re.escape(BASE_URL)}/unsubscribe/(\S+))>", header)
    assert match, header
    url, token = match.groups()
    assert member.id == read_token(token, Purpose.unsubscribe, sending.settings)
    assert "multipart/alternative" == message.get_content_type()
    text, html_part = message.iter_parts()
    assert ("text/plain", "text/html") == (text.get_content_type(), html_part.get_content_type())
    body_text, body_html = text.get_content(), html_part.get_content()
    assert url in body_text and html.escape(url) in body_html  # the visible unsubscribe link
    # The text part is wrapped at 72 columns: the address may run over two lines.
    assert POSTAL in " ".join(body_text.split()) and POSTAL in html.unescape(body_html)
    assert (
        f"Hello {member.name.split()[0]}" in body_text
        or f"Shwmae {member.name.split()[0]}" in body_text
    )
    assert f"{BASE_URL}/archive/{ISSUE}" in body_html
    preferences = re.search(re.escape(BASE_URL) + r"/preferences/([A-Za-z0-9_.-]+)", body_text)
    assert preferences and member.id == read_token(preferences[1], "preferences", sending.settings)


class TestOutbox:
    def test_each_member_gets_one_complete_message(self, sending: Sending) -> None:
        """Every active member gets their variant once, with every header and part, as a file."""
        members = add_members(sending.store, 7)
        with OutboxTransport(sending.settings.outbox_dir) as transport:
            summary = sending.run(transport, batch_size=3)
        files = outbox_files(sending.settings.outbox_dir / ISSUE)
        assert sorted(m.email for m in members) == sorted(files)
        for member in members:
            check_message(files[member.email], member, sending)
        assert (7, True) == (summary.total("sent"), summary.complete)
        assert {"general": 2, "wales": 2, "youth": 3} == {
            v.variant: v.sent for v in summary.variants.values()
        }

    def test_a_second_run_sends_nothing_and_says_so(self, sending: Sending) -> None:
        """Re-running sends only to those who do not have it yet: here, nobody."""
        add_members(sending.store, 4)
        with OutboxTransport(sending.settings.outbox_dir) as transport:
            sending.run(transport)
            before = {
                p.name: p.stat().st_mtime_ns
                for p in (sending.settings.outbox_dir / ISSUE).iterdir()
            }
            again = sending.run(transport)
        after = {
            p.name: p.stat().st_mtime_ns for p in (sending.settings.outbox_dir / ISSUE).iterdir()
        }
        assert (0, 4) == (again.total("sent"), again.total("already_sent"))
        assert before == after

    def test_a_member_who_joined_since_gets_it_on_the_next_run(self, sending: Sending) -> None:
        """Only the new member is sent to when the send runs again."""
        add_members(sending.store, 3)
        with OutboxTransport(sending.settings.outbox_dir) as transport:
            sending.run(transport)
            add_members(sending.store, 1, start=3)
            again = sending.run(transport)
        assert (1, 3) == (again.total("sent"), again.total("already_sent"))

    def test_an_interrupted_send_is_settled_from_the_files(self, sending: Sending) -> None:
        """Rows a killed send left in flight are sent if their file exists, else sent now."""
        written, unwritten = add_members(sending.store, 2)
        dead_sender(sending.settings.database_url, ISSUE, claim=[written.id, unwritten.id])
        folder = sending.settings.outbox_dir / ISSUE
        folder.mkdir(parents=True)
        (folder / f"{written.email}.eml").write_bytes(b"Subject: written before the crash\r\n\r\n.")
        (folder / ".partial.tmp").write_bytes(b"half a message")
        with OutboxTransport(sending.settings.outbox_dir) as transport:
            summary = sending.run(transport)
        assert (1, 1) == (summary.settled.sent, summary.settled.resend)
        assert 1 == summary.total("sent")
        assert (folder / f"{unwritten.email}.eml").exists()
        assert b"written before the crash" in (folder / f"{written.email}.eml").read_bytes()
        assert not (folder / ".partial.tmp").exists()

    def test_a_send_written_to_another_folder_is_settled_from_that_folder(
        self, sending: Sending, tmp_path: Path
    ) -> None:
        """Two schedulers with different working folders on one database: the one taking over
        looks in the folder the dead one wrote to (the ledger records it), not its own, and
        writes nobody twice."""
        written, unwritten = add_members(sending.store, 2)
        elsewhere = tmp_path / "other-scheduler" / "outbox"
        dead_sender(
            sending.settings.database_url,
            ISSUE,
            claim=[written.id, unwritten.id],
            outbox_dir=str(elsewhere),
        )
        (elsewhere / ISSUE).mkdir(parents=True)
        (elsewhere / ISSUE / f"{written.email}.eml").write_bytes(b"Subject: written\r\n\r\n.")
        assert elsewhere != sending.settings.outbox_dir
        with OutboxTransport(sending.settings.outbox_dir) as transport:
            summary = sending.run(transport)
        assert (1, 1) == (summary.settled.sent, summary.settled.resend)
        own = sending.settings.outbox_dir / ISSUE
        assert [f"{unwritten.email}.eml"] == sorted(p.name for p in own.iterdir())

    def test_a_folder_this_process_cannot_see_is_refused_naming_it(
        self, sending: Sending, tmp_path: Path
    ) -> None:
        written, unwritten = add_members(sending.store, 2)
        gone = tmp_path / "on-another-machine"
        dead_sender(
            sending.settings.database_url,
            ISSUE,
            claim=[written.id, unwritten.id],
            outbox_dir=str(gone),
        )
        with (
            OutboxTransport(sending.settings.outbox_dir) as transport,
            pytest.raises(SendRefused, match=re.escape(str(gone))),
        ):
            sending.run(transport)
        assert not (sending.settings.outbox_dir / ISSUE).exists()
        states = Ledger(sending.store.engine).in_flight(ISSUE)
        assert {written.id, unwritten.id} == {row.subscriber_id for row in states}


class TestSmtp:
    @pytest.fixture
    def smtp_sending(self, sending: Sending, smtp_server: SmtpServer) -> Sending:
        sending.settings = sending.settings.model_copy(
            update={"transport": TransportName.smtp, "smtp_url": SecretStr(smtp_server.url())}
        )
        return sending

    def test_each_member_gets_one_complete_message(
        self, smtp_sending: Sending, smtp_server: SmtpServer
    ) -> None:
        """Through a real SMTP server: one message per member, envelope and headers right."""
        members = add_members(smtp_sending.store, 5)
        with open_transport(smtp_sending.settings) as transport:
            summary = smtp_sending.run(transport, batch_size=2)
        assert 5 == summary.total("sent")
        for member in members:
            [mail] = smtp_server.received_by(member.email)
            assert "newsletter@connected-communities.example.org" == mail.mail_from
            check_message(mail.message, member, smtp_sending)

    def test_a_refused_address_fails_alone_and_is_not_retried(
        self, smtp_sending: Sending, smtp_server: SmtpServer
    ) -> None:
        """550 for one address fails that member only, for good; the rest are sent."""
        members = add_members(smtp_sending.store, 3)
        smtp_server.refuse(members[1].email)
        with open_transport(smtp_sending.settings) as transport:
            first = smtp_sending.run(transport)
            again = smtp_sending.run(transport)
        assert (2, 1) == (first.total("sent"), first.total("failed"))
        assert any("550" in reason for v in first.variants.values() for reason in v.reasons)
        assert (0, 0, 1) == (
            again.total("sent"),
            again.total("failed"),
            again.total("failed_before"),
        )
        assert [] == smtp_server.received_by(members[1].email)

    def test_an_unanswered_message_is_unknown_and_never_resent(
        self, smtp_sending: Sending, smtp_server: SmtpServer
    ) -> None:
        """The connection drops after the message went out: unknown, and not sent again."""
        members = add_members(smtp_sending.store, 2)
        smtp_server.drop_next("DATA")
        with open_transport(smtp_sending.settings) as transport:
            first = smtp_sending.run(transport)
            again = smtp_sending.run(transport)
        assert (1, 1) == (first.total("sent"), first.total("unknown"))
        assert (0, 1, False) == (again.total("sent"), again.total("unknown"), again.complete)
        assert [1, 1] == [len(smtp_server.received_by(m.email)) for m in members]


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class TestSendGrid:
    @pytest.fixture
    def make_transport(self, sendgrid_double: SendGridDouble) -> Callable[..., SendGridTransport]:
        """The SendGrid transport aimed at the double, recording its waits instead of waiting."""

        def make(**options: Any) -> SendGridTransport:
            key = SecretStr(options.pop("key", SG_KEY))
            return SendGridTransport(
                key,
                api_url=sendgrid_double.url,
                timeout=2.0,
                sleep=Sleeps(),
                jitter=lambda: 0.0,
                **options,
            )

        return make

    def test_one_request_per_batch_and_one_message_per_member(
        self,
        sending: Sending,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
    ) -> None:
        """Each batch is one Mail Send request; each member is in exactly one, with custom_args."""
        members = add_members(sending.store, 7)
        summary = sending.run(make_transport(), batch_size=2)
        assert (7, 4) == (
            summary.total("sent"),
            len(sendgrid_double.accepted),
        )  # youth 2+1, wales 2, general 2
        for member in members:
            delivered = sendgrid_double.delivered_to(member.email)
            assert {"issue": ISSUE, "subscriber": str(member.id)} == delivered.custom_args
            assert SUBJECTS[number(member) % 3] == delivered.subject
            assert delivered.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert (
                delivered.headers["List-Id"]
                == '"Connected Communities" <news.connected-communities.example.org>'
            )
            [(_, token)] = re.findall(
                r"<" + LINK.pattern + ">", delivered.headers["List-Unsubscribe"]
            )
            assert member.id == read_token(token, "unsubscribe", sending.settings)
            assert delivered.text and f"{BASE_URL}/unsubscribe/{token}" in delivered.text
            assert delivered.html and POSTAL in html.unescape(delivered.html)
        payload = sendgrid_double.accepted[0].payload
        assert ["text/plain", "text/html"] == [part["type"] for part in payload["content"]]
        assert "hello@connected-communities.example.org" == payload["reply_to"]["email"]

    def test_429_and_500_are_retried(
        self,
        sending: Sending,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
    ) -> None:
        """Rate limiting and a server error are waited out and retried; nobody gets two."""
        members = add_members(sending.store, 3)
        sendgrid_double.rate_limit_next(reset_in=1)
        sendgrid_double.fail_next(500)
        summary = sending.run(make_transport())
        assert 3 == summary.total("sent")
        assert {m.email for m in members} == set(sendgrid_double.delivery_counts())
        assert {1} == set(sendgrid_double.delivery_counts().values())

    def test_a_wrong_key_stops_the_send(
        self,
        sending: Sending,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
    ) -> None:
        """401 on a batch stops the whole send at once with a clear error; a fixed key carries on."""
        add_members(sending.store, 6)
        with pytest.raises(SendStopped, match="SENDGRID_API_KEY") as stopped:
            sending.run(make_transport(key="SG.revoked"), batch_size=2)
        assert 1 == len(sendgrid_double.received)  # nothing more went out after the failed batch
        assert 2 == stopped.value.summary.total("failed")
        summary = sending.run(make_transport())
        assert (6, True) == (summary.total("sent"), summary.complete)
        assert {1} == set(sendgrid_double.delivery_counts().values())

    def test_an_unanswered_request_is_unknown_then_reconciled(
        self,
        sending: Sending,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
    ) -> None:
        """SendGrid took it but the answer was lost: unknown, not resent, then settled from events."""
        members = add_members(sending.store, 2, start=2)  # general and youth: two requests
        sendgrid_double.drop_next(accept=True)
        first = sending.run(make_transport())
        again = sending.run(make_transport())
        assert (1, 1) == (first.total("sent"), first.total("unknown"))
        assert (0, 1) == (again.total("sent"), again.total("unknown"))
        assert {m.email: 1 for m in members} == dict(sendgrid_double.delivery_counts())
        events = [
            {
                "event": "processed",
                "email": d.email,
                "sg_message_id": f"{d.message_id}.filter0001",
                **d.custom_args,
            }
            for d in sendgrid_double.deliveries()
        ]
        assert 1 == reconcile(sending.ledger, events).sent
        final = sending.run(make_transport())
        assert (0, 0, True) == (final.total("sent"), final.total("unknown"), final.complete)

    def test_unknown_without_events_is_resent_only_when_the_operator_says(
        self,
        sending: Sending,
        sendgrid_double: SendGridDouble,
        make_transport: Callable[..., SendGridTransport],
    ) -> None:
        """A request dropped before SendGrid took it: no event comes, and resend delivers it once."""
        [member] = add_members(sending.store, 1)
        sendgrid_double.drop_next(accept=False)
        assert 1 == sending.run(make_transport()).total("unknown")
        assert 0 == reconcile(sending.ledger, []).sent
        resent = sending.run(make_transport(), resolve_unknown="resend")
        assert (1, 1) == (resent.total("sent"), resent.settled.resolved)
        assert 1 == sendgrid_double.count(member.email)


class TestDuringTheSend:
    def test_a_member_who_unsubscribes_mid_send_gets_nothing_after(self, sending: Sending) -> None:
        """The audience is re-checked batch by batch: unsubscribing mid-send stops their copy."""
        members = [m for m in add_members(sending.store, 12) if number(m) % 3 == 2]  # general only
        last = members[-1]

        def unsubscribe_last(batch_number: int) -> None:
            if batch_number == 1:
                sending.store.unsubscribe(last.id, reason="clicked the link", source="web")

        with OutboxTransport(sending.settings.outbox_dir) as outbox:
            summary = sending.run(AfterEachBatch(outbox, unsubscribe_last), batch_size=1)
        assert (3, 1) == (summary.variants["general"].sent, summary.variants["general"].suppressed)
        assert last.email not in outbox_files(sending.settings.outbox_dir / ISSUE)
        assert SubscriberStatus.unsubscribed == sending.store.get(last.id).status
        assert [] == [c for c in sending.ledger.counts(ISSUE) if c.state == DeliveryState.in_flight]

    def test_asking_to_stop_finishes_the_batch_and_stops(self, sending: Sending) -> None:
        """SIGTERM's flag: the batches handed over are recorded, the rest wait for the next run."""
        add_members(sending.store, 9)
        asked: list[bool] = []
        with OutboxTransport(sending.settings.outbox_dir) as outbox:
            stopping = AfterEachBatch(outbox, lambda n: asked.append(True))
            summary = sending.run(stopping, batch_size=2, should_stop=lambda: bool(asked))
            rest = sending.run(outbox)
        assert summary.stopped is not None and not summary.complete
        assert 9 == summary.total("sent") + rest.total("sent")
        assert 9 == len(list((sending.settings.outbox_dir / ISSUE).glob("*.eml")))

    def test_the_garbage_collector_runs_less_often_while_the_send_runs(
        self, sending: Sending
    ) -> None:
        """A batch allocates thousands of objects: during the send the collector waits for
        more of them (SEND_GC_THRESHOLDS); after it, the process has its own thresholds back."""
        add_members(sending.store, 3)
        before = gc.get_threshold()
        seen: list[tuple[int, int, int]] = []
        with OutboxTransport(sending.settings.outbox_dir) as outbox:
            during = AfterEachBatch(outbox, lambda n: seen.append(gc.get_threshold()))
            summary = sending.run(during, batch_size=1)
        assert (3, [SEND_GC_THRESHOLDS] * 3, before) == (
            summary.total("sent"),
            seen,
            gc.get_threshold(),
        )
        assert before != SEND_GC_THRESHOLDS


def test_the_transport_is_opened_for_the_settings(sending: Sending, tmp_path: Path) -> None:
    """The outbox writes under MAILER_OUTBOX_DIR/<issue>/."""
    add_members(sending.store, 1)
    with open_transport(sending.settings) as transport:
        sending.run(transport)
    assert 1 == len(list((tmp_path / "outbox" / ISSUE).glob("*.eml")))


class TestHostileNamesFromTheStore:
    """Names stored before the border refused encoded-words still write no header."""

    ATTACK = "=?utf-8?q?x=0D=0ABcc:_victim@evil.example=0D=0AReply-To:_a@evil.example?="

    def test_the_name_is_left_out_of_to_and_the_subject_uses_the_fallback(
        self, sending: Sending, tmp_path: Path
    ) -> None:
        from mailer.store import MemberRecord

        sending.issue = sending.issue.model_copy(
            update={"subject": "Winter news for {{ first_name | friend }}", "segments": {}}
        )
        # The store takes what it is given; the borders (form, import, add) refuse this.
        [member] = sending.store.add(
            [MemberRecord(email="member001@example.org", name=self.ATTACK)], source="test"
        )
        sending.run(OutboxTransport(tmp_path / "outbox"))
        message = outbox_files(tmp_path / "outbox" / ISSUE)[member.email]
        assert "member001@example.org" == str(message["To"])
        assert "Winter news for friend" == str(message["Subject"])
        assert None is message["Bcc"]
        assert ["hello@connected-communities.example.org"] == [
            a.addr_spec for a in message["Reply-To"].addresses
        ]
