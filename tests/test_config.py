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


class TestUnknownVariables:
    def test_a_misspelt_variable_stops_every_command_naming_the_closest(
        self, monkeypatch: pytest.MonkeyPatch, in_tmp: Path
    ) -> None:
        """MAILER_TRANSPROT=sendgrid is not ignored (which sent an issue to the outbox)."""
        from mailer.config import get_settings

        monkeypatch.setenv("MAILER_TRANSPROT", "sendgrid")
        with pytest.raises(
            ConfigError,
            match=r"MAILER_TRANSPROT is not a mailer setting\. Did you mean MAILER_TRANSPORT",
        ):
            get_settings()

    def test_in_a_dotenv_file_too(self, in_tmp: Path) -> None:
        from mailer.config import get_settings

        (in_tmp / ".env").write_text("MAILER_SECRET_KEYS=x\n")
        with pytest.raises(ConfigError, match=r"MAILER_SECRET_KEYS .*MAILER_SECRET_KEY"):
            get_settings()

    def test_the_scheduler_refuses_to_start_without_an_explicit_transport(
        self, project_root: Path
    ) -> None:
        """The outbox default is for the CLI; the scheduler must be told how to send."""
        from mailer.config import Settings, load_newsletter
        from mailer.scheduling.checks import require

        with pytest.raises(ConfigError, match="MAILER_TRANSPORT is not set"):
            require(Settings(), load_newsletter(project_root / "mailer.toml"), "scheduler")
