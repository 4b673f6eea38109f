"""What a report cannot know, and says so: no delivery events (outbox, SMTP), members added by a later run."""

from __future__ import annotations

import io
import itertools
import json
import time

import pytest
from helpers.project import BASE_URL, ROOT
from rich.console import Console

from mailer.cli import common, reporting
from mailer.config import load_newsletter
from mailer.events.apply import apply_events
from mailer.events.sendgrid import SendGridEvent
from mailer.mail import Delivery
from mailer.report.build import issue_report, list_report
from mailer.report.html import issue_page
from mailer.report.models import NO_DELIVERY_EVENTS, IssueReport
from mailer.store import MemberRecord, Subscriber, SubscriberStore
from mailer.store.ledger import Ledger, SendStatus, new_owner

ISSUE = "2026-03-05-unknowns"
NEWSLETTER = load_newsletter(ROOT / "mailer.toml")
_ids = itertools.count()


def send_run(store: SubscriberStore, addresses: list[str], transport: str) -> list[Subscriber]:
    """One run of `mailer send`: new members added, then sent the issue (all taken)."""
    members = store.add([MemberRecord(email=address) for address in addresses], source="test")
    ledger, owner = Ledger(store.engine), new_owner()
    ledger.acquire(ISSUE, transport, owner)
    claim = ledger.claim(ISSUE, "general", [m.id for m in members], owner)
    ledger.record(
        ISSUE,
        owner,
        [(claim.claimed[m.id], Delivery(email=m.email, state="sent")) for m in members],
    )
    ledger.release(ISSUE, owner, SendStatus.finished)
    return members


def report(store: SubscriberStore) -> IssueReport:
    return issue_report(store.engine, ISSUE, NEWSLETTER, base_url=BASE_URL)


def printed(made: IssueReport, width: int = 80) -> str:
    """The tables and sentences as `mailer report` prints them, lines joined back up."""
    console = Console(width=width, record=True, file=io.StringIO())
    for part in reporting._issue_parts(made):
        console.print(part)
    return " ".join(console.export_text().split())


class TestNoDeliveryEvents:
    def test_delivered_opened_and_clicked_are_not_known(self, store: SubscriberStore) -> None:
        """Through the outbox nothing reports deliveries: not 0 delivered, but not known."""
        send_run(store, ["a@example.org", "b@example.org"], "outbox")
        made = report(store)
        everyone = made.everyone
        assert (2, None, None, None) == (
            everyone.sent,
            everyone.delivered,
            everyone.opened,
            everyone.clicked,
        )
        assert (None, None) == (everyone.rates.delivered, everyone.rates.opened)
        assert 0.0 == everyone.rates.bounced  # bounces are still counted, of sent
        assert not made.delivery_events and NO_DELIVERY_EVENTS in made.notes
        data = json.loads(made.model_dump_json())
        all_row = data["segments"][0]
        assert [None] * 5 == [
            all_row[k] for k in ("delivered", "opened", "opens", "clicked", "clicks")
        ]
        assert None is all_row["rates"]["delivered"] and False is data["delivery_events"]

    def test_the_page_and_the_tables_say_n_a(self, store: SubscriberStore) -> None:
        send_run(store, ["a@example.org"], "outbox")
        made = report(store)
        page = issue_page(made, NEWSLETTER)
        assert '<td data-measure="delivered">n/a</td>' in page
        assert '<td data-measure="clicked">n/a</td>' in page
        assert '<td data-measure="opened">n/a</td>' in page
        assert 'id="no-delivery-events"' in page
        text = printed(made)
        assert "n/a" in text and "No delivery events were received" in text
        assert "100.0%" not in text  # delivered, of sent, is not claimed

    def test_one_delivered_event_makes_them_known(self, store: SubscriberStore) -> None:
        [member] = send_run(store, ["a@example.org"], "sendgrid")
        event = SendGridEvent.model_validate(
            {
                "email": member.email,
                "timestamp": int(time.time()),
                "event": "delivered",
                "sg_event_id": f"delivered-{next(_ids)}",
                "issue": ISSUE,
                "subscriber": str(member.id),
            }
        )
        apply_events(store, [event])
        made = report(store)
        assert made.delivery_events and (1, 0) == (made.everyone.delivered, made.everyone.opened)
        assert NO_DELIVERY_EVENTS not in made.notes


class TestALaterRun:
    def test_members_added_by_a_second_run_are_explained(self, store: SubscriberStore) -> None:
        """'Sent' counts both runs; 'active when it went out' the list at the first's start."""
        send_run(store, ["a@example.org", "b@example.org"], "outbox")
        time.sleep(0.01)
        send_run(store, ["c@example.org"], "outbox")  # an import, then `mailer send` again
        point = report(store).list_health[-1]
        assert (3, 2, 1) == (point.recipients, point.active, point.joined_later)
        difference = point.difference()
        assert difference is not None
        assert "sent to 3 members; 2 were active when the send started" in difference
        assert "1 joined after it started and were sent it on a later run" in difference
        page = issue_page(report(store), NEWSLETTER)
        assert f'<p class="difference">{ISSUE}: sent to 3 members' in page
        assert "1 joined after it started" in printed(report(store))

    def test_when_they_agree_nothing_is_said(self, store: SubscriberStore) -> None:
        send_run(store, ["a@example.org", "b@example.org"], "outbox")
        made = report(store)
        assert None is made.list_health[-1].difference()
        assert 'class="difference"' not in issue_page(made, NEWSLETTER)


def test_the_list_says_why_too(store: SubscriberStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mailer report --list` prints the same explanation under its table."""
    send_run(store, ["a@example.org"], "outbox")
    time.sleep(0.01)
    send_run(store, ["b@example.org"], "outbox")
    console = Console(width=80, record=True, file=io.StringIO())
    monkeypatch.setattr(common, "console", console)
    reporting._print(list_report(store.engine))
    text = " ".join(console.export_text().split())
    assert f"{ISSUE}: sent to 2 members; 1 were active when the send started" in text
