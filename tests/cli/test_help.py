"""Every command's `--help`, rendered at 80 columns as a terminal or a pipe shows it."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from mailer.cli import app

WIDTH = 80
# Words Typer writes itself, around the help we wrote.
FRAME = {
    "Usage", "mailer", "OPTIONS", "COMMAND", "ARGS", "Options", "Arguments", "Commands",
    "default", "required", "Show", "this", "message", "and", "exit", "From", "to", "One",
    "of", "At", "least", "most", "the", "version", "help", "h",
}  # fmt: skip
WORD = re.compile(r"[A-Za-z]+")
TYPE_NAMES = re.compile(r"<(?:bool|str|int|float|path|list|int range|[a-z|]+)[^>]*>")


def commands(
    command: Any = None, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    command = command or get_command(app)
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands(sub, (*path, name))


ALL = list(commands())


def render(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(
        app, [*path, "--help"], env={"COLUMNS": str(WIDTH), "TERM": "dumb"}, terminal_width=WIDTH
    )
    assert 0 == result.exit_code, result.output
    return result.output


def source_words(path: tuple[str, ...], command: Any) -> set[str]:
    """Every word the help is made of: what we wrote, names, metavars, defaults."""
    texts = [command.help or "", command.short_help or "", *path]
    for param in command.params:
        texts += [param.help or "", param.metavar or "", param.name or "", *param.opts]
        texts.append((param.name or "").upper())  # an argument's name, as ISSUE or NAME
        texts.append(str(param.default) if isinstance(param.default, str | int) else "")
    for sub in getattr(command, "commands", {}).values():
        texts += [sub.name or "", sub.help or "", sub.short_help or ""]
    return {word for text in texts for word in WORD.findall(text)}


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "mailer" for p, _ in ALL])
class TestEveryHelp:
    def test_fits_80_columns_and_names_no_python_types(
        self, path: tuple[str, ...], command: Any
    ) -> None:
        text = render(path)
        assert all(len(line) <= WIDTH for line in text.splitlines())
        assert not TYPE_NAMES.search(text), TYPE_NAMES.search(text)

    def test_the_usage_line_is_plain(self, path: tuple[str, ...], command: Any) -> None:
        """``ISSUE``, ``[CSV]``, ``PATH...``: no ``{ISSUE}`` nor ``[[CSV]]``."""
        usage = next(line for line in render(path).splitlines() if "Usage:" in line).strip()
        pattern = r"Usage: mailer( [a-z-]+)* \[OPTIONS\]( COMMAND \[ARGS\]\.\.\.)?"
        pattern += r"( (?:[A-Z][A-Z_.=]*|\[[A-Z][A-Z_.=]*\])(?:\.\.\.)?)*"
        assert re.fullmatch(pattern, usage), usage

    def test_no_word_is_cut_in_two(self, path: tuple[str, ...], command: Any) -> None:
        """Every word shown is a word we wrote: "unsubscribe" / "d" would leave a "d"."""
        shown = set(WORD.findall(render(path)))
        assert set() == shown - source_words(path, command) - FRAME


def test_each_short_option_means_one_thing() -> None:
    """``-s`` is ``--segment`` wherever it is used, never ``--status`` somewhere else."""
    meanings: dict[str, set[str]] = defaultdict(set)
    for _, command in ALL:
        for param in command.params:
            longs = [opt for opt in param.opts if opt.startswith("--")]
            for short in (opt for opt in param.opts if re.fullmatch(r"-[A-Za-z]", opt)):
                meanings[short].update(longs)
    assert {short: longs for short, longs in meanings.items() if len(longs) > 1} == {}
    assert {"--segment"} == meanings["-s"]


def test_brackets_in_help_are_not_eaten_as_markup() -> None:
    assert "Slots come from [schedule] in mailer.toml" in " ".join(render(("schedule",)).split())


def test_docstring_line_breaks_do_not_show() -> None:
    """A paragraph is wrapped to the terminal, not broken where the source line ended."""
    text = " ".join(render(("preview",)).split())
    assert "every issue in the issues folder" in text
    lines = render(("serve",)).splitlines()
    assert not any(line.strip() in {"a", "the", "access", "in"} for line in lines)


def test_reflow_joins_paragraph_lines_but_keeps_lists() -> None:
    from mailer.cli.helptext import reflow

    assert "One two three.\n\nFour." == reflow("One two\nthree.\n\nFour.")
    assert "Steps:\n- one\n- two" == reflow("Steps:\n- one\n- two")
    assert "\b\nkept\nas is" == reflow("\b\nkept\nas is")
