"""The README stays true to the code: every setting and every command is documented."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.main import get_command

from mailer.cli import app
from mailer.config import Newsletter, Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    if alias is not None:
        return str(alias.choices[0])  # type: ignore[union-attr]
    return f"MAILER_{field.upper()}"


def _commands(group: typer.core.TyperGroup, prefix: str = "mailer") -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        found.append((path, command))
        if isinstance(command, typer.core.TyperGroup):
            found.extend(_commands(command, path))
    return found


ROOT = get_command(app)
assert isinstance(ROOT, typer.core.TyperGroup)
COMMANDS = _commands(ROOT)


class TestSettingsAreDocumented:
    @pytest.mark.parametrize("field", sorted(Settings.model_fields))
    def test_every_environment_variable_is_in_the_readme(self, field: str) -> None:
        """Each setting's environment variable appears in the README's configuration table."""
        assert f"`{_env_name(field)}`" in README

    @pytest.mark.parametrize("field", sorted(Settings.model_fields))
    def test_every_setting_has_a_description(self, field: str) -> None:
        """Each setting explains itself, for `--help` and for the docs."""
        assert Settings.model_fields[field].description

    @pytest.mark.parametrize("field", sorted(Newsletter.model_fields))
    def test_every_newsletter_key_is_in_the_readme(self, field: str) -> None:
        """Each mailer.toml key appears in the README."""
        assert f"`{field}`" in README or f"`[{field}" in README


class TestCommandsAreDocumented:
    @pytest.mark.parametrize("path", [path for path, _ in COMMANDS])
    def test_every_command_is_in_the_readme(self, path: str) -> None:
        """Each command is named in the README."""
        assert path in README

    @pytest.mark.parametrize(("path", "command"), COMMANDS)
    def test_every_command_and_option_has_help(self, path: str, command: typer.core.TyperCommand) -> None:
        """Each command has a help text, and so does each of its options and arguments."""
        assert command.help, f"{path} has no help"
        for param in command.params:
            if param.name in ("help",):
                continue
            assert getattr(param, "help", None), f"{path}: {param.name} has no help"
