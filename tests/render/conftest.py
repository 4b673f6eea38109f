"""Fixtures for the render tests.

* ``sample``: the render tests' issue (tests/render/data/, ``helpers.project.RENDER_SAMPLE``),
  as a model, without the checks of the issue loader: every kind of section, merge tag
  and Markdown the renderer has to handle.
"""

from __future__ import annotations

import pytest
import yaml
from helpers.project import RENDER_SAMPLE

from mailer.issues.model import Issue


@pytest.fixture(scope="module")
def sample() -> Issue:
    raw = yaml.safe_load(RENDER_SAMPLE.read_text(encoding="utf-8"))
    return Issue.model_validate({**raw, "slug": RENDER_SAMPLE.stem})
