"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives.

Modes: plain; with a required login; STARTTLS (required); TLS from the first
byte (smtps). Tests can make it refuse a recipient, or drop the connection at
the next MAIL command (the idle-timeout case: nothing was sent yet) or right
after taking the next message's data (the ambiguous case: the server has the
message, the client never hears so). ``delay`` holds each message's answer, as a
relay that checks or queues it would; ``most_at_once`` is the most messages it was
taking at the same time (over as many connections).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from types import TracebackType
from typing import Any, Literal, Self, cast
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .tls import TlsFiles

Mode = Literal["plain", "starttls", "smtps"]
DropPoint = Literal["MAIL", "DATA"]


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the server took it: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage
    connection: int  # which connection it came on (1 = the first)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Handler:
    """aiosmtpd hooks; runs on the server's event loop thread."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_EHLO(
        self, smtp: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        if not self.server._greeted(smtp, hostname):
            _abort(smtp)  # over max_connections: as a relay that takes no more sessions
            return responses
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.server._take_drop("MAIL"):
            _abort(smtp)
            return "421 4.4.2 closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refusal = self.server.refusals.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        if self.server.delay:
            self.server._taking(1)
            try:
                await asyncio.sleep(self.server.delay)
            finally:
                self.server._taking(-1)
        self.server._store(smtp, envelope)
        if self.server._take_drop("DATA"):
            _abort(smtp)
        if self.server.stall_replies:  # the message is in; the answer never comes
            await asyncio.sleep(self.server.stall_replies)
        return "250 2.0.0 queued"


def _abort(smtp: SMTP) -> None:
    transport = cast(Any, smtp).transport
    if transport is not None:
        transport.abort()  # close at once, unlike close(), which would still send the reply


class SmtpServer:
    """An aiosmtpd server in a thread. Use as a context manager."""

    def __init__(
        self,
        *,
        mode: Mode = "plain",
        tls: TlsFiles | None = None,
        login: tuple[str, str] | None = None,
        delay: float = 0.0,
        max_connections: int | None = None,
    ) -> None:
        if mode != "plain" and tls is None:
            raise ValueError(f"{mode} needs TlsFiles")
        self.mode, self.tls, self.login, self.delay = mode, tls, login, delay
        self._at_once = 0
        self.most_at_once = 0
        self.max_connections = max_connections  # more are cut off at EHLO
        self.host, self.port = "127.0.0.1", free_port()
        self.refusals: dict[str, str] = {}
        self.logins: list[str] = []
        self._lock = threading.Lock()
        self._messages: list[ReceivedMail] = []
        self._connections: list[SMTP] = []  # one SMTP protocol object per TCP connection
        self._ehlo_names: list[str] = []  # the name given in each EHLO, in order
        # Seconds to wait before answering the end of DATA (a relay that took the message
        # and went quiet): a client killed meanwhile never hears back.
        self.stall_replies = 0.0
        self._drops: deque[DropPoint] = deque()
        self._controller = self._make_controller()

    def _make_controller(self) -> Controller:
        options: dict[str, Any] = {"hostname": self.host, "port": self.port}
        if self.login is not None:
            options.update(
                authenticator=self._authenticate,
                auth_required=True,
                # aiosmtpd only counts STARTTLS as TLS; smtps is TLS from the first byte anyway.
                auth_require_tls=self.mode == "starttls",
            )
        if self.mode == "starttls":
            assert self.tls is not None
            options.update(tls_context=self.tls.server_context(), require_starttls=True)
        if self.mode == "smtps":
            assert self.tls is not None
            options.update(ssl_context=self.tls.server_context())
        return Controller(_Handler(self), **options)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.login is not None
        ok = (
            isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == self.login
        )
        if ok:
            with self._lock:
                self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> Self:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def url(self, *, user: str | None = None, password: str | None = None) -> str:
        """A MAILER_SMTP_URL for this server (with the configured login unless given)."""
        user, password = (user, password) if user else (self.login or (None, None))
        auth = f"{quote(user, safe='')}:{quote(password or '', safe='')}@" if user else ""
        scheme = "smtps" if self.mode == "smtps" else "smtp"
        query = "?starttls=true" if self.mode == "starttls" else ""
        return f"{scheme}://{auth}{self.host}:{self.port}{query}"

    # -- scripting ----------------------------------------------------------------

    def refuse(self, email: str, reply: str = "550 5.1.1 no such user here") -> None:
        """Answer RCPT TO for *email* with *reply*."""
        self.refusals[email.lower()] = reply

    def drop_next(self, at: DropPoint = "MAIL", *, times: int = 1) -> None:
        """Close the connection without answering at the next MAIL (nothing sent yet) or DATA."""
        with self._lock:
            self._drops.extend([at] * times)

    # -- what happened ------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._messages)

    @property
    def ehlo_names(self) -> list[str]:
        """The name the client gave in each EHLO (two a connection with STARTTLS)."""
        with self._lock:
            return list(self._ehlo_names)

    @property
    def connections(self) -> int:
        """How many client connections greeted the server (EHLO)."""
        with self._lock:
            return len(self._connections)

    def received_by(self, email: str) -> list[ReceivedMail]:
        return [m for m in self.messages if email.lower() in (r.lower() for r in m.rcpt_tos)]

    # -- hooks' helpers (event loop thread) ---------------------------------------

    def _greeted(self, smtp: SMTP, hostname: str) -> bool:
        """Note the EHLO name; count a connection at its first EHLO (False: one too many)."""
        # A session restarts after STARTTLS; the protocol object lasts the whole connection.
        with self._lock:
            self._ehlo_names.append(hostname)
            if any(c is smtp for c in self._connections):
                return True
            if self.max_connections is not None and len(self._connections) >= self.max_connections:
                return False
            self._connections.append(smtp)
            return True

    def _taking(self, change: int) -> None:
        with self._lock:
            self._at_once += change
            self.most_at_once = max(self.most_at_once, self._at_once)

    def _connection_number(self, smtp: SMTP) -> int:
        return next(i for i, c in enumerate(self._connections, 1) if c is smtp)

    def _take_drop(self, point: DropPoint) -> bool:
        with self._lock:
            if self._drops and self._drops[0] == point:
                self._drops.popleft()
                return True
            return False

    def _store(self, smtp: SMTP, envelope: Envelope) -> None:
        data = cast(bytes, envelope.original_content)
        message = cast(EmailMessage, BytesParser(policy=default).parsebytes(data))
        with self._lock:
            self._messages.append(
                ReceivedMail(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=data,
                    message=message,
                    connection=self._connection_number(smtp),
                )
            )
