"""Cases the story does not tell: copies not sent, long links, others' links, no segments, names."""

from __future__ import annotations

import itertools
import time

import pytest
from helpers.project import BASE_URL, ROOT

from mailer.config import load_newsletter
from mailer.events.apply import apply_events
from mailer.events.sendgrid import SendGridEvent
from mailer.mail import Delivery
from mailer.report import queries
from mailer.report.build import issue_report, issue_slug
from mailer.report.models import IssueReport
from mailer.store import MemberRecord, Subscriber, SubscriberStore
from mailer.store.eventlog import URL_LENGTH
from mailer.store.ledger import Ledger, SendStatus, new_owner

ISSUE = "2026-03-05-edges"
NEWSLETTER = load_newsletter(ROOT / "mailer.toml")
_ids = itertools.count()


def send(
    store: SubscriberStore, outcomes: dict[str, str], variant: str = "general"
) -> list[Subscriber]:
    """Members by address, sent the issue through the ledger with these outcomes (sent, failed, unknown)."""
    members = store.add([MemberRecord(email=address) for address in outcomes], source="test")
    ledger, owner = Ledger(store.engine), new_owner()
    ledger.acquire(ISSUE, "sendgrid", owner)
    claim = ledger.claim(ISSUE, variant, [m.id for m in members], owner)
    ledger.record(
        ISSUE,
        owner,
        [
            (claim.claimed[m.id], Delivery(email=m.email, state=outcomes[m.email], error="x"))
            for m in members
        ],
    )
    ledger.release(ISSUE, owner, SendStatus.finished)
    return members


def click(member: Subscriber, url: str) -> SendGridEvent:
    return SendGridEvent.model_validate(
        {
            "email": member.email,
            "timestamp": int(time.time()),
            "event": "click",
            "sg_event_id": f"click-{next(_ids)}",
            "issue": ISSUE,
            "subscriber": str(member.id),
            "url": url,
        }
    )


def report(store: SubscriberStore) -> IssueReport:
    return issue_report(store.engine, ISSUE, NEWSLETTER, base_url=BASE_URL)


class TestLedger:
    def test_copies_that_failed_or_are_unknown_are_not_sent(self, store: SubscriberStore) -> None:
        """Sent counts what the transport took; the rest are 'not sent', and rates are over sent."""
        send(
            store, {"a@example.org": "sent", "b@example.org": "failed", "c@example.org": "unknown"}
        )
        everyone = report(store).everyone
        assert (1, 2) == (everyone.sent, everyone.not_sent)

    def test_an_issue_for_everyone_has_one_row(self, store: SubscriberStore) -> None:
        """No segment named: 'all' only ('general' would repeat it)."""
        send(store, {"a@example.org": "sent"})
        assert ["all"] == [row.name for row in report(store).segments]

    def test_segments_no_longer_in_mailer_toml_keep_their_rows(
        self, store: SubscriberStore
    ) -> None:
        """A variant names a segment since removed from mailer.toml: its row stays, labelled by name."""
        send(store, {"a@example.org": "sent"}, variant="youth+retired-segment")
        rows = [(row.name, row.label, row.sent) for row in report(store).segments]
        assert [
            ("all", "All members", 1),
            ("youth", "Youth loneliness", 1),
            ("retired-segment", "retired-segment", 1),
            ("general", "In none of the issue's segments", 0),
        ] == rows


class TestLinks:
    def test_long_links_that_differ_only_at_the_end_are_two_links(
        self, store: SubscriberStore
    ) -> None:
        """The log's detail keeps 300 characters; the report groups by the whole URL."""
        [member] = send(store, {"a@example.org": "sent"})
        stem = "https://example.org/landing?" + "utm_campaign=winter&" * 20
        assert len(stem) > 300
        apply_events(store, [click(member, stem + "ref=a"), click(member, stem + "ref=b")])
        assert [(stem + "ref=a", 1, 1), (stem + "ref=b", 1, 1)] == [
            (link.url, link.clicked, link.clicks) for link in report(store).links
        ]

    def test_a_link_longer_than_any_mail_client_keeps_is_cut(self, store: SubscriberStore) -> None:
        [member] = send(store, {"a@example.org": "sent"})
        apply_events(store, [click(member, "https://example.org/" + "x" * 3000)])
        assert [URL_LENGTH] == [len(link.url) for link in report(store).links]

    def test_only_our_own_member_links_lose_their_token(self, store: SubscriberStore) -> None:
        """Our unsubscribe and preference links count together; another site's are left alone."""
        a, b = send(store, {"a@example.org": "sent", "b@example.org": "sent"})
        apply_events(
            store,
            [
                click(a, f"{BASE_URL}/unsubscribe/token-of-a"),
                click(b, f"{BASE_URL}/unsubscribe/token-of-b"),
                click(a, f"{BASE_URL}/preferences/token-of-a"),
                click(a, "https://other.example.org/unsubscribe/abc"),
            ],
        )
        assert [
            (f"{BASE_URL}/unsubscribe/…", 2, 2),
            (f"{BASE_URL}/preferences/…", 1, 1),
            ("https://other.example.org/unsubscribe/abc", 1, 1),
        ] == [(link.url, link.clicked, link.clicks) for link in report(store).links]


class TestIssueNames:
    @pytest.mark.parametrize(
        ("argument", "slug"),
        [
            ("2026-01-08-first-light", "2026-01-08-first-light"),
            ("issues/2026-01-08-first-light.yaml", "2026-01-08-first-light"),
            ("/srv/news/issues/2026-01-08-first-light.yml", "2026-01-08-first-light"),
            ("2026-01-08-first-light.yaml", "2026-01-08-first-light"),
            ("  2026-01-08-first-light\n", "2026-01-08-first-light"),
        ],
    )
    def test_a_file_or_a_name(self, argument: str, slug: str) -> None:
        """The issue's name is its file's name without .yaml, wherever the file is (or was)."""
        assert slug == issue_slug(argument)


class TestIndexes:
    """On SQLite, the report's big queries read the partial indexes of migration 0005, not the table."""

    def plan(self, store: SubscriberStore, statement: object) -> str:
        from sqlalchemy.sql import Select

        assert isinstance(statement, Select)
        compiled = statement.compile(store.engine, compile_kwargs={"literal_binds": True})
        with store.engine.connect() as connection:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
        return "\n".join(str(row[-1]) for row in rows)

    def test_events_are_summed_from_the_index(self, sqlite_store: SubscriberStore) -> None:
        plan = self.plan(sqlite_store, queries._event_sums(ISSUE))
        assert "USING INDEX ix_webhook_events_issue_subscriber_id_kind_event" in plan

    def test_links_are_counted_from_the_index(self, sqlite_store: SubscriberStore) -> None:
        plan = self.plan(sqlite_store, queries._top_links(ISSUE, BASE_URL, 10))
        assert "USING INDEX ix_webhook_events_issue_url_subscriber_id" in plan
