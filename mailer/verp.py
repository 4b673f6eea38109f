"""VERP addresses: an envelope sender per member and issue, signed, so that what comes back names both.

With ``MAILER_BOUNCE_ADDRESS=bounces@news.example.org`` every message goes out with
its own envelope sender (SMTP ``MAIL FROM``, the ``Return-Path``), and its
``List-Unsubscribe`` header gets a ``mailto:`` beside the https link:

    bounces+b1k-n4xq2ebg-5pmtwc3kgh7cdv3x@news.example.org      MAIL FROM (bounces come here)
    bounces+u1k-n4xq2ebg-q2a7f6s1c8d0yt4m@news.example.org      the mailto: (unsubscribes come here)

A token is ``<purpose><member>-<issue>-<signature>``: one letter saying what the
address is for, the member's id in base 36, the first 40 bits of the SHA-256 of the
issue's slug (base 32), and 80 bits of an HMAC-SHA256 (base 32). Purposes:

    ====  ===============================================
    b     envelope sender of a real send
    t     envelope sender of a test send (``--test``)
    u     ``List-Unsubscribe`` mailto: of a real send
    v     ``List-Unsubscribe`` mailto: of a test send
    ====  ===============================================

The signature covers the token's payload *and the member's address*, which the
token does not carry: a token verifies only against the member it was made for,
so a forged or damaged one, or one of a member since forgotten whose id someone
else now has, names nobody. Tokens are lower case letters and digits only: some
mail systems change the case of a local part, and this survives that. Each fits
in 34 characters, so a bounce address whose local part has up to
:data:`MAX_LOCAL_PART` (29) characters keeps the whole under SMTP's 64.

The key is MAILER_SECRET_KEY, as for link tokens (:mod:`mailer.tokens`): the
first key signs, every key is accepted; the salt is this module's own, so a VERP
signature is never a link's, nor the other way round.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from itsdangerous import Signer
from itsdangerous.signer import HMACAlgorithm

from mailer.config import Settings, TransportName
from mailer.errors import ConfigError
from mailer.tokens import DEVELOPMENT_KEY, secret_keys

__all__ = [
    "MAX_LOCAL_PART",
    "Token",
    "VerpPurpose",
    "VerpSigner",
    "issue_ref",
    "split_address",
    "verp_signer",
]

SALT = "mailer.verp"
SMTP_LOCAL_PART = 64  # RFC 5321 4.5.3.1.1
TOKEN_LENGTH = 34  # the longest: 1 + 7 (a member id under 36**7) + 1 + 8 + 1 + 16
MAX_LOCAL_PART = SMTP_LOCAL_PART - 1 - TOKEN_LENGTH  # the local part before the '+'
_ISSUE_BYTES = 5
_SIGNATURE_BYTES = 10
_TOKEN = re.compile(r"([butv])([0-9a-z]{1,7})-([a-z2-7]{8})-([a-z2-7]{16})")


class VerpPurpose(StrEnum):
    """What an address is for; the first letter of its token."""

    bounce = "b"
    test_bounce = "t"
    unsubscribe = "u"
    test_unsubscribe = "v"

    @property
    def is_test(self) -> bool:
        return self in (VerpPurpose.test_bounce, VerpPurpose.test_unsubscribe)

    @property
    def is_unsubscribe(self) -> bool:
        return self in (VerpPurpose.unsubscribe, VerpPurpose.test_unsubscribe)


@dataclass(frozen=True, slots=True)
class Token:
    """A token as read from an address, not yet verified (that needs the member's address)."""

    purpose: VerpPurpose
    member_id: int
    issue_ref: str
    signature: str

    @property
    def payload(self) -> str:
        return f"{self.purpose.value}{_base36(self.member_id)}-{self.issue_ref}"


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text


def _base32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def issue_ref(slug: str) -> str:
    """The 8 characters that stand for an issue in a token: 40 bits of the SHA-256 of its slug."""
    return _base32(hashlib.sha256(slug.encode("utf-8")).digest()[:_ISSUE_BYTES])


def split_address(address: str) -> tuple[str, str, str] | None:
    """(local part, token, domain) of ``local+token@domain``; None for any other address."""
    local, at, domain = address.strip().strip("<>").rpartition("@")
    base, plus, token = local.partition("+")
    if not (at and plus and base and domain):
        return None
    return base, token, domain


class VerpSigner:
    """Makes VERP addresses for one bounce address, and reads and verifies the tokens in them."""

    def __init__(self, bounce_address: str, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        local, _, domain = bounce_address.rpartition("@")
        self.local, self.domain = local, domain
        self.bounce_address = bounce_address
        # One derived key per configured key, the signing one first (itsdangerous's
        # derivation with our salt; the HMAC of a payload is its HMACAlgorithm's).
        self._keys = [
            Signer(key, salt=SALT, digest_method=hashlib.sha256).derive_key() for key in keys
        ]
        self._hmac = HMACAlgorithm(hashlib.sha256)

    def _signature(self, key: bytes, payload: str, email: str) -> str:
        message = f"{payload}\n{email.strip().lower()}".encode()
        return _base32(self._hmac.get_signature(key, message)[:_SIGNATURE_BYTES])

    def token(self, purpose: VerpPurpose, member_id: int, issue: str, email: str) -> str:
        """The token for this member, issue and purpose (signed with the first key)."""
        if member_id <= 0:
            raise ValueError("member ids are positive")
        payload = f"{purpose.value}{_base36(member_id)}-{issue_ref(issue)}"
        return f"{payload}-{self._signature(self._keys[0], payload, email)}"

    def address(self, purpose: VerpPurpose, member_id: int, issue: str, email: str) -> str:
        """``local+token@domain`` for this member, issue and purpose."""
        return f"{self.local}+{self.token(purpose, member_id, issue, email)}@{self.domain}"

    def unsubscribe_mailto(self, member_id: int, issue: str, email: str, *, test: bool) -> str:
        """The ``mailto:`` for List-Unsubscribe: a message to it unsubscribes the member."""
        purpose = VerpPurpose.test_unsubscribe if test else VerpPurpose.unsubscribe
        return f"mailto:{self.address(purpose, member_id, issue, email)}?subject=unsubscribe"

    def read(self, address: str) -> Token | None:
        """The token in an address at our bounce address (case-insensitively); None otherwise.

        Not verified: :meth:`verify` needs the address of the member it names.
        """
        parts = split_address(address)
        if parts is None:
            return None
        local, token, domain = parts
        if local.lower() != self.local.lower() or domain.lower() != self.domain.lower():
            return None
        match = _TOKEN.fullmatch(token.lower())
        if match is None:
            return None
        purpose, member, issue, signature = match.groups()
        return Token(VerpPurpose(purpose), int(member, 36), issue, signature)

    def verify(self, token: Token, email: str) -> bool:
        """Whether we signed this token for the member whose address is ``email``, under any key."""
        return any(
            hmac.compare_digest(self._signature(key, token.payload, email), token.signature)
            for key in self._keys
        )


def verp_signer(settings: Settings) -> VerpSigner | None:
    """The signer for MAILER_BOUNCE_ADDRESS under MAILER_SECRET_KEY; None without a bounce address.

    The outbox without a key uses the development key, as links do; any other
    transport needs MAILER_SECRET_KEY (ConfigError naming it).
    """
    if settings.bounce_address is None:
        return None
    keys = secret_keys(settings)
    if not keys:
        if settings.transport != TransportName.outbox:
            raise ConfigError(
                "MAILER_SECRET_KEY is not set: MAILER_BOUNCE_ADDRESS makes every envelope "
                "sender a signed address, which needs the key. Set it to a long random string, "
                "e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        keys = [DEVELOPMENT_KEY]
    return VerpSigner(str(settings.bounce_address), keys)
