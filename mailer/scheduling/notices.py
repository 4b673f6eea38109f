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
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mailer.config import Newsletter, Schedule, Settings
from mailer.errors import DeliveryError, display_path
from mailer.mail import Batch, Content, Delivery, Recipient
from mailer.scheduling.issues import SlotIssue
from mailer.scheduling.slots import Slot
from mailer.store.slots import NoticeKind
from mailer.transports import Transport
from mailer.transports.message import list_id

if TYPE_CHECKING:
    from mailer.sending.run import SendSummary

__all__ = [
    "Notice",
    "failed_notice",
    "incomplete_notice",
    "missed_notice",
    "no_issue_notice",
    "reminder_notice",
    "send_notice",
    "send_to_channel",
]

CHANNEL_TIMEOUT = 20


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


def incomplete_notice(slot: Slot, issue: Path, summary: SendSummary) -> Notice:
    """The send went through, but not to everyone: some failed, or their fate is unknown.

    Kept as the slot's ``failed`` notice: a slot is failed or incomplete, never both."""
    return Notice(
        NoticeKind.failed,
        slot,
        f"The send of {issue.stem} did not reach everyone",
        f"The send of {issue.stem} for the slot of {slot.describe()} went out to "
        f"{summary.total('sent')} members, but {summary.total('failed')} failed and "
        f"{summary.total('unknown')} are unknown (handed over, no answer: they may have gone "
        f"out).\n\nRun `mailer send {display_path(issue)}` to see them: it says how to "
        "settle unknown ones from SendGrid's events, and sends failed ones again once the "
        "cause is fixed. Nobody gets the issue twice.",
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


def send_to_channel(notice: Notice, newsletter: Newsletter, schedule: Schedule, url: str) -> None:
    """Send the notice through MAILER_NOTICE_URL, the editors' second channel.

    ``smtp://…`` or ``smtps://…``: a second relay, to every editor, as plain text.
    ``https://…`` (or ``http://…``): a JSON POST of ``{"text", "subject", "kind", "slot",
    "newsletter"}``, which chat webhooks (Slack, Mattermost, Matrix hookshot) and
    monitoring tools take as it is. Raises DeliveryError, saying why, when it did not go.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme in ("smtp", "smtps"):
        _to_relay(notice, newsletter, schedule, url)
    elif scheme in ("http", "https"):
        _to_webhook(notice, newsletter, url)
    else:
        raise DeliveryError(f"MAILER_NOTICE_URL must be smtp(s):// or http(s)://, not {scheme}://")


def _to_webhook(notice: Notice, newsletter: Newsletter, url: str) -> None:
    body = json.dumps(
        {
            "text": f"{notice.subject}\n\n{notice.text}",
            "subject": notice.subject,
            "kind": notice.kind.value,
            "slot": notice.slot.utc.isoformat(),
            "newsletter": newsletter.name,
        }
    ).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    host = urllib.parse.urlsplit(url).hostname
    try:
        with urllib.request.urlopen(request, timeout=CHANNEL_TIMEOUT) as answer:
            status = answer.status
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"the notice webhook at {host} answered {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        raise DeliveryError(f"the notice webhook at {host} cannot be reached: {error}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"the notice webhook at {host} answered {status}")


def _to_relay(notice: Notice, newsletter: Newsletter, schedule: Schedule, url: str) -> None:
    from mailer.transports.smtp import SmtpTransport, parse_smtp_url

    relay = SmtpTransport(parse_smtp_url(url), timeout=CHANNEL_TIMEOUT)
    settings = Settings(base_url="https://invalid.example")  # notices carry no member links
    with relay:
        deliveries = send_notice(notice, newsletter, settings, schedule, relay)
    problems = [f"{d.email}: {d.error}" for d in deliveries if not d.ok]
    if problems:
        raise DeliveryError("the notice relay did not take it: " + "; ".join(problems))
