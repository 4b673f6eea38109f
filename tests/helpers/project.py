"""The project the tests run against: where it is, its sample issue, the base URL of links."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
"""The project folder: mailer.toml, issues/, templates/, subscribers/."""

SAMPLE_ISSUE = ROOT / "issues" / "2026-12-03-winter-connections.yaml"
"""The sample issue (ready; sections for youth and wales), which sends go out with."""

RENDER_SAMPLE = ROOT / "tests" / "render" / "data" / "2025-06-12-render-sample.yaml"
"""The render tests' issue: every kind of section, merge tag and Markdown they check."""

BASE_URL = "https://news.example.org"
"""The base URL of members' links in the settings the tests make."""


def copy_project(folder: Path) -> Path:
    """A throwaway copy of the project's newsletter in ``folder``: mailer.toml, issues,
    templates, and the sample members' CSV."""
    shutil.copy(ROOT / "mailer.toml", folder)
    shutil.copytree(ROOT / "issues", folder / "issues")
    shutil.copytree(ROOT / "templates", folder / "templates")
    (folder / "subscribers").mkdir()
    shutil.copy(ROOT / "subscribers" / "members.csv", folder / "subscribers")
    return folder
