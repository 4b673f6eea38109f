"""Property-based fuzzing through the real server: never a 500, never a change on rejection."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from helpers.events import body_of, sg_event
from helpers.web import Web, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailer.events.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER
from mailer.store import SubscriberStatus
from mailer.tokens import Purpose

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ALLOWED_WEBHOOK = {200, 400, 403, 413}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "email",
    "timestamp",
    "event",
    "sg_event_id",
    "type",
    "reason",
    "subscriber",
    "issue",
    "url",
]
events = st.lists(
    st.dictionaries(
        st.sampled_from(FIELDS) | st.text(max_size=8),
        json_values | st.text(max_size=40),
        max_size=9,
    ),
    max_size=5,
)


def _mutate(good: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """A valid event with one field replaced by anything at all."""
    field = data.draw(st.sampled_from(sorted(good)))
    return {**good, field: data.draw(json_values)}


class TestWebhookFuzz:
    @FUZZ
    @given(
        body=st.binary(max_size=300),
        headers=st.dictionaries(
            st.sampled_from([SIGNATURE_HEADER, TIMESTAMP_HEADER]),
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120).map(
                str.strip
            ),
        ),
    )
    def test_unsigned_garbage_is_refused_without_a_change(
        self, sqlite_web: Web, body: bytes, headers: dict[str, str]
    ) -> None:
        before = snapshot(sqlite_web.store)
        response = sqlite_web.client.post("/webhooks/sendgrid", content=body, headers=headers)
        assert 403 == response.status_code
        assert before == snapshot(sqlite_web.store)

    @FUZZ
    @given(raw=events)
    def test_signed_arbitrary_json_is_never_a_500(
        self, sqlite_web: Web, raw: list[dict[str, Any]]
    ) -> None:
        """Well signed, badly formed: 200 or 400, and a 400 changes nothing."""
        if not sqlite_web.store.find("a@example.org"):
            sqlite_web.add("a@example.org")
        body = json.dumps(raw).encode()
        before = snapshot(sqlite_web.store)
        response = sqlite_web.post_events(body)
        assert response.status_code in {200, 400}, response.text
        if response.status_code == 400:
            assert before == snapshot(sqlite_web.store)

    @FUZZ
    @given(data=st.data())
    def test_one_bad_field_in_a_valid_batch(self, sqlite_web: Web, data: st.DataObject) -> None:
        """A batch of good events with one field of one event replaced: all or nothing."""
        if not sqlite_web.store.find("a@example.org"):
            sqlite_web.add("a@example.org")
        good = sg_event("bounce", "a@example.org", type="bounce")
        batch = [sg_event("open", "a@example.org"), _mutate(good, data)]
        before = snapshot(sqlite_web.store)
        response = sqlite_web.post_events(body_of(batch))
        assert response.status_code in {200, 400}, response.text
        if response.status_code == 400:
            assert before == snapshot(sqlite_web.store)

    @FUZZ
    @given(flip=st.integers(min_value=0, max_value=10_000), byte=st.integers(1, 255))
    def test_any_changed_byte_breaks_the_signature(
        self, sqlite_web: Web, flip: int, byte: int
    ) -> None:
        if not sqlite_web.store.find("a@example.org"):
            sqlite_web.add("a@example.org")
        body = body_of([sg_event("spamreport", "a@example.org")])
        headers = sqlite_web.signer.headers(body)
        index = flip % len(body)
        tampered = body[:index] + bytes([body[index] ^ byte]) + body[index + 1 :]
        before = snapshot(sqlite_web.store)
        response = sqlite_web.client.post("/webhooks/sendgrid", content=tampered, headers=headers)
        assert 403 == response.status_code
        assert before == snapshot(sqlite_web.store)


token_text = st.text(
    alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FF, exclude_characters="/"),
    min_size=1,
    max_size=120,
)


class TestTokenFuzz:
    @FUZZ
    @given(
        token=token_text,
        route=st.sampled_from(["unsubscribe", "preferences", "confirm"]),
        method=st.sampled_from(["GET", "HEAD", "POST"]),
    )
    def test_a_made_up_token_is_404_and_changes_nothing(
        self, sqlite_web: Web, token: str, route: str, method: str
    ) -> None:
        if not sqlite_web.store.find("a@example.org"):
            sqlite_web.add("a@example.org")
        before = snapshot(sqlite_web.store)
        response = sqlite_web.client.request(
            method,
            f"/{route}/{quote(token, safe='')}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert 404 == response.status_code, (route, method, response.status_code)
        assert before == snapshot(sqlite_web.store)

    @FUZZ
    @given(data=st.data())
    def test_a_real_token_with_one_character_changed_is_refused(
        self, sqlite_web: Web, data: st.DataObject
    ) -> None:
        m = sqlite_web.store.find("a@example.org") or sqlite_web.add("a@example.org")[0]
        token = sqlite_web.tokens.token(m.id, Purpose.unsubscribe)
        # Not the last character: its low bits are base64 padding, which decoders ignore.
        index = data.draw(st.integers(0, len(token) - 2))
        replacement = data.draw(st.sampled_from("ABCabc012-_.").filter(lambda c: c != token[index]))
        forged = token[:index] + replacement + token[index + 1 :]
        before = snapshot(sqlite_web.store)
        response = sqlite_web.client.post(
            f"/unsubscribe/{forged}", content=b"List-Unsubscribe=One-Click"
        )
        if response.status_code == 200:
            # Only a token that still names this member and verifies could do this.
            pytest.fail(f"forged token {forged!r} worked")
        assert 404 == response.status_code
        assert before == snapshot(sqlite_web.store)


class TestConfirmFuzz:
    @FUZZ
    @given(
        body=st.binary(max_size=300)
        | st.dictionaries(
            st.sampled_from(["form_token", "confirm", "List-Unsubscribe"]) | st.text(max_size=8),
            st.text(max_size=60),
            max_size=4,
        ).map(lambda fields: urlencode(fields).encode()),
        content_type=st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "multipart/form-data",
                "text/plain",
                "",
            ]
        ),
    )
    def test_a_post_without_the_pages_form_token_never_confirms(
        self, sqlite_web: Web, body: bytes, content_type: str
    ) -> None:
        """A scanner or a forged form posting anything at all to a real link: 400, no change."""
        member = (
            sqlite_web.store.find("p@example.org")
            or sqlite_web.add("p@example.org", status=SubscriberStatus.pending)[0]
        )
        link = sqlite_web.confirm_link(member)
        before = snapshot(sqlite_web.store)
        response = sqlite_web.client.post(
            link, content=body, headers={"Content-Type": content_type} if content_type else {}
        )
        assert 400 == response.status_code, response.text
        assert before == snapshot(sqlite_web.store)
        assert SubscriberStatus.pending == sqlite_web.store.get(member.id).status
