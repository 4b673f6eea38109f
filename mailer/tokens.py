"""Signed link tokens: which member a link is for, in a form only we can have made.

Every email carries two links of its own, ``{MAILER_BASE_URL}/unsubscribe/{token}``
and ``{MAILER_BASE_URL}/preferences/{token}``. A token is an opaque reference to
the member, signed with HMAC-SHA256 under MAILER_SECRET_KEY (itsdangerous's
URL-safe format), with a salt per purpose: nobody can make a token for another
member, an unsubscribe token does not open the preference centre, and no email
address is in it. Tokens do not expire: an unsubscribe link must work for as long
as anyone keeps the email.

The reference is the member's id and the version of their links, encrypted as one
AES block under a key derived from MAILER_SECRET_KEY (:class:`LinkRef`): a link
shows neither the id (ids run 1..N, which would tell the list's size and growth)
nor anything that could be counted. Revoking a member's links (``mailer subscribers
revoke-links``) moves them to the next version; links made before stop working,
and the next email carries new ones. Tokens made before links had versions (their
payload is the plain id) are read as version 0, so links already sent keep working
until the member's links are revoked.

Key rotation: MAILER_SECRET_KEY may hold several keys, separated by commas. The
first signs and every one is accepted, so a new key goes first and the old one
stays listed for as long as links signed with it should keep working.

With the outbox transport and no MAILER_SECRET_KEY, a fixed development key is
used (:data:`DEVELOPMENT_KEY`, public, so its links prove nothing); every other
transport sends real mail, requires a real key, and refuses the development key.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import struct
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from itsdangerous import BadData, Signer
from itsdangerous.encoding import base64_decode

from mailer.config import Settings, TransportName
from mailer.errors import ConfigError, TokenError

__all__ = [
    "DEVELOPMENT_KEY",
    "MAX_SUBSCRIBER_ID",
    "MIN_KEY_LENGTH",
    "LinkRef",
    "Purpose",
    "TokenSigner",
    "read_token",
    "secret_keys",
    "signer_for",
]

DEVELOPMENT_KEY = "mailer-development-key-NOT-SECRET-outbox-only"
MAX_SUBSCRIBER_ID = 2**31 - 1
"""The largest id a member can have (PostgreSQL's integer): a token naming more is not ours."""
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

    def tokens(self, payloads: Iterable[bytes]) -> list[str]:
        """``sign(payload)`` of each payload, as text: a send's batch in one loop of C calls
        (the hash states copied as :meth:`mac` does, the MAC written as :func:`_urlsafe` does)."""
        inner, outer, b2a = self._inner, self._outer, binascii.b2a_base64
        separator: bytes = self.sep
        signed = []
        for payload in payloads:
            mac = inner.copy()
            mac.update(payload)
            digest = outer.copy()
            digest.update(mac.digest())
            # 32 bytes are 43 characters of base64 and one '=' of padding.
            signature = b2a(digest.digest(), newline=False)[:-1].translate(_URLSAFE)
            signed.append((payload + separator + signature).decode("ascii"))
        return signed


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


@dataclass(frozen=True, slots=True)
class LinkRef:
    """Who a link is for: the member, and the version of their links it was made with."""

    subscriber_id: int
    version: int

    def current(self, link_version: int) -> bool:
        """Whether the link still works for a member whose links are at *link_version*."""
        return self.version == link_version


# The encrypted reference: one AES block of id (8 bytes), version (4) and a check (4),
# written "v" + URL-safe base64. A token made before links had versions carries the
# id's decimal digits in base64, which never starts with "v".
_VERSIONED = b"v"
_CHECK = b"mlr1"
# A block as encrypt() writes it: id in 8 bytes, version in 4 (big-endian), the check.
_block = struct.Struct(">QI4s").pack


def _legacy_payload(subscriber_id: int) -> bytes:
    # What itsdangerous's URLSafeSerializer makes of the id: the tokens of links sent
    # before links had versions.
    return _urlsafe(str(int(subscriber_id)).encode("ascii"))


def _block_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"mailer.link-ref", hashlib.sha256).digest()


class _RefCipher:
    """Encrypts a (member, version) into one AES block, and back under any of the keys.

    A single block under AES is a keyed permutation: the same member and version
    always give the same token, and without the key nothing of the id shows. The
    encryptor is kept per thread (ECB has no state between blocks), so a send's
    hot path makes no new cipher per member.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = [_block_key(key) for key in keys]
        self._local = threading.local()

    def _encryptor(self) -> Any:
        """This thread's encryptor (ECB keeps no state between blocks: one serves every call)."""
        encryptor = getattr(self._local, "encryptor", None)
        if encryptor is None:
            cipher = Cipher(algorithms.AES(self._keys[0]), modes.ECB())  # one block: a permutation
            encryptor = self._local.encryptor = cipher.encryptor()
        return encryptor

    def encrypt(self, subscriber_id: int, version: int) -> bytes:
        block = subscriber_id.to_bytes(8, "big") + version.to_bytes(4, "big") + _CHECK
        return _VERSIONED + _urlsafe(self._encryptor().update(block))

    def encrypt_many(self, members: Sequence[tuple[int, int]]) -> list[bytes]:
        """``encrypt`` of each (member, version), the blocks encrypted in one call: ECB
        encrypts each block on its own, so each comes out as ``encrypt`` makes it."""
        plain = b"".join(
            [_block(subscriber_id, version, _CHECK) for subscriber_id, version in members]
        )
        cipher = self._encryptor().update(plain)
        return [_VERSIONED + _urlsafe(cipher[at : at + 16]) for at in range(0, len(cipher), 16)]

    def decrypt(self, payload: bytes) -> LinkRef | None:
        try:
            block = base64_decode(payload[len(_VERSIONED) :])
        except BadData:
            return None
        if len(block) != 16:
            return None
        for key in self._keys:
            decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
            plain = decryptor.update(block) + decryptor.finalize()
            if plain[12:] == _CHECK:
                return LinkRef(int.from_bytes(plain[:8], "big"), int.from_bytes(plain[8:12], "big"))
        return None


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
        self._refs = _RefCipher(keys)
        self.development = development

    def reference(self, subscriber_id: int, version: int = 0) -> str:
        """The opaque reference to a member that every token carries (for other signed links)."""
        return self._refs.encrypt(subscriber_id, version).decode("ascii")

    def dereference(self, reference: str) -> LinkRef:
        """The member a :meth:`reference` names; TokenError if it is not one of ours."""
        ref = self._refs.decrypt(reference.encode("ascii", "replace"))
        if ref is None or not 0 < ref.subscriber_id <= MAX_SUBSCRIBER_ID:
            raise TokenError("this link does not belong to a member")
        return ref

    def token(self, subscriber_id: int, purpose: Purpose, version: int = 0) -> str:
        """The token for this subscriber's link of this purpose."""
        payload = self._refs.encrypt(subscriber_id, version)
        return self._signers[purpose].sign(payload).decode("ascii")

    def links(self, subscriber_id: int, version: int = 0) -> tuple[str, str]:
        """The unsubscribe and the preferences token of a subscriber, made together (a send's
        hot path: the payload once)."""
        payload = self._refs.encrypt(subscriber_id, version)
        unsubscribe = self._signers[Purpose.unsubscribe].sign(payload)
        preferences = self._signers[Purpose.preferences].sign(payload)
        return unsubscribe.decode("ascii"), preferences.decode("ascii")

    def links_of(self, members: Sequence[tuple[int, int]]) -> list[tuple[str, str]]:
        """:meth:`links` of each (subscriber id, link version): a send's batch at once, with
        one call to the cipher for all of them."""
        payloads = self._refs.encrypt_many(members)
        unsubscribe = self._signers[Purpose.unsubscribe].tokens(payloads)
        preferences = self._signers[Purpose.preferences].tokens(payloads)
        return list(zip(unsubscribe, preferences, strict=True))

    def read(self, token: str, purpose: Purpose) -> LinkRef:
        """Who a token is for; TokenError if it is not ours, or not for this purpose.

        Whether the link is still current is the caller's to check, against the
        member's link version (:meth:`LinkRef.current`).
        """
        try:
            payload = self._signers[Purpose(purpose)].unsign(token.strip())
            if payload.startswith(_VERSIONED):
                ref = self._refs.decrypt(payload)
                if ref is None:
                    raise ValueError("not a reference of ours")
            else:
                ref = LinkRef(int(base64_decode(payload).decode("ascii")), 0)
        except (BadData, ValueError, UnicodeDecodeError):
            raise TokenError(
                f"this {purpose} link is not valid: it may have been cut short when it was "
                "copied. Open the link from the email again, or write to the newsletter's "
                "address and we will sort it out."
            ) from None
        if not 0 < ref.subscriber_id <= MAX_SUBSCRIBER_ID:
            raise TokenError(f"this {purpose} link does not belong to a member")
        return ref


def secret_keys(settings: Settings) -> list[str]:
    """The keys in MAILER_SECRET_KEY, the signing key first; [] when it is unset."""
    if settings.secret_key is None:
        return []
    keys = [key.strip() for key in settings.secret_key.get_secret_value().split(",")]
    keys = [key for key in keys if key]
    if settings.transport != TransportName.outbox and DEVELOPMENT_KEY in keys:
        position = keys.index(DEVELOPMENT_KEY) + 1
        raise ConfigError(
            f"MAILER_SECRET_KEY: key {position} (counting from 1) is mailer's public development "
            f"key, and the {settings.transport} transport sends real mail: anyone could forge "
            "the links in it. Remove it from MAILER_SECRET_KEY."
        )
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
    return signer_for(settings).read(token, Purpose(purpose)).subscriber_id
