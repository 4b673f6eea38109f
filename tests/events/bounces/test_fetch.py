"""`mailer bounces fetch` on a Maildir: what each message does, once, and where it goes after.

The Maildir is the simplest mailbox (the same code runs over IMAP and POP3 in
test_end_to_end.py and test_mailboxes.py); the messages are made to order
(helpers.bounces) or taken from the corpus.
"""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime
from pathlib import Path

import pytest
from helpers.bounces import ISSUE, SECRET, dsn, envelope, signer
from helpers.members import add_members
from sqlalchemy import select

from mailer.config import Newsletter, Settings
from mailer.events.apply import apply_events
from mailer.events.bounces.fetch import FetchReport, fetch_bounces
from mailer.events.sendgrid import SendGridEvent
from mailer.mail import Delivery, DeliveryState
from mailer.report.build import issue_report
from mailer.store import Subscriber, SubscriberStatus, SubscriberStore, open_store
from mailer.store.eventlog import WebhookEventRow
from mailer.store.ledger import Ledger, new_owner
from mailer.verp import VerpPurpose, VerpSigner

BOUNCES = "bounces@news.example.org"
CORPUS = Path(__file__).resolve().parent / "corpus"


@pytest.fixture
def box(tmp_path: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "Maildir" / sub).mkdir(parents=True)
    return tmp_path / "Maildir"


@pytest.fixture
def verp() -> VerpSigner:
    return signer(BOUNCES, SECRET)


def settings_for(store: SubscriberStore, box: Path, **extra: object) -> Settings:
    return Settings(
        database_url=store.engine.url.render_as_string(hide_password=False),
        bounce_address=BOUNCES,
        bounce_mailbox=f"maildir://{box}",
        secret_key=SECRET,
        transport="smtp",
        **extra,  # type: ignore[arg-type]
    )


def put(box: Path, name: str, raw: bytes) -> None:
    (box / "new" / f"{name}.host").write_bytes(raw)


def fetch(store: SubscriberStore, box: Path, **extra: object) -> FetchReport:
    dry_run = bool(extra.pop("dry_run", False))
    return fetch_bounces(settings_for(store, box, **extra), store, dry_run=dry_run)


def sent(store: SubscriberStore, members: list[Subscriber], issue: str = ISSUE) -> None:
    """The issue went out to these members (their ledger rows sent), as a send leaves it."""
    ledger, owner = Ledger(store.engine), new_owner()
    ledger.acquire(issue, "smtp", owner)
    claim = ledger.claim(issue, "general", [m.id for m in members], owner)
    ledger.record(
        issue,
        owner,
        [(claim.claimed[m.id], Delivery(m.email, DeliveryState.sent)) for m in members],
    )


def status(store: SubscriberStore, member: Subscriber) -> SubscriberStatus:
    return store.get(member.id).status


class TestWhatEachMessageDoes:
    def test_a_hard_bounce_bounces_the_member_its_token_names(
        self, store: SubscriberStore, box: Path, verp: VerpSigner
    ) -> None:
        """A 5.1.1 DSN to a member's VERP address bounces them, even when the report names an
        address rewritten on the way; the history says where it came from and why."""
        [ann, bo] = add_members(store, 2)
        sent(store, [ann, bo])
        put(
            box,
            "1",
            dsn(
                envelope(verp, ann.id, ann.email), "forwarded@elsewhere.example", message_id="1@mx"
            ),
        )

        report = fetch(store, box)

        assert (SubscriberStatus.bounced, SubscriberStatus.active) == (
            status(store, ann),
            status(store, bo),
        )
        last = store.history(ann.id)[-1]
        assert "bounce mailbox" == last.source
        assert last.detail.startswith(f"Bounce mailbox: hard bounce on issue {ISSUE} at ")
        assert [("bounce", ann.email)] == [(m.outcome, m.member) for m in report.messages]

    def test_a_complaint_marks_the_member_complained(
        self, store: SubscriberStore, box: Path, verp: VerpSigner
    ) -> None:
        """An ARF abuse report whose recipient is redacted names the member by the VERP
        Return-Path in the headers it returns."""
        [ann] = add_members(store, 1)
        now = format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).encode()
        raw = (CORPUS / "arf-yahoo-abuse.eml").read_bytes()
        raw = raw.replace(b"Thu, 3 Dec 2026 09:02:13 +0000", now)  # complained after joining
        corpus_token = b"bounces+bal-c5rghcma-ab5pordonp76cczu@news.example.org"
        put(box, "1", raw.replace(corpus_token, envelope(verp, ann.id, ann.email).encode()))

        fetch(store, box)

        assert SubscriberStatus.complained == status(store, ann)

    def test_a_message_to_the_list_unsubscribe_address_unsubscribes(
        self, store: SubscriberStore, box: Path, verp: VerpSigner
    ) -> None:
        """A member's mail client sending to the mailto: of List-Unsubscribe unsubscribes them."""
        [ann] = add_members(store, 1)
        to = verp.address(VerpPurpose.unsubscribe, ann.id, ISSUE, ann.email)
        put(
            box,
            "1",
            f"From: {ann.email}\r\nTo: {to}\r\nSubject: unsubscribe\r\nMessage-ID: <u@x>\r\n\r\n".encode(),
        )

        fetch(store, box)

        assert SubscriberStatus.unsubscribed == status(store, ann)

    def test_an_unsubscribe_to_a_forged_address_unsubscribes_nobody(
        self, store: SubscriberStore, box: Path
    ) -> None:
        """A List-Unsubscribe address made with another key is left alone, for a person to read."""
        [ann] = add_members(store, 1)
        forged = signer(BOUNCES, "someone-else-s-key-0123456789").address(
            VerpPurpose.unsubscribe, ann.id, ISSUE, ann.email
        )
        put(
            box,
            "1",
            f"From: x@example.net\r\nTo: {forged}\r\nSubject: unsubscribe\r\nMessage-ID: <f@x>\r\n\r\n".encode(),
        )

        report = fetch(store, box)

        assert (SubscriberStatus.active, ["other"]) == (
            status(store, ann),
            [m.outcome for m in report.messages],
        )
        assert 1 == len(list((box / "new").iterdir()))

    def test_soft_bounces_count_toward_the_limit_across_issues(
        self, store: SubscriberStore, box: Path, verp: VerpSigner
    ) -> None:
        """A soft bounce per issue, MAILER_SOFT_BOUNCE_LIMIT of them in a row, bounce the member;
        a delay warning followed by the final failure of the same message counts once."""
        [ann] = add_members(store, 1)
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
        put(
            box,
            "1",
            dsn(
                envelope(verp, ann.id, ann.email, "issue-one"),
                ann.email,
                action="delayed",
                status="4.4.1",
                message_id="1@mx",
            ),
        )
        put(
            box,
            "2",
            dsn(
                envelope(verp, ann.id, ann.email, "issue-one"),
                ann.email,
                status="4.4.1",
                message_id="2@mx",
                date=later,
            ),
        )
        first = fetch(store, box, soft_bounce_limit=2)
        put(
            box,
            "3",
            dsn(
                envelope(verp, ann.id, ann.email, "issue-two"),
                ann.email,
                status="4.2.2",
                message_id="3@mx",
                date=later,
            ),
        )

        second = fetch(store, box, soft_bounce_limit=2)

        assert ["soft_bounce", "duplicate"] == sorted(m.outcome for m in first.messages)[::-1]
        assert (SubscriberStatus.bounced, {"bounced": 1}) == (
            status(store, ann),
            second.status_changes,
        )

    def test_a_bounce_for_an_address_not_on_the_list_changes_nobody(
        self, store: SubscriberStore, box: Path
    ) -> None:
        """A DSN without a token, about an address we do not know: recorded, and no one changes."""
        [ann] = add_members(store, 1)
        put(box, "1", dsn(BOUNCES, "stranger@example.net", message_id="s@mx"))

        report = fetch(store, box)

        assert (["unknown_address"], SubscriberStatus.active) == (
            [m.outcome for m in report.messages],
            status(store, ann),
        )

    def test_without_a_token_the_reported_address_decides(
        self, store: SubscriberStore, box: Path
    ) -> None:
        """A DSN that lost its VERP address (sent before it was set up) bounces by the address."""
        [ann] = add_members(store, 1)
        put(box, "1", dsn(BOUNCES, ann.email.upper(), message_id="a@mx"))

        fetch(store, box)

        assert SubscriberStatus.bounced == status(store, ann)

    def test_a_test_send_s_bounce_is_applied_but_never_reported(
        self, store: SubscriberStore, box: Path, verp: VerpSigner
    ) -> None:
        """A proof's bounce (a 't' token) changes the member, and is logged as a test's."""
        [ann] = add_members(store, 1)
        put(
            box,
            "1",
            dsn(
                verp.address(VerpPurpose.test_bounce, ann.id, ISSUE, ann.email),
                ann.email,
                message_id="t@mx",
            ),
        )

        fetch(store, box)

        with store.engine.connect() as connection:
            tests = connection.scalars(select(WebhookEventRow.test)).all()
        assert (SubscriberStatus.bounced, [True]) == (status(store, ann), tests)

    @pytest.mark.parametrize(
        "name",
        [
            "auto-reply-outlook.eml",
            "auto-reply-vacation.eml",
            "human-reply.eml",
            "read-receipt.eml",
        ],
    )
    def test_anything_else_is_left_alone_and_listed(
        self, store: SubscriberStore, box: Path, name: str
    ) -> None:
        """Auto-replies and people writing change nobody, are listed, and stay in the mailbox unread."""
        add_members(store, 1)
        put(box, "1", (CORPUS / name).read_bytes())

        report = fetch(store, box)

        assert (["other"], ["1.host"]) == (
            [m.outcome for m in report.messages],
            [p.name for p in (box / "new").iterdir()],
        )
        assert report.messages[0].effect.startswith("left alone: ")


class TestEachMessageOnce:
    def test_a_second_run_reads_nothing_again(
        self, sqlite_store: SubscriberStore, box: Path, verp: VerpSigner
    ) -> None:
        """What a run recorded is never read again, even when it is left in the mailbox."""
        [ann] = add_members(sqlite_store, 1)
        put(box, "1", (CORPUS / "human-reply.eml").read_bytes())
        put(box, "2", dsn(envelope(verp, ann.id, ann.email), ann.email, message_id="1@mx"))
        fetch(sqlite_store, box)

        again = fetch(sqlite_store, box)

        assert (1, 1, []) == (again.in_mailbox, again.already_processed, again.messages)

    def test_the_same_message_twice_is_applied_once(
        self, sqlite_store: SubscriberStore, box: Path, verp: VerpSigner
    ) -> None:
        """Two copies of one DSN (same Message-ID, delivered twice): one applies, one is a duplicate."""
        [ann] = add_members(sqlite_store, 1)
        raw = dsn(envelope(verp, ann.id, ann.email), ann.email, message_id="same@mx")
        put(box, "1", raw)
        put(box, "2", raw.replace(b"Delivered-To", b"X-Copy: 2\r\nDelivered-To"))

        report = fetch(sqlite_store, box)

        assert ["bounce", "duplicate"] == sorted(m.outcome for m in report.messages)
        assert 1 == sum(1 for e in sqlite_store.history(ann.id) if e.status_to == "bounced")

    def test_a_message_recorded_but_not_yet_tidied_is_only_tidied(
        self, sqlite_store: SubscriberStore, box: Path, verp: VerpSigner
    ) -> None:
        """After a crash between the commit and the delete, the next run deletes it, applying nothing."""
        [ann] = add_members(sqlite_store, 1)
        raw = dsn(envelope(verp, ann.id, ann.email), ann.email, message_id="1@mx")
        put(box, "1", raw)
        fetch(sqlite_store, box)
        put(box, "1", raw)  # as if the delete had not happened

        again = fetch(sqlite_store, box)

        assert (1, [], []) == (
            again.already_processed,
            again.messages,
            list((box / "new").iterdir()),
        )


class TestWhereMessagesGo:
    def test_folders_when_configured(
        self, sqlite_store: SubscriberStore, box: Path, verp: VerpSigner
    ) -> None:
        """Applied messages go to the processed folder, the rest to the other folder."""
        [ann] = add_members(sqlite_store, 1)
        put(box, "1", dsn(envelope(verp, ann.id, ann.email), ann.email, message_id="1@mx"))
        put(box, "2", (CORPUS / "human-reply.eml").read_bytes())

        fetch(sqlite_store, box, bounce_processed_folder="Processed", bounce_other_folder="Other")

        moved = {
            folder: [p.name.split(":")[0] for p in (box / f".{folder}" / "cur").iterdir()]
            for folder in ("Processed", "Other")
        }
        assert ({"Processed": ["1.host"], "Other": ["2.host"]}, []) == (
            moved,
            list((box / "new").iterdir()),
        )


class TestDryRun:
    def test_a_dry_run_shows_what_would_happen_and_changes_nothing(
        self, sqlite_store: SubscriberStore, box: Path, verp: VerpSigner
    ) -> None:
        """The listing is what a real run would do; the member, the log and the mailbox stay as they were."""
        [ann] = add_members(sqlite_store, 1)
        put(box, "1", dsn(envelope(verp, ann.id, ann.email), ann.email, message_id="1@mx"))

        dry = fetch(sqlite_store, box, dry_run=True)
        real = fetch(sqlite_store, box)

        assert [m.effect for m in real.messages] == [m.effect for m in dry.messages]
        assert {"bounced": 1} == dry.status_changes


class TestTheCommand:
    def test_mailbox_not_set_is_a_config_error(self, sqlite_store: SubscriberStore) -> None:
        """Without MAILER_BOUNCE_MAILBOX the command says what to set."""
        from mailer.errors import ConfigError

        with pytest.raises(ConfigError, match="MAILER_BOUNCE_MAILBOX is not set"):
            fetch_bounces(Settings(), sqlite_store)


class TestReportsCountThemAsSendGrids:
    def test_the_same_news_by_mail_and_by_webhook_make_the_same_report(
        self, tmp_path: Path, verp: VerpSigner, newsletter: Newsletter
    ) -> None:
        """A hard bounce, a complaint and an unsubscribe by mail give the report's rows exactly
        what SendGrid's bounce, spamreport and unsubscribe events for the same members give."""
        rows = []
        for source in ("mailbox", "sendgrid"):
            box = tmp_path / source / "Maildir"
            for sub in ("new", "cur", "tmp"):
                (box / sub).mkdir(parents=True)
            with open_store(f"sqlite:///{tmp_path / source / 'mailer.db'}") as store:
                members = add_members(store, 5)
                sent(store, members)
                bounced, complained, left = members[:3]
                if source == "mailbox":
                    put(
                        box,
                        "1",
                        dsn(
                            envelope(verp, bounced.id, bounced.email),
                            bounced.email,
                            message_id="1@mx",
                        ),
                    )
                    arf = (CORPUS / "arf-outlook-abuse.eml").read_bytes()
                    arf = arf.replace(
                        b"Thu, 3 Dec 2026 09:02:13 +0000",
                        format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).encode(),
                    )
                    arf = arf.replace(
                        b"bounces+bbm-c5rghcma-ab5pordonp76cczu@news.example.org",
                        envelope(verp, complained.id, complained.email).encode(),
                    )
                    put(box, "2", arf)
                    to = verp.address(VerpPurpose.unsubscribe, left.id, ISSUE, left.email)
                    put(
                        box,
                        "3",
                        f"From: {left.email}\r\nTo: {to}\r\nSubject: unsubscribe\r\nMessage-ID: <u@x>\r\n\r\n".encode(),
                    )
                    fetch(store, box)
                else:
                    at = int(dt.datetime.now(dt.UTC).timestamp()) + 1
                    apply_events(
                        store,
                        [
                            SendGridEvent.model_validate(
                                {
                                    "email": m.email,
                                    "timestamp": at,
                                    "event": e,
                                    "sg_event_id": f"{e}{m.id}",
                                    "issue": ISSUE,
                                    "subscriber": str(m.id),
                                    **extra,
                                }
                            )
                            for m, e, extra in [
                                (bounced, "bounce", {"type": "bounce"}),
                                (complained, "spamreport", {}),
                                (left, "unsubscribe", {}),
                            ]
                        ],
                    )
                report = issue_report(
                    store.engine, ISSUE, newsletter, base_url="https://news.example.org"
                )
                rows.append([row.model_dump(exclude={"label"}) for row in report.segments])
        by_mail, by_webhook = rows
        assert by_webhook == by_mail
        assert (1, 1, 1) == (
            by_mail[0]["bounced"],
            by_mail[0]["complained"],
            by_mail[0]["unsubscribed"],
        )


class TestBadInput:
    def test_undecodable_bytes_and_nuls_are_recorded_not_fatal(
        self, store: SubscriberStore, box: Path
    ) -> None:
        """A message with bytes that are not UTF-8 and NULs in its headers is read, recorded and
        left alone, on both databases; so is a message that is not mail at all."""
        put(
            box,
            "1",
            b"From: \xff\xfe caf\xe9 <x@example.net>\r\nSubject: \x00nul\xc3\r\nMessage-ID: <\xff@x>\r\n\r\nbody\r\n",
        )
        put(box, "2", (CORPUS / "not-a-message.eml").read_bytes())

        report = fetch(store, box)

        assert ["other", "other"] == [m.outcome for m in report.messages]
        assert "\ufffd" in report.messages[0].sender and "\x00" not in report.messages[0].subject
