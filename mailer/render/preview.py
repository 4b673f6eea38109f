"""Previews: every variant of an issue written to a folder, as a sample member would get it.

``mailer preview`` writes ``<variant>.html`` and ``<variant>.txt`` for each
variant, and ``index.html``, which shows them all side by side at phone and
desktop widths with their subject, preheader, size and warnings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, StrictUndefined
from rich.table import Table

from mailer.config import Newsletter
from mailer.issues.model import Issue
from mailer.render import (
    CompiledVariant,
    RenderedMessage,
    render_issue,
    variant_key,
)
from mailer.render.variants import ordered_segments

__all__ = [
    "PreviewEntry",
    "preview_keys",
    "preview_table",
    "sample_member",
    "write_preview",
]

INDEX = "index.html"
# What the last preview wrote to a folder, so that the next one removes the files of
# variants it no longer writes (and nothing else: the folder may hold other files).
MANIFEST = ".mailer-preview.json"


@dataclass(frozen=True)
class PreviewEntry:
    """One variant as previewed: compiled, personalised for the sample member, and written."""

    variant: CompiledVariant
    message: RenderedMessage
    html_path: Path
    text_path: Path
    members: int | None = None  # how many members on the list get it; None: not counted


def sample_member(base_url: str) -> dict[str, str]:
    """A believable member, so that merge tags and links look as they will in a real email."""
    return {
        "name": "Alex Morgan",
        "organisation": "Example Community Trust",
        "region": "Yorkshire and the Humber",
        "unsubscribe_url": f"{base_url}/unsubscribe/preview-token",
        "preferences_url": f"{base_url}/preferences/preview-token",
    }


def preview_keys(
    issue: Issue,
    newsletter: Newsletter,
    *,
    only: Sequence[str] = (),
    extra: Iterable[frozenset[str]] = (),
) -> list[frozenset[str]]:
    """The variant keys to preview.

    By default: the general variant, one per segment the issue names, then ``extra``
    (e.g. the combinations real members have). ``only`` lists segments, each a name
    or names joined with '+'; then only the variants seen by members of those
    segments are kept, and a combination asked for is previewed even if not in
    the defaults. Unknown segment names raise ConfigError, listing the known ones.
    """
    named = ordered_segments(issue.segments_named(), newsletter)
    keys = [frozenset(), *(frozenset([name]) for name in named), *extra]
    if not only:
        return list(dict.fromkeys(keys))
    chosen: list[frozenset[str]] = []
    for spec in only:
        wanted = frozenset(part.strip() for part in spec.split("+") if part.strip())
        for name in wanted:
            newsletter.segment(name)  # raises, naming the known segments
        key = variant_key(issue, wanted)
        matching = [k for k in keys if k and key <= k] if key else []
        chosen += matching if key in matching else [key, *matching]
    return list(dict.fromkeys(chosen))


def write_preview(
    issue: Issue,
    newsletter: Newsletter,
    out: Path,
    keys: Iterable[frozenset[str]],
    *,
    base_url: str,
    members: Mapping[frozenset[str], int] | None = None,
) -> list[PreviewEntry]:
    """Render the variants, personalise each for the sample member, and write them with an index.

    ``members`` says how many members on the list get each variant. Files an earlier
    preview wrote to ``out`` for variants not written now are removed.
    """
    variants = render_issue(issue, newsletter, keys, archive_url=f"{base_url}/archive/{issue.slug}")
    member = sample_member(base_url)
    out.mkdir(parents=True, exist_ok=True)
    entries: list[PreviewEntry] = []
    for variant in variants:
        message = variant.personalise(member)
        html_path, text_path = out / f"{variant.name}.html", out / f"{variant.name}.txt"
        html_path.write_text(message.html, encoding="utf-8")
        text_path.write_text(message.text, encoding="utf-8")
        count = None if members is None else members.get(variant.key, 0)
        entries.append(PreviewEntry(variant, message, html_path, text_path, count))
    (out / INDEX).write_text(index_html(issue, newsletter, entries), encoding="utf-8")
    _forget_old_files(out, [p.name for e in entries for p in (e.html_path, e.text_path)])
    return entries


def _forget_old_files(out: Path, written: Sequence[str]) -> None:
    """Remove what the last preview wrote here and this one did not; record this one's files."""
    manifest = out / MANIFEST
    try:
        before = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        before = []
    for name in before:
        if isinstance(name, str) and name not in written and Path(name).name == name:
            (out / name).unlink(missing_ok=True)
    manifest.write_text(json.dumps({"files": list(written)}, indent=1) + "\n", encoding="utf-8")


def stacked(variant: str) -> str:
    """A variant's name with a line break after each ``+``: ``youth+`` over ``wales``.

    A table column then needs only the longest segment name, and a name is never
    cut inside a word, however narrow the terminal (see :func:`variant_column`).
    """
    return variant.replace("+", "+\n")


def variant_column(table: Table, names: Sequence[str], heading: str = "Variant") -> None:
    """A column of :func:`stacked` variant names, as wide as its longest line."""
    widest = max((len(line) for name in names for line in stacked(name).splitlines()), default=7)
    table.add_column(heading, style="bold", no_wrap=True, min_width=max(widest, len(heading)))


def preview_table(
    entries: Sequence[PreviewEntry], newsletter: Newsletter, *, width: int = 120
) -> Table:
    """The table `mailer preview` prints: one row per variant.

    Readable at 80 columns and when piped: sizes never wrap, variant names break only
    after a ``+``, and the subject is one line, shortened with "…" when the terminal is
    narrow (the index page has it in full). The segments' labels (one a line) only
    when ``width``, the terminal's, leaves room for them: the variant names them too.
    """
    # expand: the subject takes what the fixed columns leave, and shortens to fit it.
    table = Table(title="Variants", title_justify="left", expand=True)
    variant_column(table, [entry.variant.name for entry in entries])
    labelled = width >= 120
    if labelled:
        table.add_column("Segments", no_wrap=True, overflow="ellipsis", ratio=2)
    counted = any(entry.members is not None for entry in entries)
    if counted:
        table.add_column("Members", justify="right", no_wrap=True)
    table.add_column("Subject", no_wrap=True, overflow="ellipsis", ratio=4)
    table.add_column("HTML", justify="right", no_wrap=True, min_width=7)
    table.add_column("Text", justify="right", no_wrap=True, min_width=6)
    table.add_column("Warnings", style="yellow", min_width=8)
    for entry in entries:
        variant = entry.variant
        table.add_row(
            stacked(variant.name),
            *([_segment_labels(variant, newsletter, sep="\n")] if labelled else []),
            *([str(entry.members or 0)] if counted else []),
            entry.message.subject,
            _kb(variant.html_size),
            _kb(variant.text_size),
            "\n".join(variant.warnings) or "-",
        )
    return table


def _segment_labels(variant: CompiledVariant, newsletter: Newsletter, *, sep: str = ", ") -> str:
    if not variant.segments:
        return "members in none of the issue's segments"
    labels = {segment.name: segment.label for segment in newsletter.segments}
    return sep.join(labels.get(name, name) for name in variant.segments)


def _kb(size: int) -> str:
    return f"{size / 1000:.1f} KB"


def index_html(issue: Issue, newsletter: Newsletter, entries: Sequence[PreviewEntry]) -> str:
    """A page showing every variant at phone and desktop widths, with its facts."""
    rows = [
        {
            "name": entry.variant.name,
            "segments": _segment_labels(entry.variant, newsletter),
            "subject": entry.message.subject,
            "preheader": entry.message.preheader,
            "html_size": _kb(entry.variant.html_size),
            "text_size": _kb(entry.variant.text_size),
            "warnings": entry.variant.warnings,
            "html": entry.html_path.name,
            "text": entry.text_path.name,
            "members": entry.members,
        }
        for entry in entries
    ]
    template = _INDEX_ENV.from_string(_INDEX_TEMPLATE)
    return template.render(issue=issue, newsletter=newsletter, rows=rows)


_INDEX_ENV = Environment(autoescape=True, undefined=StrictUndefined)
_INDEX_TEMPLATE = """<!doctype html>
<html lang="{{ newsletter.language }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Preview: {{ issue.slug }}</title>
<style>
  body { margin: 0; padding: 24px; background: #eceae4; color: #1d2320;
         font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
  h1 { margin: 0 0 4px; font-size: 22px; }
  .lead { margin: 0 0 24px; color: #4a514d; }
  section { margin: 0 0 40px; }
  h2 { margin: 0 0 8px; font-size: 19px; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0 0 12px; }
  dt { font-weight: 600; }
  dd { margin: 0; }
  .warning { color: #8a3b00; font-weight: 600; }
  .frames { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
  figure { margin: 0; }
  figcaption { font-size: 13px; color: #4a514d; margin: 0 0 4px; }
  iframe { border: 1px solid #c9c4b8; background: #fff; height: 760px; }
  .phone { width: 375px; border-radius: 12px; }
  .desktop { width: 680px; }
</style>
</head>
<body>
<h1>{{ newsletter.name }}: {{ issue.slug }}</h1>
<p class="lead">{{ rows | length }} variant{{ "" if rows | length == 1 else "s" }},
personalised for a sample member (Alex Morgan, Example Community Trust).</p>
{% for row in rows %}
<section id="{{ row.name }}">
  <h2>{{ row.name }}</h2>
  <dl>
    <dt>Seen by</dt><dd>{{ row.segments }}</dd>
    {% if row.members is not none %}
    <dt>Members</dt><dd>{{ row.members }} on the list get this variant</dd>
    {% endif %}
    <dt>Subject</dt><dd>{{ row.subject }}</dd>
    <dt>Preheader</dt><dd>{{ row.preheader }}</dd>
    <dt>Size</dt><dd>HTML {{ row.html_size }}, text {{ row.text_size }}
      (<a href="{{ row.html }}">HTML</a>, <a href="{{ row.text }}">text</a>)</dd>
    {% for warning in row.warnings %}
    <dt class="warning">Warning</dt><dd class="warning">{{ warning }}</dd>
    {% endfor %}
  </dl>
  <div class="frames">
    <figure><figcaption>Phone, 375 px</figcaption>
      <iframe class="phone" src="{{ row.html }}" title="{{ row.name }} at phone width">
      </iframe></figure>
    <figure><figcaption>Desktop, 680 px</figcaption>
      <iframe class="desktop" src="{{ row.html }}" title="{{ row.name }} at desktop width">
      </iframe></figure>
  </div>
</section>
{% endfor %}
</body>
</html>
"""
