"""The SMTP transport against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from doubles.smtp import SmtpServer, free_port

from mailer.errors import ConfigError
from mailer.mail import Batch, Recipient
from mailer.transports.smtp import SmtpTransport, SmtpUrl, parse_smtp_url

MakeBatch = Callable[..., Batch]
MakeRecipient = Callable[..., Recipient]
MakeServer = Callable[..., SmtpServer]


class TestParseSmtpUrl:
    def test_starttls_with_login(self) -> None:
        """The documented form: a login, port 587, STARTTLS."""
        url = parse_smtp_url("smtp://user:pa%40ss@mail.example.org:587?starttls=true")
        assert ("mail.example.org", 587, True, False, "user", "pa@ss") == (
            url.host,
            url.port,
            url.starttls,
            url.implicit_tls,
            url.username,
            url.password.get_secret_value() if url.password else None,
        )

    def test_smtps(self) -> None:
        """smtps:// is TLS from the first byte, on port 465 by default."""
        url = parse_smtp_url("smtps://u:p@mail.example.org")
        assert (465, True, False) == (url.port, url.implicit_tls, url.starttls)

    def test_plain_relay(self) -> None:
        """smtp://host is a relay without login on port 25."""
        assert SmtpUrl(host="relay.internal", port=25) == parse_smtp_url("smtp://relay.internal")

    def test_starttls_default_port(self) -> None:
        """With STARTTLS and no port, the submission port 587 is used."""
        assert 587 == parse_smtp_url("smtp://u:p@mail.example.org?starttls=true").port

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("http://mail.example.org", "must start with smtp:// or smtps://"),
            ("smtp://", "no host name"),
            ("smtp://mail.example.org:99999", "port"),
            ("smtp://mail.example.org?tls=yes", "unknown option"),
            ("smtp://mail.example.org?starttls=maybe", "true or false"),
            ("smtps://mail.example.org?starttls=true", "already TLS"),
            ("smtp://u:hunter2@mail.example.org:25", "unencrypted"),
        ],
    )
    def test_mistakes(self, url: str, message: str) -> None:
        """Each mistake in MAILER_SMTP_URL is a ConfigError that says what is wrong."""
        with pytest.raises(ConfigError, match=message):
            parse_smtp_url(url)

    def test_errors_never_show_the_password(self) -> None:
        """No message about the URL repeats its password."""
        with pytest.raises(ConfigError) as caught:
            parse_smtp_url("smtp://u:hunter2@mail.example.org:25")
        assert "hunter2" not in str(caught.value)

    def test_password_hidden(self) -> None:
        """Neither str() nor repr() of the parsed URL shows the password."""
        url = parse_smtp_url("smtp://u:hunter2@mail.example.org?starttls=true")
        assert ("hunter2" in str(url), "hunter2" in repr(url)) == (False, False)

    def test_login_over_plain_loopback_allowed(self) -> None:
        """A login over a plain connection is allowed to localhost only (a local relay)."""
        assert "u" == parse_smtp_url("smtp://u:p@127.0.0.1:2525").username


@pytest.fixture
def transport(smtp_server: SmtpServer) -> Iterator[SmtpTransport]:
    with SmtpTransport(parse_smtp_url(smtp_server.url()), timeout=5) as transport:
        yield transport


class TestSmtpTransport:
    def test_delivers_each_recipient_their_own_message(
        self, smtp_server: SmtpServer, transport: SmtpTransport, make_batch: MakeBatch
    ) -> None:
        """Each recipient gets one message, addressed and personalised to them."""
        deliveries = transport.send(make_batch(3))
        received = [
            (m.rcpt_tos, m.message["To"].addresses[0].addr_spec, m.message["Subject"])
            for m in smtp_server.messages
        ]
        expected = [
            (
                [f"member{i}@example.com"],
                f"member{i}@example.com",
                f"Hello Member{i}: the winter issue",
            )
            for i in range(3)
        ]
        assert (expected, ["sent"] * 3) == (received, [d.state for d in deliveries])

    def test_envelope_sender(
        self, smtp_server: SmtpServer, transport: SmtpTransport, make_batch: MakeBatch
    ) -> None:
        """MAIL FROM is the newsletter's From address (bounces come back there)."""
        transport.send(make_batch(1))
        assert "news@example.org" == smtp_server.messages[0].mail_from

    def test_message_id_reported(
        self, smtp_server: SmtpServer, transport: SmtpTransport, make_batch: MakeBatch
    ) -> None:
        """Each delivery carries the Message-ID the server received."""
        deliveries = transport.send(make_batch(2))
        assert [m.message["Message-ID"] for m in smtp_server.messages] == [
            d.message_id for d in deliveries
        ]

    def test_one_connection_for_many_messages(
        self, smtp_server: SmtpServer, transport: SmtpTransport, make_batch: MakeBatch
    ) -> None:
        """All messages of all batches go over a single connection."""
        transport.send(make_batch(5))
        transport.send(make_batch(5, issue="2026-01-22-spring"))
        assert (10, 1) == (len(smtp_server.messages), smtp_server.connections)

    def test_reconnects_after_a_drop(
        self, smtp_server: SmtpServer, transport: SmtpTransport, make_batch: MakeBatch
    ) -> None:
        """A connection dropped between messages is reopened and the message sent once."""
        transport.send(make_batch(1))
        smtp_server.drop_next("MAIL")
        deliveries = transport.send(make_batch(3, issue="2026-01-22-spring"))
        assert (["sent"] * 3, 2, 4) == (
            [d.state for d in deliveries],
            smtp_server.connections,
            len(smtp_server.messages),
        )

    def test_gives_up_after_a_second_drop(
        self, smtp_server: SmtpServer, transport: SmtpTransport, make_batch: MakeBatch
    ) -> None:
        """A message whose retry is dropped too fails; the next one goes on a new connection."""
        smtp_server.drop_next("MAIL", times=2)
        deliveries = transport.send(make_batch(2))
        assert (["failed", "sent"], ["member1@example.com"]) == (
            [d.state for d in deliveries],
            [m.rcpt_tos[0] for m in smtp_server.messages],
        )

    def test_drop_after_data_is_unknown(
        self, smtp_server: SmtpServer, transport: SmtpTransport, make_batch: MakeBatch
    ) -> None:
        """A drop after the message went out is unknown and not resent: the server has it."""
        smtp_server.drop_next("DATA")
        deliveries = transport.send(make_batch(2))
        assert (["unknown", "sent"], 1, 1) == (
            [d.state for d in deliveries],
            len(smtp_server.received_by("member0@example.com")),
            len(smtp_server.received_by("member1@example.com")),
        )

    def test_refused_recipient(
        self, smtp_server: SmtpServer, transport: SmtpTransport, make_batch: MakeBatch
    ) -> None:
        """A refused address fails alone, permanently, with the server's reply; the rest go."""
        smtp_server.refuse("member1@example.com")
        deliveries = transport.send(make_batch(3))
        refused = deliveries[1]
        assert (["sent", "failed", "sent"], True) == (
            [d.state for d in deliveries],
            refused.permanent,
        )
        assert "550 5.1.1 no such user here" in (refused.error or "")
        assert ["member0@example.com", "member2@example.com"] == [
            m.rcpt_tos[0] for m in smtp_server.messages
        ]

    def test_temporary_refusal_is_not_permanent(
        self, smtp_server: SmtpServer, transport: SmtpTransport, make_batch: MakeBatch
    ) -> None:
        """A 4xx refusal fails the message but says retrying may work."""
        smtp_server.refuse("member0@example.com", "450 4.2.1 mailbox busy")
        delivery = transport.send(make_batch(1))[0]
        assert ("failed", False) == (delivery.state, delivery.permanent)

    def test_non_ascii_address(
        self,
        smtp_server: SmtpServer,
        transport: SmtpTransport,
        make_batch: MakeBatch,
        make_recipient: MakeRecipient,
    ) -> None:
        """An internationalised address is sent with SMTPUTF8 when the server offers it."""
        member = make_recipient(1, email="zoë@example.com")
        delivery = transport.send(make_batch(recipients=[member]))[0]
        assert ("sent", ["zoë@example.com"]) == (delivery.state, smtp_server.messages[0].rcpt_tos)

    def test_close_ends_the_session(self, smtp_server: SmtpServer, make_batch: MakeBatch) -> None:
        """After close(), the next send opens a new connection."""
        transport = SmtpTransport(parse_smtp_url(smtp_server.url()), timeout=5)
        transport.send(make_batch(1))
        transport.close()
        transport.send(make_batch(1))
        transport.close()
        assert 2 == smtp_server.connections

    def test_rate_limited(self, smtp_server: SmtpServer, make_batch: MakeBatch) -> None:
        """Each message takes one token from the limiter."""
        taken: list[int] = []

        class Counting:
            def acquire(self, count: int = 1) -> float:
                taken.append(count)
                return 0.0

        with SmtpTransport(parse_smtp_url(smtp_server.url()), limiter=Counting()) as transport:  # type: ignore[arg-type]
            transport.send(make_batch(3))
        assert [1, 1, 1] == taken

    def test_unreachable_server(self, make_batch: MakeBatch) -> None:
        """When no server answers, every recipient fails with the reason, after one try."""
        url = parse_smtp_url(f"smtp://127.0.0.1:{free_port()}")
        with SmtpTransport(url, timeout=2) as transport:
            deliveries = transport.send(make_batch(3))
        assert [("failed", True)] * 3 == [
            (d.state, "could not open an SMTP connection" in (d.error or "")) for d in deliveries
        ]

    def test_repr_hides_the_password(self, smtp_server: SmtpServer) -> None:
        """The transport's repr names the server, not the password."""
        transport = SmtpTransport(parse_smtp_url(smtp_server.url(user="u", password="hunter2")))
        assert ("hunter2" in repr(transport), str(smtp_server.port) in repr(transport)) == (
            False,
            True,
        )


class TestSmtpSecurity:
    def test_login(self, make_smtp_server: MakeServer, make_batch: MakeBatch) -> None:
        """With a login in the URL, the transport authenticates before sending."""
        server = make_smtp_server(login=("newsletter", "s3cret pass"))
        with SmtpTransport(parse_smtp_url(server.url()), timeout=5) as transport:
            deliveries = transport.send(make_batch(2))
        assert (["sent", "sent"], ["newsletter"]) == ([d.state for d in deliveries], server.logins)

    def test_wrong_password(self, make_smtp_server: MakeServer, make_batch: MakeBatch) -> None:
        """A refused login fails every recipient, naming the user but not the password."""
        server = make_smtp_server(login=("newsletter", "right"))
        with SmtpTransport(
            parse_smtp_url(server.url(user="newsletter", password="wrong-pw")), timeout=5
        ) as transport:
            deliveries = transport.send(make_batch(2))
        errors = [d.error or "" for d in deliveries]
        assert (["failed", "failed"], True, False) == (
            [d.state for d in deliveries],
            all("refused the login for 'newsletter'" in e for e in errors),
            any("wrong-pw" in e for e in errors),
        )
        assert [] == server.messages

    def test_starttls(
        self, make_smtp_server: MakeServer, make_batch: MakeBatch, tls_files: object
    ) -> None:
        """Over STARTTLS, with the certificate checked against the CA file, mail is delivered."""
        server = make_smtp_server(mode="starttls", login=("newsletter", "pw"))
        url = parse_smtp_url(server.url())
        with SmtpTransport(url, timeout=5, ca_file=tls_files.ca) as transport:  # type: ignore[attr-defined]
            deliveries = transport.send(make_batch(2))
        assert (["sent", "sent"], 2, 1) == (
            [d.state for d in deliveries],
            len(server.messages),
            server.connections,
        )

    def test_smtps(
        self, make_smtp_server: MakeServer, make_batch: MakeBatch, tls_files: object
    ) -> None:
        """Over TLS from the first byte (smtps://), mail is delivered."""
        server = make_smtp_server(mode="smtps", login=("newsletter", "pw"))
        with SmtpTransport(
            parse_smtp_url(server.url()), timeout=5, ca_file=tls_files.ca
        ) as transport:  # type: ignore[attr-defined]
            deliveries = transport.send(make_batch(1))
        assert (["sent"], 1) == ([d.state for d in deliveries], len(server.messages))

    def test_untrusted_certificate(
        self, make_smtp_server: MakeServer, make_batch: MakeBatch
    ) -> None:
        """A certificate no trusted CA signed is refused: nothing is sent, the reason is given."""
        server = make_smtp_server(mode="starttls", login=("newsletter", "pw"))
        with SmtpTransport(parse_smtp_url(server.url()), timeout=5) as transport:
            delivery = transport.send(make_batch(1))[0]
        assert ("failed", True, []) == (
            delivery.state,
            "CERTIFICATE_VERIFY_FAILED" in (delivery.error or ""),
            server.messages,
        )


class TestEnvelopeSender:
    def test_each_recipient_s_return_path_is_its_mail_from(
        self, smtp_server: SmtpServer, make_batch: MakeBatch, make_recipient: MakeRecipient
    ) -> None:
        """A VERP return path is the envelope sender of that recipient's message; without one, From."""
        verp = "bounces+b1-aaaaaaaa-bbbbbbbbbbbbbbbb@news.example.org"
        batch = make_batch(recipients=[make_recipient(1, return_path=verp), make_recipient(2)])
        with SmtpTransport(parse_smtp_url(smtp_server.url())) as transport:
            transport.send(batch)
        assert [verp, batch.sender.email] == [m.mail_from for m in smtp_server.messages]
