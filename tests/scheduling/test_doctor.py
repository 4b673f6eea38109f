"""`mailer doctor`'s DNS checks: SPF, DKIM and DMARC of the From domain, looked up in a local
DNS stub (tests/doubles/dns.py), never the internet; offline, it says what it could not check."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from doubles.dns import DnsStub
from doubles.smtp import SmtpServer, free_port
from typer.testing import CliRunner

from mailer.cli import app
from mailer.config import Newsletter, Settings, TransportName
from mailer.scheduling.checks import Check
from mailer.scheduling.dnschecks import LIFETIME, dns_checks
from mailer.transports.dkim import load_private_key, public_key_record

DOMAIN = "connected-communities.example.org"  # mailer.toml's From domain
SELECTOR = "news2026"
SPF = "v=spf1 include:_spf.relay.example.net -all"
DMARC = f"v=DMARC1; p=none; rua=mailto:dmarc@{DOMAIN}"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path


def smtp_settings(dns: str, key_file: Path | None = None, **fields: object) -> Settings:
    return Settings(
        transport=TransportName.smtp,
        smtp_url="smtp://relay.example.net:587?starttls=true",
        base_url="https://news.example.org",
        dns_server=dns,
        dkim_selector=SELECTOR if key_file else None,
        dkim_private_key=key_file,
        **fields,  # type: ignore[arg-type]
    )


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def publish_all(stub: DnsStub, key_file: Path) -> None:
    stub.add(DOMAIN, "TXT", SPF)
    stub.add(DOMAIN, "TXT", "google-site-verification=abc")  # other TXT records are ignored
    stub.add(f"_dmarc.{DOMAIN}", "TXT", DMARC)
    record = public_key_record(load_private_key(key_file))
    stub.add(f"{SELECTOR}._domainkey.{DOMAIN}", "TXT", record)


class TestWithDns:
    def test_all_three_published(
        self, dns_stub: DnsStub, key_file: Path, newsletter: Newsletter
    ) -> None:
        """SPF and DMARC found, the DKIM record holds our key: every check passes."""
        publish_all(dns_stub, key_file)
        checks = by_name(dns_checks(smtp_settings(dns_stub.address, key_file), newsletter))
        assert all(check.ok for check in checks.values())
        assert (SPF, f"p=none: {DMARC}") == (checks["SPF"].message, checks["DMARC"].message)
        assert checks["DKIM"].checked and SELECTOR in checks["DKIM"].message
        rules = checks["bulk-sender rules"].message
        assert "are in place" in rules and "spam rate under 0.3 %" in rules
        assert {(DOMAIN, "TXT"), (f"_dmarc.{DOMAIN}", "TXT")} <= set(dns_stub.asked)

    def test_nothing_published(
        self, dns_stub: DnsStub, key_file: Path, newsletter: Newsletter
    ) -> None:
        """No records: each fails saying what to publish (the DKIM record in full), and the
        bulk-sender rules list what is still needed."""
        checks = by_name(dns_checks(smtp_settings(dns_stub.address, key_file), newsletter))
        assert not any(checks[name].ok for name in ("SPF", "DKIM", "DMARC", "bulk-sender rules"))
        assert f"{DOMAIN} has no SPF record" in checks["SPF"].message
        record = public_key_record(load_private_key(key_file))
        assert checks["DKIM"].message.endswith(record)
        assert f"_dmarc.{DOMAIN}" in checks["DMARC"].message
        rules = checks["bulk-sender rules"].message
        assert "still need: a working SPF record" in rules and "DMARC record" in rules

    def test_a_dkim_record_with_another_key(
        self, dns_stub: DnsStub, key_file: Path, newsletter: Newsletter, tmp_path: Path
    ) -> None:
        """The record at the selector must be our key's public half."""
        dns_stub.add(DOMAIN, "TXT", SPF)
        dns_stub.add(f"_dmarc.{DOMAIN}", "TXT", DMARC)
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        dns_stub.add(f"{SELECTOR}._domainkey.{DOMAIN}", "TXT", public_key_record(other))
        checks = by_name(dns_checks(smtp_settings(dns_stub.address, key_file), newsletter))
        assert not checks["DKIM"].ok
        assert "not the public half of MAILER_DKIM_PRIVATE_KEY" in checks["DKIM"].message

    @pytest.mark.parametrize(
        ("records", "message"),
        [
            ([SPF, "v=spf1 -all"], "has 2 SPF records"),
            (["v=spf1 +all"], "lets anyone send"),
        ],
    )
    def test_spf_mistakes(
        self, dns_stub: DnsStub, newsletter: Newsletter, records: list[str], message: str
    ) -> None:
        for record in records:
            dns_stub.add(DOMAIN, "TXT", record)
        checks = by_name(dns_checks(smtp_settings(dns_stub.address), newsletter))
        assert (False, True) == (checks["SPF"].ok, message in checks["SPF"].message)

    def test_without_a_selector_dkim_is_the_relays_to_do(
        self, dns_stub: DnsStub, newsletter: Newsletter
    ) -> None:
        """SMTP without MAILER_DKIM_SELECTOR: not checked, and it says the relay must sign."""
        checks = by_name(dns_checks(smtp_settings(dns_stub.address), newsletter))
        assert (True, False) == (checks["DKIM"].ok, checks["DKIM"].checked)
        assert "your SMTP relay must sign" in checks["DKIM"].message


class TestOffline:
    def test_each_check_says_it_was_not_made(self, key_file: Path, newsletter: Newsletter) -> None:
        """A resolver that never answers: SPF, DKIM and DMARC are marked not checked, quickly."""
        started = time.monotonic()
        checks = by_name(
            dns_checks(smtp_settings(f"127.0.0.1:{free_port()}", key_file), newsletter)
        )
        assert time.monotonic() - started < 2 * LIFETIME
        for name in ("SPF", "DKIM", "DMARC"):
            assert (True, False) == (checks[name].ok, checks[name].checked)
            assert "not checked: no DNS resolver answered" in checks[name].message
        assert "Not checked here: SPF; DKIM; DMARC" in checks["bulk-sender rules"].message

    def test_the_outbox_looks_nothing_up(self, newsletter: Newsletter) -> None:
        [check] = dns_checks(Settings(transport=TransportName.outbox), newsletter)
        assert ("DNS", False) == (check.name, check.checked)


def test_mailer_doctor_prints_the_dns_checks(
    dns_stub: DnsStub,
    key_file: Path,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The command runs them after the configuration checks, in its text and JSON output."""
    publish_all(dns_stub, key_file)
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    for name, value in {
        "MAILER_TRANSPORT": "smtp",
        "MAILER_SMTP_URL": smtp_server.url(),
        "MAILER_SECRET_KEY": "a-long-secret-key-for-the-doctor-test",
        "MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'mailer.db'}",
        "MAILER_DNS_SERVER": dns_stub.address,
        "MAILER_DKIM_SELECTOR": SELECTOR,
        "MAILER_DKIM_PRIVATE_KEY": str(key_file),
    }.items():
        monkeypatch.setenv(name, value)
    as_json = CliRunner().invoke(app, ["doctor", "--json"])
    found = {check["check"]: check for check in json.loads(as_json.stdout)}
    assert {"SPF", "DKIM", "DMARC", "bulk-sender rules"} <= set(found)
    assert all(found[name]["ok"] and found[name]["checked"] for name in ("SPF", "DKIM", "DMARC"))
    text = CliRunner().invoke(app, ["doctor"]).stdout
    assert "ok   DKIM: " in text and "Not checked (--)" not in text
