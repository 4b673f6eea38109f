"""Signed link tokens: who a link is for, that only the holder of MAILER_SECRET_KEY can make."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import Signer, URLSafeSerializer
from pydantic import SecretStr

from mailer.config import Settings, TransportName
from mailer.errors import ConfigError, TokenError
from mailer.tokens import (
    DEVELOPMENT_KEY,
    MAX_SUBSCRIBER_ID,
    LinkRef,
    Purpose,
    TokenSigner,
    read_token,
    signer_for,
)

KEY = "first-key-0123456789abcdef"
OLD_KEY = "older-key-0123456789abcdef"


class TestTokenSigner:
    def test_reads_back_the_subscriber_and_the_link_version(self) -> None:
        """A token made for a subscriber, purpose and link version reads back as both."""
        signer = TokenSigner([KEY])
        assert LinkRef(4217, 0) == signer.read(
            signer.token(4217, Purpose.unsubscribe), Purpose.unsubscribe
        )
        assert LinkRef(4217, 3) == signer.read(
            signer.token(4217, Purpose.preferences, 3), Purpose.preferences
        )

    def test_tokens_differ_per_member_and_purpose(self) -> None:
        """Each member and each purpose has its own token."""
        signer = TokenSigner([KEY])
        tokens = {signer.token(n, purpose) for n in (1, 2) for purpose in Purpose}
        assert 4 == len(tokens)

    def test_a_token_for_one_purpose_does_not_serve_another(self) -> None:
        """An unsubscribe token does not open the preference centre (a salt per purpose)."""
        signer = TokenSigner([KEY])
        with pytest.raises(TokenError, match="preferences link is not valid"):
            signer.read(signer.token(7, Purpose.unsubscribe), Purpose.preferences)

    @pytest.mark.parametrize("token", ["", "garbage", "Nw.not-a-signature", "Nw"])
    def test_forged_or_damaged_tokens_are_refused(self, token: str) -> None:
        """Anything not signed with the key is refused with a message a member understands."""
        with pytest.raises(TokenError, match="cut short"):
            TokenSigner([KEY]).read(token, Purpose.unsubscribe)

    def test_changing_the_id_breaks_the_signature(self) -> None:
        """Swapping in another member's id (the token's readable part) is caught."""
        signer = TokenSigner([KEY])
        _, signature = signer.token(7, Purpose.unsubscribe).split(".")
        forged = base64.urlsafe_b64encode(b"8").decode().rstrip("=") + "." + signature
        with pytest.raises(TokenError):
            signer.read(forged, Purpose.unsubscribe)

    def test_another_key_cannot_read_it(self) -> None:
        """A token signed under one key is refused under another."""
        token = TokenSigner([KEY]).token(7, Purpose.unsubscribe)
        with pytest.raises(TokenError):
            TokenSigner([OLD_KEY]).read(token, Purpose.unsubscribe)

    def test_carries_no_email_address_and_no_readable_id(self) -> None:
        """A forwarded link shows no address, nor the member's id (ids run 1..N: the list's size)."""
        signer = TokenSigner([KEY])
        token = signer.token(7, Purpose.unsubscribe)
        payload = token.split(".")[0]
        assert "@" not in token
        assert payload.startswith("v") and 23 == len(payload)  # "v" + one AES block
        block = base64.urlsafe_b64decode(payload[1:] + "==")
        assert 16 == len(block)
        assert b"\x00\x00\x00\x00\x00\x00\x00\x07" not in block  # the id is not there as it is
        # The next member's token shares nothing: one block of AES changes all over.
        neighbour = base64.urlsafe_b64decode(signer.reference(8)[1:] + "==")
        assert sum(a != b for a, b in zip(block, neighbour, strict=True)) >= 8

    def test_links_sent_before_versions_still_open(self) -> None:
        """Tokens made before links had versions (the plain id) read as version 0."""
        import hashlib

        serializer = URLSafeSerializer(
            KEY, salt="mailer.unsubscribe", signer_kwargs={"digest_method": hashlib.sha256}
        )
        assert LinkRef(7, 0) == TokenSigner([KEY]).read(serializer.dumps(7), Purpose.unsubscribe)

    @pytest.mark.parametrize("subscriber_id", [2**31, 2**63 - 1, 10**30])
    def test_an_id_no_member_can_have_is_not_a_link(self, subscriber_id: int) -> None:
        """A signed token naming an id beyond any member's (PostgreSQL's integer) is refused."""
        import hashlib

        serializer = URLSafeSerializer(
            KEY, salt="mailer.unsubscribe", signer_kwargs={"digest_method": hashlib.sha256}
        )
        with pytest.raises(TokenError):
            TokenSigner([KEY]).read(serializer.dumps(subscriber_id), Purpose.unsubscribe)

    def test_is_itsdangerous_url_safe_format(self) -> None:
        """Any itsdangerous user checks its signature with Signer: the reference, signed."""
        import hashlib

        signer = TokenSigner([KEY])
        token = signer.token(7, Purpose.unsubscribe)
        checker = Signer(KEY, salt="mailer.unsubscribe", digest_method=hashlib.sha256)
        assert signer.reference(7).encode() == checker.unsign(token)

    @given(
        subscriber_id=st.integers(min_value=1, max_value=MAX_SUBSCRIBER_ID),
        purpose=st.sampled_from(Purpose),
    )
    def test_is_exactly_what_itsdangerous_makes_for_any_id(
        self, subscriber_id: int, purpose: Purpose
    ) -> None:
        """The hot path signs without itsdangerous's per-call checks, byte for byte the same."""
        import hashlib

        signer = Signer(KEY, salt=f"mailer.{purpose}", digest_method=hashlib.sha256)
        tokens = TokenSigner([KEY])
        expected = signer.sign(tokens.reference(subscriber_id)).decode()
        assert expected == tokens.token(subscriber_id, purpose)

    @given(
        st.integers(min_value=1, max_value=MAX_SUBSCRIBER_ID), st.text(min_size=16, max_size=200)
    )
    def test_a_members_two_links_are_made_together(self, subscriber_id: int, key: str) -> None:
        """The send makes both of a member's tokens at once: the same as one at a time, and
        read by itsdangerous's own HMAC, for any key."""
        signer = TokenSigner([key])
        assert (
            signer.token(subscriber_id, Purpose.unsubscribe),
            signer.token(subscriber_id, Purpose.preferences),
        ) == signer.links(subscriber_id)
        ref = signer.read(signer.links(subscriber_id)[1], Purpose.preferences)
        assert LinkRef(subscriber_id, 0) == ref


class TestKeyRotation:
    def test_the_first_key_signs(self) -> None:
        """With several keys, new tokens are signed with the first."""
        token = TokenSigner([KEY, OLD_KEY]).token(7, Purpose.unsubscribe)
        assert token == TokenSigner([KEY]).token(7, Purpose.unsubscribe)

    def test_every_key_is_accepted(self) -> None:
        """Links signed before the rotation keep working while the old key is listed."""
        old_token = TokenSigner([OLD_KEY]).token(7, Purpose.unsubscribe)
        assert LinkRef(7, 0) == TokenSigner([KEY, OLD_KEY]).read(old_token, Purpose.unsubscribe)

    def test_keys_come_comma_separated_from_the_environment(self) -> None:
        """MAILER_SECRET_KEY='new, old' rotates: the new signs, the old still reads."""
        settings = Settings(secret_key=SecretStr(f"{KEY}, {OLD_KEY}"))
        old_token = TokenSigner([OLD_KEY]).token(9, Purpose.preferences)
        signer = signer_for(settings)
        assert LinkRef(9, 0) == signer.read(old_token, Purpose.preferences)
        assert TokenSigner([KEY]).token(9, Purpose.preferences) == signer.token(
            9, Purpose.preferences
        )


class TestSignerFor:
    def test_outbox_without_a_key_uses_the_development_key(self) -> None:
        """Trying mailer out needs no secret: the outbox signs with a public development key."""
        signer = signer_for(Settings(transport=TransportName.outbox))
        assert signer.development
        assert signer.token(1, Purpose.unsubscribe) == TokenSigner([DEVELOPMENT_KEY]).token(
            1, Purpose.unsubscribe
        )

    @pytest.mark.parametrize("transport", [TransportName.smtp, TransportName.sendgrid])
    def test_real_mail_needs_the_key(self, transport: TransportName) -> None:
        """SMTP and SendGrid send real mail: without MAILER_SECRET_KEY, a ConfigError says so."""
        with pytest.raises(ConfigError, match="MAILER_SECRET_KEY is not set"):
            signer_for(Settings(transport=transport))

    def test_a_short_key_is_refused(self) -> None:
        """A key too short to be secret is refused, naming the variable and never the key."""
        with pytest.raises(ConfigError, match="MAILER_SECRET_KEY: key 2") as caught:
            signer_for(Settings(secret_key=SecretStr(f"{KEY},hunter2")))
        assert "hunter2" not in str(caught.value)

    def test_read_token_for_the_web_app(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """read_token(token, purpose) takes the key from the environment."""
        monkeypatch.setenv("MAILER_SECRET_KEY", KEY)
        token = TokenSigner([KEY]).token(31, Purpose.unsubscribe)
        assert 31 == read_token(token, "unsubscribe")
        with pytest.raises(TokenError):
            read_token(token, "preferences")
