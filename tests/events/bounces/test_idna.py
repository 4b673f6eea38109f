"""The bounce mailbox finds a member by the list's one normal form of an address (issue 14):
a DSN for ``info@xn--exmple-cua.org`` is about the member ``info@exämple.org``."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.bounces import SECRET, dsn

from mailer.config import Settings
from mailer.events.bounces.fetch import fetch_bounces
from mailer.store import MemberRecord, SubscriberStatus, SubscriberStore

BOUNCES = "bounces@news.example.org"


@pytest.fixture
def box(tmp_path: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "Maildir" / sub).mkdir(parents=True)
    return tmp_path / "Maildir"


@pytest.mark.parametrize("reported", ["info@xn--exmple-cua.org", "INFO@XN--EXMPLE-CUA.ORG"])
def test_a_bounce_for_the_ascii_form_of_a_member_s_address(
    store: SubscriberStore, box: Path, reported: str
) -> None:
    [member] = store.add([MemberRecord("info@exämple.org")], source="test")
    (box / "new" / "1.host").write_bytes(dsn(BOUNCES, reported, message_id="idna@mx"))
    settings = Settings(
        database_url=store.engine.url.render_as_string(hide_password=False),
        bounce_address=BOUNCES,
        bounce_mailbox=f"maildir://{box}",
        secret_key=SECRET,
        transport="smtp",
    )

    report = fetch_bounces(settings, store, dry_run=False)

    assert ["bounce"] == [message.outcome for message in report.messages]
    assert SubscriberStatus.bounced == store.get(member.id).status
