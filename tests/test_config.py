"""mailer.toml: what the operator writes for mail headers is checked when it is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.config import load_newsletter
from mailer.errors import ConfigError


def toml_with(project_root: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = (project_root / "mailer.toml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "mailer.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


class TestHeaderText:
    @pytest.mark.parametrize(
        ("old", "new", "where"),
        [
            ('name = "Connected Communities"', 'name = "News\\nBcc: x@example.org"', "name"),
            ('name = "Connected Communities"', 'name = "News =?utf-8?q?=0A?="', "name"),
            ('list_id = "', 'list_id = "x\\u2028', "list_id"),
        ],
    )
    def test_a_line_break_or_encoded_word_is_refused(
        self, project_root: Path, tmp_path: Path, old: str, new: str, where: str
    ) -> None:
        with pytest.raises(
            ConfigError, match=rf"mailer.toml: {where}: .*(one line|encoded header)"
        ):
            load_newsletter(toml_with(project_root, tmp_path, old, new))

    def test_the_senders_name_too(self, project_root: Path, tmp_path: Path) -> None:
        text = (project_root / "mailer.toml").read_text(encoding="utf-8")
        start = text.index("[sender]")
        name_at = text.index("name = ", start)
        end = text.index("\n", name_at)
        path = tmp_path / "mailer.toml"
        path.write_text(text[:name_at] + 'name = "A\\r\\nBcc: x@example.org"' + text[end:])
        with pytest.raises(ConfigError, match=r"sender\.name: .*one line"):
            load_newsletter(path)
