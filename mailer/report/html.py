"""The report as one self-contained HTML page: `mailer report ISSUE --html FILE`.

Everything is in the file: styles inline, charts as inline SVG (see
:mod:`mailer.report.charts`), no script, no font, no image to fetch; a
Content-Security-Policy of ``default-src 'none'`` makes sure a browser asks
nothing of the network, so the page reads the same offline, attached to an
email or put on a shared drive. Each chart has its figures in a table beside it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from mailer.config import Newsletter
from mailer.errors import ReportError, display_path
from mailer.report.models import IssueReport, ListReport

__all__ = ["TEMPLATES", "issue_page", "list_page", "write_page"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


def percent(value: float | None) -> str:
    """A rate as people read it: ``0.8333`` is ``83.3%``; no rate is a dash."""
    return "–" if value is None else f"{value * 100:.1f}%"


def number(value: int | None) -> str:
    """A count with thousands separators; a count not known (no delivery events) is "n/a"."""
    return "n/a" if value is None else f"{value:,}"


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["percent"] = percent
    environment.filters["number"] = number
    return environment


def _render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)


def issue_page(report: IssueReport, newsletter: Newsletter) -> str:
    """The issue's report: per-segment table, funnel, links, and list health with charts."""
    from mailer.report.charts import funnel_chart, health_chart

    return _render(
        "issue.html",
        report=report,
        newsletter=newsletter,
        funnel=funnel_chart(report.segments),
        health=health_chart(report.list_health) if report.list_health else "",
    )


def list_page(report: ListReport, newsletter: Newsletter) -> str:
    """The list's health at each issue's send, with a chart."""
    from mailer.report.charts import health_chart

    return _render(
        "list.html",
        report=report,
        newsletter=newsletter,
        health=health_chart(report.issues) if report.issues else "",
    )


def write_page(path: Path, page: str) -> None:
    """Write the page, saying plainly where and why when it cannot be."""
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as error:
        raise ReportError(
            f"cannot write the report to {display_path(path)}: {error.strerror}; "
            "give a file in a folder you can write to"
        ) from None
