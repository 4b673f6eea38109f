"""Odd and hostile events in signed batches (issue 14): a verified batch is always 2xx, every
valid event in it is applied, every other item is kept once in the rejected events' table."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from helpers.events import at, body_of, sg_event
from helpers.project import ROOT
from helpers.web import Web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from mailer.cli import app
from mailer.store.eventlog import RejectedRow, WebhookEventRow
from mailer.tokens import Purpose

ODD = [
    {"event": "group_resubscribe", "timestamp": 1_700_000_000, "sg_event_id": "acct-1"},
    {"email": "a@example.org", "timestamp": "1700000000", "event": "open", "sg_event_id": "s1"},
    {"email": "a@example.org", "timestamp": 1_700_000_000.5, "event": "open", "sg_event_id": "s2"},
    {"email": "a@example.org", "timestamp": -5, "event": "open", "sg_event_id": "s3"},
    {"email": "a@example.org", "timestamp": 10**20, "event": "open", "sg_event_id": "s4"},
    {"email": "a@example.org", "timestamp": 1_700_000_000, "event": "open"},
    {"email": "a@example.org", "timestamp": 1_700_000_000, "event": "open", "sg_event_id": 77},
    {
        "email": "a@example.org",
        "timestamp": 1_700_000_000,
        "event": "open",
        "sg_event_id": "i" * 129,
    },
    {"email": "a@example.org", "timestamp": 1_700_000_000, "event": "e" * 41, "sg_event_id": "s5"},
    {
        "email": "a\x00@example.org",
        "timestamp": 1_700_000_000,
        "event": "open",
        "sg_event_id": "s6",
    },
    {
        "email": "a\ud800@example.org",
        "timestamp": 1_700_000_000,
        "event": "open",
        "sg_event_id": "s7",
    },
    "not an object",
    None,
]


def rejected_rows(web: Web) -> list[Any]:
    with web.store.engine.connect() as connection:
        return list(connection.execute(select(RejectedRow.reason, RejectedRow.body)))


def logged_ids(web: Web) -> set[str]:
    with web.store.engine.connect() as connection:
        return set(connection.scalars(select(WebhookEventRow.sg_event_id)))


def mixed(*items: Any) -> bytes:
    """A JSON array as SendGrid might post it; lone surrogates escaped, as JSON allows."""
    return json.dumps(list(items)).encode()


class TestOddEventsInAVerifiedBatch:
    def test_the_good_events_are_applied_and_the_odd_ones_kept(
        self, web: Web, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Before: one odd event refused the whole batch (400), so the bounce here was lost."""
        [m] = web.add("a@example.org")
        bounce = sg_event("bounce", m.email, type="bounce", subscriber=m.id)
        body = mixed(ODD[0], bounce, *ODD[1:])
        with caplog.at_level(logging.WARNING, logger="mailer.web"):
            response = web.post_events(body)
        assert 200 == response.status_code, response.text
        assert (1, len(ODD)) == (response.json()["stored"], response.json()["rejected"])
        assert "bounced" == web.store.get(m.id).status
        kept = rejected_rows(web)
        assert len(ODD) == len(kept)
        assert any("email: Field required" in reason for reason, _ in kept)
        assert all(body.isascii() for _, body in kept)  # NULs and lone surrogates escaped
        warnings = [r for r in caplog.records if "rejected" in r.getMessage()]
        assert len(ODD) == len(warnings)

        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="mailer.web"):
            again = web.post_events(body)  # SendGrid's retry: logged and kept once
        assert (200, len(ODD)) == (again.status_code, again.json()["rejected"])
        assert len(ODD) == len(rejected_rows(web))
        assert not [r for r in caplog.records if "rejected" in r.getMessage()]

    def test_a_batch_of_only_odd_events_is_2xx(self, web: Web) -> None:
        response = web.post_events(mixed(*ODD))
        assert (200, 0) == (response.status_code, response.json()["stored"])

    @pytest.mark.parametrize(
        "claimed", [str(2**31), str(2**63), "99999999999999999999", "abc", "\u00b2", "-1", 2**31]
    )
    def test_a_subscriber_id_no_member_can_have_matches_by_address(
        self, web: Web, claimed: object
    ) -> None:
        """Before: 2**31 or more was 'integer out of range' on PostgreSQL, a 503 forever."""
        [m] = web.add("a@example.org")
        event = sg_event("unsubscribe", m.email, issue="2026-12-03-x")
        event["subscriber"] = claimed
        response = web.post_events(body_of([event]))
        assert 200 == response.status_code, response.text
        assert "unsubscribed" == web.store.get(m.id).status

    def test_an_idna_address_is_the_member_s_unicode_address(self, web: Web) -> None:
        """Before: info@xn--exmple-cua.org did not match the member info@exämple.org."""
        [m] = web.add("info@exämple.org")
        [n] = web.add("Someone@EXAMPLE.org")
        response = web.post_events(
            body_of(
                [
                    sg_event("bounce", "info@xn--exmple-cua.org", type="bounce"),
                    sg_event("spamreport", "someone@example.org"),
                ]
            )
        )
        assert (200, 0) == (response.status_code, response.json()["unknown_addresses"])
        assert "bounced" == web.store.get(m.id).status
        assert "complained" == web.store.get(n.id).status

    def test_forget_erases_the_rejected_items_that_name_the_address(self, web: Web) -> None:
        web.add("a@example.org", "b@example.org")
        odd = [
            dict(item, email=who) for who in ("A@example.org", "b@example.org") for item in ODD[1:3]
        ]
        assert 200 == web.post_events(mixed(*odd)).status_code
        assert 4 == len(rejected_rows(web))
        web.store.forget("a@example.org", reason="asked", source="test")
        assert ["b@example.org"] * 2 == [json.loads(b)["email"] for _, b in rejected_rows(web)]

    def test_an_unverifiable_request_is_still_refused_whole(self, web: Web) -> None:
        body = mixed(sg_event("open", "a@example.org"))
        assert 403 == web.client.post("/webhooks/sendgrid", content=body).status_code
        for not_an_array in (b'{"event": "open"}', b"[NaN]", b"[1,"):
            assert 400 == web.post_events(not_an_array).status_code
        assert [] == rejected_rows(web)


class TestTheCommand:
    def test_it_lists_the_rejected_events_newest_first(self, tmp_path: Path, make_web: Any) -> None:
        url = f"sqlite:///{tmp_path / 'cli.db'}"
        web = make_web(url)
        web.post_events(mixed(ODD[0]))
        web.post_events(mixed(ODD[4]))
        env = {
            "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
            "MAILER_DATABASE_URL": url,
            "COLUMNS": "200",
        }
        table = CliRunner(env=env).invoke(app, ["events", "rejected"])
        assert 0 == table.exit_code, table.output
        assert "email: Field required" in table.output and "2 rejected event(s)" in table.output
        assert table.output.index("100000000000000000000") < table.output.index("group_resubscribe")
        listed = CliRunner(env=env).invoke(app, ["events", "rejected", "--json", "--limit", "1"])
        assert 0 == listed.exit_code, listed.output
        [newest] = json.loads(listed.output)
        assert 10**20 == newest["item"]["timestamp"] and "timestamp" in newest["reason"]

    def test_none(self, tmp_path: Path) -> None:
        env = {
            "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
            "MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        }
        result = CliRunner(env=env).invoke(app, ["events", "rejected"])
        assert (0, "No rejected events.\n") == (result.exit_code, result.output)


# -- fuzzing: signed batches mixing valid and invalid events ---------------------------------

MEMBERS = ("ann@example.org", "bo@exämple.org", "cy@example.org")
ADDRESSES = (*MEMBERS, "BO@XN--EXMPLE-CUA.ORG", "Ann@Example.Org", "stranger@example.net")
# JSON has no NaN or Infinity: a body with them is not JSON, refused whole.
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | FLOATS | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
valid_events = st.builds(
    lambda kind, address, minutes, claim, extra: {
        **sg_event(
            kind, address, timestamp=at(minutes), type="bounce" if kind == "bounce" else None
        ),
        **({"subscriber": claim} if claim is not None else {}),
        **extra,
    },
    st.sampled_from(
        ["open", "click", "delivered", "bounce", "spamreport", "unsubscribe", "deferred", "x" * 40]
    ),
    st.sampled_from(ADDRESSES),
    st.integers(1, 60),
    st.none() | st.integers(-5, 2**64) | st.text(max_size=12),
    st.dictionaries(
        st.sampled_from(["reason", "url", "issue", "test", "zz"]), json_values, max_size=3
    ),
)
# Never an event: not an object, or an object whose timestamp is not a whole number.
invalid_items = json_values.filter(lambda v: not isinstance(v, dict)) | st.builds(
    lambda base, stamp: {**base, "timestamp": stamp},
    st.dictionaries(
        st.sampled_from(["email", "event", "sg_event_id", "q"]),
        json_values | st.sampled_from(ADDRESSES),
        max_size=4,
    ),
    st.text(max_size=10) | FLOATS | st.booleans() | st.none() | st.integers(max_value=-1),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    good=st.lists(valid_events, max_size=8), bad=st.lists(invalid_items, max_size=6), data=st.data()
)
def test_mixed_batches_apply_every_valid_event_and_are_never_an_error(
    web: Web, good: list[dict[str, Any]], bad: list[Any], data: st.DataObject
) -> None:
    if web.store.find(MEMBERS[0]) is None:
        web.add(*MEMBERS)
    batch = data.draw(st.permutations([*good, *bad]))
    response = web.post_events(mixed(*batch))
    assert 200 == response.status_code, response.text
    assert len(bad) == response.json()["rejected"]
    assert {event["sg_event_id"] for event in good} <= logged_ids(web)
    with web.store.engine.connect() as connection:
        kept = connection.scalar(select(func.count()).select_from(RejectedRow))
    assert kept >= len({json.dumps(item, sort_keys=True) for item in bad})


class TestAForgottenMembersLinks:
    def test_they_never_open_a_newcomer_s_page(self, web: Web) -> None:
        """Before: on SQLite the newcomer got the forgotten member's id, and with it their links."""
        web.add("ann@example.org")
        [gone] = web.add("gone@example.org")
        links = [
            web.link(gone.id, purpose) for purpose in (Purpose.unsubscribe, Purpose.preferences)
        ]
        web.store.forget(gone.email, reason="asked", source="test")
        [newcomer] = web.add("newcomer@example.org")
        for link in links:
            page = web.client.get(link)
            assert "newcomer@example.org" not in page.text
        web.client.post(links[0], data={"List-Unsubscribe": "One-Click"})
        assert "active" == web.store.get(newcomer.id).status

    @pytest.mark.parametrize(("member_id", "version"), [(2**31, 0), (2**63 - 1, 0), (1, 2**32 - 1)])
    def test_a_link_naming_an_id_or_version_out_of_range_is_404(
        self, web: Web, member_id: int, version: int
    ) -> None:
        """Versioned tokens too (tests/web/test_abuse.py has the older form): never 500 or 503."""
        web.add("ann@example.org")
        for purpose in (Purpose.unsubscribe, Purpose.preferences):
            link = web.link(member_id, purpose, version)
            for method in ("GET", "POST"):
                response = web.client.request(method, link)
                assert 404 == response.status_code, (method, link, response.status_code)
                assert "ann@example.org" not in response.text
        assert "active" == web.store.get("ann@example.org").status
