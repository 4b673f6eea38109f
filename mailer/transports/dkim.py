"""DKIM signatures on SMTP messages, with dkimpy (RFC 6376), for the From address's domain.

With ``MAILER_DKIM_SELECTOR`` and ``MAILER_DKIM_PRIVATE_KEY`` set, the SMTP transport
signs each message just before handing it over. The signed headers include
``List-Unsubscribe`` and ``List-Unsubscribe-Post``, as RFC 8058 requires for
one-click unsubscribe to be honoured, and headers that are absent (a Reply-To when
there is none) are signed as absent, so nobody can add them on the way.
Canonicalisation is relaxed/relaxed, which survives relays that refold headers.
SendGrid signs with the keys of its own domain authentication instead.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailer.config import Settings
from mailer.errors import ConfigError

__all__ = ["SIGNED_HEADERS", "DkimSigner", "dkim_signer", "public_key_record"]

SIGNED_HEADERS = (
    "From", "To", "Subject", "Date", "Message-ID", "Reply-To", "List-Id",
    "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version", "Content-Type",
)  # fmt: skip
MIN_BITS = 1024  # what verifiers accept (RFC 8301); 2048 is what to generate


@dataclass(frozen=True)
class DkimSigner:
    """Signs messages for a domain with the key published at ``selector._domainkey.DOMAIN``."""

    selector: str
    key_pem: bytes = field(repr=False)  # PKCS#1, the form dkimpy reads

    def sign(self, message: bytes, domain: str) -> bytes:
        """The message with its DKIM-Signature header (d=domain) in front."""
        signature = dkim.sign(
            message,
            self.selector.encode("ascii"),
            domain.lower().encode("idna"),
            self.key_pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[name.lower().encode("ascii") for name in SIGNED_HEADERS],
        )
        return bytes(signature) + message


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """The signer the settings ask for, or None; ConfigError naming the variable when wrong."""
    selector, path = settings.dkim_selector, settings.dkim_private_key
    if selector is None and path is None:
        return None
    if selector is None or path is None:
        given, missing = (
            ("MAILER_DKIM_PRIVATE_KEY", "MAILER_DKIM_SELECTOR")
            if selector is None
            else ("MAILER_DKIM_SELECTOR", "MAILER_DKIM_PRIVATE_KEY")
        )
        raise ConfigError(f"{given} is set but {missing} is not: DKIM signing needs both")
    key = load_private_key(path)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return DkimSigner(selector, pem)


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    """The RSA private key in a PEM file; ConfigError saying what is wrong with it."""
    where = f"MAILER_DKIM_PRIVATE_KEY ({path})"
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{where} cannot be read: {error.strerror or error}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(
            f"{where} is not an unencrypted PEM private key ({error}); make one with "
            "`openssl genrsa -out dkim.pem 2048`"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{where} is not an RSA key: mailer signs with rsa-sha256")
    if key.key_size < MIN_BITS:
        raise ConfigError(
            f"{where} is a {key.key_size}-bit key: receivers ignore DKIM keys under "
            f"{MIN_BITS} bits; use 2048"
        )
    return key


def public_key_record(key: rsa.RSAPrivateKey) -> str:
    """The TXT record to publish for the key: ``v=DKIM1; k=rsa; p=...``."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"
