"""Fixtures over the doubles, registered for the whole suite by tests/conftest.py.

* ``sendgrid_double``: a started :class:`SendGridDouble`; its key is ``SG.test-key``.
* ``smtp_server``: a started plain :class:`SmtpServer`.
* ``make_smtp_server(mode=..., login=...)``: one in another mode, stopped after the test.
* ``tls_files``: a throwaway CA and server certificate for 127.0.0.1.
* ``dns_stub``: a started :class:`DnsStub` (DNS on 127.0.0.1 from a table).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .dns import DnsStub
from .sendgrid import SendGridDouble
from .smtp import SmtpServer
from .tls import TlsFiles, make_tls_files


@pytest.fixture
def sendgrid_double() -> Iterator[SendGridDouble]:
    with SendGridDouble() as double:
        yield double


@pytest.fixture
def dns_stub() -> Iterator[DnsStub]:
    with DnsStub() as stub:
        yield stub


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def make_smtp_server(tls_files: TlsFiles) -> Iterator[Callable[..., SmtpServer]]:
    started: list[SmtpServer] = []

    def make(**options: Any) -> SmtpServer:
        if options.get("mode", "plain") != "plain":
            options.setdefault("tls", tls_files)
        server = SmtpServer(**options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
