"""VERP addresses: the envelope sender names the member and the issue, and only we can make one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailer.config import MAX_BOUNCE_LOCAL_PART, Settings
from mailer.errors import ConfigError
from mailer.verp import MAX_LOCAL_PART, VerpPurpose, VerpSigner, issue_ref, verp_signer

ISSUE = "2026-12-03-winter-connections"
KEY = "verp-test-key-0123456789abcdef"


@pytest.fixture
def verp() -> VerpSigner:
    return VerpSigner("bounces@news.example.org", [KEY])


class TestAddresses:
    def test_an_address_names_the_member_and_the_issue(self, verp: VerpSigner) -> None:
        """bounces+<token>@domain, whose token reads back as the member, the issue and the purpose."""
        address = verp.address(VerpPurpose.bounce, 4217, ISSUE, "ann@example.org")
        token = verp.read(address)
        assert token is not None
        assert (VerpPurpose.bounce, 4217, issue_ref(ISSUE)) == (
            token.purpose,
            token.member_id,
            token.issue_ref,
        )
        assert address.startswith("bounces+b") and address.endswith("@news.example.org")

    def test_it_verifies_only_for_the_member_it_was_made_for(self, verp: VerpSigner) -> None:
        """The signature covers the member's address: another's (an id reused after a forget) fails."""
        token = verp.read(verp.address(VerpPurpose.bounce, 7, ISSUE, "Ann@Example.org"))
        assert token is not None
        assert (True, False) == (
            verp.verify(token, "ann@example.org"),
            verp.verify(token, "bo@example.org"),
        )

    def test_a_changed_token_does_not_verify(self, verp: VerpSigner) -> None:
        """Another member id, issue or purpose in the same token is not ours."""
        address = verp.address(VerpPurpose.bounce, 7, ISSUE, "ann@example.org")
        forged = address.replace("+b7-", "+u7-")
        token = verp.read(forged)
        assert token is not None and not verp.verify(token, "ann@example.org")

    def test_case_changed_in_transit_still_reads(self, verp: VerpSigner) -> None:
        """Some mail systems upper-case a local part: the token is letters and digits of one case."""
        address = verp.address(VerpPurpose.unsubscribe, 99, ISSUE, "ann@example.org")
        token = verp.read(address.upper())
        assert token is not None and verp.verify(token, "ann@example.org")

    def test_other_addresses_hold_no_token(self, verp: VerpSigner) -> None:
        """The bare bounce address, another local part, another domain or junk: no token."""
        good = verp.address(VerpPurpose.bounce, 7, ISSUE, "ann@example.org")
        others = [
            "bounces@news.example.org",
            good.replace("bounces+", "news+"),
            good.replace("news.example.org", "example.net"),
            "bounces+hello@news.example.org",
            "",
        ]
        assert [None] * len(others) == [verp.read(address) for address in others]

    def test_an_old_key_still_verifies_after_rotation(self) -> None:
        """MAILER_SECRET_KEY="new,old": addresses made under the old key keep working."""
        old = VerpSigner("bounces@news.example.org", ["old-key-0123456789abcdef"])
        rotated = VerpSigner(
            "bounces@news.example.org", ["new-key-0123456789abcdef", "old-key-0123456789abcdef"]
        )
        token = rotated.read(old.address(VerpPurpose.bounce, 3, ISSUE, "ann@example.org"))
        assert token is not None and rotated.verify(token, "ann@example.org")

    @given(
        member=st.integers(min_value=1, max_value=2**31 - 1),
        issue=st.text(min_size=1, max_size=100),
    )
    def test_every_address_fits_in_an_smtp_local_part(self, member: int, issue: str) -> None:
        """With the longest bounce local part allowed, the whole local part is at most 64."""
        verp = VerpSigner("b" * MAX_BOUNCE_LOCAL_PART + "@news.example.org", [KEY])
        local = verp.address(VerpPurpose.test_unsubscribe, member, issue, "a@example.org").split(
            "@"
        )[0]
        assert len(local) <= 64


class TestSettings:
    def test_the_settings_limit_is_the_tokens(self) -> None:
        """The longest bounce local part the settings take is what the longest token leaves."""
        assert MAX_LOCAL_PART == MAX_BOUNCE_LOCAL_PART

    @pytest.mark.parametrize(
        "address", ["bounces+x@news.example.org", "b" * 30 + "@news.example.org"]
    )
    def test_a_bounce_address_that_cannot_take_a_token_is_refused(self, address: str) -> None:
        """A '+' of its own, or a local part too long for +<token>, is refused with the reason."""
        with pytest.raises(ValueError, match="bounce_address"):
            Settings(bounce_address=address)

    def test_no_bounce_address_no_verp(self) -> None:
        assert None is verp_signer(Settings())

    def test_real_mail_needs_the_secret_key(self) -> None:
        """SMTP with a bounce address and no MAILER_SECRET_KEY is refused, naming it."""
        with pytest.raises(ConfigError, match="MAILER_SECRET_KEY is not set"):
            verp_signer(Settings(transport="smtp", bounce_address="bounces@news.example.org"))
