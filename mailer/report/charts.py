"""The report's charts: static SVG drawn by matplotlib, made to sit inline in an HTML page.

Each chart is a string of ``<svg>`` with ``role="img"``, a ``<title>`` and a
``<desc>`` (what a screen reader says), ids prefixed so that two charts in one
page never share one, and no width or height of its own (the page sizes it).
The page shows the same figures in a table beside each chart.

Output is the same for the same data: matplotlib's SVG ids come from a fixed
salt (``svg.hashsalt``) and no date is written. Text is kept as text, so the
charts are written in the page's own font (the SVG names none, so its text
inherits the page's; the layout leaves room for DejaVu Sans, wider than most).
Only :class:`matplotlib.figure.Figure` is used (not pyplot): no global state, no
GUI backend.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from matplotlib import rc_context
from matplotlib.figure import Figure

from mailer.report.models import HealthPoint, SegmentRow

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

__all__ = ["STYLE", "funnel_chart", "health_chart"]

# Okabe and Ito's palette: told apart with every common kind of colour blindness.
BLUE, ORANGE, GREEN, VERMILION, PURPLE, GREY = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#595959",
)
STYLE: dict[RcKeyType, Any] = {
    "svg.hashsalt": "mailer-report",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
}
STAGES = (  # (label, colour, hatch): hatching tells the bars apart without colour too
    ("Sent", GREY, ""),
    ("Delivered", BLUE, "//"),
    ("Opened", ORANGE, ".."),
    ("Clicked", GREEN, "xx"),
)


def funnel_chart(rows: Sequence[SegmentRow], *, chart_id: str = "funnel") -> str:
    """Per segment, the share of members sent the issue who got, opened and clicked it."""
    with rc_context(STYLE):
        figure = Figure(figsize=(6.4, 1.2 + 1.1 * len(rows)), layout="constrained")
        axes = figure.add_subplot()
        bar = 0.8 / len(STAGES)
        for stage, (label, colour, hatch) in enumerate(STAGES):
            counts = [_stage_count(row, label) for row in rows]
            shares = [
                100 * count / row.sent if row.sent and count is not None else 0.0
                for count, row in zip(counts, rows, strict=True)
            ]
            positions = [
                index + (stage - (len(STAGES) - 1) / 2) * bar for index in range(len(rows))
            ]
            bars = axes.barh(
                positions,
                shares,
                height=bar * 0.92,
                color=colour,
                hatch=hatch,
                edgecolor="white",
                linewidth=0.5,
                label=label,
            )
            axes.bar_label(
                bars,
                labels=[
                    "n/a" if count is None else f"{share:.0f}% ({count:,})"
                    for share, count in zip(shares, counts, strict=True)
                ],
                padding=3,
                fontsize=8,
            )
        axes.set_yticks(range(len(rows)), [row.label for row in rows])
        axes.invert_yaxis()  # 'all' at the top, as in the table
        axes.set_xlim(0, 118)  # room for the labels after a full bar
        axes.set_xticks(range(0, 101, 20), [f"{tick}%" for tick in range(0, 101, 20)])
        axes.set_xlabel("Share of the members the issue was sent to")
        figure.suptitle("Delivery funnel per segment", fontweight="bold")
        axes.legend(loc="lower center", ncols=4, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 1))
        described = "; ".join(
            f"{row.label}: sent {row.sent}, delivered {_known(row.delivered)}, "
            f"opened {_known(row.opened)}, clicked {_known(row.clicked)}"
            for row in rows
        )
        return _inline(
            figure,
            chart_id,
            "Delivery funnel per segment",
            f"Members sent the issue, and how many of them it was delivered to, opened and clicked. {described}.",
        )


def _known(count: int | None) -> str:
    return "not known" if count is None else str(count)


def _stage_count(row: SegmentRow, stage: str) -> int | None:
    return {
        "Sent": row.sent,
        "Delivered": row.delivered,
        "Opened": row.opened,
        "Clicked": row.clicked,
    }[stage]


def health_chart(points: Sequence[HealthPoint], *, chart_id: str = "health") -> str:
    """Members by status when each issue went out: active above; those who left below."""
    with rc_context(STYLE):
        figure = health_figure(points)
        described = "; ".join(
            f"{p.issue} (sent {p.at:%Y-%m-%d}): {p.active} active, {p.unsubscribed} unsubscribed, "
            f"{p.bounced} bounced, {p.complained} complained"
            for p in points
        )
        return _inline(
            figure,
            chart_id,
            "List health at each issue's send",
            f"Members by status when each issue's send started. {described}.",
        )


def health_figure(points: Sequence[HealthPoint]) -> Figure:
    """The list health chart as a figure (drawn within ``rc_context(STYLE)``)."""
    figure = Figure(figsize=(6.4, 5), layout="constrained")
    active_axes, left_axes = figure.subplots(2, 1, sharex=True, height_ratios=(1, 1))
    labels = [_point_label(point) for point in points]
    positions = list(range(len(points)))
    bars = active_axes.bar(positions, [p.active for p in points], color=BLUE, width=0.6)
    active_axes.bar_label(bars, labels=[f"{p.active:,}" for p in points], padding=2, fontsize=8)
    active_axes.set_ylabel("Active members")
    active_axes.set_ylim(0, max([p.active for p in points] + [1]) * 1.15)
    figure.suptitle("List health at each issue's send", fontweight="bold")
    active_axes.set_xlim(-0.5, len(points) - 0.5)  # the bars share the chart's whole width
    for name, colour, marker in (
        ("unsubscribed", ORANGE, "o"),
        ("bounced", VERMILION, "s"),
        ("complained", PURPLE, "^"),
    ):
        left_axes.plot(
            positions,
            [getattr(p, name) for p in points],
            color=colour,
            marker=marker,
            linewidth=2,
            label=name.capitalize(),
        )
    left_axes.set_ylabel("Members who left")
    left_axes.set_ylim(
        bottom=0,
        top=max(
            [p.unsubscribed for p in points]
            + [p.bounced for p in points]
            + [p.complained for p in points]
            + [1]
        )
        * 1.2,
    )
    left_axes.yaxis.get_major_locator().set_params(integer=True)
    left_axes.legend(loc="upper left", ncols=3, fontsize=8, frameon=False)
    # Level names while they fit side by side; slanted when there are many.
    slanted = len(points) > 4
    left_axes.set_xticks(
        positions,
        labels,
        rotation=35 if slanted else 0,
        ha="right" if slanted else "center",
        fontsize=8,
    )
    return figure


_DATED = re.compile(r"\d{4}-\d{2}-\d{2}-(?P<rest>.+)")


def _point_label(point: HealthPoint) -> str:
    """The issue's name over the day it went out: two issues of one day are told apart.

    ``2026-01-22-second-wind`` is "second-wind" over "2026-01-22" (the name's date
    is the day it is for, not always the day it went out).
    """
    day = f"{point.at:%Y-%m-%d}"
    if point.issue is None:
        return f"now\n{day}"
    dated = _DATED.fullmatch(point.issue)
    name = dated["rest"] if dated else point.issue
    return f"{_shorten(name, 24)}\n{day}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- SVG for inlining -----------------------------------------------------------------------------

_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
# Dublin Core about the file (its maker, its type): of no use inside a page.
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_SIZE = re.compile(r'\s(?:width|height)="[^"]*"')
_ID = re.compile(r'\bid="([^"]+)"')
_FONT_FAMILY = re.compile(r"\s*font-family: '[^']*';?")


def _inline(figure: Figure, chart_id: str, title: str, description: str) -> str:
    """The figure as an ``<svg>`` element for an HTML page (see the module docstring)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = _PROLOGUE.sub("", buffer.getvalue(), count=1)
    svg = _METADATA.sub("", svg, count=1)
    svg = _FONT_FAMILY.sub("", svg)  # the text inherits the page's font
    svg = _prefix_ids(svg, chart_id)
    opening_end = svg.index(">") + 1
    opening = _SIZE.sub("", svg[:opening_end])
    labelled = (
        f'{opening[:-1]} id="{chart_id}" role="img" class="chart" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">'
        f'<title id="{chart_id}-title">{html.escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{html.escape(description)}</desc>'
    )
    return labelled + svg[opening_end:]


def _prefix_ids(svg: str, prefix: str) -> str:
    """Every id (and every reference to one) prefixed: matplotlib names glyphs and clip paths
    alike in every figure, and ids must be unique in a page."""
    ids = set(_ID.findall(svg))
    if not ids:
        return svg
    names = "|".join(re.escape(name) for name in sorted(ids, key=len, reverse=True))
    svg = re.sub(rf'\bid="({names})"', rf'id="{prefix}-\1"', svg)
    return re.sub(rf'#({names})(?=["\)])', rf"#{prefix}-\1", svg)
