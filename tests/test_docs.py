"""The docs stay true to the code.

README.md and docs/*.md are read as a reader would read them: every setting and
every mailer.toml key is in the configuration reference with its default, every
command is listed and documented, every link between the pages leads to a page
and a heading that exist, every `mailer ...` command written on a page names a
real command and real options, and every example command runs, in a copy of the
project, with the exit status and the output the page shows.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import shutil
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import time_machine
import typer
from helpers.project import ROOT as PROJECT_ROOT
from helpers.project import copy_project
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from typer.main import get_command
from typer.testing import CliRunner, Result

from mailer.cli import app
from mailer.config import (
    Imports,
    Logo,
    Newsletter,
    Schedule,
    Segment,
    Sender,
    Settings,
    load_newsletter,
)

PROJECT = Path(__file__).resolve().parent.parent
PAGES: dict[str, str] = {
    path.relative_to(PROJECT).as_posix(): path.read_text(encoding="utf-8")
    for path in [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
}
EVERYTHING = "\n".join(PAGES.values())
CONFIGURATION = "docs/configuration.md"
EDITORS = "docs/editors.md"


# --- Reading Markdown ---------------------------------------------------------------------

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<lang>[\w-]*)\s*$")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\((?P<target>[^)\s]+)\)")
HEADING = re.compile(r"^(?P<level>#{1,6})[ \t]+(?P<title>.+?)[ \t]*$", re.MULTILINE)
SHELL = {"sh", "bash", "shell", "console"}


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, the page line of its first line, its lines."""

    lang: str
    line: int
    lines: tuple[str, ...]


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced block of a page, indented ones (in list items) included, dedented."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        closing = re.compile(rf" *{re.escape(fence[0])}{{{len(fence)},}}\s*")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not closing.fullmatch(lines[j]):
            body.append(lines[j][indent:] if not lines[j][:indent].strip() else lines[j])
            j += 1
        blocks.append(Block(opening["lang"], i + 2, tuple(body)))
        i = j + 1
    return blocks


def prose(text: str) -> str:
    """The page with every fenced block blanked out (same length, so offsets and lines stay)."""
    lines = text.split("\n")
    inside: str | None = None
    for n, line in enumerate(lines):
        opening = FENCE.match(line)
        if inside is None and opening is None:
            continue
        if inside is None and opening is not None:
            inside = opening["fence"]
        elif inside is not None and re.fullmatch(
            rf" *{re.escape(inside[0])}{{{len(inside)},}}\s*", line
        ):
            inside = None
        lines[n] = " " * len(line)
    return "\n".join(lines)


def without_code_spans(text: str) -> str:
    """The text with every code span blanked out (same length, so offsets stay)."""
    return CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m[0]), text)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def slug(title: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation dropped, spaces to hyphens."""
    text = LINK.sub(lambda m: m["text"], title).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor on a page; a repeated heading gets -1, -2... as on GitHub."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in HEADING.finditer(prose(text)):
        base = slug(heading["title"])
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def section(text: str, title: str) -> str:
    """A page's text from the heading titled *title* to the next heading of its level or above."""
    headings = list(HEADING.finditer(prose(text)))
    for k, heading in enumerate(headings):
        if heading["title"] == title:
            level = len(heading["level"])
            end = next(
                (h.start() for h in headings[k + 1 :] if len(h["level"]) <= level), len(text)
            )
            return text[heading.end() : end]
    raise AssertionError(f"no heading '{title}'")


def table_rows(text: str) -> list[list[str]]:
    """The body rows of every table in *text*, as lists of cells (header rows left out)."""
    lines = text.splitlines()
    rows: list[list[str]] = []
    for n, line in enumerate(lines):
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        is_rule = all(re.fullmatch(r":?-{3,}:?", cell) for cell in cells)
        is_header = n + 1 < len(lines) and re.match(r"\|\s*:?-{3,}", lines[n + 1]) is not None
        if not (is_rule or is_header):
            rows.append(cells)
    return rows


def code_spans(text: str) -> list[str]:
    return [" ".join(m[2].split()) for m in CODE_SPAN.finditer(text)]


# --- Commands -----------------------------------------------------------------------------


def _commands(group: typer.core.TyperGroup, prefix: str = "mailer") -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        found.append((path, command))
        if isinstance(command, typer.core.TyperGroup):
            found.extend(_commands(command, path))
    return found


# Typer carries its own copy of click: a group is a typer.core.TyperGroup, not a click.Group.
Command = typer.core.TyperCommand | typer.core.TyperGroup
ROOT = get_command(app)
assert isinstance(ROOT, typer.core.TyperGroup)
COMMANDS = _commands(ROOT)


@dataclass(frozen=True)
class CommandLine:
    """A written `mailer ...` line: the command it runs, and the words after the command."""

    path: str
    command: Command
    words: tuple[str, ...]


def words_of(text: str) -> list[str]:
    """A command line's words as the shell splits them (a table's `\\|` is a `|`)."""
    text = text.replace("\\|", "|")
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # prose like `--reason "..."` cut short
        return text.split()


def resolve(words: list[str]) -> CommandLine:
    """The command `mailer a b ...` runs: the longest run of words naming a (sub)command."""
    command: Command = ROOT
    path = ["mailer"]
    rest = list(words[1:])
    while isinstance(command, typer.core.TyperGroup) and rest and rest[0] in command.commands:
        path.append(rest[0])
        command = command.commands[rest.pop(0)]  # type: ignore[assignment]
    return CommandLine(" ".join(path), command, tuple(rest))


def problems_with(line: CommandLine) -> list[str]:
    """What is wrong with a written command line: a command or an option that does not exist."""
    problems = []
    if (
        isinstance(line.command, typer.core.TyperGroup)
        and line.words
        and not line.words[0].startswith("-")
    ):
        problems.append(f"`{line.path}` has no command '{line.words[0]}'")
    options = {"--help", "-h"} | {
        name for param in line.command.params for name in (*param.opts, *param.secondary_opts)
    }
    for word in line.words:
        word = word.strip("[](),.")
        name = word.split("=", 1)[0]
        if name.startswith("-") and len(name) > 1 and name not in options:
            problems.append(f"`{line.path}` has no option {name}")
    return problems


def written_commands(page: str) -> list[tuple[int, str]]:
    """Every `mailer ...` command a page writes: in code spans, and in shell blocks."""
    text = PAGES[page]
    found: list[tuple[int, str]] = []
    for block in fenced_blocks(text):
        if block.lang in SHELL:
            for n, line in enumerate(block.lines):
                command = line.removeprefix("$ ").strip()
                if command.startswith("mailer "):
                    found.append((block.line + n, command))
    plain = prose(text)
    for span in CODE_SPAN.finditer(plain):
        command = " ".join(span[2].split())
        if command.startswith("mailer "):
            found.append((line_of(plain, span.start()), command))
    return found


# --- Settings and mailer.toml ---------------------------------------------------------------


def _env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    if alias is not None:
        return str(alias.choices[0])  # type: ignore[union-attr]
    return f"MAILER_{field.upper()}"


def _env_names(field: str) -> set[str]:
    """Every variable a setting is read from: its own, and any alias."""
    alias = Settings.model_fields[field].validation_alias
    choices = alias.choices if alias is not None else []  # type: ignore[union-attr]
    return {_env_name(field), *(str(choice) for choice in choices)}


KNOWN_VARIABLES = set().union(*(_env_names(field) for field in Settings.model_fields))

# MAILER_* names the docs may use that are not settings of mailer itself.
NOT_SETTINGS = {
    "MAILER_TEST_POSTGRES_URL": "the PostgreSQL server the tests and benchmarks use",
    "MAILER_BENCH_PROCESSES": "how many processes benchmarks/send.py sends with",
    "MAILER_BENCH_CONCURRENCY": "SendGrid requests in flight per process in benchmarks/send.py",
    "MAILER_BENCH_CONNECTIONS": "SMTP connections per process in benchmarks/send.py",
}


def documented_default(info: FieldInfo) -> str:
    """What the Default column says: `value`, 'required', or '—' for none."""
    if info.is_required():
        return "required"
    default = info.get_default(call_default_factory=True)
    if default is None or default == "" or default == [] or default == {}:
        return "—"
    return f"`{default}`"


def rows_by_key(title: str) -> dict[str, list[str]]:
    """A configuration table's rows, by the code span in their first cell."""
    return {row[0]: row for row in table_rows(section(PAGES[CONFIGURATION], title))}


ENVIRONMENT = rows_by_key("The environment")

# Each mailer.toml table, by the heading of its section in the configuration reference.
TOML_TABLES: dict[str, type[BaseModel]] = {
    "Top-level keys": Newsletter,
    "`[logo]`": Logo,
    "`[sender]`": Sender,
    "`[segments.NAME]`": Segment,
    "`[schedule]`": Schedule,
    "`[imports]`": Imports,
}
# A segment's name is not a key inside its table: it is NAME in `[segments.NAME]`.
NOT_KEYS = {(Segment, "name")}
TOML_KEYS = [
    (title, name)
    for title, model in TOML_TABLES.items()
    for name in model.model_fields
    if (model, name) not in NOT_KEYS
]


def key_cells(name: str) -> tuple[str, ...]:
    """How a key's row names it: `name`, or `[name]` / `[name.NAME]` for a table."""
    return (f"`{name}`", f"`[{name}]`", f"`[{name}.NAME]`")


def nested_models(annotation: object) -> Iterator[type[BaseModel]]:
    """The models inside a field's type (Schedule | None, list[Segment]...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from nested_models(argument)


class TestSettingsAreDocumented:
    @pytest.mark.parametrize("field", sorted(Settings.model_fields))
    def test_every_environment_variable_is_in_the_configuration_reference(self, field: str) -> None:
        """Each setting's environment variable has a row in the reference's environment table."""
        assert f"`{_env_name(field)}`" in ENVIRONMENT

    @pytest.mark.parametrize("field", sorted(Settings.model_fields))
    def test_every_default_is_the_one_in_the_code(self, field: str) -> None:
        """Each variable's Default column says what the code's default is ('—' for none)."""
        row = ENVIRONMENT.get(f"`{_env_name(field)}`", ["", "missing"])
        assert documented_default(Settings.model_fields[field]) == row[1]

    def test_every_variable_in_the_table_is_a_setting(self) -> None:
        """The environment table names no variable that mailer does not read."""
        assert [] == [cell for cell in ENVIRONMENT if cell.strip("`") not in KNOWN_VARIABLES]

    def test_every_mailer_variable_the_docs_name_exists(self) -> None:
        """A MAILER_* name anywhere in the docs is a setting (or one of the few listed here)."""
        named = set(re.findall(r"\bMAILER_[A-Z0-9_]*[A-Z0-9]\b", EVERYTHING))
        assert [] == sorted(named - KNOWN_VARIABLES - set(NOT_SETTINGS))

    def test_the_names_that_are_not_settings_are_not_settings(self) -> None:
        """NOT_SETTINGS does not hide a real setting from the checks above."""
        assert set() == set(NOT_SETTINGS) & KNOWN_VARIABLES

    @pytest.mark.parametrize("field", sorted(Settings.model_fields))
    def test_every_setting_has_a_description(self, field: str) -> None:
        """Each setting explains itself, for `--help` and for the docs."""
        assert Settings.model_fields[field].description


class TestNewsletterKeysAreDocumented:
    @pytest.mark.parametrize(("title", "name"), TOML_KEYS)
    def test_every_key_is_in_the_configuration_reference(self, title: str, name: str) -> None:
        """Each mailer.toml key has a row in its table's section of the reference."""
        rows = rows_by_key(title)
        assert any(cell in rows for cell in key_cells(name)), f"{name} is not under {title}"

    @pytest.mark.parametrize(("title", "name"), TOML_KEYS)
    def test_every_default_is_the_one_in_the_code(self, title: str, name: str) -> None:
        """Each key's Default column says what the code's default is ('required', '—' for none)."""
        rows = rows_by_key(title)
        row = next((rows[cell] for cell in key_cells(name) if cell in rows), ["", "missing"])
        assert documented_default(TOML_TABLES[title].model_fields[name]) == row[1]

    @pytest.mark.parametrize("title", sorted(TOML_TABLES))
    def test_every_key_in_the_reference_exists(self, title: str) -> None:
        """The reference lists no mailer.toml key that the code does not read."""
        fields = TOML_TABLES[title].model_fields
        known = {cell for name in fields for cell in key_cells(name)}
        assert [] == [cell for cell in rows_by_key(title) if cell not in known]

    def test_every_table_of_mailer_toml_has_a_section(self) -> None:
        """A new table in mailer.toml (a model inside Newsletter) needs its own section here."""
        models = {
            model
            for info in Newsletter.model_fields.values()
            for model in nested_models(info.annotation)
        }
        assert set() == models - set(TOML_TABLES.values())


# --- Commands -------------------------------------------------------------------------------

COMMANDS_TABLE = table_rows(section(PAGES[CONFIGURATION], "Commands"))


def _table_command(row: list[str]) -> CommandLine | None:
    spans = code_spans(row[0])
    if not spans or not spans[0].startswith("mailer"):
        return None
    return resolve(words_of(spans[0]))


class TestCommandsAreDocumented:
    @pytest.mark.parametrize("path", [path for path, _ in COMMANDS])
    def test_every_command_is_in_the_docs(self, path: str) -> None:
        """Each command is named in the docs."""
        assert path in EVERYTHING

    @pytest.mark.parametrize("path", [path for path, _ in COMMANDS])
    def test_every_command_is_in_the_commands_table(self, path: str) -> None:
        """Each command has a row of its own in the configuration reference's list of commands."""
        listed = [line.path for line in map(_table_command, COMMANDS_TABLE) if line is not None]
        assert path in listed

    def test_every_command_and_option_in_the_table_exists(self) -> None:
        """The list of commands names only real commands, and only their real options."""
        problems = []
        for row in COMMANDS_TABLE:
            line = _table_command(row)
            if line is None:
                continue
            problems += problems_with(line)
            options = [
                word
                for cell in row[1:]
                for span in code_spans(cell)
                if span.startswith("-")
                for word in words_of(span)
            ]
            problems += problems_with(CommandLine(line.path, line.command, tuple(options)))
        assert [] == problems

    @pytest.mark.parametrize("page", sorted(PAGES))
    def test_every_command_the_docs_write_exists(self, page: str) -> None:
        """Every `mailer ...` written on a page names a real command and its real options."""
        problems = [
            f"{page}:{n}: {problem}"
            for n, command in written_commands(page)
            for problem in problems_with(resolve(words_of(command)))
        ]
        assert [] == problems

    @pytest.mark.parametrize(("path", "command"), COMMANDS)
    def test_every_command_and_option_has_help(
        self, path: str, command: typer.core.TyperCommand
    ) -> None:
        """Each command has a help text, and so does each of its options and arguments."""
        assert command.help, f"{path} has no help"
        for param in command.params:
            if param.name in ("help",):
                continue
            assert getattr(param, "help", None), f"{path}: {param.name} has no help"


# --- Links ----------------------------------------------------------------------------------


def links(page: str) -> list[tuple[int, str]]:
    """Every link's target on a page, with its line (links inside code left out)."""
    text = without_code_spans(prose(PAGES[page]))
    return [(line_of(text, m.start()), m["target"]) for m in LINK.finditer(text)]


def broken(page: str, target: str) -> str | None:
    """Why a relative link does not lead anywhere, or None when it does."""
    if re.match(r"[a-z]+:", target):  # https:, mailto:
        return None
    path, _, anchor = target.partition("#")
    file = ((PROJECT / page).parent / path).resolve() if path else PROJECT / page
    if not file.exists():
        return "no such file"
    if anchor:
        key = file.relative_to(PROJECT).as_posix()
        if key not in PAGES:
            return f"{key} is not a page of the docs, so it has no headings to link to"
        if anchor not in anchors(PAGES[key]):
            return f"{key} has no heading whose anchor is #{anchor}"
    return None


class TestLinks:
    @pytest.mark.parametrize("page", sorted(PAGES))
    def test_every_link_leads_to_a_file_and_a_heading(self, page: str) -> None:
        """Each relative link names a file that exists, and an #anchor a heading on that page."""
        problems = [
            f"{page}:{n}: ({target}): {why}"
            for n, target in links(page)
            if (why := broken(page, target)) is not None
        ]
        assert [] == problems

    @pytest.mark.parametrize("index", ["README.md", "docs/README.md"])
    def test_the_map_lists_every_page(self, index: str) -> None:
        """The front page's map of the docs (and the docs' own index) links to every page."""
        folder = (PROJECT / index).parent
        linked = {((folder / target.partition("#")[0]).resolve()) for _, target in links(index)}
        pages = {path.resolve() for path in (PROJECT / "docs").glob("*.md")}
        pages.discard((PROJECT / index).resolve())
        pages.discard((PROJECT / "docs" / "README.md").resolve())
        assert set() == pages - linked

    def test_slugs_follow_github(self) -> None:
        """The anchors these checks expect are the ones GitHub makes."""
        assert "exactly-once-the-send-ledger" == slug("Exactly once: the send ledger")
        assert "segmentsname" == slug("`[segments.NAME]`")
        assert "sendgrids-event-webhook" == slug("SendGrid's Event Webhook")
        assert "a-reverse-proxy-in-front-of-mailer-serve" == slug(
            "A reverse proxy in front of `mailer serve`"
        )


# --- Example commands -----------------------------------------------------------------------

# The moment the examples are run at: the scheduler's page shows `mailer schedule` on
# Monday 30 November 2026, before the first slot; the clock then runs on from there.
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
WINTER = "issues/2026-12-03-winter-connections.yaml"
CHRISTMAS = "issues/2026-12-17-nobody-alone-this-christmas.yaml"


@dataclass
class Example:
    """A `mailer ...` line of a shell block, with the `export`s before it and the output after it."""

    page: str
    line: int
    command: str  # as the shell would split it, without prompt or comment: the lists' key
    argv: tuple[str, ...]
    env: dict[str, str]
    output: list[str] = field(default_factory=list)


def examples(page: str) -> list[Example]:
    """Every example command on a page, in order. In a console block, commands follow `$ `
    and the lines after one, up to a blank line or the next command, are its output."""
    found: list[Example] = []
    for block in fenced_blocks(PAGES[page]):
        if block.lang not in SHELL:
            continue
        env: dict[str, str] = {}
        current: Example | None = None
        for n, line in enumerate(block.lines):
            if block.lang == "console" and not line.startswith("$ "):
                if current is not None and line.strip():
                    current.output.append(line.rstrip())
                else:
                    current = None
                continue
            current = None
            words = words_of(line.removeprefix("$ "))
            if words[:1] == ["export"]:
                for word in words[1:]:
                    name, _, value = word.partition("=")
                    env[name] = value
            elif words[:1] == ["mailer"]:
                current = Example(
                    page, block.line + n, shlex.join(words), tuple(words[1:]), dict(env)
                )
                found.append(current)
    return found


def run(folder: Path, *argv: str, env: dict[str, str] | None = None) -> Result:
    """`mailer ARGV` in *folder*, on its own SQLite store and outbox, answering yes if asked."""
    environment = {
        "MAILER_TRANSPORT": "outbox",
        "MAILER_DATABASE_URL": f"sqlite:///{folder}/subscribers/mailer.db",
        "MAILER_OUTBOX_DIR": str(folder / "outbox"),
        "COLUMNS": "200",  # wide enough for the tables the pages show, unwrapped
        **(env or {}),
    }
    with time_machine.travel(NOW, tick=True):
        return CliRunner(env=environment).invoke(app, list(argv), input="y\n")


def succeeded(result: Result) -> Result:
    assert 0 == result.exit_code, result.output
    return result


# What the pages take for granted before their examples, with the reason.


def sample_list_imported(folder: Path) -> None:
    """The sample members are on the list, as `scripts/demo` leaves them."""
    succeeded(run(folder, "subscribers", "import", "subscribers/members.csv"))


def winter_issue_sent(folder: Path) -> None:
    """The winter issue has been sent to the sample members, as `scripts/demo` leaves it."""
    sample_list_imported(folder)
    succeeded(run(folder, "send", WINTER, "--yes"))


def christmas_issue_with_four_mistakes(folder: Path) -> None:
    """The editors' guide's copy of the Christmas issue: a misspelt field, a date that does
    not exist, a picture without alt text and a misspelt segment."""
    path = folder / CHRISTMAS
    text = path.read_text(encoding="utf-8")
    for right, wrong in [
        ("\nsubject:", "\nsubjcet:"),
        ("date: 2026-12-17", "date: 2026-12-32"),
        (
            "      alt: A map of the United Kingdom dotted with green markers showing where "
            "members are open over Christmas\n",
            "",
        ),
        ("audience: [youth]", "audience: [yuoth]"),
    ]:
        assert 1 == text.count(right), f"the sample Christmas issue changed: {right!r}"
        text = text.replace(right, wrong)
    path.write_text(text, encoding="utf-8")


def members_csv_a_fortnight_later(folder: Path) -> None:
    """The subscribers page's members.csv: the sample list with three new members and two changed."""
    rows = (folder / "subscribers" / "members.csv").read_text(encoding="utf-8").splitlines()
    header, first, second, *rest = rows
    new = [
        "gwen@conwy-men-in-sheds.example.org,Gwen Jones,Conwy Men in Sheds,Wales,in-person,charity,small",
        "info@fife-walking-group.example.org,Iain Reid,Fife Walking Group,Scotland,,community group,small",
        "hello@derry-tea-dance.example.org,Niamh Doherty,Derry Tea Dance,Northern Ireland,intergenerational,charity,small",
    ]
    changed = [first.replace("Aled Pritchard", "Aled Prichard"), second + "; intergenerational"]
    assert changed != [first, second]
    text = "\n".join([header, *changed, *rest, *new]) + "\n"
    (folder / "members.csv").write_text(text, encoding="utf-8")


def sample_export(name: str, saved_as: str | None = None) -> Callable[[Path], None]:
    """One of the sample exports of tests/data, downloaded into the project folder."""

    def download(folder: Path) -> None:
        shutil.copy(PROJECT_ROOT / "tests" / "data" / name, folder / (saved_as or name))

    download.__doc__ = f"tests/data/{name} is in the project folder"
    return download


def listmonk_exports(folder: Path) -> None:
    """listmonk's export and import samples are in the project folder."""
    sample_export("listmonk-export.csv")(folder)
    sample_export("listmonk-import.csv")(folder)


def crm_export_and_its_map(folder: Path) -> None:
    """A spreadsheet with its own headings and codes, and the subscribers page's map for it."""
    sample_export("mapped-spreadsheet.csv", "crm-export.csv")(folder)
    config = folder / "mailer.toml"
    text = config.read_text(encoding="utf-8")
    page = PAGES["docs/subscribers.md"]
    block = next(
        b
        for b in fenced_blocks(section(page, "Any other spreadsheet: the column map"))
        if b.lang == "toml"
    )
    columns, values = "\n".join(block.lines).split("[imports.values.region]")
    columns = columns.replace("[imports.columns]", "").strip()
    assert 1 == text.count("[imports.columns]\n")
    text = text.replace("[imports.columns]\n", f"[imports.columns]\n{columns}\n")
    config.write_text(text + "\n[imports.values.region]" + values + "\n", encoding="utf-8")


def sendgrid_events_saved(folder: Path) -> None:
    """The SendGrid events the sending page reconciles from (none: the outbox leaves no unknowns)."""
    (folder / "sendgrid-events.json").write_text("[]\n", encoding="utf-8")


BEFORE_PAGE: dict[str, Callable[[Path], None]] = {
    "README.md": winter_issue_sent,  # its last example reports on the issue the demo sent
    "docs/sending.md": sample_list_imported,
    "docs/reports.md": winter_issue_sent,
}
BEFORE: dict[tuple[str, str], Callable[[Path], None]] = {
    (EDITORS, f"mailer validate {CHRISTMAS}"): christmas_issue_with_four_mistakes,
    ("docs/subscribers.md", "mailer subscribers import members.csv"): members_csv_a_fortnight_later,
    (
        "docs/subscribers.md",
        "mailer subscribers import mailchimp-audience-export.zip --dry-run",
    ): sample_export("mailchimp-audience-export.zip"),
    (
        "docs/subscribers.md",
        "mailer subscribers import listmonk-export.csv --dry-run",
    ): listmonk_exports,
    (
        "docs/subscribers.md",
        "mailer subscribers import crm-export.csv --dry-run",
    ): crm_export_and_its_map,
    (
        "docs/sending.md",
        f"mailer send {WINTER} --reconcile sendgrid-events.json",
    ): sendgrid_events_saved,
}
# Examples that the page itself shows failing, and the exit status it says.
EXIT_STATUS: dict[tuple[str, str], int] = {
    (EDITORS, f"mailer validate {CHRISTMAS}"): 1,
}
# Examples that cannot run here: their command's --help must work, and their options exist.
CANNOT_RUN: dict[tuple[str, str], str] = {
    ("docs/web.md", "mailer serve --host 127.0.0.1 --port 8000"): "serves until it is stopped",
    (
        "docs/subscribers.md",
        "mailer subscribers import everyone.csv",
    ): "the page runs it against a PostgreSQL server on db.internal",
    ("docs/bounces.md", "mailer bounces fetch --dry-run"): "reads a mail server's mailbox",
    ("docs/bounces.md", "mailer bounces fetch"): "reads a mail server's mailbox",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A throwaway copy of the project's newsletter: mailer.toml, issues, templates, members."""
    return copy_project(tmp_path)


def shows(expected: list[str], output: str) -> bool:
    """Every line the page shows is in the output, in the same order (others may come between)."""
    lines = iter(line.rstrip() for line in output.splitlines())
    return all(any(want == got for got in lines) for want in expected)


class TestExamples:
    @pytest.mark.parametrize("page", [page for page in PAGES if examples(page)])
    def test_every_example_runs(
        self, page: str, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each example on the page runs in order, as a reader following the page in one folder
        would run it, and exits with status 0 (or the one the page says) showing what it shows."""
        monkeypatch.chdir(project)
        if page in BEFORE_PAGE:
            BEFORE_PAGE[page](project)
        failures = []
        for example in examples(page):
            key = (page, example.command)
            if key in CANNOT_RUN:
                continue
            if key in BEFORE:
                BEFORE[key](project)
            result = run(project, *example.argv, env=example.env)
            status = EXIT_STATUS.get(key, 0)
            if result.exit_code != status or not shows(example.output, result.output):
                failures.append(
                    f"{page}:{example.line}: {example.command}\n"
                    f"exit status {result.exit_code} (the page says {status}); it printed:\n"
                    f"{result.output}{result.exception or ''}"
                )
        assert [] == failures

    @pytest.mark.parametrize(("page", "command"), sorted(CANNOT_RUN))
    def test_examples_that_cannot_run_here_are_still_right(self, page: str, command: str) -> None:
        """An example that cannot run here names a command with working --help, and its command
        line parses (real options, right arguments)."""
        written = [example for example in examples(page) if example.command == command]
        assert written, f"'{command}' is no longer on {page}: take it off CANNOT_RUN"
        line = resolve(["mailer", *written[0].argv])
        assert [] == problems_with(line)
        assert 0 == CliRunner().invoke(app, [*line.path.split()[1:], "--help"]).exit_code
        line.command.make_context(line.path, list(line.words))

    def test_the_lists_of_examples_name_examples_on_their_pages(self) -> None:
        """BEFORE, EXIT_STATUS and CANNOT_RUN name only examples the pages still have."""
        written = {(page, example.command) for page in PAGES for example in examples(page)}
        assert set() == (set(BEFORE) | set(EXIT_STATUS) | set(CANNOT_RUN)) - written


class TestEditorsGuide:
    def test_the_complete_example_validates(
        self, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The guide's complete example issue is a valid issue, without warnings."""
        monkeypatch.chdir(project)
        block = next(b for b in fenced_blocks(section(PAGES[EDITORS], "A complete example")))
        assert "yaml" == block.lang
        (project / WINTER).write_text("\n".join(block.lines) + "\n", encoding="utf-8")

        checked = json.loads(run(project, "validate", "--json", WINTER).stdout)

        assert ([], []) == (checked["files"][0]["errors"], checked["files"][0]["warnings"])

    def test_every_segment_is_listed(self) -> None:
        """The guide's table of segments names every segment in mailer.toml."""
        newsletter = load_newsletter(PROJECT / "mailer.toml")
        guide = section(PAGES[EDITORS], "Audiences: sections for some members only")
        assert [] == [name for name in newsletter.segment_names if f"| `{name}` |" not in guide]
