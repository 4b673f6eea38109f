"""Emails to the editors: reminders before a slot, and what happened at one.

Plain text (with the same words as minimal HTML, since every transport sends a
``multipart/alternative``), from the newsletter's sender to the addresses in
``[schedule] editors``, through the configured transport. Through the outbox
each notice is ``<outbox>/scheduler-<slot date>-<kind>/<editor>.eml``.

Notices are not list mail, but the transports give every message a
``List-Unsubscribe`` header; it points at the web app's home, and the text says
how editors stop notices (their address in ``mailer.toml``). ``Auto-Submitted:
auto-generated`` (RFC 3834) keeps auto-responders from answering.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from mailer.config import Newsletter, Schedule, Settings
from mailer.errors import display_path
from mailer.mail import Batch, Content, Delivery, Recipient
from mailer.scheduling.issues import SlotIssue
from mailer.scheduling.slots import Slot
from mailer.store.slots import NoticeKind
from mailer.transports import Transport
from mailer.transports.message import list_id

__all__ = [
    "Notice",
    "failed_notice",
    "missed_notice",
    "no_issue_notice",
    "reminder_notice",
    "send_notice",
]


@dataclass(frozen=True)
class Notice:
    """One email to the editors about one slot."""

    kind: NoticeKind
    slot: Slot
    subject: str
    text: str


def reminder_notice(slot: Slot, found: SlotIssue, schedule: Schedule) -> Notice:
    return Notice(
        NoticeKind.reminder,
        slot,
        f"Reminder: the issue for {slot.at:%A} {slot.at.day} {slot.at:%B} is not ready yet",
        f"The next issue goes out on {slot.describe()} ({schedule.timezone}).\n\n"
        f"{found.explain()}\n\n"
        "If nothing is ready by then, nothing is sent, and you will hear about it.",
    )


def no_issue_notice(slot: Slot, found: SlotIssue) -> Notice:
    return Notice(
        NoticeKind.no_issue,
        slot,
        f"Nothing was sent on {slot.at:%A} {slot.at.day} {slot.at:%B}: no issue was ready",
        f"The slot of {slot.describe()} came, and no issue was ready, so nothing was sent.\n\n"
        f"{found.explain()}\n\n"
        "Once it is ready, send it by hand with `mailer send ISSUE`, or date it for the next "
        "slot (`mailer schedule` lists them).",
    )


def missed_notice(slot: Slot, found_at: str, schedule: Schedule, ready: Path | None) -> Notice:
    what = (
        f"`mailer send {display_path(ready)}` sends it now"
        if ready
        else "No issue was ready for it anyway"
    )
    return Notice(
        NoticeKind.missed,
        slot,
        f"Missed: nothing was sent on {slot.at:%A} {slot.at.day} {slot.at:%B}",
        f"The slot of {slot.describe()} was missed: the scheduler was not running, and by "
        f"the time it was ({found_at}) the slot was more than {schedule.lateness_hours:g} "
        "hours late, which is as late as it sends on its own. Nothing was sent.\n\n"
        f"{what}; members get it once, whatever happens.",
    )


def failed_notice(slot: Slot, issue: Path, error: str) -> Notice:
    return Notice(
        NoticeKind.failed,
        slot,
        f"The send of {issue.stem} stopped",
        f"The send of {issue.stem} for the slot of {slot.describe()} stopped:\n\n{error}\n\n"
        f"Fix the cause, then run `mailer send {display_path(issue)} --yes`: it carries on "
        "with the members who do not have the issue yet, and nobody gets it twice.",
    )


_FOOTER = (
    "\n\n-- \nSent by the {name} scheduler. You get these notices because your address is "
    "in [schedule] editors in mailer.toml; remove it there to stop them."
)


def send_notice(
    notice: Notice,
    newsletter: Newsletter,
    settings: Settings,
    schedule: Schedule,
    transport: Transport,
) -> list[Delivery]:
    """Send the notice to every editor; one Delivery each (the transport never raises)."""
    text = notice.text + _FOOTER.format(name=newsletter.name)
    paragraphs = "".join(
        f"<p>{html.escape(part).replace(chr(10), '<br>')}</p>" for part in text.split("\n\n")
    )
    batch = Batch(
        issue=f"scheduler-{notice.slot.date.isoformat()}-{notice.kind.value.replace('_', '-')}",
        sender=newsletter.sender,
        content=Content(subject=notice.subject, html=paragraphs, text=text),
        list_id=list_id(f"{newsletter.name} scheduler", f"scheduler.{newsletter.list_id}"),
        recipients=[
            Recipient(
                email=editor,
                unsubscribe_url=f"{settings.base_url}/",
                custom_args={"notice": notice.kind.value, "slot": notice.slot.date.isoformat()},
            )
            for editor in dict.fromkeys(str(e) for e in schedule.editors)
        ],
        headers={"Auto-Submitted": "auto-generated"},
    )
    return transport.send(batch)
