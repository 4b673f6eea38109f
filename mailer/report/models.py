"""What a report says, as pydantic models: the terminal table, `--json` and the HTML page read these.

Counts are of *members* (each counted once per measure) unless named for events
(``opens``, ``clicks``). Rates are fractions from 0 to 1, rounded to four places,
with the denominator each is taken over in :data:`DENOMINATORS`; a rate over
nothing is ``None``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

__all__ = [
    "DENOMINATORS",
    "NOTES",
    "NO_DELIVERY_EVENTS",
    "HealthPoint",
    "IssueReport",
    "Link",
    "ListReport",
    "Rates",
    "SegmentRow",
    "rate",
]

# Each rate's numerator -> the count it is a share of.
DENOMINATORS: dict[str, str] = {
    "delivered": "sent",
    "bounced": "sent",
    "dropped": "sent",
    "complained": "delivered",
    "unsubscribed": "delivered",
    "opened": "delivered",
    "clicked": "delivered",
    "click_to_open": "opened",
}
NOTES = (
    "Opens are approximate. Apple Mail Privacy Protection loads every image of a message "
    "when it arrives, so members who use Apple Mail count as opened whether or not they "
    "read the issue; mail clients that block images hide real readers. Clicks are reliable.",
    "Rates say what they are a share of: delivered, bounced and dropped of sent; complained, "
    "unsubscribed, opened and clicked of delivered; click-to-open of opened.",
    "Each member counts once per column. A member in several segments counts in each of "
    "their rows, so the segment rows need not add up to 'all'.",
)


NO_DELIVERY_EVENTS = (
    "No delivery events were received for this issue, so delivered, opened and clicked "
    "are not known (n/a, null in the JSON), and neither are the rates taken of them. "
    "Only SendGrid's Event Webhook reports deliveries, opens and clicks; the outbox and "
    "SMTP do not (the bounce mailbox reports SMTP's bounces, complaints and unsubscribes)."
)


def rate(part: int | None, whole: int | None) -> float | None:
    """``part / whole`` to four places; None when ``whole`` is zero or either is unknown."""
    return round(part / whole, 4) if whole and part is not None else None


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rates(_Model):
    """Each measure as a share of its denominator (see :data:`DENOMINATORS`)."""

    delivered: float | None
    bounced: float | None
    dropped: float | None
    complained: float | None
    unsubscribed: float | None
    opened: float | None
    clicked: float | None
    click_to_open: float | None


class SegmentRow(_Model):
    """What happened to the issue among one group of the members it was sent to."""

    # ``rates`` is computed: reading a report's JSON back ignores the stored copy.
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = Field(description="'all', a segment's name, or 'general' (in none of them).")
    kind: Literal["all", "segment", "general"]
    label: str = Field(description="For people: the segment's label from mailer.toml.")
    sent: int = Field(description="Members the transport took the issue for (the send ledger).")
    not_sent: int = Field(description="Members in the ledger not sent: failed, unknown, in flight.")
    delivered: int | None = Field(
        description="Members with a 'delivered' event; None with no delivery events at all."
    )
    bounced: int = Field(description="Members with a 'bounce' event (hard bounce or block).")
    dropped: int = Field(description="Members SendGrid did not send to ('dropped').")
    complained: int = Field(description="Members who marked the issue as spam.")
    unsubscribed: int = Field(
        description="Members who unsubscribed through this issue: a SendGrid unsubscribe "
        "event for it, or leaving while it was the last issue they had been sent."
    )
    opened: int | None = Field(description="Members with at least one open (approximate).")
    opens: int | None = Field(description="Open events, every open counted.")
    clicked: int | None = Field(description="Members who clicked at least one link.")
    clicks: int | None = Field(description="Click events, every click counted.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rates(self) -> Rates:
        return Rates(
            delivered=rate(self.delivered, self.sent),
            bounced=rate(self.bounced, self.sent),
            dropped=rate(self.dropped, self.sent),
            complained=rate(self.complained, self.delivered),
            unsubscribed=rate(self.unsubscribed, self.delivered),
            opened=rate(self.opened, self.delivered),
            clicked=rate(self.clicked, self.delivered),
            click_to_open=rate(self.clicked, self.opened),
        )


class Link(_Model):
    """One link of the issue and how many clicked it."""

    url: str
    clicked: int = Field(description="Members who clicked it.")
    clicks: int = Field(description="Clicks, every click counted.")


class HealthPoint(_Model):
    """The list by status at one moment: when an issue's send started, or now."""

    issue: str | None = Field(description="The issue sent at this moment; None for now.")
    at: dt.datetime
    recipients: int | None = Field(
        description="Members the issue went out to (its send ledger's rows); None for now."
    )
    joined_later: int | None = Field(
        None,
        description="Of the recipients, members who joined the list after the send started "
        "(a later run of `mailer send` sent it to them); None for now.",
    )
    active: int
    pending: int
    unsubscribed: int
    bounced: int
    complained: int

    def difference(self) -> str | None:
        """Why "sent to" and "active when it went out" differ, in words; None when they agree.

        The list is counted as it was when the send *started*; a later run of `mailer
        send` (after an import, say) sends to members who were not there yet, and a
        member who left while it was going out was active at the start but not sent it.
        """
        if self.recipients is None or self.recipients == self.active:
            return None
        later = self.joined_later or 0
        parts = [
            f"sent to {self.recipients:,} members; {self.active:,} were active when the "
            "send started"
        ]
        if later:
            parts.append(
                f"{later:,} joined after it started and were sent it on a later run of "
                "`mailer send`"
            )
        rest = self.recipients - later - self.active
        if rest < 0:
            parts.append(
                f"{-rest:,} active then were not sent it: they left, or became active, "
                "while it was going out, or their copy is still to be sent"
            )
        elif rest > 0:
            parts.append(
                f"{rest:,} more became active (a confirmed sign-up, a re-subscription) after "
                "it started and were sent it on a later run"
            )
        return "; ".join(parts) + "."


class IssueReport(_Model):
    """`mailer report ISSUE`: one issue, per segment, with its links and the list's health."""

    issue: str
    sent_at: dt.datetime = Field(description="When the send started.")
    finished_at: dt.datetime | None = Field(description="When it finished; None if it has not.")
    send_status: str = Field(description="The send ledger's status: sending, stopped, finished.")
    generated_at: dt.datetime
    segments: list[SegmentRow]
    links: list[Link] = Field(description="The most-clicked links, most clicked first.")
    list_health: list[HealthPoint] = Field(
        description="The list at the start of this issue's send and the issues before it."
    )
    delivery_events: bool = Field(
        True,
        description="Whether any delivery, open or click event came back for the issue; "
        "without, those counts are None (see the notes).",
    )
    denominators: dict[str, str] = Field(default_factory=lambda: dict(DENOMINATORS))
    notes: list[str] = Field(default_factory=lambda: list(NOTES))

    @property
    def everyone(self) -> SegmentRow:
        return self.segments[0]


class ListReport(_Model):
    """`mailer report --list`: the list's health at each issue's send, and now."""

    generated_at: dt.datetime
    issues: list[HealthPoint]
    now: HealthPoint
