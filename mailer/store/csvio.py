"""Members as CSV: reading the editors' spreadsheet exports, and writing ones that read back.

The format, as editors have it: a header row; UTF-8 with or without a BOM;
commas or semicolons between cells. Known columns (any case, spaces or hyphens
for underscores, a few aliases such as ``E-mail`` or ``organization``):

    email, name, organisation, region, tags,
    status, status_changed_at, status_reason, created_at

``tags`` holds several tags separated by ``;`` or ``,``. Every other named column
is kept as an attribute of the member (``Member type`` becomes ``member_type``).

Cells a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return: OWASP's list) are written with a ``'`` in
front, which spreadsheets show as text; import takes exactly that ``'`` off
again, so an export imports back unchanged (:func:`neutralise`, :func:`restore`).

A column missing from the file leaves what is stored alone; an empty cell in a
column that is there clears the value. Every row problem is collected with its
line (``members.csv:17: 'jane@' is not a valid email address: ...``) so editors
can fix the whole file in one go.

Limits, checked before anything is stored: a line of the file is at most
:data:`MAX_LINE_BYTES` (checked as the file is read, in bounded memory, so a file
with one enormous line is refused at once), and no cell may hold a NUL character,
which PostgreSQL cannot store (refused on SQLite too, so a store moves between the
two by export and import).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from mailer.errors import Problem, SubscriberDataError, display_path
from mailer.headersafety import one_line, profile_text_problem
from mailer.store.emails import email_key
from mailer.store.models import (
    ImportCounts,
    MemberRecord,
    Subscriber,
    SubscriberStatus,
    column_key,
)
from mailer.store.readers import email_cell, unique_tags
from mailer.store.subscribers import SubscriberStore
from mailer.store.upsert import paused_gc

FIELDS = ("email", "name", "organisation", "region", "tags")
STATUS_FIELDS = ("status", "status_changed_at", "status_reason", "created_at")
KNOWN = FIELDS + STATUS_FIELDS
TAG_SEPARATORS = re.compile(r"[;,]")
_STATUS_NAMES = ", ".join(status.value for status in SubscriberStatus)
# No member's row comes near this; a longer line is not a list of members.
MAX_LINE_BYTES = 100_000
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_CHUNK = 1 << 20
# A cell a spreadsheet runs as a formula (OWASP, CSV injection), after any quotes we added.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")


def neutralise(cell: str) -> str:
    """The cell as an export writes it: a ``'`` before anything a spreadsheet would run.

    A cell that already starts with quotes before such a character gets one more, so
    that :func:`restore` gives back exactly what was stored.
    """
    return "'" + cell if _FORMULA.match(cell) else cell


def restore(cell: str) -> str:
    """What :func:`neutralise` wrote, as it was: one leading ``'`` off, only where it added one."""
    return cell[1:] if cell[:1] == "'" and _FORMULA.match(cell, 1) else cell


class FileProblems(Exception):
    """Problems with the file as a whole: no row can be read, so none can be skipped."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = list(problems)


# -- one row ------------------------------------------------------------------------
# Plain functions rather than a pydantic model per row: at 100,000 rows, pydantic's
# per-field Python validators cost as much as reading, checking and storing together.


@dataclass(frozen=True)
class Layout:
    """Where each column is, worked out once from the header row."""

    width: int
    known: tuple[tuple[int, str], ...]
    attributes: tuple[tuple[int, str], ...]
    unnamed: tuple[int, ...]


def _layout(names: Sequence[str | None]) -> Layout:
    return Layout(
        width=len(names),
        known=tuple((i, name) for i, name in enumerate(names) if name in KNOWN),
        attributes=tuple((i, name) for i, name in enumerate(names) if name and name not in KNOWN),
        unnamed=tuple(i for i, name in enumerate(names) if name is None),
    )


def parse_row(layout: Layout, line: int, cells: list[str]) -> MemberRecord | list[str]:
    """The row as a record, or every problem with it."""
    if len(cells) > layout.width:
        return [
            f"this row has {len(cells)} cells but the header row has {layout.width}; "
            "is there an unquoted comma or semicolon in a cell?"
        ]
    if len(cells) < layout.width:  # some tools drop trailing empty cells
        cells = cells + [""] * (layout.width - len(cells))
    cells = [restore(cell) if cell[:1] == "'" else cell for cell in cells]
    problems = [
        f"column {i + 1} has a value but no name in the header row; name the column or delete it"
        for i in layout.unnamed
        if cells[i].strip()
    ]
    if "\x00" in "".join(cells):
        return [*problems, _nul_problem(layout, cells)]
    given = {name: cells[i].strip() for i, name in layout.known}
    email = email_cell(given["email"], problems)
    name = profile_text("name", given.get("name"), problems)
    organisation = profile_text("organisation", given.get("organisation"), problems)
    region = profile_text("region", given.get("region"), problems)
    attributes = {key: cells[i].strip() or None for i, key in layout.attributes}
    if attributes.get("first_name"):
        attributes["first_name"] = profile_text("first_name", attributes["first_name"], problems)
    status = _status(given.get("status"), problems)
    status_changed_at = _when(given, "status_changed_at", problems)
    created_at = _when(given, "created_at", problems)
    if problems:
        return problems
    tags = given.get("tags")
    return MemberRecord(  # positionally: 100,000 calls with keywords cost a tenth of a second
        email,
        line,
        name,
        organisation,
        region,
        None if tags is None else split_tags(tags),
        attributes,
        status,
        status_changed_at,
        given.get("status_reason") or None,
        created_at,
    )


def _nul_problem(layout: Layout, cells: Sequence[str]) -> str:
    names = dict(layout.known + layout.attributes)
    column = next(i for i, cell in enumerate(cells) if "\x00" in cell)
    name = f"'{names[column]}'" if column in names else str(column + 1)
    return (
        f"column {name} holds a NUL character (byte 0x00), which the database cannot keep; "
        "delete it (a file saved as UTF-16 is full of them: save it as 'CSV UTF-8')"
    )


@lru_cache(maxsize=4096)  # a list repeats a few combinations of tags many times
def split_tags(cell: str) -> tuple[str, ...]:
    """'youth; in-person, Youth' -> ('youth', 'in-person'): first spelling and order kept."""
    return unique_tags(TAG_SEPARATORS.split(cell))


def profile_text(field: str, cell: str | None, problems: list[str]) -> str | None:
    """A name, organisation or region on one line; refused if it holds an encoded-word opener.

    The text may reach a mail header (To, or a subject through a merge tag): see
    :mod:`mailer.headersafety`.
    """
    if not cell:
        return cell
    problem = profile_text_problem(field, cell)
    if problem:
        problems.append(problem)
    return one_line(cell)


def _status(cell: str | None, problems: list[str]) -> SubscriberStatus | None:
    if not cell:
        return None
    try:
        return SubscriberStatus(cell.lower())
    except ValueError:
        problems.append(f"'{cell}' is not a status; use one of {_STATUS_NAMES}")
        return None


def _when(given: dict[str, str], column: str, problems: list[str]) -> dt.datetime | None:
    cell = given.get(column)
    if not cell:
        return None
    try:
        parsed = dt.datetime.fromisoformat(cell)
    except ValueError:
        problems.append(
            f"'{cell}' in {column} is not a date; write it as 2024-05-01 or 2024-05-01T09:30:00+00:00"
        )
        return None
    # A bare date or time from a spreadsheet is taken as UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


# -- the file -----------------------------------------------------------------------


# A row as read: its line, and the member or every problem with the row.
RowResult = tuple[int, MemberRecord | list[str]]


@dataclass
class ParsedMembers:
    """Every good row of a members CSV, and every problem with the others."""

    path: str
    records: list[MemberRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    bad_rows: int = 0

    @classmethod
    def of(cls, path: str, rows: Iterable[RowResult]) -> ParsedMembers:
        """The rows of one file, held together (an import streams them instead)."""
        parsed = cls(path)
        for line, result in rows:
            if isinstance(result, MemberRecord):
                parsed.records.append(result)
            else:
                parsed.problems.extend(Problem(path, line, message) for message in result)
                parsed.bad_rows += 1
        return parsed


def read_members(path: Path) -> ParsedMembers:
    """Read a members CSV; row problems are collected, file problems raise FileProblems."""
    where = display_path(path)
    try:
        with path.open("rb") as stream:
            check_line_lengths(stream, where)  # before the whole file is in memory
            stream.seek(0)
            data = stream.read()
    except OSError as error:
        raise FileProblems([Problem(where, 0, f"cannot read the file: {error.strerror}")]) from None
    return _parse(data, where)


def check_line_lengths(stream: BinaryIO, where: str) -> None:
    """FileProblems naming the first line longer than MAX_LINE_BYTES; reads 1 MiB at a time."""
    line, run = 1, 0  # the line we are in, and its bytes so far
    while chunk := stream.read(_CHUNK):
        pieces = _LINE_BREAK.split(chunk)
        for index, piece in enumerate(pieces):
            if index:
                line, run = line + 1, 0
            run += len(piece)
            if run > MAX_LINE_BYTES:
                message = (
                    f"this line is longer than {MAX_LINE_BYTES:,} bytes, far more than any "
                    "member's row; is this the right file?"
                )
                raise FileProblems([Problem(where, line, message)])
        if chunk.endswith(b"\r"):  # a CR LF split between chunks is one line break
            next_byte = stream.read(1)
            if next_byte and next_byte != b"\n":
                stream.seek(-1, io.SEEK_CUR)


def parse_members(
    data: bytes, where: str, columns: Mapping[str, str] | None = None
) -> ParsedMembers:
    """Parse the bytes of a members CSV named ``where`` in messages.

    ``columns`` renames columns (by :func:`column_key` of their heading) before
    they are read: mailer.toml's ``[imports]`` column map.
    """
    check_line_lengths(io.BytesIO(data), where)
    return _parse(data, where, columns)


def _parse(data: bytes, where: str, columns: Mapping[str, str] | None = None) -> ParsedMembers:
    text = _decode(data, where)
    top = text.split("\n", 1)[0]
    delimiter = ";" if top.count(";") > top.count(",") else ","
    # strict: a stray quote is reported where it is, not as a confusing row further down.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    parsed = ParsedMembers(where)
    rows = _rows(reader, where)
    header_row = next(rows, None)
    if header_row is None:
        message = "the file is empty; expected a header row with an 'email' column"
        raise FileProblems([Problem(where, 1, message)])
    header_line, header = header_row
    layout = _layout(_header(header, where, header_line, columns or {}))
    seen: dict[str, int] = {}  # address key -> line it was first on
    for line, cells in rows:
        result = parse_row(layout, line, cells)
        if isinstance(result, MemberRecord):
            first_line = seen.setdefault(email_key(result.email), line)
            if first_line == line:
                parsed.records.append(result)
                continue
            result = [f"{result.email!r} is already on line {first_line}"]
        parsed.problems.extend(Problem(where, line, message) for message in result)
        parsed.bad_rows += 1
    return parsed


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start : error.start + 1].hex()
        raise FileProblems(
            [
                Problem(
                    where,
                    line,
                    f"this line is not UTF-8 text (byte 0x{byte}); save the spreadsheet as "
                    "'CSV UTF-8' and import that file",
                )
            ]
        ) from None


def _header(
    cells: list[str], where: str, line: int, columns: Mapping[str, str]
) -> list[str | None]:
    """Column names by position; None for unnamed columns."""
    keys = [column_key(cell) for cell in cells]
    names: list[str | None] = [columns.get(key, key) or None for key in keys]
    problems = [
        Problem(where, line, f"the column '{name}' appears twice in the header row")
        for name in sorted({name for name in names if name and names.count(name) > 1})
    ]
    if "email" not in names:
        found = ", ".join(cell.strip() for cell in cells if cell.strip())
        problems.append(
            Problem(
                where,
                line,
                f"the header row has no 'email' column (it has: {found}); "
                "the first row must name the columns, one of them 'email'",
            )
        )
    if problems:
        raise FileProblems(problems)
    return names


@dataclass
class Table:
    """A CSV file's header row, then its non-blank rows, each with the line it starts on."""

    where: str
    header_line: int
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]


def member_rows(table: Table, columns: Mapping[str, str] | None = None) -> Iterator[RowResult]:
    """Each row of a members CSV as a member or its problems, as it is read.

    Unlike :func:`parse_members`, an address given twice is not looked for: the
    import does that over every file at once (:mod:`mailer.store.importing`).
    """
    layout = _layout(_header(table.header, table.where, table.header_line, columns or {}))
    for line, cells in table.rows:
        yield line, parse_row(layout, line, cells)


@contextmanager
def stream_table(stream: BinaryIO, where: str) -> Iterator[Table]:
    """:func:`read_table` of a file as it is read: a line at a time, never held whole.

    The rows are read inside the ``with`` block (which closes ``stream``); a byte that
    is not UTF-8 raises FileProblems naming its line when the reading reaches it.
    """
    with io.TextIOWrapper(stream, encoding="utf-8-sig", newline="") as text:
        try:
            top = text.readline()
            text.seek(0)
        except UnicodeDecodeError:
            raise _not_utf8(stream, where) from None
        delimiter = ";" if top.count(";") > top.count(",") else ","
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        rows = _decoded(_rows(reader, where), stream, where)
        first = next(rows, None)
        if first is None:
            raise FileProblems([Problem(where, 1, "the file is empty; expected a header row")])
        yield Table(where, first[0], first[1], rows)


def _decoded(
    rows: Iterator[tuple[int, list[str]]], stream: BinaryIO, where: str
) -> Iterator[tuple[int, list[str]]]:
    try:
        yield from rows
    except UnicodeDecodeError:
        raise _not_utf8(stream, where) from None


def _not_utf8(stream: BinaryIO, where: str) -> FileProblems:
    """The problem with the first line of ``stream`` that is not UTF-8, as :func:`_decode` words it."""
    stream.seek(0)
    for line, data in enumerate(stream, start=1):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as error:
            byte = data[error.start : error.start + 1].hex()
            return FileProblems([Problem(where, line, _NOT_UTF8.format(byte=byte))])
    return FileProblems([Problem(where, 1, _NOT_UTF8.format(byte="??"))])


_NOT_UTF8 = (
    "this line is not UTF-8 text (byte 0x{byte}); save the spreadsheet as "
    "'CSV UTF-8' and import that file"
)


def read_table(data: bytes, where: str) -> Table:
    """Any CSV, read as :func:`parse_members` reads a members CSV (BOM, commas or semicolons).

    For the formats of other tools (:mod:`mailer.store.importing`); rows are read lazily.
    """
    text = _decode(data, where)
    top = text.split("\n", 1)[0]
    delimiter = ";" if top.count(";") > top.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows = _rows(reader, where)
    first = next(rows, None)
    if first is None:
        raise FileProblems([Problem(where, 1, "the file is empty; expected a header row")])
    return Table(where, first[0], first[1], rows)


def _rows(reader: Any, where: str) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) for each non-blank row; the line is where the row starts."""
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            message = f"cannot read this row as CSV ({error}); check the double quotes in it"
            raise FileProblems([Problem(where, line, message)]) from None
        if "".join(cells).strip():
            yield line, cells
        line = reader.line_num + 1


# -- importing ----------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    counts: ImportCounts
    problems: list[Problem]


def import_members(
    store: SubscriberStore, path: Path, *, skip_invalid: bool = False, dry_run: bool = False
) -> ImportResult:
    """Import a members CSV: all or nothing, or only the good rows with ``skip_invalid``.

    Raises SubscriberDataError when the file cannot be read, or when a row has a
    problem and ``skip_invalid`` is off; nothing is written then.
    """
    try:
        with paused_gc():
            parsed = read_members(path)
    except FileProblems as error:
        raise SubscriberDataError(error.problems) from None
    if parsed.problems and not skip_invalid:
        raise SubscriberDataError(parsed.problems)
    counts = store.upsert_many(parsed.records, source=f"import {parsed.path}", dry_run=dry_run)
    counts = dataclasses.replace(counts, skipped=parsed.bad_rows)
    return ImportResult(counts, parsed.problems)


# -- exporting ----------------------------------------------------------------------


def export_columns(subscribers: Sequence[Subscriber]) -> list[str]:
    """The export's header: the known columns, then every attribute in alphabetical order."""
    attributes = sorted({key for subscriber in subscribers for key in subscriber.attributes})
    return [*KNOWN, *attributes]


def export_row(subscriber: Subscriber, columns: Sequence[str]) -> list[str]:
    fixed = {
        "email": subscriber.email,
        "name": subscriber.name,
        "organisation": subscriber.organisation,
        "region": subscriber.region,
        "tags": "; ".join(subscriber.tags),
        "status": subscriber.status.value,
        "status_changed_at": _timestamp(subscriber.status_changed_at),
        "status_reason": subscriber.status_reason,
        "created_at": _timestamp(subscriber.created_at),
    }
    return [
        neutralise(fixed[name] if name in fixed else subscriber.attributes.get(name, ""))
        for name in columns
    ]


def write_members(
    subscribers: Iterable[Subscriber], stream: TextIO, attributes: Sequence[str] | None = None
) -> int:
    """Write members as CSV that ``import`` reads back unchanged, and that no spreadsheet
    runs as formulas; returns how many.

    ``attributes``: every attribute name among the members, sorted (the store's
    :meth:`~SubscriberStore.attribute_names`); the members are then written as they
    come, never held together. Without it they are read first to find the names.
    """
    if attributes is None:
        subscribers = list(subscribers)
        columns = export_columns(subscribers)
    else:
        columns = [*KNOWN, *attributes]
    writer = csv.writer(stream)
    writer.writerow(columns)
    count = 0
    for subscriber in subscribers:
        writer.writerow(export_row(subscriber, columns))
        count += 1
    return count


def _timestamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")
