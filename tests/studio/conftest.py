"""Fixtures for the studio's tests.

* ``project``: a copy of the project's newsletter (mailer.toml, issues, templates) with
  the sample list imported into its own SQLite store.
* ``studio``: the studio serving that project under a real uvicorn (helpers.studio).
* ``page``: a Chromium page (helpers.browser) open on the winter issue, its live
  connection up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.project import copy_project
from helpers.studio import WINTER, Studio, import_sample_list, start_studio
from playwright.sync_api import Browser, Page, expect


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = copy_project(tmp_path)
    import_sample_list(folder, f"sqlite:///{folder / 'subscribers' / 'mailer.db'}")
    return folder


@pytest.fixture
def studio(project: Path) -> Iterator[Studio]:
    running = start_studio(project)
    yield running
    running.stop()


@pytest.fixture
def page(browser: Browser, studio: Studio) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.goto(f"{studio.url}/issues/{WINTER}")
    expect(opened.locator("[data-live-status]")).to_have_attribute("data-state", "up")
    yield opened
    context.close()
