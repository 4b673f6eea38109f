"""End to end, with real servers: mailer sends through Postfix, Postfix bounces, mailer reads the bounces.

An issue goes out through mailer's SMTP transport to Debian's Postfix on a loopback
port, to members whose mailboxes exist in Dovecot and to members whose addresses
do not. Postfix accepts every message, Dovecot refuses the unknown addresses, and
Postfix writes its own DSNs back to each message's VERP envelope sender, which it
delivers to the bounce mailbox in Dovecot. `mailer bounces fetch` then reads that
mailbox over IMAP (TLS or STARTTLS), POP3 (TLS or STLS) or as a Maildir, and must
mark exactly the missing members bounced; and the report must count them as it
counts SendGrid's bounces.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.project import BASE_URL, ROOT, SAMPLE_ISSUE
from helpers.sending import SECRET
from servers.mail import MEMBER_DOMAIN, BounceMailbox, MailServers
from typer.testing import CliRunner, Result

from mailer.cli import app
from mailer.store import MemberRecord, SubscriberStatus, open_store

ISSUE = "2026-12-03-winter-connections"
PRESENT = 4
MISSING = 3


def mailer(env: dict[str, str], *argv: str) -> Result:
    result = CliRunner(env=env).invoke(app, list(argv))
    assert 0 == result.exit_code, f"mailer {' '.join(argv)}:\n{result.output}{result.exception}"
    return result


@pytest.fixture
def environment(
    tmp_path: Path, mail_servers: MailServers, bounce_mailbox: BounceMailbox
) -> dict[str, str]:
    """A project sending through Postfix, with the test's bounce mailbox."""
    assert mail_servers.tls is not None
    return {
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
        "MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'mailer.db'}",
        "MAILER_TRANSPORT": "smtp",
        "MAILER_SMTP_URL": mail_servers.smtp_url,
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_BASE_URL": BASE_URL,
        "MAILER_BOUNCE_ADDRESS": bounce_mailbox.address,
        "MAILER_BOUNCE_CA_FILE": str(mail_servers.tls.ca),
    }


def statuses(env: dict[str, str]) -> dict[str, SubscriberStatus]:
    with open_store(env["MAILER_DATABASE_URL"]) as store:
        return {member.email: member.status for member in store.list_subscribers()}


class TestPostfixBouncesComeBack:
    @pytest.mark.parametrize("scheme", ["imaps", "imap", "pop3s", "pop3", "maildir"])
    def test_fetch_marks_exactly_the_missing_members_bounced(
        self,
        scheme: str,
        environment: dict[str, str],
        mail_servers: MailServers,
        bounce_mailbox: BounceMailbox,
    ) -> None:
        """Postfix's DSNs for the addresses that do not exist mark exactly those members bounced."""
        present = [mail_servers.member(n) for n in range(1, PRESENT + 1)]
        missing = [f"gone-{scheme}-{n}@{MEMBER_DOMAIN}" for n in range(1, MISSING + 1)]
        with open_store(environment["MAILER_DATABASE_URL"]) as store:
            store.add([MemberRecord(email) for email in present + missing], source="test")
        mailer(environment, "send", str(SAMPLE_ISSUE), "--yes")
        bounce_mailbox.wait_for(MISSING)
        env = {**environment, "MAILER_BOUNCE_MAILBOX": bounce_mailbox.url(scheme)}

        fetched = json.loads(mailer(env, "bounces", "fetch", "--json").stdout)

        expected = {email: SubscriberStatus.bounced for email in missing} | {
            email: SubscriberStatus.active for email in present
        }
        assert expected == statuses(env)
        assert (MISSING, {"bounced": MISSING}) == (
            fetched["counts"]["bounce"],
            fetched["status_changes"],
        )
        assert sorted(missing) == sorted(message["member"] for message in fetched["messages"])

    def test_the_report_counts_smtp_bounces_as_it_counts_sendgrid_ones(
        self, environment: dict[str, str], mail_servers: MailServers, bounce_mailbox: BounceMailbox
    ) -> None:
        """`mailer report` counts the members Postfix bounced under 'bounced', of those sent."""
        present = [mail_servers.member(n) for n in range(1, 3)]
        missing = [f"gone-report-{n}@{MEMBER_DOMAIN}" for n in range(1, 3)]
        with open_store(environment["MAILER_DATABASE_URL"]) as store:
            store.add([MemberRecord(email) for email in present + missing], source="test")
        mailer(environment, "send", str(SAMPLE_ISSUE), "--yes")
        bounce_mailbox.wait_for(len(missing))
        env = {**environment, "MAILER_BOUNCE_MAILBOX": bounce_mailbox.url("imaps")}
        mailer(env, "bounces", "fetch")

        report = json.loads(mailer(env, "report", ISSUE, "--json").stdout)

        everyone = report["segments"][0]
        assert (4, 2, 0.5) == (everyone["sent"], everyone["bounced"], everyone["rates"]["bounced"])

    def test_a_second_fetch_finds_nothing_new_and_the_mailbox_is_tidied(
        self, environment: dict[str, str], mail_servers: MailServers, bounce_mailbox: BounceMailbox
    ) -> None:
        """Applied bounces are deleted from the mailbox; the next fetch reads nothing again."""
        missing = [f"gone-again-{n}@{MEMBER_DOMAIN}" for n in range(1, 3)]
        with open_store(environment["MAILER_DATABASE_URL"]) as store:
            store.add([MemberRecord(email) for email in missing], source="test")
        mailer(environment, "send", str(SAMPLE_ISSUE), "--yes")
        bounce_mailbox.wait_for(len(missing))
        env = {**environment, "MAILER_BOUNCE_MAILBOX": bounce_mailbox.url("imap")}
        mailer(env, "bounces", "fetch")

        again = json.loads(mailer(env, "bounces", "fetch", "--json").stdout)

        assert (0, 0, []) == (again["in_mailbox"], again["new"], bounce_mailbox.messages())
