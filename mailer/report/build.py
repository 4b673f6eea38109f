"""From the store's sums to the report models: which issue, which rows, which moments.

:func:`issue_report` makes `mailer report ISSUE`'s report and :func:`list_report`
`mailer report --list`'s, each from one read transaction, so that every number
in a report is of the same moment.

Per segment: the send ledger keeps, for each member, the variant they were sent;
a variant is named for the segments of the issue the member was in when it went
out (``youth+wales``; ``general`` for none). So the rows are exact as of the
send, whatever members' tags or the segment rules became since:

* ``all``: every member the issue was sent to;
* one row per segment the issue addresses: the members whose variant names it
  (a member in two segments is in both rows, so rows need not add up to all);
* ``general``: members in none of them (left out when the issue has no segments).

Segments the issue does not address are not rows: members were not told apart
by them when it was sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path

from sqlalchemy import Connection, Engine

from mailer.config import Newsletter
from mailer.errors import ReportError, display_path
from mailer.report.models import (
    NO_DELIVERY_EVENTS,
    NOTES,
    HealthPoint,
    IssueReport,
    Link,
    ListReport,
    SegmentRow,
)
from mailer.report.queries import (
    Send,
    StatusCounts,
    Tally,
    find_send,
    joined_later,
    recipients,
    sends,
    status_counts_at,
    status_counts_now,
    tallies,
    top_links,
)
from mailer.store.models import SubscriberStatus
from mailer.store.transact import read

__all__ = ["GENERAL", "HISTORY", "LINKS", "issue_report", "issue_slug", "list_report"]

# mailer.render.variants.GENERAL, written out so that reports need not import the
# renderer (MJML); tests/report/test_build.py checks they agree.
GENERAL = "general"
# Issues shown in an issue report's list health: about six months of a fortnightly newsletter.
HISTORY = 12
LINKS = 10
_ISSUE_SUFFIXES = (".yaml", ".yml")


def issue_slug(argument: str) -> str:
    """The issue an ISSUE argument names: an issue file's path, or its name (the slug) itself.

    The slug of ``issues/2026-12-03-winter.yaml`` is ``2026-12-03-winter``. The
    file need not exist any more: what was sent is in the store.
    """
    text = argument.strip()
    path = Path(text)
    if path.suffix.lower() in _ISSUE_SUFFIXES:
        return path.stem
    return path.name if "/" in text else text


def issue_report(
    engine: Engine,
    issue: str,
    newsletter: Newsletter,
    *,
    base_url: str,
    links: int = LINKS,
    history: int = HISTORY,
    now: dt.datetime | None = None,
) -> IssueReport:
    """The report on one sent issue; ReportError if it is unknown or was never sent."""
    with read(engine) as connection:
        send = find_send(connection, issue)
        if send is None:
            raise _not_sent(connection, issue, newsletter)
        earlier = [s for s in sends(connection) if s.started_at <= send.started_at]
        shown = earlier[-history:] if history > 0 else []
        by_variant = tallies(connection, issue)
        known = delivery_events(by_variant.values())
        return IssueReport(
            issue=send.issue,
            sent_at=send.started_at,
            finished_at=send.finished_at,
            send_status=send.status,
            generated_at=now or dt.datetime.now(dt.UTC),
            segments=segment_rows(by_variant, newsletter, known=known),
            delivery_events=known,
            notes=[*NOTES, *([] if known else [NO_DELIVERY_EVENTS])],
            links=[
                Link(url=url, clicked=int(clicked), clicks=int(clicks))
                for url, clicked, clicks in top_links(connection, issue, base_url, links)
            ],
            list_health=_health_points(connection, shown),
        )


def list_report(engine: Engine, *, now: dt.datetime | None = None) -> ListReport:
    """The list's health at the start of every issue's send, and now."""
    when = now or dt.datetime.now(dt.UTC)
    with read(engine) as connection:
        points = _health_points(connection, sends(connection))
        current = status_counts_now(connection)
    return ListReport(
        generated_at=when,
        issues=points,
        now=_point(None, when, None, current),
    )


# -- segments -----------------------------------------------------------------------------------


def delivery_events(tallies: Iterable[Tally]) -> bool:
    """Whether any delivery, open or click came back for the issue.

    None did with the outbox and SMTP, which never report them: their 0 would read
    as "nothing was delivered", so the report says they are not known instead.
    """
    return any(t.delivered or t.opens or t.clicks for t in tallies)


def segment_rows(
    by_variant: dict[str, Tally], newsletter: Newsletter, *, known: bool = True
) -> list[SegmentRow]:
    """'all', then each segment the issue addresses (mailer.toml order), then 'general'.

    ``known``: whether delivery events came back (see :func:`delivery_events`); when
    not, delivered, opened and clicked are None.
    """
    everyone, general = Tally(), Tally()
    per_segment: dict[str, Tally] = {}
    for variant, tally in by_variant.items():
        everyone.add(tally)
        if variant == GENERAL:
            general.add(tally)
            continue
        for name in variant.split("+"):
            per_segment.setdefault(name, Tally()).add(tally)
    rows = [_row("all", "all", "All members", everyone, known)]
    labels = {segment.name: segment.label for segment in newsletter.segments}
    for name in _in_config_order(per_segment, newsletter.segment_names):
        rows.append(_row(name, "segment", labels.get(name, name), per_segment[name], known))
    if per_segment:
        rows.append(_row(GENERAL, "general", "In none of the issue's segments", general, known))
    return rows


def _in_config_order(names: Iterable[str], configured: Sequence[str]) -> list[str]:
    """mailer.toml's order; names it no longer defines go last, alphabetically."""
    order = {name: index for index, name in enumerate(configured)}
    return sorted(names, key=lambda name: (order.get(name, len(order)), name))


_TRACKED = ("delivered", "opened", "opens", "clicked", "clicks")


def _row(name: str, kind: str, label: str, tally: Tally, known: bool) -> SegmentRow:
    unknown: dict[str, None] = {} if known else dict.fromkeys(_TRACKED)
    return SegmentRow.model_validate(
        {
            "name": name,
            "kind": kind,
            "label": label,
            "sent": tally.sent,
            "not_sent": tally.not_sent,
            "delivered": tally.delivered,
            "bounced": tally.bounced,
            "dropped": tally.dropped,
            "complained": tally.complained,
            "unsubscribed": tally.unsubscribed,
            "opened": tally.opened,
            "opens": tally.opens,
            "clicked": tally.clicked,
            "clicks": tally.clicks,
        }
        | unknown
    )


# -- list health ----------------------------------------------------------------------------------


def _health_points(connection: Connection, shown: Sequence[Send]) -> list[HealthPoint]:
    counts = status_counts_at(connection, [send.started_at for send in shown])
    went_to = recipients(connection, [send.issue for send in shown])
    later = joined_later(connection, shown)
    return [
        _point(
            send.issue, send.started_at, went_to.get(send.issue, 0), at, later.get(send.issue, 0)
        )
        for send, at in zip(shown, counts, strict=True)
    ]


def _point(
    issue: str | None,
    at: dt.datetime,
    went_to: int | None,
    counts: StatusCounts,
    later: int | None = None,
) -> HealthPoint:
    return HealthPoint(
        issue=issue,
        at=at,
        recipients=went_to,
        joined_later=later,
        active=counts[SubscriberStatus.active],
        pending=counts[SubscriberStatus.pending],
        unsubscribed=counts[SubscriberStatus.unsubscribed],
        bounced=counts[SubscriberStatus.bounced],
        complained=counts[SubscriberStatus.complained],
    )


# -- errors ------------------------------------------------------------------------------------


def _not_sent(connection: Connection, issue: str, newsletter: Newsletter) -> ReportError:
    """What to say about an issue with no send: not sent yet, or no such issue."""
    files = [newsletter.issues_dir / f"{issue}{suffix}" for suffix in _ISSUE_SUFFIXES]
    found = next((path for path in files if path.is_file()), None)
    where = connection.engine.url.render_as_string(hide_password=True)
    if found is not None:
        return ReportError(
            f"issue {issue} has not been sent (the store at {where} has no send of it), "
            f"so there is nothing to report yet. Send it with `mailer send {display_path(found)}`; "
            "`mailer report --list` shows the issues sent so far."
        )
    return ReportError(
        f"there is no issue {issue!r}: no file {display_path(files[0])} and no send of it in "
        f"the store at {where}. Give the issue's file name without .yaml, or its path; "
        "`mailer report --list` shows the issues sent so far."
    )
