"""Reconciliation: settling ``unknown`` deliveries from what SendGrid says it did.

A Mail Send request that got no answer (a timeout, a dropped connection, a
process killed mid-request) may or may not have been accepted, and SendGrid has
no idempotency key: resending could deliver twice. SendGrid does tell, though.
Every message it accepts produces a ``processed`` event (then ``delivered``,
``bounce``, ``open``...), and each event carries our ``custom_args``
(``issue`` and ``subscriber``) as top-level keys. So:

* an event of an accepted message marks its (issue, subscriber) row ``sent``;
* a ``dropped`` event (SendGrid took the request but will not deliver, e.g. a
  suppressed address) marks it ``failed`` for good;
* rows no event names stay ``unknown`` until the operator resolves them
  (``mailer send ISSUE --resolve-unknown=resend`` once the events have had time
  to arrive, usually a minute; or ``=sent``).

Events of test sends (``custom_args`` ``test: "true"``) are ignored. The
webhook route feeds :func:`reconcile` as events arrive; ``mailer send
--reconcile EVENTS.json`` feeds it a saved batch of events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailer.errors import MailerError, display_path
from mailer.events.sendgrid import member_id
from mailer.store.ledger import Ledger

__all__ = ["ACCEPTED_EVENTS", "Reconciled", "outcomes", "read_events", "reconcile"]

# Events SendGrid only emits for a message it accepted.
ACCEPTED_EVENTS = frozenset(
    {
        "processed",
        "delivered",
        "deferred",
        "bounce",
        "open",
        "click",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
        "group_resubscribe",
    }
)


@dataclass(frozen=True)
class Reconciled:
    """How many rows the events changed."""

    events: int  # events of the real send that named an issue and a subscriber
    sent: int  # rows now sent that were not
    dropped: int  # rows now failed for good


def outcomes(
    events: Iterable[Mapping[str, Any]],
) -> tuple[list[tuple[str, int, str | None]], list[tuple[str, int, str]]]:
    """(issue, subscriber, message id) accepted, and (issue, subscriber, reason) dropped."""
    accepted: dict[tuple[str, int], str | None] = {}
    dropped: dict[tuple[str, int], str] = {}
    for event in events:
        key = _our_key(event)
        if key is None:
            continue
        kind = event.get("event")
        if kind in ACCEPTED_EVENTS:
            accepted.setdefault(key, _message_id(event))
        elif kind == "dropped":
            dropped[key] = f"SendGrid dropped it: {event.get('reason') or 'no reason given'}"
    return (
        [(issue, sid, message_id) for (issue, sid), message_id in accepted.items()],
        [
            (issue, sid, reason)
            for (issue, sid), reason in dropped.items()
            if (issue, sid) not in accepted
        ],
    )


def _our_key(event: Mapping[str, Any]) -> tuple[str, int] | None:
    issue, subscriber = event.get("issue"), event.get("subscriber")
    if str(event.get("test", "")).lower() == "true":
        return None
    sid = member_id(subscriber)
    if not isinstance(issue, str) or not issue or sid is None:
        return None
    return issue, sid


def _message_id(event: Mapping[str, Any]) -> str | None:
    """The X-Message-Id of the request: sg_message_id up to its first dot."""
    value = event.get("sg_message_id")
    return value.split(".", 1)[0] if isinstance(value, str) and value else None


def reconcile(ledger: Ledger, events: Iterable[Mapping[str, Any]]) -> Reconciled:
    """Apply SendGrid events to the ledger: accepted messages sent, dropped ones failed."""
    accepted, dropped = outcomes(events)
    return Reconciled(
        events=len(accepted) + len(dropped),
        sent=ledger.mark_accepted(accepted),
        dropped=ledger.mark_dropped(dropped),
    )


def read_events(path: Path) -> list[Mapping[str, Any]]:
    """A saved batch of SendGrid events: a JSON array, as the Event Webhook posts it."""
    where = display_path(path)
    try:
        data = json.loads(path.read_bytes())
    except OSError as error:
        raise MailerError(f"{where}: cannot read it: {error.strerror or error}") from None
    except ValueError as error:
        raise MailerError(f"{where}: not JSON: {error}") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise MailerError(
            f"{where}: expected a JSON array of SendGrid events (objects), as the Event Webhook posts"
        )
    return data
