"""Addresses: checked by email-validator, normalised, keyed case-insensitively, hashed."""

from __future__ import annotations

import hashlib

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given
from hypothesis import strategies as st

from mailer.store.emails import (
    InvalidEmail,
    NormalisedEmail,
    address_key,
    email_key,
    normalise_email,
    suppression_hash,
)


class TestNormaliseEmail:
    def test_strips_surrounding_space(self) -> None:
        """Spaces a spreadsheet leaves around an address are not part of it."""
        assert "jane@example.org" == normalise_email("  jane@example.org \t").email

    def test_lowercases_the_domain_and_keeps_the_local_part(self) -> None:
        """The domain is case-insensitive; the local part is kept as the member wrote it."""
        assert "Jane.Doe@example.org" == normalise_email("Jane.Doe@EXAMPLE.Org").email

    def test_decodes_an_idna_domain(self) -> None:
        """An internationalised domain is stored in Unicode, as email-validator normalises it."""
        assert "info@bücher.example" == normalise_email("info@xn--bcher-kva.example").email

    def test_lowercases_role_mailboxes_as_email_validator_does(self) -> None:
        """RFC 2142 role names (info, postmaster, ...) are case-insensitive, so they are lower-cased."""
        assert "info@example.org" == normalise_email("INFO@example.org").email

    def test_key_is_case_insensitive(self) -> None:
        """Jane@Example.org and jane@example.org are the same member."""
        assert normalise_email("Jane@Example.org").key == normalise_email("jane@example.org").key

    def test_key_is_the_lowercased_normalised_address(self) -> None:
        """The key is what uniqueness and look-ups use."""
        assert "jane.doe@example.org" == NormalisedEmail("Jane.Doe@example.org").key
        assert "jane.doe@example.org" == email_key("Jane.Doe@example.org")

    def test_the_suppression_hash_is_sha256_of_the_key(self) -> None:
        """Only this hash of a forgotten address is kept."""
        expected = hashlib.sha256(b"jane@example.org").hexdigest()
        assert expected == suppression_hash("jane@example.org")

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            (
                "jane@",
                "'jane@' is not a valid email address: there must be something after the @-sign",
            ),
            ("jane", "'jane' is not a valid email address: an email address must have an @-sign"),
            (
                "jane@example",
                "'jane@example' is not a valid email address: the part after the @-sign is not valid. "
                "It should have a period",
            ),
            (
                "jane doe@example.org",
                "'jane doe@example.org' is not a valid email address: the email address contains "
                "invalid characters before the @-sign: SPACE",
            ),
            (
                "Jane <jane@example.org>",
                "'Jane <jane@example.org>' is not a valid email address: a display name and angle "
                "brackets around the email address are not permitted here",
            ),
        ],
    )
    def test_rejects_invalid_addresses_with_email_validators_reason(
        self, raw: str, message: str
    ) -> None:
        """An invalid address names itself and says why, in email-validator's words."""
        with pytest.raises(InvalidEmail) as caught:
            normalise_email(raw)
        assert message == str(caught.value)

    def test_needs_no_network(self) -> None:
        """A domain that does not exist is fine: only the syntax is checked."""
        assert (
            "a@no-such-domain-at-all.example.net"
            == normalise_email("a@no-such-domain-at-all.example.net").email
        )


def _reference(raw: str) -> str:
    """What email-validator itself says: the normalised form, or its message."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        return f"error: {error}"


def _ours(raw: str) -> str:
    try:
        return normalise_email(raw).email
    except InvalidEmail as error:
        return f"error: {error.reason}"


LOCAL = st.text(alphabet=st.sampled_from("abcXYZ019.+-_!#'~ \"@é"), min_size=0, max_size=70)
DOMAIN = st.one_of(
    st.sampled_from(
        [
            "example.org",
            "EXAMPLE.com",
            "xn--bcher-kva.example",
            "bücher.example",
            "a.b",
            "localhost",
            "example.test",
            "[127.0.0.1]",
            "exa mple.org",
            "-bad.example.org",
            "ex..ample.org",
            "",
        ]
    ),
    st.text(alphabet=st.sampled_from("abcXY09-."), min_size=0, max_size=70),
    st.builds(lambda n: "a" * n + ".example.org", st.integers(min_value=40, max_value=250)),
)


class TestFastPathAgreesWithEmailValidator:
    @given(local=LOCAL, domain=DOMAIN)
    @example(local="postmaster", domain="Example.org")
    @example(local="a" * 64, domain="b" * 63 + "." + "c" * 63 + "." + "d" * 63 + ".org")
    @example(local="a" * 65, domain="example.org")
    @example(local="jane", domain="ＥＸＡＭＰＬＥ.org")
    def test_same_verdict_and_same_normal_form(self, local: str, domain: str) -> None:
        """For any address, normalise_email accepts exactly what email-validator accepts, in the same form."""
        raw = f"{local}@{domain}"
        reference = _reference(raw)
        ours = _ours(raw)
        if reference.startswith("error: "):
            assert ours.startswith("error: ")
            assert reference[len("error: ") :].rstrip(".").lower() == ours[len("error: ") :].lower()
        else:
            assert reference == ours


class TestAddressKey:
    @pytest.mark.parametrize(
        ("given", "key"),
        [
            ("info@xn--exmple-cua.org", "info@exämple.org"),
            (" Info@XN--EXMPLE-CUA.ORG ", "info@exämple.org"),
            ("info@EXÄMPLE.org", "info@exämple.org"),
            ("Jane@Example.ORG", "jane@example.org"),
            ("not an address", "not an address"),
        ],
    )
    def test_one_normal_form_whatever_the_spelling(self, given: str, key: str) -> None:
        """Events and bounces find the member by the key import and sign-up store."""
        assert key == address_key(given)
        if "@" in given and " an " not in given:
            assert key == normalise_email(given).key

    @given(
        local=st.from_regex(r"[A-Za-z0-9._+-]{1,20}", fullmatch=True),
        domain=st.sampled_from(
            ["example.org", "EXAMPLE.org", "xn--caf-dma.example", "café.example", "Bücher.Example"]
        ),
    )
    def test_it_is_the_key_of_the_normalised_address(self, local: str, domain: str) -> None:
        address = f"{local}@{domain}"
        try:
            expected = normalise_email(address).key
        except InvalidEmail:
            return
        assert expected == address_key(address)
