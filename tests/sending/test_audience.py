"""The audience: active members a page at a time, their variants, and who still needs the issue."""

from __future__ import annotations

from sendtools import add_members

from mailer.audience import Done, Pending, active_pages, batches, plan
from mailer.config import Newsletter
from mailer.issue import Issue
from mailer.store import SubscriberStore
from mailer.store.ledger import Ledger, new_owner
from mailer.transports import Delivery


class TestActivePages:
    def test_reads_what_the_store_reads(self, store: SubscriberStore) -> None:
        """The fast page reader gives exactly the store's own Subscribers, on both databases."""
        add_members(store, 5)
        store.unsubscribe("member002@example.org", reason="left", source="test")
        pages = list(active_pages(store.engine, page_size=2))
        assert [2, 2] == [len(page) for page in pages]
        assert list(store.active()) == [s for page in pages for s in page]


class TestPlan:
    def test_counts_each_variant_with_its_first_addresses(
        self, store: SubscriberStore, issue: Issue, newsletter: Newsletter
    ) -> None:
        """Counts per variant, and the first addresses of each, for --dry-run and the question."""
        add_members(store, 7)
        audience = plan(store, Ledger(store.engine), issue, newsletter, sample=2)
        assert {"youth": 3, "wales": 2, "general": 2} == {
            v.name: v.to_send for v in audience.variants.values()
        }
        youth = next(v for v in audience.variants.values() if v.name == "youth")
        assert ["member000@example.org", "member003@example.org"] == youth.sample
        assert (7, 7, 0) == (audience.audience, audience.to_send, audience.sent)

    def test_counts_who_already_has_it(
        self, store: SubscriberStore, issue: Issue, newsletter: Newsletter
    ) -> None:
        """Members the ledger says were sent are counted as such, not as to send."""
        members = add_members(store, 3)
        ledger, owner = Ledger(store.engine), new_owner()
        ledger.acquire(issue.slug, "outbox", owner)
        claim = ledger.claim(issue.slug, "youth", [members[0].id], owner)
        ledger.record(
            issue.slug,
            owner,
            [(claim.claimed[members[0].id], Delivery(email=members[0].email, state="sent"))],
        )
        audience = plan(store, ledger, issue, newsletter)
        assert (2, 1) == (audience.to_send, audience.sent)


class TestBatches:
    def test_groups_members_by_variant_in_batches_of_the_size(
        self, store: SubscriberStore, issue: Issue, newsletter: Newsletter
    ) -> None:
        """Each batch holds members of one variant, at most batch_size of them."""
        add_members(store, 10)
        found = list(batches(store, Ledger(store.engine), issue, newsletter, batch_size=2))
        pending = [work for work in found if isinstance(work, Pending)]
        assert all(len(work.subscribers) <= 2 for work in pending)
        by_key: dict[frozenset[str], int] = {}
        for work in pending:
            by_key[work.key] = by_key.get(work.key, 0) + len(work.subscribers)
        assert {frozenset({"youth"}): 4, frozenset({"wales"}): 3, frozenset(): 3} == by_key

    def test_reports_members_the_ledger_has_done(
        self, store: SubscriberStore, issue: Issue, newsletter: Newsletter
    ) -> None:
        """Members with a row that may not be retried are counted as Done, not batched."""
        members = add_members(store, 2, start=2)  # both general
        ledger, owner = Ledger(store.engine), new_owner()
        ledger.acquire(issue.slug, "outbox", owner)
        ledger.claim(issue.slug, "general", [members[0].id], owner)
        found = list(batches(store, ledger, issue, newsletter, batch_size=10))
        assert [Done(frozenset(), "in_flight", 1)] == [w for w in found if isinstance(w, Done)]
        assert [[members[1].id]] == [
            [s.id for s in w.subscribers] for w in found if isinstance(w, Pending)
        ]
