"""`mailer doctor`'s DNS checks: the From domain's SPF, DKIM and DMARC records, and what
Gmail's and Yahoo's rules for bulk senders still need.

Since February 2024 Gmail and Yahoo ask anyone sending them about 5,000 messages a
day or more for: SPF and DKIM both, a DMARC record (``p=none`` at least) with the
From domain aligned with SPF or DKIM, one-click unsubscribe (RFC 8058: mailer's
``List-Unsubscribe`` and ``List-Unsubscribe-Post`` over https), TLS on the way,
forward and reverse DNS for the sending IP, and a spam rate below 0.3 %. The
records are looked up through MAILER_DNS_SERVER or the system's resolver; when
none answers, each check says it could not be made rather than failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import dns.exception
import dns.resolver

from mailer.config import Newsletter, Settings, TransportName
from mailer.errors import ConfigError
from mailer.scheduling.checks import Check

if TYPE_CHECKING:
    from mailer.transports.smtp import SmtpUrl

__all__ = ["Records", "dns_checks", "lookup_records"]

LIFETIME = 3.0  # seconds for one lookup, retries included: doctor must not hang offline


class DnsUnreachable(Exception):
    """No DNS resolver answered."""


@dataclass(frozen=True)
class Records:
    """The TXT records found (an empty list: the name has none)."""

    spf: list[str]
    dmarc: list[str]
    dkim: list[str] | None  # None: no selector to look up


def lookup_records(settings: Settings, domain: str, selector: str | None) -> Records:
    """The domain's SPF, DMARC and (for a selector) DKIM TXT records; DnsUnreachable offline."""
    resolver = _resolver(settings)
    spf = [r for r in _txt(resolver, domain) if r.lower().startswith("v=spf1")]
    dmarc = [r for r in _txt(resolver, f"_dmarc.{domain}") if r.upper().startswith("V=DMARC1")]
    dkim = _txt(resolver, f"{selector}._domainkey.{domain}") if selector else None
    return Records(spf=spf, dmarc=dmarc, dkim=dkim)


def _resolver(settings: Settings) -> dns.resolver.Resolver:
    server = settings.dns_server
    try:
        resolver = dns.resolver.Resolver(configure=server is None)
    except dns.resolver.NoResolverConfiguration as error:
        raise DnsUnreachable(f"this machine has no DNS resolver configured ({error})") from None
    if server is not None:
        host, port = _host_port(server)
        resolver.nameservers = [host]
        resolver.port = port
    resolver.lifetime = LIFETIME
    return resolver


def _host_port(server: str) -> tuple[str, int]:
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        return host, int(rest.removeprefix(":") or 53)
    if server.count(":") == 1:
        host, port = server.split(":")
        return host, int(port)
    return server, 53


def _txt(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as error:
        raise DnsUnreachable(str(error)) from None
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def dns_checks(settings: Settings, newsletter: Newsletter) -> list[Check]:
    """SPF, DKIM and DMARC for the From domain, then what the bulk-sender rules still need."""
    if settings.transport == TransportName.outbox:
        return [
            Check(
                "DNS",
                True,
                "not checked: the outbox sends no real mail (SPF, DKIM and DMARC are checked "
                "for smtp and sendgrid)",
                checked=False,
            )
        ]
    domain = str(newsletter.sender.email).rpartition("@")[2].lower()
    selector = settings.dkim_selector if settings.transport == TransportName.smtp else None
    try:
        records = lookup_records(settings, domain, selector)
    except DnsUnreachable as error:
        why = (
            f"not checked: no DNS resolver answered ({error}); run `mailer doctor` where "
            "DNS works, or set MAILER_DNS_SERVER"
        )
        return [
            Check("SPF", True, why, checked=False),
            Check("DKIM", True, why, checked=False),
            Check("DMARC", True, why, checked=False),
            _bulk_rules(settings, spf=None, dkim=None, dmarc=None),
        ]
    spf, dkim, dmarc = (
        _spf(domain, records),
        _dkim(settings, domain, records),
        _dmarc(domain, records),
    )
    return [spf, dkim, dmarc, _bulk_rules(settings, spf=spf, dkim=dkim, dmarc=dmarc)]


def _spf(domain: str, records: Records) -> Check:
    if not records.spf:
        return Check(
            "SPF",
            False,
            f"{domain} has no SPF record: publish a TXT record at {domain} such as "
            '"v=spf1 include:<your relay\'s SPF domain> -all" (your relay or SendGrid says which)',
        )
    if len(records.spf) > 1:
        return Check(
            "SPF",
            False,
            f"{domain} has {len(records.spf)} SPF records; receivers ignore them all "
            "(RFC 7208): merge them into one",
        )
    [record] = records.spf
    if record.split()[-1].lower() in ("+all", "all"):
        return Check(
            "SPF", False, f"{record!r} lets anyone send as {domain}: end it with -all or ~all"
        )
    return Check("SPF", True, record)


def _dkim(settings: Settings, domain: str, records: Records) -> Check:
    if settings.transport == TransportName.sendgrid:
        return Check(
            "DKIM",
            True,
            f"SendGrid signs with the keys of its domain authentication (CNAMEs such as "
            f"s1._domainkey.{domain}): check that SendGrid shows {domain} as verified",
            checked=False,
        )
    selector = settings.dkim_selector
    if selector is None or records.dkim is None:
        return Check(
            "DKIM",
            True,
            "mailer does not sign (MAILER_DKIM_SELECTOR is unset): your SMTP relay must sign "
            f"for {domain}, or Gmail and Yahoo see no DKIM; not checked here",
            checked=False,
        )
    name = f"{selector}._domainkey.{domain}"
    expected = _published_key(settings)
    if isinstance(expected, Check):
        return expected
    if not records.dkim:
        return Check(
            "DKIM", False, f"no record at {name}: publish this TXT record there: {expected[1]}"
        )
    if expected[0] not in [_tag(record, "p") for record in records.dkim]:
        return Check(
            "DKIM",
            False,
            f"the key at {name} is not the public half of MAILER_DKIM_PRIVATE_KEY: receivers "
            f"will reject every signature. Publish: {expected[1]}",
        )
    return Check("DKIM", True, f"{name} holds the public key of MAILER_DKIM_PRIVATE_KEY")


def _published_key(settings: Settings) -> tuple[str, str] | Check:
    """(base64 public key, the TXT record to publish) for the configured key."""
    from mailer.transports.dkim import load_private_key, public_key_record

    if settings.dkim_private_key is None:
        return Check(
            "DKIM", False, "MAILER_DKIM_SELECTOR is set but MAILER_DKIM_PRIVATE_KEY is not"
        )
    try:
        key = load_private_key(settings.dkim_private_key)
    except ConfigError as error:
        return Check("DKIM", False, str(error))
    record = public_key_record(key)
    return _tag(record, "p"), record


def _tag(record: str, name: str) -> str:
    """A tag's value in a DKIM or DMARC record ('v=DKIM1; k=rsa; p=...'), spaces removed."""
    for part in record.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return "".join(value.split())
    return ""


def _dmarc(domain: str, records: Records) -> Check:
    if not records.dmarc:
        return Check(
            "DMARC",
            False,
            f"{domain} has no DMARC record: Gmail and Yahoo require one of bulk senders. "
            f'Publish a TXT record at _dmarc.{domain}: "v=DMARC1; p=none; rua=mailto:'
            f'dmarc@{domain}" (p=none only reports; move to quarantine once reports are clean)',
        )
    if len(records.dmarc) > 1:
        return Check(
            "DMARC", False, f"_dmarc.{domain} has {len(records.dmarc)} DMARC records: keep one"
        )
    [record] = records.dmarc
    policy = _tag(record, "p").lower()
    if policy not in ("none", "quarantine", "reject"):
        return Check("DMARC", False, f"{record!r} has no valid p= (none, quarantine or reject)")
    return Check("DMARC", True, f"p={policy}: {record}")


def _bulk_rules(
    settings: Settings, *, spf: Check | None, dkim: Check | None, dmarc: Check | None
) -> Check:
    """What Gmail's and Yahoo's bulk-sender rules still need, in plain words."""
    needed: list[str] = []
    unknown: list[str] = []
    for name, check in (("SPF", spf), ("DKIM", dkim), ("DMARC", dmarc)):
        if check is None or not check.checked:
            unknown.append(name)
        elif not check.ok:
            needed.append(f"a working {name} record (see above)")
    if not settings.base_url.startswith("https://"):
        needed.append("one-click unsubscribe over https (MAILER_BASE_URL)")
    if settings.transport == TransportName.smtp:
        url = _smtp_url(settings)
        if url is not None and not url.secure:
            unknown.append("TLS from your relay onwards (mailer talks to it without TLS)")
        unknown.append("forward and reverse DNS of the relay's sending IP")
    unknown.append("a spam rate under 0.3 % (watch Google Postmaster Tools)")
    said = (
        "Gmail and Yahoo (5,000+ messages a day) still need: " + "; ".join(needed) + ". "
        if needed
        else "Gmail and Yahoo: SPF, DKIM and DMARC as found above, and one-click unsubscribe "
        "(mailer's List-Unsubscribe headers over https) are in place. "
    )
    return Check(
        "bulk-sender rules",
        not needed,
        said + "Not checked here: " + "; ".join(unknown),
    )


def _smtp_url(settings: Settings) -> SmtpUrl | None:
    from mailer.transports.smtp import parse_smtp_url

    if settings.smtp_url is None:
        return None
    try:
        return parse_smtp_url(settings.smtp_url.get_secret_value())
    except ConfigError:
        return None
