"""Signed link tokens: which member a link is for, in a form only we can have made.

Every email carries two links of its own, ``{MAILER_BASE_URL}/unsubscribe/{token}``
and ``{MAILER_BASE_URL}/preferences/{token}``. A token is the subscriber's id
signed with HMAC-SHA256 under MAILER_SECRET_KEY (itsdangerous's URL-safe
format), with a salt per purpose: nobody can make a token for another member,
an unsubscribe token does not open the preference centre, and no email address
is in it. Tokens do not expire: an unsubscribe link must work for as long as
anyone keeps the email.

Key rotation: MAILER_SECRET_KEY may hold several keys, separated by commas. The
first signs and every one is accepted, so a new key goes first and the old one
stays listed for as long as links signed with it should keep working.

With the outbox transport and no MAILER_SECRET_KEY, a fixed development key is
used (:data:`DEVELOPMENT_KEY`, public, so its links prove nothing); every other
transport sends real mail and requires a real key.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Sequence
from enum import StrEnum

from itsdangerous import BadData, Signer
from itsdangerous.encoding import base64_decode

from mailer.config import Settings, TransportName
from mailer.errors import ConfigError, TokenError

__all__ = [
    "DEVELOPMENT_KEY",
    "MIN_KEY_LENGTH",
    "Purpose",
    "TokenSigner",
    "read_token",
    "secret_keys",
    "signer_for",
]

DEVELOPMENT_KEY = "mailer-development-key-NOT-SECRET-outbox-only"
MIN_KEY_LENGTH = 16


class Purpose(StrEnum):
    """What a link does; each purpose signs with its own salt."""

    unsubscribe = "unsubscribe"
    preferences = "preferences"


class _Signer(Signer):
    """itsdangerous's Signer, with each key derived once and its HMAC keyed once.

    Signing is on the hot path of a send (two tokens per recipient): deriving the
    key and setting up the HMAC for every signature took most of the time. The
    signature is itsdangerous's own (HMAC-SHA256 of the payload under the derived
    key, URL-safe base64), so its ``unsign`` reads these tokens unchanged.
    """

    def __init__(self, keys: Sequence[str], salt: str) -> None:
        super().__init__(list(keys), salt=salt, digest_method=hashlib.sha256)
        self._derived: dict[bytes, bytes] = {}
        self._inner, self._outer = _hmac_states(self.derive_key())

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = self.secret_keys[-1] if secret_key is None else _bytes(secret_key)
        derived = self._derived.get(key)
        if derived is None:
            derived = self._derived[key] = super().derive_key(key)
        return derived

    def sign(self, value: str | bytes) -> bytes:
        payload = _bytes(value)
        separator: bytes = self.sep
        return payload + separator + _urlsafe(self.mac(payload))

    def mac(self, payload: bytes) -> bytes:
        """HMAC-SHA256 of the payload: the hash states after the padded key, copied (RFC 2104).

        Two copies of ready SHA-256 states, where the hmac module's copy() of a keyed
        HMAC costs twice as much; tests check the tokens byte for byte against itsdangerous.
        """
        inner = self._inner.copy()
        inner.update(payload)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


_BLOCK = hashlib.sha256().block_size
_IPAD = bytes.maketrans(bytes(range(256)), bytes(x ^ 0x36 for x in range(256)))
_OPAD = bytes.maketrans(bytes(range(256)), bytes(x ^ 0x5C for x in range(256)))


def _hmac_states(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 after the inner and after the outer padded key, as HMAC begins (RFC 2104)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(padded.translate(_IPAD)), hashlib.sha256(padded.translate(_OPAD))


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _urlsafe(data: bytes) -> bytes:
    """itsdangerous's ``base64_encode`` (URL-safe, unpadded), without its per-call checks."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_URLSAFE)


def _payload(subscriber_id: int) -> bytes:
    # What itsdangerous's URLSafeSerializer makes of the id, so that either can read the
    # other's tokens.
    return _urlsafe(str(int(subscriber_id)).encode("ascii"))


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


class TokenSigner:
    """Makes and reads the tokens in members' links, under one or more keys."""

    def __init__(self, keys: Sequence[str], *, development: bool = False) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        # itsdangerous signs with the last key and accepts all: the first configured goes last.
        ordered = list(reversed(keys))
        self._signers = {purpose: _Signer(ordered, salt=f"mailer.{purpose}") for purpose in Purpose}
        self.development = development

    def token(self, subscriber_id: int, purpose: Purpose) -> str:
        """The token for this subscriber's link of this purpose."""
        return self._signers[purpose].sign(_payload(subscriber_id)).decode("ascii")

    def links(self, subscriber_id: int) -> tuple[str, str]:
        """The unsubscribe and the preferences token of a subscriber, made together (a send's
        hot path: the payload once)."""
        payload = _payload(subscriber_id)
        unsubscribe = self._signers[Purpose.unsubscribe].sign(payload)
        preferences = self._signers[Purpose.preferences].sign(payload)
        return unsubscribe.decode("ascii"), preferences.decode("ascii")

    def read(self, token: str, purpose: Purpose) -> int:
        """The subscriber id in a token; TokenError if it is not ours, or not for this purpose."""
        try:
            payload = self._signers[Purpose(purpose)].unsign(token.strip())
            subscriber_id = int(base64_decode(payload).decode("ascii"))
        except (BadData, ValueError, UnicodeDecodeError):
            raise TokenError(
                f"this {purpose} link is not valid: it may have been cut short when it was "
                "copied. Open the link from the email again, or write to the newsletter's "
                "address and we will sort it out."
            ) from None
        if subscriber_id <= 0:
            raise TokenError(f"this {purpose} link does not belong to a member")
        return subscriber_id


def secret_keys(settings: Settings) -> list[str]:
    """The keys in MAILER_SECRET_KEY, the signing key first; [] when it is unset."""
    if settings.secret_key is None:
        return []
    keys = [key.strip() for key in settings.secret_key.get_secret_value().split(",")]
    keys = [key for key in keys if key]
    short = [index for index, key in enumerate(keys, 1) if len(key) < MIN_KEY_LENGTH]
    if short:
        which = ", ".join(map(str, short))
        raise ConfigError(
            f"MAILER_SECRET_KEY: key {which} (counting from 1) is shorter than "
            f"{MIN_KEY_LENGTH} characters, too easy to guess. Use a long random string, e.g. "
            "the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return keys


def signer_for(settings: Settings) -> TokenSigner:
    """The signer for these settings: MAILER_SECRET_KEY, or the development key for the outbox.

    ``.development`` says the development key is in use, so that callers can warn.
    Raises ConfigError naming MAILER_SECRET_KEY when a transport that sends real
    mail has no key.
    """
    keys = secret_keys(settings)
    if keys:
        return TokenSigner(keys)
    if settings.transport == TransportName.outbox:
        return TokenSigner([DEVELOPMENT_KEY], development=True)
    raise ConfigError(
        f"MAILER_SECRET_KEY is not set: the {settings.transport} transport sends real mail, "
        "whose unsubscribe links must be signed. Set it to a long random string, e.g. the "
        "output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )


def read_token(token: str, purpose: Purpose | str, settings: Settings | None = None) -> int:
    """The subscriber id a link's token names; TokenError for a token that is not ours.

    For the web app: ``read_token(token, "unsubscribe")`` with the settings of the
    environment unless given.
    """
    if settings is None:
        from mailer.config import get_settings

        settings = get_settings()
    return signer_for(settings).read(token, Purpose(purpose))
