"""The SMTP transport: a pool of connections, each reused for message after message, over smtplib.

``MAILER_SMTP_URL`` is ``smtp://user:pass@host:587?starttls=true`` (STARTTLS),
``smtps://user:pass@host:465`` (TLS from the first byte) or ``smtp://host:25``
(a local relay, no login). The certificate is always verified, against the
system's CAs or ``MAILER_SMTP_CA_FILE``.

Each message is its own transaction (MAIL, RCPT, DATA) so that a refused address
fails only that recipient, and so that each can have its own envelope sender (the
recipient's ``return_path``, a VERP address, else the From address). A connection that drops before the message went out
(idle timeout, a 421 from the server) is reopened and the message tried once
more; a drop after the whole message went out but before the server's answer is
reported as ``unknown``, since the server may have queued it.

With ``connections=N`` (MAILER_SMTP_CONNECTIONS), a batch's recipients are shared
between N connections, each in its own thread, taking the next recipient as it
finishes one: a relay that takes tens of milliseconds per message keeps N busy at
once. A connection that cannot be opened (a relay that takes fewer sessions) leaves
its recipients to the others; only when none can be opened does the rest of the
batch fail. Asked to stop (SIGTERM), each connection finishes its message and the
recipients not yet begun are left ``NOT_HANDED_OVER``, for the next run.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import SecretStr

from mailer.config import is_loopback
from mailer.errors import ConfigError
from mailer.headersafety import HeaderInjectionError
from mailer.mail import Batch, Delivery, DeliveryState, Recipient, refused
from mailer.transports.base import TransportBase
from mailer.transports.message import MessageTemplate
from mailer.transports.ratelimit import NOT_HANDED_OVER, Limiter, StopWaiting, Unlimited

if TYPE_CHECKING:  # dkimpy and cryptography load only for a send that signs
    from mailer.transports.dkim import DkimSigner

_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


@dataclass(frozen=True)
class SmtpUrl:
    """MAILER_SMTP_URL, parsed. The password never appears in its repr."""

    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)

    @property
    def secure(self) -> bool:
        return self.implicit_tls or self.starttls

    def __str__(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = f"{self.username}@" if self.username else ""
        query = "?starttls=true" if self.starttls else ""
        return f"{scheme}://{user}{self.host}:{self.port}{query}"


def parse_smtp_url(url: str) -> SmtpUrl:
    """MAILER_SMTP_URL as an SmtpUrl; ConfigError (without the password) if it is wrong."""
    parts = urlsplit(url.strip())
    where = "MAILER_SMTP_URL"
    if parts.scheme not in ("smtp", "smtps"):
        raise ConfigError(
            f"{where} must start with smtp:// or smtps://, e.g. smtp://user:pass@host:587?starttls=true"
        )
    if not parts.hostname:
        raise ConfigError(f"{where} has no host name, e.g. smtp://user:pass@host:587?starttls=true")
    try:
        explicit_port = parts.port
    except ValueError:
        raise ConfigError(f"{where} has a port that is not a number from 1 to 65535") from None
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"starttls"}
    if unknown:
        names = ", ".join(sorted(unknown))
        raise ConfigError(f"{where} has unknown option(s) {names}; only starttls is known")
    starttls = _flag(query.get("starttls", ["false"])[-1])
    implicit_tls = parts.scheme == "smtps"
    if implicit_tls and starttls:
        raise ConfigError(f"{where}: smtps:// is already TLS; drop ?starttls=true or use smtp://")
    default_port = 465 if implicit_tls else 587 if starttls else 25
    config = SmtpUrl(
        host=parts.hostname,
        port=explicit_port or default_port,
        implicit_tls=implicit_tls,
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=SecretStr(unquote(parts.password)) if parts.password else None,
    )
    if config.username and not config.secure and not is_loopback(config.host):
        raise ConfigError(
            f"{where} would send the password to {config.host} unencrypted; "
            "add ?starttls=true or use smtps://"
        )
    return config


def _flag(value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"MAILER_SMTP_URL: starttls must be true or false, not {value!r}")


class _Unanswered(Exception):
    """The whole message went out and the connection dropped before the server answered."""


class _Reply(Exception):
    """The server answered a step of the transaction with something other than success."""

    def __init__(self, step: str, code: int, text: bytes) -> None:
        self.step, self.code = step, code
        self.text = _text(text)
        super().__init__(f"{step}: {code} {self.text}")


_DOT_AT_LINE_START = re.compile(rb"(?m)^\.")


class _Share:
    """A batch's recipients, shared between the connections: each takes the next in turn."""

    def __init__(self, batch: Batch, connections: int) -> None:
        self.batch = batch
        self.template = MessageTemplate(batch)
        self.results: list[Delivery | None] = [None] * len(batch.recipients)
        self._waiting = deque(range(len(batch.recipients)))
        self._active = connections  # connections still taking recipients
        self._lock = threading.Lock()
        # Once no connection can be opened, or the send is asked to stop, the rest of the
        # batch fails with this reason, without more tries.
        self.ended: str | None = None

    def take(self) -> int | None:
        """The index of the next recipient to send to; None when there is none (or the
        batch ended): the connection is done with this batch."""
        with self._lock:
            if self.ended is None and self._waiting:
                return self._waiting.popleft()
            self._active -= 1
            return None

    def give_back(self, index: int, reason: str) -> None:
        """No connection could be opened to send to recipient ``index``: another connection
        takes it, unless this one was the last still working (then the rest fail)."""
        with self._lock:
            self._active -= 1
            if self._active > 0:
                self._waiting.appendleft(index)
            elif self.ended is None:
                self.ended = reason

    def end(self, reason: str) -> None:
        with self._lock:
            self.ended = self.ended or reason
            self._active -= 1

    def deliveries(self) -> list[Delivery]:
        return [
            result if result is not None else _failed(recipient, self.ended or NOT_HANDED_OVER)
            for result, recipient in zip(self.results, self.batch.recipients, strict=True)
        ]


class SmtpTransport(TransportBase):
    """Sends each recipient's message over a pool of reused SMTP connections."""

    name = "smtp"

    def __init__(
        self,
        url: SmtpUrl,
        *,
        timeout: float = 30.0,
        ca_file: Path | None = None,
        limiter: Limiter | None = None,
        local_hostname: str | None = None,
        dkim: DkimSigner | None = None,
        connections: int = 1,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        self.url = url
        self.timeout = timeout
        self._ca_file = ca_file
        self._limiter = limiter or Unlimited()
        # None: this machine's FQDN, else the From domain (see ehlo_name), once a batch shows it.
        self._local_hostname = local_hostname
        self._dkim = dkim
        self._should_stop = should_stop
        self._conns: list[smtplib.SMTP | None] = [None] * connections
        self._pool = (
            ThreadPoolExecutor(connections, thread_name_prefix="mailer-smtp")
            if connections > 1
            else None
        )

    def __repr__(self) -> str:
        return f"SmtpTransport({self.url})"

    def send(self, batch: Batch) -> list[Delivery]:
        if self._local_hostname is None:
            self._local_hostname = ehlo_name(batch.sender.email)
        share = _Share(batch, len(self._conns))
        if self._pool is None:
            self._work(share, 0)
        else:
            workers = [
                self._pool.submit(self._work, share, slot) for slot in range(len(self._conns))
            ]
            for worker in workers:
                worker.result()
        return share.deliveries()

    def _work(self, share: _Share, slot: int) -> None:
        """One connection's part of a batch: recipient after recipient, until none is left."""
        sender = share.batch.sender.email
        while (index := share.take()) is not None:
            recipient = share.batch.recipients[index]
            try:
                if self._should_stop():
                    raise StopWaiting()
                self._limiter.acquire()
            except StopWaiting:
                share.end(NOT_HANDED_OVER)
                return
            try:
                share.results[index] = self._send_one(slot, sender, share.template, recipient)
            except _ConnectFailed as error:
                share.give_back(index, str(error))
                return

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for slot, conn in enumerate(self._conns):
            self._conns[slot] = None
            if conn is not None:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    conn.quit()
                conn.close()

    def _send_one(
        self, slot: int, sender: str, template: MessageTemplate, recipient: Recipient
    ) -> Delivery:
        try:
            message = template.message(recipient)
        except HeaderInjectionError as error:
            return refused(recipient, error)
        data = message.data
        if self._dkim is not None:
            data = self._dkim.sign(data, sender.rpartition("@")[2])
        for attempt in (1, 2):
            conn = self._connection(slot)
            try:
                envelope = recipient.return_path or sender
                self._transaction(conn, envelope, recipient.email, data, utf8=message.utf8)
            except _Unanswered:
                self._discard(slot)
                return Delivery(
                    email=recipient.email,
                    state=DeliveryState.unknown,
                    message_id=message.message_id,
                    error="the connection dropped after the message went out, before the answer",
                )
            except smtplib.SMTPServerDisconnected as error:
                self._discard(slot)
                if attempt == 1:
                    continue  # nothing was handed over yet: reconnect and try once more
                return _failed(recipient, f"the SMTP server dropped the connection twice: {error}")
            except _Reply as reply:
                return self._refused(recipient, reply)
            return Delivery(
                email=recipient.email, state=DeliveryState.sent, message_id=message.message_id
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _transaction(
        self, conn: smtplib.SMTP, sender: str, rcpt: str, data: bytes, *, utf8: bool
    ) -> None:
        options: list[str] = []
        if utf8:
            if not conn.has_extn("smtputf8"):
                raise _Reply(
                    "MAIL FROM", 555, b"the server takes no non-ASCII addresses (SMTPUTF8)"
                )
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        self._expect(conn, "MAIL FROM", conn.mail(sender, options), {250})
        self._expect(conn, "RCPT TO", conn.rcpt(rcpt), {250, 251})
        self._expect(conn, "DATA", conn.docmd("data"), {354})
        # smtplib's data() hides whether the message went out before a drop; these
        # steps don't: up to the final dot, the server cannot have accepted it.
        body = _DOT_AT_LINE_START.sub(b"..", data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        conn.send(body + b".\r\n")
        try:
            reply = conn.getreply()
        except smtplib.SMTPServerDisconnected as error:
            raise _Unanswered() from error
        self._expect(conn, "end of DATA", reply, {250})

    def _expect(
        self, conn: smtplib.SMTP, step: str, reply: tuple[int, bytes], ok: set[int]
    ) -> None:
        code, text = reply
        if code in ok:
            return
        if code == 421:  # the server is closing the connection: like a drop, safe to retry
            conn.close()
            raise smtplib.SMTPServerDisconnected(f"{step}: 421 {_text(text)}")
        if step != "end of DATA":
            with contextlib.suppress(smtplib.SMTPException, OSError):
                conn.rset()
        raise _Reply(step, code, text)

    def _refused(self, recipient: Recipient, reply: _Reply) -> Delivery:
        permanent = reply.step == "RCPT TO" and 500 <= reply.code < 600
        return Delivery(
            email=recipient.email,
            state=DeliveryState.failed,
            permanent=permanent,
            error=f"the SMTP server refused the message at {reply.step}: {reply.code} {reply.text}",
        )

    def _connection(self, slot: int) -> smtplib.SMTP:
        conn = self._conns[slot]
        if conn is None:
            conn = self._conns[slot] = self._connect()
        return conn

    def _discard(self, slot: int) -> None:
        conn, self._conns[slot] = self._conns[slot], None
        if conn is not None:
            conn.close()

    def _connect(self) -> smtplib.SMTP:
        url = self.url
        context = ssl.create_default_context(cafile=self._ca_file)
        conn: smtplib.SMTP | None = None
        try:
            if url.implicit_tls:
                conn = smtplib.SMTP_SSL(
                    url.host,
                    url.port,
                    local_hostname=self._local_hostname,
                    timeout=self.timeout,
                    context=context,
                )
            else:
                conn = smtplib.SMTP(
                    url.host, url.port, local_hostname=self._local_hostname, timeout=self.timeout
                )
            conn.ehlo()
            if url.starttls:
                conn.starttls(context=context)
                conn.ehlo()
            if url.username:
                password = url.password.get_secret_value() if url.password else ""
                conn.login(url.username, password)
        except smtplib.SMTPAuthenticationError as error:
            _close_quietly(conn)
            raise _ConnectFailed(
                f"the SMTP server {url.host}:{url.port} refused the login for {url.username!r}: "
                f"{error.smtp_code} {_text(error.smtp_error)}; check MAILER_SMTP_URL"
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            _close_quietly(conn)
            raise _ConnectFailed(f"could not open an SMTP connection to {url}: {error}") from None
        return conn


def ehlo_name(from_address: str) -> str:
    """The EHLO name when MAILER_SMTP_EHLO_NAME is unset: this machine's fully qualified
    name, else (a bare host name, localhost) the From address's domain; never an address
    literal such as [127.0.0.1], which spam filters score against."""
    fqdn = socket.getfqdn().rstrip(".").lower()
    local = fqdn.startswith("localhost") or fqdn.endswith(".localdomain")
    if "." in fqdn and not local and not _IP_LIKE.search(fqdn):
        return fqdn
    return from_address.rpartition("@")[2].lower()


_IP_LIKE = re.compile(r"^[0-9.]+$|:")


class _ConnectFailed(Exception):
    """No connection to the server could be opened (refused, TLS failure, login refused)."""


def _close_quietly(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.close()


def _text(reply: bytes | str) -> str:
    """A server reply as one line of text."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


def _failed(recipient: Recipient, error: str) -> Delivery:
    return Delivery(email=recipient.email, state=DeliveryState.failed, error=error)
