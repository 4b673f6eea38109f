"""A known history of two issues, built through the real parts, that the report tests read.

Thirteen members, two issues sent with `mailer send` (the outbox transport), and
SendGrid's events applied through :func:`mailer.events.apply_events` (what the
Event Webhook runs), members leaving through the store as the web app makes
them, all at fixed times (time-machine). Every number the tests expect follows
from the story below; ``EXPECTED_*`` spell them out.

Segments (the project's mailer.toml): ``youth`` is the tag youth-loneliness,
``wales`` the region Wales.

Before issue 1 (2026-01-02): m1, m2 youth; m3 youth and Wales; m4, m5 Wales;
m6 to m10 in no segment; m11 pending (signed up, not confirmed); m12 imported
as unsubscribed.

Issue 1, ``2026-01-08-first-light`` (sections for youth and wales), sent
2026-01-08 09:00 to the ten active members. Variants: youth (m1, m2),
youth+wales (m3), wales (m4, m5), general (m6 to m10). Events:

* processed for all ten; delivered m1 m2 m3 m4 m6 m7 m8 (m1's twice: a retry);
  m5 bounces (hard), m10 is blocked (a soft bounce), m9 dropped ("Invalid");
* opens: m1 three times, m3 twice, m2 m6 m7 once; and two that do not count:
  an open of a test send (m1's address) and one from an address not on the list;
* clicks: m1 the plans page twice, m3 the plans page and the youth toolkit, m6
  the plans page, m7 their own unsubscribe link;
* m4 marks it as spam; m8 unsubscribes through SendGrid; m7 unsubscribes with
  the link the next day (the web app).

Between the issues m13 joins (2026-01-11) and m11 confirms (2026-01-12).

Issue 2, ``2026-01-22-second-wind`` (a section for youth), sent 2026-01-22 09:00
to the eight active members: m1 m2 m3 (youth); m6 m9 m10 m11 m13 (general).
Delivered to all eight; m2 opens once and clicks the spring page; m13 opens
twice; m6 unsubscribes in the preference centre two days later, which counts
for issue 2, not issue 1.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import time_machine
from typer.testing import CliRunner

from helpers.project import BASE_URL, ROOT
from mailer.cli import app
from mailer.events.apply import apply_events
from mailer.events.sendgrid import SendGridEvent
from mailer.store import MemberRecord, SubscriberStatus, SubscriberStore, open_store

SITE = "https://connected-communities.example.org"
FIRST = "2026-01-08-first-light"
SECOND = "2026-01-22-second-wind"
T0 = dt.datetime(2026, 1, 2, 10, 0, tzinfo=dt.UTC)
T1 = dt.datetime(2026, 1, 8, 9, 0, tzinfo=dt.UTC)
T2 = dt.datetime(2026, 1, 22, 9, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 1, 30, 12, 0, tzinfo=dt.UTC)

FIRST_ISSUE = f"""\
subject: "First light: the year ahead"
preheader: What the coalition is planning for the new year, and how to join in.
date: 2026-01-08
status: ready

intro: |
  Hello {{{{ first_name | there }}}}, and happy new year.

sections:
  - title: Plans for the year
    body: |
      Read our plans on [the website]({SITE}/plans).
  - title: For youth workers
    audience: [youth]
    body: |
      A new [toolkit]({SITE}/youth-toolkit).
  - title: Wales
    audience: [wales]
    body: |
      Meet the [Cardiff group]({SITE}/cardiff).
"""
SECOND_ISSUE = f"""\
subject: "Second wind"
preheader: More news from members across the coalition, and a date for your diary.
date: 2026-01-22
status: ready

intro: |
  Hello {{{{ first_name | there }}}}.

sections:
  - title: A date for your diary
    body: |
      Our spring gathering: [book a place]({SITE}/spring).
  - title: For youth workers
    audience: [youth]
    body: |
      Training for [youth workers]({SITE}/youth-training).
"""

YOUTH = ("youth-loneliness",)
MEMBERS: dict[str, dict[str, Any]] = {
    "m1": {"tags": YOUTH},
    "m2": {"tags": YOUTH},
    "m3": {"tags": YOUTH, "region": "Wales"},
    "m4": {"region": "Wales"},
    "m5": {"region": "Wales"},
    **{f"m{n}": {"region": "London"} for n in range(6, 11)},
    "m11": {"status": SubscriberStatus.pending},
    "m12": {"status": SubscriberStatus.unsubscribed, "status_reason": "left in 2025"},
}


def email(name: str) -> str:
    return f"{name}@example.org"


@dataclass
class History:
    """The store with the story in it, and where things are."""

    url: str
    folder: Path
    ids: dict[str, int]

    @property
    def env(self) -> dict[str, str]:
        """The environment `mailer` runs in for this history."""
        return {
            "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
            "MAILER_DATABASE_URL": self.url,
            "MAILER_OUTBOX_DIR": str(self.folder / "outbox"),
            "MAILER_BASE_URL": BASE_URL,
            "COLUMNS": "100",
        }

    def issue_path(self, slug: str) -> Path:
        return self.folder / "issues" / f"{slug}.yaml"


class Story:
    """Builds the history step by step, each step at its own time."""

    def __init__(self, history: History, store: SubscriberStore, clock: Any) -> None:
        self.history, self.store, self.clock = history, store, clock
        self._ids = itertools.count(1)

    def at(self, when: dt.datetime) -> None:
        self.clock.move_to(when)

    def add(self, *names: str) -> None:
        records = [MemberRecord(email=email(name), **MEMBERS.get(name, {})) for name in names]
        for name, member in zip(names, self.store.add(records, source="test"), strict=True):
            self.history.ids[name] = member.id

    def send(self, slug: str) -> None:
        result = CliRunner().invoke(
            app, ["send", str(self.history.issue_path(slug)), "--yes"], env=self.history.env
        )
        assert 0 == result.exit_code, result.output

    def event(self, kind: str, name: str, issue: str, minutes: int, **extra: Any) -> dict[str, Any]:
        """One SendGrid event about member ``name`` (or any address), ``minutes`` after the send."""
        sent = T1 if issue == FIRST else T2
        body = {
            "email": email(name) if "@" not in name else name,
            "timestamp": int((sent + dt.timedelta(minutes=minutes)).timestamp()),
            "event": kind,
            "sg_event_id": f"evt-{next(self._ids):04d}",
            "issue": issue,
            **extra,
        }
        if name in self.history.ids and extra.get("test") != "true":
            body["subscriber"] = str(self.history.ids[name])
        return body

    def apply(self, events: list[dict[str, Any]]) -> None:
        apply_events(self.store, [SendGridEvent.model_validate(e) for e in events])


def build(url: str, folder: Path) -> History:
    """The whole story, in the store at ``url``; issue files and outbox under ``folder``."""
    history = History(url=url, folder=folder, ids={})
    (folder / "issues").mkdir(parents=True)
    history.issue_path(FIRST).write_text(FIRST_ISSUE, encoding="utf-8")
    history.issue_path(SECOND).write_text(SECOND_ISSUE, encoding="utf-8")
    with (
        time_machine.travel(T0) as clock,
        open_store(url) as store,
    ):
        story = Story(history, store, clock)
        story.add(*[f"m{n}" for n in range(1, 13)])
        story.at(T1)
        story.send(FIRST)
        _first_issue_events(story)
        story.at(T1 + dt.timedelta(days=1))
        store.unsubscribe(
            history.ids["m7"], reason="unsubscribed from the email link", source="web"
        )
        story.at(T1 + dt.timedelta(days=3))
        story.add("m13")
        story.at(T1 + dt.timedelta(days=4))
        store.confirm(email("m11"), source="web")
        story.at(T2)
        story.send(SECOND)
        _second_issue_events(story)
        story.at(T2 + dt.timedelta(days=2))
        store.unsubscribe(
            history.ids["m6"], reason="unsubscribed in the preference centre", source="web"
        )
        story.at(NOW)
    return history


def _first_issue_events(story: Story) -> None:
    e, issue = story.event, FIRST
    story.at(T1 + dt.timedelta(hours=1))
    events = [e("processed", f"m{n}", issue, 1) for n in range(1, 11)]
    events += [
        e("delivered", name, issue, 2) for name in ("m1", "m2", "m3", "m4", "m6", "m7", "m8")
    ]
    events += [
        e("bounce", "m5", issue, 2, type="bounce", reason="550 5.1.1 no such user"),
        e("bounce", "m10", issue, 2, type="blocked", reason="550 blocked by policy"),
        e("dropped", "m9", issue, 1, reason="Invalid"),
    ]
    story.apply(events)
    retried = events[10]  # m1's delivered event, posted again by SendGrid
    assert ("delivered", email("m1")) == (retried["event"], retried["email"])
    story.at(T1 + dt.timedelta(hours=3))
    opens = [
        ("m1", 10),
        ("m1", 20),
        ("m1", 30),
        ("m3", 11),
        ("m3", 40),
        ("m2", 12),
        ("m6", 13),
        ("m7", 14),
    ]
    clicks = [
        ("m1", f"{SITE}/plans"),
        ("m1", f"{SITE}/plans"),
        ("m3", f"{SITE}/plans"),
        ("m3", f"{SITE}/youth-toolkit"),
        ("m6", f"{SITE}/plans"),
        ("m7", f"{BASE_URL}/unsubscribe/m7-token.Ab3dE"),
    ]
    story.apply(
        [retried]
        + [e("open", name, issue, minutes) for name, minutes in opens]
        + [e("open", "m1", issue, 15, test="true"), e("open", "stranger@example.net", issue, 16)]
        + [e("click", name, issue, 50, url=url) for name, url in clicks]
        + [e("spamreport", "m4", issue, 60), e("unsubscribe", "m8", issue, 61)]
    )


def _second_issue_events(story: Story) -> None:
    e, issue = story.event, SECOND
    story.at(T2 + dt.timedelta(hours=1))
    sent = ("m1", "m2", "m3", "m6", "m9", "m10", "m11", "m13")
    story.apply(
        [e("delivered", name, issue, 2) for name in sent]
        + [e("open", "m2", issue, 10), e("open", "m13", issue, 11), e("open", "m13", issue, 12)]
        + [e("click", "m2", issue, 20, url=f"{SITE}/spring")]
    )


# -- what the story adds up to -------------------------------------------------------------------


def counts(**values: int) -> dict[str, int]:
    """A segment row's counts, zero where not given."""
    names = ("sent", "not_sent", "delivered", "bounced", "dropped", "complained", "unsubscribed")
    names += ("opened", "opens", "clicked", "clicks")
    return {name: values.get(name, 0) for name in names}


EXPECTED_FIRST = {
    "all": counts(sent=10, delivered=7, bounced=2, dropped=1, complained=1, unsubscribed=2,
                  opened=5, opens=8, clicked=4, clicks=6),
    "youth": counts(sent=3, delivered=3, opened=3, opens=6, clicked=2, clicks=4),
    "wales": counts(sent=3, delivered=2, bounced=1, complained=1, opened=1, opens=2, clicked=1,
                    clicks=2),
    "general": counts(sent=5, delivered=3, bounced=1, dropped=1, unsubscribed=2, opened=2,
                      opens=2, clicked=2, clicks=2),
}  # fmt: skip
EXPECTED_SECOND = {
    "all": counts(sent=8, delivered=8, unsubscribed=1, opened=2, opens=3, clicked=1, clicks=1),
    "youth": counts(sent=3, delivered=3, opened=1, opens=1, clicked=1, clicks=1),
    "general": counts(sent=5, delivered=5, unsubscribed=1, opened=1, opens=2),
}  # fmt: skip
# (active, pending, unsubscribed, bounced, complained)
HEALTH_AT_FIRST = (10, 1, 1, 0, 0)
HEALTH_AT_SECOND = (8, 0, 3, 1, 1)
HEALTH_NOW = (7, 0, 4, 1, 1)
