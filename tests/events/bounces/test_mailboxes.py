"""The bounce mailbox by URL: IMAP, POP3 and Maildir, against the tests' Dovecot."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from imap_tools import MailBox
from servers.mail import PASSWORD, BounceMailbox, MailServers, free_port

from mailer.errors import BounceMailboxError, ConfigError
from mailer.events.bounces.mailboxes import MailboxUrl, open_mailbox, parse_mailbox_url


def message(n: int) -> bytes:
    return (
        f"From: a@example.net\r\nSubject: {n}\r\nMessage-ID: <{n}@x>\r\n\r\nbody {n}\r\n".encode()
    )


def append(servers: MailServers, mailbox: BounceMailbox, count: int) -> None:
    assert servers.tls is not None
    context = ssl.create_default_context(cafile=str(servers.tls.ca))
    with MailBox("127.0.0.1", servers.ports["imaps"], ssl_context=context).login(
        mailbox.address, PASSWORD
    ) as box:
        for n in range(count):
            box.append(message(n), "INBOX")


def opened(servers: MailServers, mailbox: BounceMailbox, scheme: str) -> object:
    assert servers.tls is not None
    return open_mailbox(parse_mailbox_url(mailbox.url(scheme)), ca_file=servers.tls.ca, timeout=10)


class TestUrls:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            (
                "imaps://bounces%40news.example.org:p%40ss@mail.example.org/INBOX",
                MailboxUrl(
                    "imaps", "mail.example.org", 993, "bounces@news.example.org", folder="INBOX"
                ),
            ),
            ("imap://u:p@mail.example.org:1143", MailboxUrl("imap", "mail.example.org", 1143, "u")),
            ("pop3s://u:p@mail.example.org", MailboxUrl("pop3s", "mail.example.org", 995, "u")),
            ("pop3://u:p@mail.example.org", MailboxUrl("pop3", "mail.example.org", 110, "u")),
            ("maildir:///var/mail/bounces", MailboxUrl("maildir", path=Path("/var/mail/bounces"))),
        ],
    )
    def test_each_scheme(self, url: str, expected: MailboxUrl) -> None:
        """Host, default port, decoded user and folder; never the password in what is shown."""
        parsed = parse_mailbox_url(url)
        assert (
            expected.scheme,
            expected.host,
            expected.port,
            expected.username,
            expected.folder,
            expected.path,
        ) == (
            parsed.scheme,
            parsed.host,
            parsed.port,
            parsed.username,
            parsed.folder,
            parsed.path,
        )
        assert "p@ss" not in f"{parsed} {parsed!r}"

    @pytest.mark.parametrize(
        ("url", "says"),
        [
            ("http://u:p@mail.example.org", "must start with imaps://"),
            ("imaps://mail.example.org/INBOX", "no user name and password"),
            ("imaps://u:p@/INBOX", "no host name"),
            ("pop3s://u:p@mail.example.org/Archive", "POP3 has no folders"),
            ("maildir://var/mail", "absolute path"),
            ("imaps://u:p@mail.example.org:99999", "port"),
        ],
    )
    def test_a_wrong_url_says_what_is_wrong(self, url: str, says: str) -> None:
        with pytest.raises(ConfigError, match=says) as caught:
            parse_mailbox_url(url)
        assert ":p@" not in str(caught.value)


class TestServers:
    @pytest.mark.parametrize("scheme", ["imaps", "imap", "pop3s", "pop3"])
    def test_lists_and_reads_every_message_without_marking_it_read(
        self, scheme: str, mail_servers: MailServers, bounce_mailbox: BounceMailbox
    ) -> None:
        """Every message, by an id that stays the same between sessions, whole and unread."""
        append(mail_servers, bounce_mailbox, 3)
        with opened(mail_servers, bounce_mailbox, scheme) as box:  # type: ignore[attr-defined]
            ids = box.ids()
            fetched = dict(box.fetch(ids))
        with opened(mail_servers, bounce_mailbox, scheme) as box:  # type: ignore[attr-defined]
            again = box.ids()
        assert (3, ids) == (len(ids), again)
        assert [message(n) for n in range(3)] == [
            fetched[i].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") for i in ids
        ]
        assert all(
            ":2," not in p.name or "S" not in p.name.split(":2,")[1]
            for p in bounce_mailbox.messages()
        )

    def test_imap_moves_to_a_folder_it_creates_and_deletes(
        self, mail_servers: MailServers, bounce_mailbox: BounceMailbox
    ) -> None:
        """Moved messages land in the folder (made if missing); deleted ones are gone once the
        session ends."""
        append(mail_servers, bounce_mailbox, 3)
        with opened(mail_servers, bounce_mailbox, "imaps") as box:  # type: ignore[attr-defined]
            first, second, third = box.ids()
            box.move([first, second], "Processed")
            box.delete([third])
        with opened(mail_servers, bounce_mailbox, "imaps") as box:  # type: ignore[attr-defined]
            left = box.ids()
        processed = bounce_mailbox.maildir / ".Processed"
        assert ([], 2) == (
            left,
            len(list((processed / "cur").iterdir()) + list((processed / "new").iterdir())),
        )

    def test_pop3_keeps_what_it_cannot_move(
        self, mail_servers: MailServers, bounce_mailbox: BounceMailbox
    ) -> None:
        """POP3 has no folders: a message to be moved stays on the server; a deleted one goes."""
        append(mail_servers, bounce_mailbox, 2)
        with opened(mail_servers, bounce_mailbox, "pop3s") as box:  # type: ignore[attr-defined]
            kept, deleted = box.ids()
            box.keep([kept], "Other")
            box.delete([deleted])
        with opened(mail_servers, bounce_mailbox, "pop3s") as box:  # type: ignore[attr-defined]
            assert [kept] == box.ids()

    def test_a_refused_login_is_a_mailbox_error_without_the_password(
        self, mail_servers: MailServers, bounce_mailbox: BounceMailbox
    ) -> None:
        url = parse_mailbox_url(bounce_mailbox.url("imaps").replace(PASSWORD, "wrong-password"))
        with pytest.raises(
            BounceMailboxError, match="could not log in to the bounce mailbox"
        ) as caught:
            open_mailbox(url, ca_file=mail_servers.tls.ca if mail_servers.tls else None, timeout=10)
        assert "wrong-password" not in str(caught.value)

    def test_a_server_that_does_not_answer_is_a_mailbox_error(self) -> None:
        url = parse_mailbox_url(f"pop3s://u:p@127.0.0.1:{free_port()}")
        with pytest.raises(BounceMailboxError, match="MAILER_BOUNCE_MAILBOX"):
            open_mailbox(url, timeout=5)

    def test_an_untrusted_certificate_is_refused(
        self, mail_servers: MailServers, bounce_mailbox: BounceMailbox
    ) -> None:
        """Without MAILER_BOUNCE_CA_FILE the tests' private CA is not trusted: no login."""
        with pytest.raises(BounceMailboxError, match="CERTIFICATE_VERIFY_FAILED"):
            open_mailbox(parse_mailbox_url(bounce_mailbox.url("imaps")), timeout=10)

    def test_a_folder_that_is_not_a_maildir(self, tmp_path: Path) -> None:
        with pytest.raises(BounceMailboxError, match="is not a Maildir"):
            open_mailbox(parse_mailbox_url(f"maildir://{tmp_path}"))
