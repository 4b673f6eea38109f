"""The write-back rules, as pure decisions over one member's events (mailer.events.decide)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.events.rules import Classified, Kind, MemberState, classify, decide
from mailer.events.sendgrid import SendGridEvent
from mailer.store import SubscriberStatus

JOINED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T = int(JOINED.timestamp())
_ids = itertools.count()


def ev(event: str, minute: int, **fields: str) -> SendGridEvent:
    return SendGridEvent.model_validate(
        {
            "email": "a@example.org",
            "timestamp": T + minute * 60,
            "event": event,
            "sg_event_id": f"e{next(_ids)}",
            **fields,
        }
    )


def item(event: str, minute: int, **fields: str) -> Classified:
    e = ev(event, minute, **fields)
    return Classified(e, classify(e))


def member(status: str = "active", **fields: object) -> MemberState:
    return MemberState(id=1, status=SubscriberStatus(status), joined_at=JOINED, **fields)  # type: ignore[arg-type]


class TestClassify:
    @pytest.mark.parametrize(
        ("event", "fields", "kind"),
        [
            ("bounce", {"type": "bounce"}, Kind.hard_bounce),
            ("bounce", {"type": "blocked"}, Kind.soft_bounce),
            ("bounce", {}, Kind.soft_bounce),
            ("dropped", {"reason": "Bounced Address"}, Kind.hard_bounce),
            ("dropped", {"reason": "Spam Reporting Address"}, Kind.complaint),
            ("dropped", {"reason": "Unsubscribed Address"}, Kind.unsubscribe),
            ("dropped", {"reason": "Invalid"}, Kind.dropped),
            ("spamreport", {}, Kind.complaint),
            ("unsubscribe", {}, Kind.unsubscribe),
            ("group_unsubscribe", {}, Kind.unsubscribe),
            ("group_resubscribe", {}, Kind.other),
            ("delivered", {}, Kind.delivered),
            ("open", {}, Kind.open),
            ("click", {"url": "https://x.org"}, Kind.click),
            ("processed", {}, Kind.accepted),
            ("deferred", {}, Kind.accepted),
            ("machine_opened", {}, Kind.other),
        ],
    )
    def test_each_event_has_a_kind(self, event: str, fields: dict[str, str], kind: Kind) -> None:
        """SendGrid's event types, bounce types and drop reasons, mapped as the issue says."""
        assert kind == classify(ev(event, 1, **fields))


class TestStatuses:
    @pytest.mark.parametrize(
        ("event", "fields", "status"),
        [
            ("bounce", {"type": "bounce"}, "bounced"),
            ("dropped", {"reason": "Bounced Address"}, "bounced"),
            ("spamreport", {}, "complained"),
            ("dropped", {"reason": "Spam Reporting Address"}, "complained"),
            ("unsubscribe", {}, "unsubscribed"),
            ("group_unsubscribe", {}, "unsubscribed"),
            ("dropped", {"reason": "Unsubscribed Address"}, "unsubscribed"),
        ],
    )
    def test_an_active_member_takes_the_events_status(
        self, event: str, fields: dict[str, str], status: str
    ) -> None:
        assert status == decide(member(), [item(event, 5, **fields)], limit=3).status

    @pytest.mark.parametrize(
        "event", ["delivered", "open", "click", "processed", "deferred", "group_resubscribe"]
    )
    def test_other_events_change_no_status(self, event: str) -> None:
        assert None is decide(member(), [item(event, 5)], limit=3).status

    def test_events_never_make_anyone_active(self) -> None:
        """A suppressed member stays suppressed whatever comes in."""
        events = [item("delivered", 5), item("open", 6), item("group_resubscribe", 7)]
        assert None is decide(member("unsubscribed"), events, limit=3).status

    def test_the_most_serious_status_wins(self) -> None:
        """complained > bounced > unsubscribed, in whatever order they happened."""
        events = [item("spamreport", 5), item("unsubscribe", 9), item("bounce", 7, type="bounce")]
        assert "complained" == decide(member(), events, limit=3).status

    def test_a_more_serious_status_replaces_a_milder_one(self) -> None:
        assert (
            "complained" == decide(member("unsubscribed"), [item("spamreport", 5)], limit=3).status
        )

    def test_a_milder_status_leaves_a_serious_one(self) -> None:
        decision = decide(member("complained"), [item("unsubscribe", 5)], limit=3)
        assert None is decision.status
        assert ["no change: already complained"] == list(decision.effects.values())

    def test_events_from_before_a_re_subscription_are_stale(self) -> None:
        """A member who re-subscribed after a bounce is not knocked out by a late copy of it."""
        decision = decide(member(), [item("bounce", -5, type="bounce")], limit=3)
        assert None is decision.status
        assert "no change: from before the member (re)joined" == next(
            iter(decision.effects.values())
        )

    def test_a_pending_member_is_bounced_too(self) -> None:
        """The confirmation email bounced: the address does not work."""
        assert (
            "bounced"
            == decide(member("pending"), [item("bounce", 5, type="bounce")], limit=3).status
        )


class TestSoftBounces:
    def test_the_limit_in_a_row_makes_a_member_bounced(self) -> None:
        events = [item("bounce", m, type="blocked") for m in (1, 2, 3)]
        decision = decide(member(), events, limit=3)
        assert "bounced" == decision.status
        assert [
            "soft bounce 1 in a row (limit 3)",
            "soft bounce 2 in a row (limit 3)",
            "soft bounce 3 in a row (limit 3): status active -> bounced",
        ] == list(decision.effects.values())

    def test_fewer_than_the_limit_only_counts(self) -> None:
        events = [item("bounce", m, type="blocked") for m in (1, 2)]
        assert None is decide(member(), events, limit=3).status

    def test_a_delivery_resets_the_count(self) -> None:
        events = [
            *(item("bounce", m, type="blocked") for m in (1, 2)),
            item("delivered", 3),
            item("bounce", 4, type="blocked"),
        ]
        assert None is decide(member(), events, limit=3).status

    def test_bounces_already_in_the_log_count(self) -> None:
        """The streak is counted over the log, not only this batch."""
        earlier = tuple(JOINED + dt.timedelta(minutes=m) for m in (1, 2))
        state = member(soft_bounces=earlier)
        assert "bounced" == decide(state, [item("bounce", 3, type="blocked")], limit=3).status

    def test_a_late_bounce_between_earlier_ones_completes_the_streak(self) -> None:
        """The third bounce arrives last but happened first: still three in a row."""
        later = tuple(JOINED + dt.timedelta(minutes=m) for m in (5, 6))
        state = member(soft_bounces=later)
        assert "bounced" == decide(state, [item("bounce", 1, type="blocked")], limit=3).status

    def test_a_delivery_in_the_log_resets_the_count(self) -> None:
        earlier = tuple(JOINED + dt.timedelta(minutes=m) for m in (1, 2))
        state = member(soft_bounces=earlier, last_delivered_at=JOINED + dt.timedelta(minutes=3))
        assert None is decide(state, [item("bounce", 4, type="blocked")], limit=3).status

    def test_the_limit_is_configurable(self) -> None:
        assert "bounced" == decide(member(), [item("bounce", 1, type="blocked")], limit=1).status


# -- order does not matter ---------------------------------------------------------------------

KINDS = [
    ("bounce", {"type": "bounce"}),
    ("bounce", {"type": "blocked"}),
    ("spamreport", {}),
    ("unsubscribe", {}),
    ("delivered", {}),
    ("open", {}),
    ("dropped", {"reason": "Bounced Address"}),
]


@st.composite
def histories(draw: st.DrawFn) -> list[Classified]:
    picks = draw(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(-3, 30)), max_size=10))
    return [item(event, minute, **fields) for (event, fields), minute in picks]


@settings(max_examples=300, deadline=None)
@given(
    histories(),
    st.randoms(use_true_random=False),
    st.sampled_from(["active", "unsubscribed", "pending"]),
    st.integers(1, 4),
)
def test_the_outcome_does_not_depend_on_order(
    events: list[Classified], random: object, status: str, limit: int
) -> None:
    """decide() over any permutation of the same events gives the same status."""
    shuffled = list(events)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    state = member(status)
    assert decide(state, events, limit=limit).status == decide(state, shuffled, limit=limit).status


@settings(max_examples=200, deadline=None)
@given(histories(), st.integers(0, 10), st.integers(1, 4))
def test_splitting_a_history_into_batches_gives_the_same_outcome(
    events: list[Classified], cut: int, limit: int
) -> None:
    """Status events and soft bounces applied in two batches end where one batch would.

    (Deliveries are left out: a delivery arriving after a streak has already made
    someone bounced does not revive them, by design.)
    """
    events = [e for e in events if e.kind is not Kind.delivered]
    first, second = events[:cut], events[cut:]
    whole = decide(member(), events, limit=limit).status or SubscriberStatus.active
    after_first = decide(member(), first, limit=limit).status or SubscriberStatus.active
    softs = tuple(e.event.at for e in first if e.kind is Kind.soft_bounce)
    state = MemberState(id=1, status=after_first, joined_at=JOINED, soft_bounces=softs)
    after_second = decide(state, second, limit=limit).status or after_first
    assert whole == after_second
