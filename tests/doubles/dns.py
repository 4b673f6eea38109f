"""A DNS server on 127.0.0.1 answering from a table, over UDP and TCP (dnslib): the DKIM and
``mailer doctor`` tests look records up here, never on the internet.

``DnsStub().add("sel._domainkey.example.org", "TXT", "v=DKIM1; ...")``; names not in
the table get NXDOMAIN. ``lookup_txt`` is dkimpy's ``dnsfunc`` against it.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Self

import dns.resolver
from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from .smtp import free_port


class _Table(BaseResolver):  # type: ignore[misc]
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.lock = threading.Lock()
        self.asked: list[tuple[str, str]] = []

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        with self.lock:
            self.asked.append((name, kind))
            found = self.records.get((name, kind), [])
            exists = any(key[0] == name for key in self.records)
        for value in found:
            # TXT strings are at most 255 bytes each: long ones (a DKIM key) are split.
            chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
            reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        if not found and not exists:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class DnsStub:
    """A started DNS server; :attr:`address` is 'IP:PORT' (for MAILER_DNS_SERVER)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._table = _Table()
        quiet = DNSLogger(logf=lambda line: None)  # its default prints every query to stdout
        self._servers = [
            DNSServer(self._table, port=self.port, address="127.0.0.1", tcp=tcp, logger=quiet)
            for tcp in (False, True)
        ]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def asked(self) -> list[tuple[str, str]]:
        with self._table.lock:
            return list(self._table.asked)

    def add(self, name: str, kind: str, value: str) -> None:
        with self._table.lock:
            self._table.records.setdefault((name.lower(), kind), []).append(value)

    def lookup_txt(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        """The TXT record at ``name`` (strings joined), as dkimpy's dnsfunc returns it."""
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        text = name.decode("ascii") if isinstance(name, bytes) else name
        try:
            answer = resolver.resolve(text.rstrip("."), "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(b"".join(record.strings) for record in answer)

    def start(self) -> Self:
        for server in self._servers:
            server.start_thread()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()  # stop() leaves the socket open

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
