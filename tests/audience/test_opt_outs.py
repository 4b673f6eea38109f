"""Segments a member opts out of in the preference centre are left out of their variant."""

from __future__ import annotations

from helpers.project import ROOT

from mailer.audience.plan import members
from mailer.config import load_newsletter
from mailer.issues.check import load_issue
from mailer.store import MemberRecord, SubscriberStore
from mailer.store.preferences import opted_out, set_opted_out


def test_an_opted_out_segment_does_not_count_for_the_member(store: SubscriberStore) -> None:
    newsletter = load_newsletter(ROOT / "mailer.toml")
    issue = load_issue(ROOT / "issues" / "2026-12-03-winter-connections.yaml", newsletter)
    a, b = store.add(
        [
            MemberRecord(email="a@example.org", tags=("youth-loneliness",), region="Scotland"),
            MemberRecord(email="b@example.org", tags=("youth-loneliness",), region="Scotland"),
        ],
        source="test",
    )
    set_opted_out(store.engine, a.id, {"youth"}, source="web")
    keys = {m.addressee.id: m.key for page in members(store, issue, newsletter) for m in page}
    assert {a.id: frozenset({"scotland"}), b.id: frozenset({"youth", "scotland"})} == keys


def test_setting_the_same_choices_again_logs_nothing(store: SubscriberStore) -> None:
    [m] = store.add([MemberRecord(email="a@example.org")], source="test")
    set_opted_out(store.engine, m.id, {"youth"}, source="web")
    set_opted_out(store.engine, m.id, {"youth"}, source="web")
    assert {m.id: frozenset({"youth"})} == opted_out(store.engine, [m.id])
    assert 2 == len(store.history(m.id))  # added, one change
