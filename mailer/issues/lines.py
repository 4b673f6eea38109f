"""Line-by-line checks for a file YAML could not read: every other mistake, in the same run.

PyYAML stops at the first syntax error, so an editor with three tabs and two
unquoted colons would fix one problem per run. Once the file has failed to
parse, :func:`line_problems` reads it line by line and reports the mistakes a
single line shows by itself: a tab where YAML needs spaces, and a colon followed
by a space inside a plain (unquoted) value. Text inside a block after ``|`` or
``>``, and inside quotes, is left alone: there both are just text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["line_problems"]

# Indentation, any "- " list markers, then a plain key and its colon (or none).
_LINE = re.compile(
    r"(?P<indent> *)(?P<dashes>(?:- +)*)"
    r"(?:(?P<key>[^\s#'\"\[\]{}&*!|>%@`-][^:#\t]*?|\"[^\"]*\"|'[^']*')[ \t]*:(?:[ \t]+|$))?"
    r"(?P<value>.*)"
)
_BLOCK = re.compile(r"[|>][-+0-9]*[ \t]*(?:#.*)?")
_COMMENT = re.compile(r"(?:^|[ \t])#.*")
_INNER_COLON = re.compile(r":(?:[ \t]|$)")


@dataclass
class _Scan:
    block_column: int | None = None  # inside a block scalar: the column of its key
    quote: str | None = None  # inside a quoted value that runs over several lines


def line_problems(text: str, tab: str, colon: str) -> Iterator[tuple[int, str]]:
    """(line, message) for each line with a tab (``tab``) or an unquoted ': ' (``colon``)."""
    scan = _Scan()
    for number, line in enumerate(text.splitlines(), start=1):
        problem = _judge(line, scan, tab, colon)
        if problem is not None:
            yield number, problem


def _judge(line: str, scan: _Scan, tab: str, colon: str) -> str | None:
    if scan.block_column is not None:
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip() or indent > scan.block_column:
            return None  # text of the block
        scan.block_column = None
    if scan.quote is not None:
        if _closes(line, scan.quote):
            scan.quote = None
        return None
    match = _LINE.fullmatch(line)
    if match is None:  # pragma: no cover - the pattern matches any line
        return None
    value = match["value"]
    key_column = len(match["indent"]) + len(match["dashes"])
    if match["key"] is not None and _BLOCK.fullmatch(value.strip()):
        scan.block_column = key_column
        return tab if "\t" in line[: match.start("value")] else None
    if value[:1] in ("'", '"'):
        if not _closes(value[1:], value[0]):
            scan.quote = value[0]
        return tab if "\t" in line[: match.start("value")] else None
    plain = _COMMENT.sub("", value)
    if "\t" in line[: match.start("value")] or "\t" in plain:
        return tab
    if value[:1] not in ("[", "{") and _INNER_COLON.search(plain.strip()):
        return colon
    return None


def _closes(text: str, quote: str) -> bool:
    """Whether a quoted value that is open closes in this text ('' and \\" do not close it)."""
    if quote == "'":
        return re.search(r"(?<!')'(?!')", text.replace("''", "")) is not None
    return re.search(r'(?<!\\)"', text) is not None
