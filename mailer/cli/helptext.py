"""One way of writing `--help` for every command: metavars, usage lines, wrapped text.

Typer's rich help, left to itself, shows each value's Python type (``<bool>`` after
every flag, ``<list[Path]>``, ``<int range> [1<=x<=65535]``), writes usage lines as
``{PATH}...`` and ``[[CSV]]``, keeps the line breaks of docstrings (so sentences break
wherever the source did) and folds long choice lists mid-word. :func:`tidy` fixes
that for the whole command tree, and :func:`install` makes Typer show:

* a flag: no metavar; an option's value: its metavar (``N``, ``PATH``, ``HOST``);
* choices in the help text ("One of: active, pending, …"), a range as "From 1 to 200.";
* arguments as ``ISSUE``, ``[CSV]``, ``PATH...`` in usage lines and panels;
* help as paragraphs that rich wraps to the terminal.

It replaces a few methods of Typer's parameter classes (pyproject.toml pins Typer to
0.29.x; :func:`install` refuses a release without them), and tests/cli/test_help.py
renders every command's help at 80 columns.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

from typer.core import TyperArgument, TyperOption

__all__ = ["install", "reflow", "tidy"]

_ELLIPSIS = "..."
# A paragraph line that starts a list item, or Typer's "keep my line breaks" marker.
_KEEPS_BREAK = re.compile(r"^\s*(?:[-*•] |\d+\. |\x08)")


def reflow(text: str | None) -> str | None:
    """Each paragraph on one line (lists excepted), so rich wraps it to the terminal."""
    if not text:
        return text
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in paragraph.strip().splitlines()]
        if len(lines) > 1 and any(_KEEPS_BREAK.match(line) for line in lines):
            paragraphs.append("\n".join(lines))
        else:
            paragraphs.append(" ".join(lines))
    return "\n\n".join(paragraphs)


def _metavar(param: TyperOption) -> str:
    """An option value's name for people: ``N`` for a number, ``PATH``, else its own name."""
    desc = param.type_descriptor
    if desc.is_ranged or desc.annotation in (int, float):
        return "N"
    if desc.is_path:
        return "PATH"
    return (param.name or "value").upper()


def _choices(param: TyperOption | TyperArgument) -> list[str]:
    desc = param.type_descriptor
    if not desc.is_choice or not desc.choices:
        return []
    return [c.value if isinstance(c, Enum) else str(c) for c in desc.choices]


def _range(param: TyperOption | TyperArgument) -> str:
    low, high = param.min, param.max
    if isinstance(param, TyperOption) and param.count:
        return ""
    if low is not None and high is not None:
        return f"From {low} to {high}."
    if low is not None:
        return f"At least {low}."
    if high is not None:
        return f"At most {high}."
    return ""


def _tidy_param(param: TyperOption | TyperArgument) -> None:
    param.help = reflow(param.help)
    extra = []
    if choices := _choices(param):
        extra.append("One of: " + ", ".join(choices) + ".")
    if limits := _range(param):
        extra.append(limits)
    added = " ".join(extra)
    if added and param.help and not param.help.endswith(added):  # once, however often tidied
        param.help = f"{param.help} {added}"
    if isinstance(param, TyperOption) and not param.is_flag and param.metavar is None:
        param.metavar = _metavar(param)
    if isinstance(param, TyperArgument) and param.metavar:
        # "[ISSUE]" and "EMAIL..." are written by the usage line itself.
        param.metavar = param.metavar.strip("[]").removesuffix(_ELLIPSIS)


def tidy(command: Any) -> None:
    """Tidy a command, its parameters and its subcommands (see the module docstring)."""
    command.help = reflow(command.help)
    command.short_help = reflow(command.short_help)
    for param in command.params:
        _tidy_param(param)
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)


# -- how Typer shows a parameter --------------------------------------------------------------


def _option_type(self: TyperOption, ctx: Any) -> str | None:
    """A flag shows nothing; a value, its metavar (set by :func:`tidy`)."""
    return None if self.is_flag or self.count else self.metavar


def _argument_type(self: TyperArgument, ctx: Any) -> str | None:
    return None  # the name column already says what it is: ISSUE, PATH


def _argument_usage(self: TyperArgument) -> str:
    name = (self.metavar or self.name or "").upper()
    shown = name if self.required else f"[{name}]"
    return shown + (_ELLIPSIS if self.nargs != 1 else "")


def _argument_name(self: TyperArgument) -> str:
    name = (self.metavar or self.name or "").upper()
    return name + (_ELLIPSIS if self.nargs != 1 else "")


def _no_range(self: Any) -> None:
    return None  # said in the help text instead: "From 1 to 65535."


_installed = False


def install() -> None:
    """Make Typer write parameters as the module docstring says (once per process)."""
    global _installed
    if _installed:
        return
    patches: list[tuple[type, str, Any]] = [
        (TyperOption, "display_type_rich", _option_type),
        (TyperOption, "_get_number_range_help_str", _no_range),
        (TyperArgument, "display_type_rich", _argument_type),
        (TyperArgument, "_usage_display_name", _argument_usage),
        (TyperArgument, "_rich_display_name", _argument_name),
        (TyperArgument, "_get_number_range_help_str", _no_range),
    ]
    for cls, name, function in patches:
        if not hasattr(cls, name):  # a Typer release that writes help another way
            raise RuntimeError(
                f"typer.core.{cls.__name__} has no {name}: see mailer/cli/helptext.py"
            )
        setattr(cls, name, function)
    _installed = True
