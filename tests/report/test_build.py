"""Every number of a report, from the known history (helpers/history.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from helpers.history import (
    EXPECTED_FIRST,
    EXPECTED_SECOND,
    FIRST,
    HEALTH_AT_FIRST,
    HEALTH_AT_SECOND,
    HEALTH_NOW,
    SECOND,
    SITE,
    T1,
    T2,
    History,
)
from helpers.project import BASE_URL, ROOT

from mailer.config import load_newsletter
from mailer.errors import ReportError
from mailer.render.variants import GENERAL
from mailer.report import build
from mailer.report.build import issue_report, list_report
from mailer.report.models import DENOMINATORS, HealthPoint, IssueReport, SegmentRow
from mailer.store import open_store

NEWSLETTER = load_newsletter(ROOT / "mailer.toml")


def report_of(built: History, issue: str, **options: int) -> IssueReport:
    with open_store(built.url) as store:
        return issue_report(store.engine, issue, NEWSLETTER, base_url=BASE_URL, **options)


def counts_of(row: SegmentRow) -> dict[str, int]:
    return row.model_dump(exclude={"name", "kind", "label", "rates"})


def health(point: HealthPoint) -> tuple[int, int, int, int, int]:
    return (point.active, point.pending, point.unsubscribed, point.bounced, point.complained)


class TestPerSegment:
    def test_the_first_issue_row_by_row(self, history: History) -> None:
        """'all', then youth and wales (mailer.toml's order), then 'general'; every count as the story has it."""
        report = report_of(history, FIRST)
        assert list(EXPECTED_FIRST) == [row.name for row in report.segments]
        assert EXPECTED_FIRST == {row.name: counts_of(row) for row in report.segments}

    def test_the_second_issue_has_the_rows_of_the_segments_it_addresses(
        self, history: History
    ) -> None:
        """Issue 2 names only youth: members in Wales are in 'general' for it."""
        report = report_of(history, SECOND)
        assert EXPECTED_SECOND == {row.name: counts_of(row) for row in report.segments}

    def test_rows_say_what_they_are(self, history: History) -> None:
        """Each row has its kind and, for a segment, its label from mailer.toml."""
        report = report_of(history, FIRST)
        assert [
            ("all", "all", "All members"),
            ("youth", "segment", "Youth loneliness"),
            ("wales", "segment", "Wales"),
            ("general", "general", "In none of the issue's segments"),
        ] == [(row.name, row.kind, row.label) for row in report.segments]

    def test_the_rates_of_everyone_on_the_first_issue(self, history: History) -> None:
        """Rates are fractions to four places, over the denominators the report names."""
        rates = report_of(history, FIRST).everyone.rates
        assert {
            "delivered": 0.7,  # 7 of 10 sent
            "bounced": 0.2,  # 2 of 10 sent
            "dropped": 0.1,  # 1 of 10 sent
            "complained": 0.1429,  # 1 of 7 delivered
            "unsubscribed": 0.2857,  # 2 of 7 delivered
            "opened": 0.7143,  # 5 of 7 delivered
            "clicked": 0.5714,  # 4 of 7 delivered
            "click_to_open": 0.8,  # 4 of 5 who opened
        } == rates.model_dump()

    @pytest.mark.parametrize("issue", [FIRST, SECOND])
    def test_every_rate_of_every_row_is_its_count_over_its_denominator(
        self, history: History, issue: str
    ) -> None:
        """delivered/sent, opened/delivered, ...: the pairs in DENOMINATORS, for every row."""
        for row in report_of(history, issue).segments:
            for name, rate in row.rates.model_dump().items():
                part = row.clicked if name == "click_to_open" else getattr(row, name)
                whole = getattr(row, DENOMINATORS[name])
                assert (round(part / whole, 4) if whole else None) == rate, (row.name, name)

    def test_a_rate_over_nothing_is_none_and_zero_over_something_is_zero(
        self, history: History
    ) -> None:
        """Nobody in 'general' clicked issue 2: click-to-open 0. A row where nobody opened has none."""
        general = report_of(history, SECOND).segments[-1]
        assert 0.0 == general.rates.click_to_open
        nobody_opened = general.model_copy(update={"opened": 0})
        assert nobody_opened.rates.click_to_open is None


class TestWhatCounts:
    def test_a_retried_event_counts_once(self, history: History) -> None:
        """SendGrid posted m1's delivery twice: 7 delivered, not 8."""
        assert 7 == report_of(history, FIRST).everyone.delivered

    def test_opens_of_a_test_send_and_of_strangers_do_not_count(self, history: History) -> None:
        """Ten open events were posted for issue 1; eight were members' opens of the real send."""
        assert 8 == report_of(history, FIRST).everyone.opens

    def test_leaving_counts_for_the_last_issue_the_member_had_been_sent(
        self, history: History
    ) -> None:
        """m7 left the day after issue 1 (issue 1); m6 left two days after issue 2 (issue 2, not 1)."""
        first, second = report_of(history, FIRST), report_of(history, SECOND)
        # Issue 1: m7 through the link, m8 through SendGrid. Issue 2: m6.
        assert (2, 1) == (first.everyone.unsubscribed, second.everyone.unsubscribed)

    def test_a_segment_is_as_the_member_was_when_the_issue_went_out(self, history: History) -> None:
        """m3 (youth and Wales) is in both rows of issue 1: the rows add up to more than 'all'."""
        report = report_of(history, FIRST)
        by_name = {row.name: row.sent for row in report.segments}
        assert 10 == by_name["all"]
        assert 11 == by_name["youth"] + by_name["wales"] + by_name["general"]


class TestLinks:
    def test_the_most_clicked_links_first(self, history: History) -> None:
        """By members who clicked, then clicks, then the link; the member's unsubscribe link without its token."""
        links = report_of(history, FIRST).links
        assert [
            (f"{SITE}/plans", 3, 4),
            (f"{SITE}/youth-toolkit", 1, 1),
            (f"{BASE_URL}/unsubscribe/…", 1, 1),
        ] == [(link.url, link.clicked, link.clicks) for link in links]

    def test_only_as_many_as_asked(self, history: History) -> None:
        assert [f"{SITE}/plans"] == [link.url for link in report_of(history, FIRST, links=1).links]


class TestListHealth:
    def test_an_issue_report_shows_the_list_at_each_send_up_to_it(self, history: History) -> None:
        """Issue 2's report: the list when issue 1 went out, then when issue 2 did."""
        points = report_of(history, SECOND).list_health
        assert [(FIRST, 10), (SECOND, 8)] == [(p.issue, p.recipients) for p in points]
        assert [HEALTH_AT_FIRST, HEALTH_AT_SECOND] == [health(p) for p in points]
        assert [T1.date(), T2.date()] == [p.at.date() for p in points]

    def test_issues_sent_later_are_not_in_an_earlier_issue_report(self, history: History) -> None:
        assert [FIRST] == [p.issue for p in report_of(history, FIRST).list_health]

    def test_only_the_last_issues_when_asked(self, history: History) -> None:
        assert [SECOND] == [p.issue for p in report_of(history, SECOND, history=1).list_health]

    def test_the_list_report_ends_with_now(self, history: History) -> None:
        """--list: every issue, then now; now's counts are the list's own."""
        now = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
        with open_store(history.url) as store:
            report = list_report(store.engine, now=now)
            assert {status.value: n for status, n in store.counts().items()} == {
                "active": report.now.active,
                "pending": report.now.pending,
                "unsubscribed": report.now.unsubscribed,
                "bounced": report.now.bounced,
                "complained": report.now.complained,
            }
        assert [HEALTH_AT_FIRST, HEALTH_AT_SECOND] == [health(p) for p in report.issues]
        assert (None, now, None, HEALTH_NOW) == (
            report.now.issue,
            report.now.at,
            report.now.recipients,
            health(report.now),
        )


class TestErrors:
    def test_an_issue_never_sent_says_how_to_send_it(self, history: History) -> None:
        newsletter = NEWSLETTER.model_copy(update={"issues_dir": history.folder / "issues"})
        (history.folder / "issues" / "2026-02-05-draft.yaml").write_text("subject: x\n")
        with open_store(history.url) as store, pytest.raises(ReportError) as raised:
            issue_report(store.engine, "2026-02-05-draft", newsletter, base_url=BASE_URL)
        assert "has not been sent" in str(raised.value)
        assert "mailer send" in str(raised.value)

    def test_an_unknown_issue_says_where_it_looked(self, history: History) -> None:
        with open_store(history.url) as store, pytest.raises(ReportError) as raised:
            issue_report(store.engine, "no-such-issue", NEWSLETTER, base_url=BASE_URL)
        assert "there is no issue 'no-such-issue'" in str(raised.value)
        assert "mailer report --list" in str(raised.value)


def test_the_general_variant_is_the_renderers() -> None:
    """build.GENERAL is written out so that reports need not import the renderer."""
    assert GENERAL == build.GENERAL
