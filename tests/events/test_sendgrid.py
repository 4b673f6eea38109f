"""The webhook's pure edge: verify() checks SendGrid's signature, parse() reads the events."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from helpers.events import Signer, body_of, sg_event

from mailer.errors import ConfigError, WebhookPayloadError, WebhookSignatureError
from mailer.events.sendgrid import (
    FUTURE_SKEW,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SendGridEvent,
    load_public_key,
    member_id,
    parse,
    verify,
)

NOW = 1_800_000_000.0
BODY = body_of([sg_event("delivered", "a@example.org", timestamp=int(NOW) - 60)])


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture(scope="module")
def key(signer: Signer) -> ec.EllipticCurvePublicKey:
    return load_public_key(signer.public_key)


def headers(signer: Signer, body: bytes = BODY, stamp: int = int(NOW)) -> dict[str, str]:
    return signer.headers(body, stamp)


class TestVerify:
    def test_a_signature_made_with_the_key_is_accepted(
        self, signer: Signer, key: ec.EllipticCurvePublicKey
    ) -> None:
        """SendGrid's scheme: ECDSA P-256 / SHA-256 over the timestamp followed by the raw body."""
        verify(BODY, headers(signer), key, 600, NOW)

    def test_header_names_are_case_insensitive(
        self, signer: Signer, key: ec.EllipticCurvePublicKey
    ) -> None:
        """HTTP header names carry no case; a plain dict with lower-case names works."""
        lowered = {name.lower(): value for name, value in headers(signer).items()}
        verify(BODY, lowered, key, 600, NOW)

    @pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER])
    def test_a_missing_header_is_refused(
        self, signer: Signer, key: ec.EllipticCurvePublicKey, missing: str
    ) -> None:
        """Both headers are needed."""
        given = {k: v for k, v in headers(signer).items() if k != missing}
        with pytest.raises(WebhookSignatureError):
            verify(BODY, given, key, 600, NOW)

    def test_a_tampered_body_is_refused(
        self, signer: Signer, key: ec.EllipticCurvePublicKey
    ) -> None:
        """One byte changed in the body breaks the signature."""
        tampered = BODY.replace(b"delivered", b"bounce\x20\x20\x20")
        with pytest.raises(WebhookSignatureError):
            verify(tampered, headers(signer), key, 600, NOW)

    def test_re_serialised_json_is_refused(
        self, signer: Signer, key: ec.EllipticCurvePublicKey
    ) -> None:
        """The signature covers the bytes as sent: the same JSON written differently fails."""
        rewritten = json.dumps(json.loads(BODY), indent=1).encode()
        with pytest.raises(WebhookSignatureError):
            verify(rewritten, headers(signer), key, 600, NOW)

    def test_a_tampered_timestamp_is_refused(
        self, signer: Signer, key: ec.EllipticCurvePublicKey
    ) -> None:
        """The timestamp is signed too: moving it breaks the signature."""
        given = headers(signer)
        given[TIMESTAMP_HEADER] = str(int(NOW) - 1)
        with pytest.raises(WebhookSignatureError):
            verify(BODY, given, key, 600, NOW)

    def test_another_key_is_refused(self, signer: Signer) -> None:
        """A signature by any other key fails."""
        other = load_public_key(Signer().public_key)
        with pytest.raises(WebhookSignatureError):
            verify(BODY, headers(signer), other, 600, NOW)

    @pytest.mark.parametrize(
        "signature",
        [
            "",
            "not base64!",
            "AAAA",
            base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode(),
            "A" * 400,
        ],
    )
    def test_a_malformed_signature_is_refused(
        self, signer: Signer, key: ec.EllipticCurvePublicKey, signature: str
    ) -> None:
        """Garbage, truncated DER or an absurd length: a refusal, never a crash."""
        given = {**headers(signer), SIGNATURE_HEADER: signature}
        with pytest.raises(WebhookSignatureError):
            verify(BODY, given, key, 600, NOW)

    @pytest.mark.parametrize("stamp", ["", "abc", "-5", "1.5", "1" * 13, "１２３"])
    def test_a_timestamp_that_is_not_a_unix_time_is_refused(
        self, signer: Signer, key: ec.EllipticCurvePublicKey, stamp: str
    ) -> None:
        """Only ASCII digits."""
        given = {**headers(signer), TIMESTAMP_HEADER: stamp}
        with pytest.raises(WebhookSignatureError):
            verify(BODY, given, key, 600, NOW)

    def test_an_old_signature_is_refused(
        self, signer: Signer, key: ec.EllipticCurvePublicKey
    ) -> None:
        """A captured request replayed after max_age seconds is refused."""
        with pytest.raises(WebhookSignatureError, match="old"):
            verify(BODY, headers(signer, stamp=int(NOW) - 601), key, 600, NOW)

    def test_max_age_zero_turns_the_age_check_off(
        self, signer: Signer, key: ec.EllipticCurvePublicKey
    ) -> None:
        """MAILER_SENDGRID_WEBHOOK_MAX_AGE=0: any age."""
        verify(BODY, headers(signer, stamp=int(NOW) - 10 * 86400), key, 0, NOW)

    def test_a_timestamp_far_in_the_future_is_refused(
        self, signer: Signer, key: ec.EllipticCurvePublicKey
    ) -> None:
        """A little clock skew is allowed, not more."""
        verify(BODY, headers(signer, stamp=int(NOW) + FUTURE_SKEW - 5), key, 600, NOW)
        with pytest.raises(WebhookSignatureError, match="future"):
            verify(BODY, headers(signer, stamp=int(NOW) + FUTURE_SKEW + 5), key, 600, NOW)

    def test_without_a_key_everything_is_refused(self, signer: Signer) -> None:
        """No key configured: the webhook is closed, not open."""
        with pytest.raises(WebhookSignatureError, match="MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY"):
            verify(BODY, headers(signer), None, 600, NOW)


class TestPublicKey:
    def test_pem_is_accepted_too(self, signer: Signer) -> None:
        """Some people paste the key with PEM armour."""
        pem = signer.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        load_public_key(pem.decode())

    @pytest.mark.parametrize("text", ["", "not a key", base64.b64encode(b"junk").decode()])
    def test_garbage_is_a_config_error_naming_the_setting(self, text: str) -> None:
        with pytest.raises(ConfigError, match="MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY"):
            load_public_key(text)

    def test_a_key_of_another_kind_is_refused(self) -> None:
        """SendGrid's keys are P-256; an RSA key is a mistake."""
        der = (
            rsa.generate_private_key(65537, 2048)
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        with pytest.raises(ConfigError, match="P-256"):
            load_public_key(base64.b64encode(der).decode())


class TestParse:
    def test_events_are_read_with_their_custom_args(self) -> None:
        """custom_args come back as top-level keys."""
        [event] = parse(
            body_of(
                [
                    sg_event(
                        "open", "a@example.org", subscriber=12, issue="2026-12-03-x", ip="1.2.3.4"
                    )
                ]
            )
        ).events
        assert (12, "2026-12-03-x") == (event.subscriber_id, event.issue_slug)
        assert "1.2.3.4" == (event.model_extra or {})["ip"]

    def test_an_empty_batch_is_fine(self) -> None:
        assert ([], []) == (parse(b"[]").events, parse(b"[]").rejected)

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"{",
            b"not json",
            b'{"event": "open"}',
            b"[NaN]",
            b"[" * 100_000 + b"]" * 100_000,
            b"\xff\xfe\x00garbage",
        ],
    )
    def test_a_body_that_is_not_a_json_array_is_a_payload_error(self, body: bytes) -> None:
        with pytest.raises(WebhookPayloadError):
            parse(body)

    @pytest.mark.parametrize(
        ("item", "why"),
        [
            ("1", "not a JSON object but a JSON number"),
            ('[{"email": "a@example.org"}]', "not a JSON object but a JSON array"),
            (
                '{"timestamp": 1700000000, "event": "open", "sg_event_id": "x"}',
                "email: Field required",
            ),
            (
                '{"email": "a@example.org", "timestamp": "1700000000", "event": "open", "sg_event_id": "x"}',
                "timestamp",
            ),
            (
                '{"email": "a@example.org", "timestamp": 1.5, "event": "open", "sg_event_id": "x"}',
                "timestamp",
            ),
            (
                '{"email": "a@example.org", "timestamp": true, "event": "open", "sg_event_id": "x"}',
                "timestamp",
            ),
            (
                '{"email": "a@example.org", "timestamp": 1e400, "event": "open", "sg_event_id": "x"}',
                "timestamp",
            ),
            (
                '{"email": "a@example.org", "timestamp": 99999999999999, "event": "open", "sg_event_id": "x"}',
                "timestamp",
            ),
            (
                '{"email": "a@example.org", "timestamp": -1, "event": "open", "sg_event_id": "x"}',
                "timestamp",
            ),
            (
                '{"email": "a@example.org", "timestamp": 1, "event": "open"}',
                "sg_event_id: Field required",
            ),
            (
                '{"email": "a@example.org", "timestamp": 1, "event": "open", "sg_event_id": 7}',
                "sg_event_id",
            ),
            (
                '{"email": "a@example.org", "timestamp": 1, "event": "open", "sg_event_id": "'
                + "x" * 129
                + '"}',
                "sg_event_id",
            ),
            (
                '{"email": "a@example.org", "timestamp": 1, "event": "'
                + "e" * 41
                + '", "sg_event_id": "x"}',
                "event",
            ),
            ('{"email": "", "timestamp": 1, "event": "open", "sg_event_id": "x"}', "email"),
            ('{"email": 5, "timestamp": 1, "event": "open", "sg_event_id": "x"}', "email"),
            (
                '{"email": "a\\u0000b@example.org", "timestamp": 1, "event": "open", "sg_event_id": "x"}',
                "NUL",
            ),
            (
                '{"email": "a\\ud800@example.org", "timestamp": 1, "event": "open", "sg_event_id": "x"}',
                "surrogate",
            ),
        ],
    )
    def test_an_item_that_is_not_an_event_is_rejected_and_the_rest_read(
        self, item: str, why: str
    ) -> None:
        """SendGrid posts every event of the account: an odd one costs nothing but itself."""
        good = json.dumps(sg_event("open", "a@example.org"))
        parsed = parse(f"[{good}, {item}, {good}]".encode())
        assert 2 == len(parsed.events)
        [rejected] = parsed.rejected
        assert 1 == rejected.position
        assert why in rejected.reason
        assert rejected.text.isascii()
        assert json.loads(item) == json.loads(rejected.text)

    def test_a_rejected_item_keeps_its_address_for_forget_only_when_it_is_text(self) -> None:
        parsed = parse(b'[{"email": "A@example.org", "event": "x"}, {"email": 5}, 3]')
        assert ["A@example.org", "", ""] == [r.email for r in parsed.rejected]

    def test_the_same_item_has_the_same_fingerprint(self) -> None:
        one = parse(b'[{"b": 1, "a": 2}]').rejected[0]
        two = parse(b'[{"a": 2, "b": 1}]').rejected[0]
        other = parse(b'[{"a": 3, "b": 1}]').rejected[0]
        assert one.fingerprint == two.fingerprint != other.fingerprint

    def test_a_huge_item_is_kept_cut(self) -> None:
        [rejected] = parse(json.dumps([{"email": "x" * 100_000}]).encode()).rejected
        assert len(rejected.text) < 20_100 and rejected.text.endswith("(cut)")

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("12", 12),
            (12, 12),
            (" 7 ", 7),
            (str(2**31 - 1), 2**31 - 1),
            (str(2**31), None),
            (2**31, None),
            ("99999999999999999999", None),
            ("0", None),
            ("-3", None),
            ("\u00b2", None),  # superscript two: isdigit() says yes, int() says no
            ("\u0661", None),  # Arabic-Indic one
            (True, None),
            ("1e3", None),
            (None, None),
        ],
    )
    def test_a_subscriber_id_is_one_a_member_can_have(
        self, value: object, expected: int | None
    ) -> None:
        """Out of range or not a number: no id, and the address decides (2**31 was a 503 on PostgreSQL)."""
        assert expected == member_id(value)

    def test_optional_fields_of_the_wrong_type_are_read_as_absent(self) -> None:
        """Lenient on the rest: a field SendGrid might change does not refuse a batch."""
        raw = sg_event("bounce", "a@example.org", type=["bounce"], reason={"x": 1}, subscriber=None)
        raw["subscriber"] = {"id": 3}
        raw["status"] = "5.1.\x001"
        [event] = parse(body_of([raw])).events
        assert (None, None, None, None) == (
            event.type,
            event.reason,
            event.subscriber_id,
            event.status,
        )

    def test_numbers_in_custom_args_are_read_as_text(self) -> None:
        raw = sg_event("open", "a@example.org")
        raw["subscriber"] = 42
        [event] = parse(body_of([raw])).events
        assert 42 == event.subscriber_id

    def test_the_model_keeps_unknown_fields(self) -> None:
        event = SendGridEvent.model_validate(
            {
                "email": "a@b.org",
                "timestamp": 1,
                "event": "machine_opened",
                "sg_event_id": "x",
                "new": 1,
            }
        )
        assert {"new": 1} == event.model_extra


def test_the_clock_is_unix_seconds() -> None:
    """A sanity check on the test's own fixture: NOW is a plausible time."""
    assert abs(time.time() - NOW) < 10 * 365 * 86400
