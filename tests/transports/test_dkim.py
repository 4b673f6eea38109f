"""DKIM signing of SMTP messages (dkimpy), verified with dkimpy against a local DNS stub.

The public key is served by tests/doubles/dns.py on 127.0.0.1: never the internet.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from doubles.dns import DnsStub
from doubles.smtp import SmtpServer

from mailer.config import Settings, TransportName
from mailer.errors import ConfigError
from mailer.mail import Batch
from mailer.transports import open_transport
from mailer.transports.dkim import dkim_signer, load_private_key, public_key_record
from mailer.transports.smtp import ehlo_name

MakeBatch = Callable[..., Batch]
SELECTOR = "mailer2026"
DOMAIN = "example.org"  # the test batches' From: news@example.org
# A throwaway 512-bit key (`openssl genrsa 512`): cryptography no longer makes keys this short.
SHORT_KEY = """\
-----BEGIN PRIVATE KEY-----
MIIBUwIBADANBgkqhkiG9w0BAQEFAASCAT0wggE5AgEAAkEA1KWcVlrlpZW12kwf
+0BuHoa19db9pjkWqdN9TnWRkBDPyhnTYkdavgfhwBH4BfwZ0k+xnB9GPtjlVDgf
5ZHptQIDAQABAkBVBhLIhHemCYI40o9HCq/9DKfcsCWjPNhO9vz3ThLxosxLKvHt
1R0DaZLVxxDhw8Hyv6J0SBk9kMOUYbNAD2YBAiEA93FZ0EVqhKjN3h7MdR7/3uut
n7pMigV+Wjj/Lo7xBxUCIQDcADTsPpioCzyIRF1SrAKkRRG0NoT0hOk0u5YHtoAA
IQIgVhhviqMMi/n8H4QR2dKebt8L+16kEQYWT6gzSezcen0CID9Vo+a7IpGGIpgM
Ll2lfWEzLSSXaXFHbierNUblKDZhAiBkmum4NLk3SRaTCikKWqWQH4RqfUkcP/jx
uMwVSb3bQA==
-----END PRIVATE KEY-----
"""


def write_key(folder: Path, bits: int = 2048) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    path = folder / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def smtp_settings(server: SmtpServer, **fields: object) -> Settings:
    return Settings(
        transport=TransportName.smtp,
        smtp_url=server.url(),
        secret_key="a-test-secret-key-long-enough-for-signing",
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return write_key(tmp_path)


@pytest.fixture
def published(dns_stub: DnsStub, key_file: Path) -> DnsStub:
    dns_stub.add(
        f"{SELECTOR}._domainkey.{DOMAIN}", "TXT", public_key_record(load_private_key(key_file))
    )
    return dns_stub


def send_signed(server: SmtpServer, key_file: Path, batch: Batch) -> list[bytes]:
    settings = smtp_settings(server, dkim_selector=SELECTOR, dkim_private_key=key_file)
    with open_transport(settings) as transport:
        deliveries = transport.send(batch)
    assert ["sent"] * len(batch.recipients) == [d.state for d in deliveries]
    return [message.data for message in server.messages]


class TestSigning:
    def test_every_message_verifies_against_the_published_key(
        self, smtp_server: SmtpServer, key_file: Path, published: DnsStub, make_batch: MakeBatch
    ) -> None:
        """dkimpy's verifier, fetching the key from DNS, accepts each message as received."""
        messages = send_signed(smtp_server, key_file, make_batch(3))
        assert 3 == len(messages)
        assert all(dkim.verify(data, dnsfunc=published.lookup_txt) for data in messages)
        assert (f"{SELECTOR}._domainkey.{DOMAIN}", "TXT") in published.asked

    def test_list_unsubscribe_headers_are_signed(
        self, smtp_server: SmtpServer, key_file: Path, published: DnsStub, make_batch: MakeBatch
    ) -> None:
        """RFC 8058: List-Unsubscribe and List-Unsubscribe-Post are in the signature's h=,
        with From, Subject and Message-ID; d= is the From domain, s= the selector."""
        [data] = send_signed(smtp_server, key_file, make_batch(1))
        header = re.search(rb"DKIM-Signature:(.*?)\r\n(?![ \t])", data, re.S)
        assert header is not None
        tags = dict(
            (part.split("=", 1)[0].strip(), part.split("=", 1)[1])
            for part in re.sub(rb"\s+", b"", header[1]).decode().split(";")
            if "=" in part
        )
        signed = tags["h"].lower().split(":")
        assert {
            "from",
            "subject",
            "message-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        } <= set(signed)
        assert (DOMAIN, SELECTOR, "relaxed/relaxed") == (tags["d"], tags["s"], tags["c"])

    @pytest.mark.parametrize(
        ("header", "changed"),
        [
            (
                b"List-Unsubscribe: <https://news.example.org/unsubscribe/tok0>",
                b"List-Unsubscribe: <https://evil.example.net/unsubscribe/tok0>",
            ),
            (
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                b"List-Unsubscribe-Post: List-Unsubscribe=Nope",
            ),
        ],
    )
    def test_a_changed_unsubscribe_header_fails_verification(
        self,
        smtp_server: SmtpServer,
        key_file: Path,
        published: DnsStub,
        make_batch: MakeBatch,
        header: bytes,
        changed: bytes,
    ) -> None:
        """Changing either unsubscribe header on the way breaks the signature."""
        [data] = send_signed(smtp_server, key_file, make_batch(1))
        assert header in data
        assert not dkim.verify(data.replace(header, changed), dnsfunc=published.lookup_txt)

    def test_another_key_in_dns_fails_verification(
        self,
        smtp_server: SmtpServer,
        key_file: Path,
        dns_stub: DnsStub,
        make_batch: MakeBatch,
        tmp_path: Path,
    ) -> None:
        """The verifier really checks the key: one that is not ours is refused."""
        other = write_key(tmp_path / "other" if (tmp_path / "other").mkdir() is None else tmp_path)
        dns_stub.add(
            f"{SELECTOR}._domainkey.{DOMAIN}", "TXT", public_key_record(load_private_key(other))
        )
        [data] = send_signed(smtp_server, key_file, make_batch(1))
        assert not dkim.verify(data, dnsfunc=dns_stub.lookup_txt)

    def test_unsigned_without_the_settings(
        self, smtp_server: SmtpServer, make_batch: MakeBatch
    ) -> None:
        """Signing is optional: without the two settings no DKIM-Signature is added."""
        with open_transport(smtp_settings(smtp_server)) as transport:
            transport.send(make_batch(1))
        assert b"DKIM-Signature" not in smtp_server.messages[0].data


class TestKeySettings:
    def test_selector_without_key_is_refused(self) -> None:
        with pytest.raises(
            ConfigError, match="MAILER_DKIM_SELECTOR is set but MAILER_DKIM_PRIVATE_KEY is not"
        ):
            dkim_signer(Settings(dkim_selector=SELECTOR))

    def test_key_without_selector_is_refused(self, key_file: Path) -> None:
        with pytest.raises(
            ConfigError, match="MAILER_DKIM_PRIVATE_KEY is set but MAILER_DKIM_SELECTOR is not"
        ):
            dkim_signer(Settings(dkim_private_key=key_file))

    def test_a_missing_file_is_named(self, tmp_path: Path) -> None:
        with pytest.raises(
            ConfigError, match=r"MAILER_DKIM_PRIVATE_KEY \(.*nowhere.pem\) cannot be read"
        ):
            dkim_signer(Settings(dkim_selector=SELECTOR, dkim_private_key=tmp_path / "nowhere.pem"))

    def test_not_a_key(self, tmp_path: Path) -> None:
        path = tmp_path / "dkim.pem"
        path.write_text("hello\n")
        with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
            dkim_signer(Settings(dkim_selector=SELECTOR, dkim_private_key=path))

    def test_a_short_key_is_refused(self, tmp_path: Path) -> None:
        """Receivers ignore keys under 1024 bits: a 512-bit key is refused, saying so."""
        path = tmp_path / "short.pem"
        path.write_text(SHORT_KEY)
        with pytest.raises(ConfigError, match="is a 512-bit key: receivers ignore DKIM keys"):
            dkim_signer(Settings(dkim_selector=SELECTOR, dkim_private_key=path))

    def test_not_rsa_is_refused(self, tmp_path: Path) -> None:
        path = _write(tmp_path / "ec.pem", ec.generate_private_key(ec.SECP256R1()))
        with pytest.raises(ConfigError, match="not an RSA key"):
            dkim_signer(Settings(dkim_selector=SELECTOR, dkim_private_key=path))

    def test_open_transport_checks_the_key_before_sending(
        self, smtp_server: SmtpServer, tmp_path: Path
    ) -> None:
        """A bad key stops the transport from opening: nothing goes out unsigned by mistake."""
        settings = smtp_settings(
            smtp_server, dkim_selector=SELECTOR, dkim_private_key=tmp_path / "no.pem"
        )
        with pytest.raises(ConfigError, match="MAILER_DKIM_PRIVATE_KEY"):
            open_transport(settings)


def _write(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


class TestEhlo:
    def test_the_setting_names_the_client(
        self, smtp_server: SmtpServer, make_batch: MakeBatch
    ) -> None:
        """MAILER_SMTP_EHLO_NAME is what the server hears in EHLO."""
        settings = smtp_settings(smtp_server, smtp_ehlo_name="mail.example.org")
        with open_transport(settings) as transport:
            transport.send(make_batch(1))
        assert ["mail.example.org"] == smtp_server.ehlo_names

    def test_without_the_setting_never_an_address_literal(
        self, smtp_server: SmtpServer, make_batch: MakeBatch
    ) -> None:
        """Unset: this machine's FQDN or the From domain, never '[127.0.0.1]'."""
        with open_transport(smtp_settings(smtp_server)) as transport:
            transport.send(make_batch(1))
        [name] = smtp_server.ehlo_names
        assert name == ehlo_name("news@example.org")
        assert "[" not in name and "." in name

    def test_a_bare_host_name_falls_back_to_the_from_domain(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A machine with no domain in its name (localhost, a container id) gives the From domain."""
        for fqdn in ("localhost", "3f2a9c1b7d", "localhost.localdomain", "127.0.0.1"):
            monkeypatch.setattr("socket.getfqdn", lambda fqdn=fqdn: fqdn)
            assert "example.org" == ehlo_name("news@Example.org")
        monkeypatch.setattr("socket.getfqdn", lambda: "mx1.example.net.")
        assert "mx1.example.net" == ehlo_name("news@example.org")

    def test_a_bad_name_is_refused(self) -> None:
        with pytest.raises(ValueError, match="smtp_ehlo_name"):
            Settings(smtp_ehlo_name="[127.0.0.1]")
