"""Importing a list from wherever it was kept: a spreadsheet, Mailchimp or listmonk.

``mailer subscribers import PATH [--from auto|csv|mailchimp|listmonk]`` runs
:func:`import_list`, in these steps:

1. **open**: PATH is a CSV file, or a ZIP of CSV files (Mailchimp hands an
   audience over as one);
2. **recognise** each file's format by its header row (``--from`` forces one):
   Mailchimp by ``Email Address`` beside its own columns (``OPTIN_TIME``,
   ``LEID``...), listmonk by its import or export columns, anything else is a
   members CSV (:mod:`mailer.store.csvio`);
3. **check** every file with that format's reader (:mod:`mailer.store.mailchimp`,
   :mod:`mailer.store.listmonk`), through mailer.toml's column map
   (:mod:`mailer.store.columnmap`); every problem keeps its ``file:line``. An
   address given twice over the files is a problem, and the stickier status of
   the two is kept, so skipping the repeat never lets someone who left back in;
4. **write** the files, read again, in chunks of :data:`CHUNK` members, all in one
   transaction (:meth:`SubscriberStore.upserting`), which never moves anyone out
   of a sticky status, and count the outcome per status and per file.

The files are read as a stream, twice (to check, then to write), so that a list
of a million is never held in memory: only the problems, and 8 bytes per member
(a hash of each address, to find the addresses given twice; those few are then
looked at closely in a second reading). A problem refuses the import before
anything is written, as it always has.
"""

from __future__ import annotations

import gc
import zipfile
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from itertools import islice, pairwise
from pathlib import Path, PurePosixPath
from typing import BinaryIO, cast

from mailer.errors import Problem, SubscriberDataError, display_path
from mailer.store.columnmap import ColumnMap
from mailer.store.csvio import (
    FileProblems,
    RowResult,
    Table,
    check_line_lengths,
    member_rows,
    stream_table,
)
from mailer.store.emails import email_key
from mailer.store.listmonk import layout_of, listmonk_rows
from mailer.store.mailchimp import EMAIL, is_mailchimp, mailchimp_rows
from mailer.store.models import ImportCounts, ImportFormat, MemberRecord
from mailer.store.subscribers import SubscriberStore
from mailer.store.upsert import paused_gc

# A ZIP holding more than this once unpacked is refused (a list of a million is ~300 MB).
MAX_UNPACKED = 1 << 30
# Members planned and written at a time: big enough for bulk statements, small in memory.
CHUNK = 5000


@dataclass(frozen=True)
class FileOutcome:
    """One file of an import: its format, and its members by status after the import."""

    where: str
    format: ImportFormat
    statuses: dict[str, int]
    skipped: int


@dataclass(frozen=True)
class ImportReport:
    """What an import did (or, in a dry run, would do), in total and file by file."""

    counts: ImportCounts
    files: list[FileOutcome]
    problems: list[Problem]

    @property
    def formats(self) -> list[ImportFormat]:
        return sorted({file.format for file in self.files}, key=list(ImportFormat).index)

    @property
    def statuses(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for file in self.files:
            total.update(file.statuses)
        return dict(total)


def import_list(
    store: SubscriberStore,
    path: Path,
    *,
    source_format: ImportFormat = ImportFormat.auto,
    columns: ColumnMap | None = None,
    skip_invalid: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    """Import a list: all or nothing, or only the good rows with ``skip_invalid``.

    Raises SubscriberDataError when a file cannot be read, when a row has a
    problem and ``skip_invalid`` is off, or when no row at all could be read;
    nothing is written then.
    """
    columns = columns or ColumnMap()
    try:
        with paused_gc(), open_sources(path) as sources:
            checked = check(sources, source_format, columns)
            if checked.problems and (not skip_invalid or not checked.members):
                raise SubscriberDataError(checked.problems)
            by_file: list[Counter[str]] = [Counter() for _ in sources]
            totals = Counter[str]()
            source = f"import {display_path(path)}"
            with store.upserting(source=source, dry_run=dry_run) as upsert:
                members = checked.members_to_write(sources, source_format, columns)
                for written, chunk in enumerate(iter(lambda: list(islice(members, CHUNK)), [])):
                    # The collector is paused (it would walk every row over and over), so
                    # what a chunk leaves in reference cycles (SQLAlchemy's results) is
                    # freed here: 0.5 MB a chunk, 110 MB at a million members, otherwise.
                    gc.collect(1 if written % 50 else 2)
                    outcome = upsert([record for _, record in chunk])
                    for (origin, _), status in zip(chunk, outcome.outcomes, strict=True):
                        by_file[origin][status] += 1
                    totals.update(
                        added=outcome.counts.added,
                        updated=outcome.counts.updated,
                        unchanged=outcome.counts.unchanged,
                        suppressed=outcome.counts.suppressed,
                    )
    except FileProblems as error:
        raise SubscriberDataError(error.problems) from None
    report = [
        FileOutcome(where, found, dict(by_file[n]), checked.bad_rows[n])
        for n, (where, found) in enumerate(zip(checked.wheres, checked.formats, strict=True))
    ]
    counts = ImportCounts(
        totals["added"],
        totals["updated"],
        totals["unchanged"],
        sum(checked.bad_rows),
        totals["suppressed"],
    )
    return ImportReport(counts, report, checked.problems)


# -- checking ------------------------------------------------------------------------


@dataclass
class Checked:
    """What the first reading found: the problems, and the addresses given more than once."""

    wheres: list[str] = field(default_factory=list)
    formats: list[ImportFormat] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    bad_rows: list[int] = field(default_factory=list)  # per file
    members: int = 0  # good rows, each address counted once
    # The hash of each address given more than once (or sharing a hash with another);
    # for each such address, the record written and where it was first given.
    repeated: set[int] = field(default_factory=set)
    kept: dict[str, tuple[int, int, MemberRecord]] = field(default_factory=dict)

    def members_to_write(
        self, sources: Sequence[Source], source_format: ImportFormat, columns: ColumnMap
    ) -> Iterator[tuple[int, MemberRecord]]:
        """(file, record) of each address once, read again from the files."""
        for n, source in enumerate(sources):
            with reading(source, source_format, columns) as (_, rows):
                for line, result in rows:
                    if not isinstance(result, MemberRecord):
                        continue
                    if hash(key := email_key(result.email)) in self.repeated and key in self.kept:
                        origin, first_line, kept = self.kept[key]
                        if (origin, first_line) != (n, line):
                            continue  # a repeat: a problem, skipped
                        result = kept
                    yield n, result


def check_list(
    path: Path, source_format: ImportFormat = ImportFormat.auto, columns: ColumnMap | None = None
) -> Checked:
    """Read and check every file at ``path``, writing nothing; FileProblems if one cannot be read."""
    with open_sources(path) as sources:
        return check(sources, source_format, columns or ColumnMap())


def check(sources: Sequence[Source], source_format: ImportFormat, columns: ColumnMap) -> Checked:
    """Every file read once to find its problems and the addresses given twice; a few of
    them (the files with a repeated address) read again to say where."""
    checked = Checked()
    by_file: list[list[Problem]] = []
    hashes = array("q")
    for source in sources:
        with (
            check_line_lengths_of(source),
            reading(source, source_format, columns) as (
                found,
                rows,
            ),
        ):
            problems: list[Problem] = []
            bad_rows = 0
            for line, result in rows:
                if isinstance(result, MemberRecord):
                    hashes.append(hash(email_key(result.email)))
                else:
                    problems.extend(Problem(source.where, line, message) for message in result)
                    bad_rows += 1
        checked.wheres.append(source.where)
        checked.formats.append(found)
        checked.bad_rows.append(bad_rows)
        by_file.append(problems)
    checked.members = len(hashes)
    checked.repeated = _repeated(hashes)
    del hashes
    if checked.repeated:
        _find_repeats(checked, by_file, sources, source_format, columns)
    for problems in by_file:
        problems.sort(key=lambda problem: problem.line)  # repeats among the rows' problems
        checked.problems.extend(problems)
    return checked


def _repeated(hashes: array[int]) -> set[int]:
    """The values found more than once, sorted a slice of values at a time (a sorted
    list costs 40 bytes a value; the array holds 8)."""
    found: set[int] = set()
    for part in range(_PARTS):
        ordered = sorted(h for h in hashes if h % _PARTS == part)
        found.update(a for a, b in pairwise(ordered) if a == b)
    return found


_PARTS = 16


def _find_repeats(
    checked: Checked,
    by_file: list[list[Problem]],
    sources: Sequence[Source],
    source_format: ImportFormat,
    columns: ColumnMap,
) -> None:
    """Each address given twice: a problem at the repeat; the first kept, with the stickier status."""
    given: defaultdict[str, list[tuple[int, int, MemberRecord]]] = defaultdict(list)
    for n, source in enumerate(sources):
        with reading(source, source_format, columns) as (_, rows):
            for line, result in rows:
                if isinstance(result, MemberRecord):
                    key = email_key(result.email)
                    if hash(key) in checked.repeated:
                        given[key].append((n, line, result))
    for key, places in given.items():
        origin, first_line, kept = places[0]
        for n, line, repeat in places[1:]:
            place = (
                f"on line {first_line}"
                if origin == n
                else f"in {checked.wheres[origin]}:{first_line}"
            )
            by_file[n].append(
                Problem(checked.wheres[n], line, f"{repeat.email!r} is already {place}")
            )
            checked.bad_rows[n] += 1
            checked.members -= 1
            kept = _stickier(kept, repeat)
        checked.kept[key] = (origin, first_line, kept)


# -- opening and recognising ---------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One CSV file of an import, which can be opened (as bytes) as often as needed."""

    where: str  # its name in messages
    open: Callable[[], BinaryIO]


@contextmanager
def open_sources(path: Path) -> Iterator[list[Source]]:
    """Each CSV file at ``path``: the file itself, or each CSV in a ZIP (open meanwhile)."""
    where = display_path(path)
    try:
        with path.open("rb") as stream:
            zipped = stream.read(4) == b"PK\x03\x04"
    except OSError as error:
        raise FileProblems([Problem(where, 0, f"cannot read the file: {error.strerror}")]) from None
    if not zipped:
        yield [Source(where, lambda: path.open("rb"))]
        return
    with ExitStack() as stack:
        try:
            archive = stack.enter_context(zipfile.ZipFile(path))
            members = [info for info in archive.infolist() if _is_csv(info)]
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError) as error:
            message = f"cannot read the ZIP file ({error}); download the export again"
            raise FileProblems([Problem(where, 0, message)]) from None
        if sum(info.file_size for info in members) > MAX_UNPACKED:
            message = f"the ZIP file unpacks to more than {MAX_UNPACKED >> 20} MB; import its CSV files one by one"
            raise FileProblems([Problem(where, 0, message)])
        if not members:
            message = "the ZIP file holds no CSV file; is it the export you meant?"
            raise FileProblems([Problem(where, 0, message)])
        yield [
            Source(f"{where}/{info.filename}", _opener(archive, info, where))
            for info in sorted(members, key=lambda info: info.filename)
        ]


def _opener(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> Callable[[], BinaryIO]:
    def open_member() -> BinaryIO:
        try:
            return cast(BinaryIO, archive.open(info))
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as error:
            message = f"cannot read the ZIP file ({error}); download the export again"
            raise FileProblems([Problem(where, 0, message)]) from None

    return open_member


@contextmanager
def check_line_lengths_of(source: Source) -> Iterator[None]:
    """No line of the file is too long: checked in bounded memory before it is parsed."""
    with source.open() as stream:
        try:
            check_line_lengths(stream, source.where)
        except zipfile.BadZipFile as error:  # a damaged member shows when it is read
            message = f"cannot read the ZIP file ({error}); download the export again"
            raise FileProblems([Problem(source.where, 0, message)]) from None
    yield


def _is_csv(info: zipfile.ZipInfo) -> bool:
    name = PurePosixPath(info.filename)
    hidden = name.name.startswith(".") or "__MACOSX" in name.parts  # macOS's copies
    return not info.is_dir() and name.suffix.lower() == ".csv" and not hidden


def recognise(header: list[str]) -> ImportFormat:
    """A file's format, by its header row."""
    if is_mailchimp(header):
        return ImportFormat.mailchimp
    if layout_of(header):
        return ImportFormat.listmonk
    return ImportFormat.csv


@contextmanager
def reading(
    source: Source, source_format: ImportFormat, columns: ColumnMap
) -> Iterator[tuple[ImportFormat, Iterator[RowResult]]]:
    """One CSV file's format (the one given, or the one its header shows), and its rows
    read in that format as the file is read."""
    with source.open() as stream, stream_table(stream, source.where) as table:
        if source_format is ImportFormat.auto:
            source_format = recognise(table.header)
        yield source_format, _rows_of(table, source_format, columns)


def _rows_of(table: Table, source_format: ImportFormat, columns: ColumnMap) -> Iterator[RowResult]:
    if source_format is ImportFormat.mailchimp:
        _expect(EMAIL in (cell.strip() for cell in table.header), table, _NOT_MAILCHIMP)
        return mailchimp_rows(table, columns)
    if source_format is ImportFormat.listmonk:
        _expect(layout_of(table.header) is not None, table, _NOT_LISTMONK)
        return listmonk_rows(table, columns)
    rows = member_rows(table, columns.columns)
    if not columns.values:
        return rows
    return (
        (line, columns.apply(result) if isinstance(result, MemberRecord) else result)
        for line, result in rows
    )


_NOT_MAILCHIMP = f"this is not a Mailchimp export: the header row has no '{EMAIL}' column"
_NOT_LISTMONK = (
    "this is not a listmonk CSV: its columns should be email,name,attributes (import) "
    "or uuid,email,name,attributes,status,created_at,updated_at (export)"
)


def _expect(condition: bool, table: Table, message: str) -> None:
    if not condition:
        raise FileProblems([Problem(table.where, table.header_line, message)])


# -- repeats -------------------------------------------------------------------------


def _stickier(kept: MemberRecord, repeat: MemberRecord) -> MemberRecord:
    """The kept record, with the repeat's status if only the repeat says the member left."""
    if repeat.status is None or not repeat.status.sticky:
        return kept
    if kept.status is not None and kept.status.sticky:
        return kept
    return kept._replace(
        status=repeat.status,
        status_changed_at=repeat.status_changed_at,
        status_reason=repeat.status_reason,
    )
