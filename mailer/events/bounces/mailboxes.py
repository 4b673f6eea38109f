"""The bounce mailbox itself: IMAP (through imap-tools), POP3 (poplib) or a Maildir on disk.

``MAILER_BOUNCE_MAILBOX`` says which, as a URL:

=============================================  =====================================
``imaps://user:pass@host[:993]/INBOX``         IMAP over TLS
``imap://user:pass@host[:143]/INBOX``          IMAP, upgraded with STARTTLS
``pop3s://user:pass@host[:995]``               POP3 over TLS
``pop3://user:pass@host[:110]``                POP3, upgraded with STLS
``maildir:///var/mail/bounces``                a Maildir the mail server delivers to
=============================================  =====================================

A password is never sent unencrypted: the plain schemes always upgrade, and the
certificate is always verified (against the system's CAs or
``MAILER_BOUNCE_CA_FILE``). User name and password are URL-encoded (``%40`` for
an ``@``). The folder defaults to ``INBOX``.

Each :class:`Mailbox` lists its messages by an id that stays the same between
sessions (IMAP ``UIDVALIDITY:UID``, POP3 UIDL, the Maildir file's unique name),
fetches their bytes without marking them read, and afterwards moves them to a
folder or deletes them. Every failure to reach or read the server is a
:class:`~mailer.errors.BounceMailboxError` that says which mailbox and what to do.
"""

from __future__ import annotations

import contextlib
import imaplib
import itertools
import os
import poplib
import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from mailer.errors import BounceMailboxError, ConfigError

__all__ = ["Mailbox", "MailboxUrl", "open_mailbox", "parse_mailbox_url"]

_PORTS = {"imaps": 993, "imap": 143, "pop3s": 995, "pop3": 110}
_SETTING = "MAILER_BOUNCE_MAILBOX"
_EXAMPLE = "imaps://bounces%40news.example.org:PASSWORD@mail.example.org/INBOX"
_FETCH_CHUNK = 50  # messages per IMAP FETCH
_ALL_LINES = 10_000_000  # POP3 TOP's line count that means the whole body


@dataclass(frozen=True)
class MailboxUrl:
    """MAILER_BOUNCE_MAILBOX, parsed. The password never appears in its repr or str."""

    scheme: str
    host: str = ""
    port: int = 0
    username: str = ""
    password: SecretStr = field(default=SecretStr(""), repr=False)
    folder: str = "INBOX"
    path: Path | None = None  # a Maildir's

    def __str__(self) -> str:
        if self.path is not None:
            return f"maildir://{self.path}"
        user = f"{self.username}@" if self.username else ""
        folder = f"/{self.folder}" if self.scheme.startswith("imap") else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}{folder}"


def parse_mailbox_url(url: str) -> MailboxUrl:
    """MAILER_BOUNCE_MAILBOX as a MailboxUrl; ConfigError (without the password) if it is wrong."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "maildir":
        path = Path(unquote(parts.path))
        if parts.netloc or not path.is_absolute():
            raise ConfigError(
                f"{_SETTING}: a Maildir is maildir:// and an absolute path, e.g. "
                "maildir:///var/mail/bounces (three slashes)"
            )
        return MailboxUrl("maildir", path=path)
    if scheme not in _PORTS:
        raise ConfigError(
            f"{_SETTING} must start with imaps://, imap://, pop3s://, pop3:// or maildir://, "
            f"e.g. {_EXAMPLE}"
        )
    if not parts.hostname:
        raise ConfigError(f"{_SETTING} has no host name, e.g. {_EXAMPLE}")
    if not parts.username or parts.password is None:
        raise ConfigError(
            f"{_SETTING} has no user name and password, e.g. {_EXAMPLE} "
            "(URL-encode them: %40 for @, %3A for :)"
        )
    try:
        port = parts.port or _PORTS[scheme]
    except ValueError:
        raise ConfigError(f"{_SETTING} has a port that is not a number from 1 to 65535") from None
    folder = unquote(parts.path.strip("/")) or "INBOX"
    if scheme.startswith("pop3") and folder != "INBOX":
        raise ConfigError(f"{_SETTING}: POP3 has no folders; leave the path out")
    return MailboxUrl(
        scheme,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username),
        password=SecretStr(unquote(parts.password)),
        folder=folder,
    )


class Mailbox(Protocol):
    """A bounce mailbox, open: its messages by stable id, their bytes, and where they go after."""

    url: MailboxUrl

    @property
    def identity(self) -> str:
        """The mailbox as the log of processed messages names it (its URL, no password)."""
        ...

    def ids(self) -> list[str]:
        """The ids of the messages in the folder now, oldest first."""
        ...

    def fetch(self, ids: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        """(id, bytes) of these messages, leaving them unread; ids gone meanwhile are skipped."""
        ...

    def move(self, ids: Sequence[str], folder: str) -> None:
        """Move these messages to a folder, creating it if needed."""
        ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def keep(self, ids: Sequence[str], folder: str | None) -> None:
        """Leave these messages where they are, or move them when ``folder`` is set (POP3 keeps)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _Base:
    url: MailboxUrl

    @property
    def identity(self) -> str:
        return str(self.url)

    def keep(self, ids: Sequence[str], folder: str | None) -> None:
        if folder is not None and ids:
            self.move(ids, folder)

    def move(self, ids: Sequence[str], folder: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to release by default."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _failed(self, what: str, error: object) -> BounceMailboxError:
        return BounceMailboxError(
            f"could not {what} the bounce mailbox {self.url}: {error}. Check {_SETTING} "
            "(and that the server is up); the next run tries again"
        )


def open_mailbox(url: MailboxUrl, *, ca_file: Path | None = None, timeout: float = 30.0) -> Mailbox:
    """The mailbox the URL names, connected and logged in; BounceMailboxError if it cannot be."""
    if url.path is not None:
        return MaildirMailbox(url)
    context = ssl.create_default_context(cafile=ca_file)
    if url.scheme.startswith("imap"):
        return ImapMailbox(url, context, timeout)
    return Pop3Mailbox(url, context, timeout)


# -- Maildir ------------------------------------------------------------------------------


class MaildirMailbox(_Base):
    """A Maildir (``new/``, ``cur/``, ``tmp/``) and its Maildir++ folders (``.Name/``).

    By hand rather than through the standard library's ``mailbox.Maildir``, which moves
    a message to another folder by copying and deleting it: a rename is atomic, so a
    crash leaves the message in one place or the other, never both.
    """

    def __init__(self, url: MailboxUrl) -> None:
        assert url.path is not None
        self.url, self.root = url, url.path
        if not all((self.root / sub).is_dir() for sub in ("new", "cur")):
            raise self._failed("open", f"{self.root} is not a Maildir (no new/ and cur/ in it)")
        self._files: dict[str, Path] = {}

    def ids(self) -> list[str]:
        found: list[tuple[float, str, Path]] = []
        for sub in ("new", "cur"):
            try:
                entries = list(os.scandir(self.root / sub))
            except OSError as error:
                raise self._failed("list", error) from None
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                unique = entry.name.split(":", 1)[0]
                with contextlib.suppress(OSError):
                    found.append((entry.stat().st_mtime, unique, Path(entry.path)))
        found.sort()
        self._files = {unique: path for _, unique, path in found}
        return list(self._files)

    def fetch(self, ids: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        for unique in ids:
            path = self._files.get(unique)
            if path is None:
                continue
            try:
                yield unique, path.read_bytes()
            except FileNotFoundError:
                continue  # taken by someone else meanwhile
            except OSError as error:
                raise self._failed("read", error) from None

    def move(self, ids: Sequence[str], folder: str) -> None:
        target = self._folder(folder)
        for unique in ids:
            path = self._files.pop(unique, None)
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.replace(path, target / "cur" / _seen_name(path.name))

    def delete(self, ids: Sequence[str]) -> None:
        for unique in ids:
            path = self._files.pop(unique, None)
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def _folder(self, name: str) -> Path:
        folder = self.root / ("." + name.strip(".").replace("/", "."))
        try:
            for sub in ("cur", "new", "tmp"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            (folder / "maildirfolder").touch()
        except OSError as error:
            raise self._failed(f"create the folder {name} in", error) from None
        return folder


def _seen_name(name: str) -> str:
    """A message's file name once moved to cur/: its flags kept, or none yet (``:2,``)."""
    return name if ":2," in name else name.split(":", 1)[0] + ":2,"


# -- IMAP ---------------------------------------------------------------------------------


class ImapMailbox(_Base):
    """An IMAP folder, through imap-tools: ``UIDVALIDITY:UID`` ids, BODY.PEEK fetches, MOVE."""

    def __init__(self, url: MailboxUrl, context: ssl.SSLContext, timeout: float) -> None:
        from imap_tools import MailBox, MailBoxStartTls

        self.url = url
        self._expunge = False
        try:
            if url.scheme == "imaps":
                self._box: Any = MailBox(url.host, url.port, timeout=timeout, ssl_context=context)
            else:
                self._box = MailBoxStartTls(
                    url.host, url.port, timeout=timeout, ssl_context=context
                )
            self._box.login(
                url.username, url.password.get_secret_value(), initial_folder=url.folder
            )
            self._validity = self._box.folder.status(url.folder, ["UIDVALIDITY"])["UIDVALIDITY"]
        except Exception as error:
            self.close()
            raise self._failed("log in to", _imap_error(error)) from None

    def ids(self) -> list[str]:
        try:
            uids = self._box.uids("ALL")
        except Exception as error:
            raise self._failed("list", _imap_error(error)) from None
        return [f"{self._validity}:{uid}" for uid in uids]

    def _uids(self, ids: Sequence[str]) -> list[str]:
        prefix = f"{self._validity}:"
        return [id_[len(prefix) :] for id_ in ids if id_.startswith(prefix)]

    def fetch(self, ids: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        uids = self._uids(ids)
        for start in range(0, len(uids), _FETCH_CHUNK):
            chunk = uids[start : start + _FETCH_CHUNK]
            try:
                # Fetched whole, in one command per chunk; BODY.PEEK[] leaves them unread.
                typ, data = self._box.client.uid("FETCH", ",".join(chunk), "(UID BODY.PEEK[])")
            except Exception as error:
                raise self._failed("read", _imap_error(error)) from None
            if typ != "OK":
                raise self._failed("read", data)
            for item in data:
                if isinstance(item, tuple) and len(item) == 2:
                    uid = _fetched_uid(item[0])
                    if uid is not None:
                        yield f"{self._validity}:{uid}", bytes(item[1])

    def move(self, ids: Sequence[str], folder: str) -> None:
        uids = self._uids(ids)
        if not uids:
            return
        try:
            if not self._box.folder.exists(folder):
                self._box.folder.create(folder)
            self._box.move(uids, folder, chunks=500)
        except Exception as error:
            raise self._failed(f"move messages to {folder} in", _imap_error(error)) from None

    def delete(self, ids: Sequence[str]) -> None:
        """Flag these messages deleted; they go when the session ends (one EXPUNGE for the run:
        the server's slowest command). Flagged and left by a crash, the next run deletes
        them again, having recorded them."""
        uids = self._uids(ids)
        for start in range(0, len(uids), 500):
            chunk = ",".join(uids[start : start + 500])
            try:
                typ, data = self._box.client.uid("STORE", chunk, "+FLAGS.SILENT", r"(\Deleted)")
            except Exception as error:
                raise self._failed("delete messages from", _imap_error(error)) from None
            if typ != "OK":
                raise self._failed("delete messages from", data)
            self._expunge = True

    def close(self) -> None:
        box = getattr(self, "_box", None)
        if box is not None and getattr(self, "_expunge", False):
            self._expunge = False
            try:
                box.expunge()
            except Exception as error:
                with contextlib.suppress(Exception):
                    box.client.shutdown()
                raise self._failed("delete messages from", _imap_error(error)) from None
        if box is not None:
            with contextlib.suppress(Exception):
                box.logout()
            with contextlib.suppress(Exception):
                box.client.shutdown()


def _fetched_uid(head: bytes) -> str | None:
    words = head.decode("ascii", "replace").replace("(", " ").split()
    for before, after in itertools.pairwise(words):
        if before.upper() == "UID" and after.isdigit():
            return after
    return None


def _imap_error(error: Exception) -> str:
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "no answer (timed out)"
    if isinstance(error, imaplib.IMAP4.error):
        return str(error)
    return str(error) or type(error).__name__


# -- POP3 ---------------------------------------------------------------------------------


class Pop3Mailbox(_Base):
    """A POP3 maildrop: UIDL ids; deletions take effect when the session ends (QUIT).

    POP3 has no folders: messages to be moved are left on the server instead.
    """

    def __init__(self, url: MailboxUrl, context: ssl.SSLContext, timeout: float) -> None:
        self.url = url
        self._pop: poplib.POP3 | None = None
        self._numbers: dict[str, int] = {}
        self._top = True
        try:
            if url.scheme == "pop3s":
                self._pop = poplib.POP3_SSL(url.host, url.port, timeout=timeout, context=context)
            else:
                self._pop = poplib.POP3(url.host, url.port, timeout=timeout)
                self._pop.stls(context)
            self._pop.user(url.username)
            self._pop.pass_(url.password.get_secret_value())
        except (OSError, poplib.error_proto) as error:
            self._abandon()
            raise self._failed("log in to", _pop_error(error)) from None

    def _session(self) -> poplib.POP3:
        assert self._pop is not None, "closed"
        return self._pop

    def ids(self) -> list[str]:
        try:
            _, lines, _ = self._session().uidl()
        except (OSError, poplib.error_proto) as error:
            raise self._failed("list", _pop_error(error)) from None
        self._numbers = {}
        for line in lines:
            number, _, uidl = line.decode("ascii", "replace").partition(" ")
            if number.isdigit() and uidl:
                self._numbers[uidl.strip()] = int(number)
        return list(self._numbers)

    def fetch(self, ids: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        for uidl in ids:
            number = self._numbers.get(uidl)
            if number is None:
                continue
            try:
                lines = self._whole(number)
            except (OSError, poplib.error_proto) as error:
                raise self._failed("read", _pop_error(error)) from None
            yield uidl, b"\r\n".join(lines) + b"\r\n"

    def _whole(self, number: int) -> list[bytes]:
        """A message whole, through TOP with every line (which leaves it unread, where a server
        keeps such flags, as Dovecot does); through RETR on a server without TOP."""
        session = self._session()
        if self._top:
            try:
                return list(session.top(number, _ALL_LINES)[1])
            except poplib.error_proto:
                self._top = False
        return list(session.retr(number)[1])

    def move(self, ids: Sequence[str], folder: str) -> None:
        """POP3 has no folders: the messages stay on the server."""

    def delete(self, ids: Sequence[str]) -> None:
        for uidl in ids:
            number = self._numbers.pop(uidl, None)
            if number is None:
                continue
            try:
                self._session().dele(number)
            except (OSError, poplib.error_proto) as error:
                raise self._failed("delete messages from", _pop_error(error)) from None

    def close(self) -> None:
        pop, self._pop = self._pop, None
        if pop is not None:
            try:
                pop.quit()  # the deletions happen now
            except (OSError, poplib.error_proto) as error:
                with contextlib.suppress(OSError):
                    pop.close()
                raise self._failed("finish the session with", _pop_error(error)) from None

    def _abandon(self) -> None:
        pop, self._pop = self._pop, None
        if pop is not None:
            with contextlib.suppress(OSError):
                pop.close()


def _pop_error(error: Exception) -> str:
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "no answer (timed out)"
    if isinstance(error, poplib.error_proto):
        return (
            error.args[0].decode("utf-8", "replace")
            if error.args and isinstance(error.args[0], bytes)
            else str(error)
        )
    return str(error) or type(error).__name__
