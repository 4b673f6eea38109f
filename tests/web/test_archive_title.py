"""The archive's titles are public: a subject's greeting ("Friends, …") is not in them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers.web import Web, mark_sent

from mailer.config import Newsletter

SENT = "2026-12-03-winter-connections"


@pytest.fixture
def newsletter(newsletter: Newsletter, tmp_path: Path) -> Newsletter:
    """The sample issues, the sent one with a subject that greets the member by name."""
    issues = tmp_path / "issues"
    shutil.copytree(newsletter.issues_dir, issues)
    path = issues / f"{SENT}.yaml"
    text = path.read_text()
    old = 'subject: "Winter connections: warm spaces'
    assert old in text
    path.write_text(text.replace(old, 'subject: "{{ first_name | Friends }}, warm spaces', 1))
    return newsletter.model_copy(update={"issues_dir": issues})


def test_the_archive_title_has_no_greeting(sqlite_web: Web) -> None:
    mark_sent(sqlite_web, SENT)
    index = sqlite_web.client.get("/archive/").text
    assert ">Warm spaces, Christmas support and your January invitation</a>" in index
    assert "Friends" not in index
    assert "Friends" not in sqlite_web.client.get("/").text  # the home page's list too
    page = sqlite_web.client.get(f"/archive/{SENT}").text
    assert "<title>Warm spaces, Christmas support and your January invitation</title>" in page
