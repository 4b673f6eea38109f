"""Debian's Postfix and Dovecot, run for the tests from the configuration files beside this one.

:class:`MailServers` writes ``postfix/main.cf``, ``postfix/master.cf`` and
``dovecot/dovecot.conf`` into a temporary folder with free loopback ports filled
in, a user file, a throwaway TLS certificate, and starts both in the foreground
as child processes (``postfix start-fg``, ``dovecot -F``); :meth:`MailServers.stop`
ends them. Nothing in /etc is read or changed, and every run gets new ports and a
new folder, so a second run on the same machine (or one after a killed run)
works. Postfix listens on 127.0.0.1 only and delivers only to its two test
domains, both in Dovecot over LMTP; it never relays anywhere.

* ``bounces1@…`` to ``bouncesN@news.example.org`` are bounce mailboxes, one per
  test that wants one (:meth:`MailServers.bounce_mailbox`), so tests never see
  each other's mail.
* ``member1@…`` to ``memberN@members.example.net`` exist; any other address of
  that domain does not, and Postfix bounces mail to it with a real DSN.

Needs root (Postfix and Dovecot switch to their own users) and the packages
``scripts/services`` installs (postfix, dovecot-imapd, dovecot-pop3d, dovecot-lmtpd).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from urllib.parse import quote

from doubles.tls import TlsFiles, make_tls_files

HERE = Path(__file__).resolve().parent
BOUNCE_DOMAIN = "news.example.org"
MEMBER_DOMAIN = "members.example.net"
PASSWORD = "bounce-mailbox-secret"
BOUNCE_MAILBOXES = 40
MEMBERS = 40
POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
START_SECONDS = 30


class MailServerError(RuntimeError):
    """The servers could not be started; the message says why and where the logs are."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


@dataclass
class MailServers:
    """Postfix and Dovecot on loopback ports, configured under ``root``."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mailer-mail-")))
    ports: dict[str, int] = field(default_factory=dict)
    tls: TlsFiles | None = None
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _next_bounce: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- what the tests use ------------------------------------------------------------

    @property
    def smtp_url(self) -> str:
        """MAILER_SMTP_URL of the Postfix listener (plain SMTP on loopback, no login)."""
        return f"smtp://127.0.0.1:{self.ports['smtp']}"

    def bounce_mailbox(self) -> BounceMailbox:
        """A bounce mailbox of its own for one test."""
        number = next(self._next_bounce)
        if number > BOUNCE_MAILBOXES:
            raise MailServerError(f"more than {BOUNCE_MAILBOXES} bounce mailboxes asked for")
        return BounceMailbox(self, f"bounces{number}@{BOUNCE_DOMAIN}")

    def member(self, number: int) -> str:
        """The address of a member whose mailbox exists (1 to MEMBERS)."""
        return f"member{number}@{MEMBER_DOMAIN}"

    def maildir(self, address: str) -> Path:
        local, _, domain = address.partition("@")
        return self.root / "mail" / domain / local / "Maildir"

    def logs(self) -> str:
        """The last lines of both servers' logs, for a failing test's message."""
        lines = []
        for name in ("postfix.log", "dovecot.log"):
            path = self.root / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-30:]
                lines += [f"--- {name}", *tail]
        return "\n".join(lines)

    # -- starting and stopping -----------------------------------------------------------

    def start(self) -> MailServers:
        for tool in (POSTFIX, DOVECOT):
            if not Path(tool).exists():
                raise MailServerError(
                    f"{tool} is missing: run scripts/services (as root) to install Debian's "
                    "postfix, dovecot-imapd, dovecot-pop3d and dovecot-lmtpd"
                )
        if os.geteuid() != 0:
            raise MailServerError("Postfix and Dovecot are started as root; run the tests as root")
        self.root.chmod(0o755)  # Dovecot's mail processes run as nobody, below it
        self.ports = {
            name: free_port() for name in ("smtp", "lmtp", "imap", "imaps", "pop3", "pop3s")
        }
        self.tls = make_tls_files(self.root)
        self._write_configuration()
        self._processes.append(self._spawn([DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")]))
        self._processes.append(self._spawn([POSTFIX, "-c", str(self.root / "postfix"), "start-fg"]))
        deadline = time.monotonic() + START_SECONDS
        while not all(_listening(port) for port in self.ports.values()):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._processes):
                self.stop()
                raise MailServerError(f"Postfix or Dovecot did not start:\n{self.logs()}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if (self.root / "postfix" / "main.cf").exists():
            subprocess.run(
                [POSTFIX, "-c", str(self.root / "postfix"), "stop"],
                capture_output=True,
                check=False,
                timeout=60,
            )
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> MailServers:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self.root / f"{Path(argv[0]).name}.out").open("wb") as log:
            return subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def _write_configuration(self) -> None:
        assert self.tls is not None
        nobody = pwd.getpwnam("nobody")
        values = {
            "root": str(self.root),
            "bounce_domain": BOUNCE_DOMAIN,
            "member_domain": MEMBER_DOMAIN,
            "cert": str(self.tls.cert),
            "key": str(self.tls.key),
            "mail_uid": str(nobody.pw_uid),
            "mail_gid": str(nobody.pw_gid),
            **{f"{name}_port": str(port) for name, port in self.ports.items()},
        }
        (self.root / "postfix").mkdir()
        for source, target in [
            (HERE / "postfix" / "main.cf", self.root / "postfix" / "main.cf"),
            (HERE / "postfix" / "master.cf", self.root / "postfix" / "master.cf"),
            (HERE / "dovecot" / "dovecot.conf", self.root / "dovecot.conf"),
        ]:
            target.write_text(Template(source.read_text()).substitute(values))
        (self.root / "postfix-queue").mkdir()
        users = [f"bounces{n}@{BOUNCE_DOMAIN}" for n in range(1, BOUNCE_MAILBOXES + 1)]
        users += [self.member(n) for n in range(1, MEMBERS + 1)]
        (self.root / "users").write_text(
            "".join(f"{user}:{{PLAIN}}{PASSWORD}::::\n" for user in users)
        )
        mail = self.root / "mail"
        mail.mkdir()
        os.chown(mail, nobody.pw_uid, nobody.pw_gid)
        # Dovecot reads its TLS key as root; its mail processes need only the mail folder.
        self.tls.key.chmod(0o600)


@dataclass(frozen=True)
class BounceMailbox:
    """One test's bounce mailbox: its address (MAILER_BOUNCE_ADDRESS) and how to read it."""

    servers: MailServers
    address: str

    @property
    def maildir(self) -> Path:
        return self.servers.maildir(self.address)

    def url(self, scheme: str) -> str:
        """MAILER_BOUNCE_MAILBOX for this mailbox over ``scheme`` (imaps, imap, pop3s, pop3,
        maildir)."""
        if scheme == "maildir":
            return f"maildir://{self.maildir}"
        port = self.servers.ports[scheme]
        user = quote(self.address, safe="")
        folder = "/INBOX" if scheme.startswith("imap") else ""
        return f"{scheme}://{user}:{PASSWORD}@127.0.0.1:{port}{folder}"

    def messages(self) -> list[Path]:
        """The files of the messages delivered so far."""
        return sorted(
            path
            for sub in ("new", "cur")
            if (self.maildir / sub).is_dir()
            for path in (self.maildir / sub).iterdir()
        )

    def wait_for(self, count: int, *, seconds: float = 60) -> list[Path]:
        """The messages once ``count`` have been delivered; fails with the servers' logs if not."""
        deadline = time.monotonic() + seconds
        while len(found := self.messages()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(found)} of {count} messages reached {self.address} in {seconds} s\n"
                    f"{self.servers.logs()}"
                )
            time.sleep(0.1)
        return found
