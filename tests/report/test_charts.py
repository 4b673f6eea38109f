"""The charts as SVG for inlining: the same bytes for the same data, ids of their own, labelled."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

from matplotlib import rc_context

from mailer.report.charts import STYLE, funnel_chart, health_chart, health_figure
from mailer.report.models import HealthPoint, SegmentRow

ROWS = [
    SegmentRow(
        name=name, kind=kind, label=label, sent=sent, not_sent=0, delivered=delivered,
        bounced=sent - delivered, dropped=0, complained=0, unsubscribed=1, opened=opened,
        opens=2 * opened, clicked=clicked, clicks=clicked,
    )
    for name, kind, label, sent, delivered, opened, clicked in (
        ("all", "all", "All members", 120, 114, 60, 12),
        ("youth", "segment", "Youth <loneliness> & co", 40, 39, 22, 6),
        ("general", "general", "In none of the issue's segments", 80, 75, 38, 6),
    )
]  # fmt: skip
POINTS = [
    HealthPoint(
        issue=f"2026-{month:02d}-05-issue", at=dt.datetime(2026, month, 5, 9, tzinfo=dt.UTC),
        recipients=100, active=100 + month, pending=0, unsubscribed=month, bounced=month // 2,
        complained=0,
    )
    for month in range(1, 7)
]  # fmt: skip
IDS = re.compile(r'\bid="([^"]+)"')


class TestSvg:
    def test_the_same_data_gives_the_same_svg(self) -> None:
        """No date, fixed hash salt: a report made twice is the same file."""
        assert funnel_chart(ROWS) == funnel_chart(ROWS)
        assert health_chart(POINTS) == health_chart(POINTS)

    def test_the_same_in_another_process(self) -> None:
        """Not just within one run: matplotlib's ids do not depend on the process."""
        code = (
            "import sys; sys.path[:0] = ['tests/report'];"
            "from test_charts import ROWS; from mailer.report.charts import funnel_chart;"
            "sys.stdout.write(funnel_chart(ROWS))"
        )
        other = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert funnel_chart(ROWS) == other

    def test_ids_are_prefixed_so_two_charts_share_a_page(self) -> None:
        funnel, health = funnel_chart(ROWS), health_chart(POINTS)
        funnel_ids, health_ids = set(IDS.findall(funnel)), set(IDS.findall(health))
        assert all(name == "funnel" or name.startswith("funnel-") for name in funnel_ids)
        assert all(name == "health" or name.startswith("health-") for name in health_ids)
        assert not funnel_ids & health_ids
        for reference in re.findall(r'href="#([^"]+)"|url\(#([^)]+)\)', funnel):
            assert (reference[0] or reference[1]) in funnel_ids

    def test_an_element_for_a_page_not_a_file(self) -> None:
        """Starts with <svg (no XML prologue), no fixed size (the page sizes it), no metadata."""
        svg = funnel_chart(ROWS)
        opening = svg[: svg.index(">") + 1]
        assert svg.startswith("<svg ")
        assert "viewBox=" in opening
        assert not re.search(r'\s(width|height)="', opening)
        assert "<metadata>" not in svg

    def test_labelled_and_described_with_the_figures(self) -> None:
        """role=img; the title and a description with every figure, escaped."""
        svg = funnel_chart(ROWS)
        assert 'role="img" class="chart" aria-labelledby="funnel-title funnel-desc"' in svg
        assert '<title id="funnel-title">Delivery funnel per segment</title>' in svg
        assert (
            "Youth &lt;loneliness&gt; &amp; co: sent 40, delivered 39, opened 22, clicked 6" in svg
        )

    def test_one_issue_is_a_chart_too(self) -> None:
        assert 'id="health"' in health_chart(POINTS[:1])


class TestHealthLabels:
    def test_issues_are_labelled_by_name_and_day(self) -> None:
        """Two issues sent the same day are told apart on the axis."""
        same_day = [
            POINTS[0].model_copy(update={"issue": "2026-01-05-morning-news"}),
            POINTS[0].model_copy(update={"issue": "2026-01-05-evening-extra"}),
        ]
        svg = health_chart(same_day)
        assert "morning-news" in svg and "evening-extra" in svg
        assert 2 == svg.count(">2026-01-05<")

    def test_text_is_text_in_the_pages_font(self) -> None:
        """Text stays <text> naming no font, so it inherits the page's."""
        svg = health_chart(POINTS) + funnel_chart(ROWS)
        assert "<text" in svg and "font-family" not in svg

    def test_the_bars_use_the_charts_width(self) -> None:
        """Two issues fill the axis: no empty room kept for issues that were never sent."""
        with rc_context(STYLE):
            axes = health_figure(POINTS[:2]).axes[0]
        low, high = axes.get_xlim()
        bars = [patch.get_width() for patch in axes.patches]
        assert (-0.5, 1.5) == (low, high)
        assert sum(bars) / (high - low) >= 0.5
