"""Importing a list from wherever it was kept: a spreadsheet, Mailchimp or listmonk.

``mailer subscribers import PATH [--from auto|csv|mailchimp|listmonk]`` runs
:func:`import_list`, in five steps:

1. **open**: PATH is a CSV file, or a ZIP of CSV files (Mailchimp hands an
   audience over as one);
2. **recognise** each file's format by its header row (``--from`` forces one):
   Mailchimp by ``Email Address`` beside its own columns (``OPTIN_TIME``,
   ``LEID``...), listmonk by its import or export columns, anything else is a
   members CSV (:mod:`mailer.store.csvio`);
3. **read** it with that format's reader (:mod:`mailer.store.mailchimp`,
   :mod:`mailer.store.listmonk`), through mailer.toml's column map
   (:mod:`mailer.store.columnmap`); every problem keeps its ``file:line``;
4. **merge** the files: an address given twice is a problem, and the stickier
   status of the two is kept, so skipping the repeat never lets someone who
   left back in;
5. **write** every member in one transaction (:meth:`SubscriberStore.upsert_outcomes`),
   which never moves anyone out of a sticky status, and count the outcome per
   status and per file.
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mailer.errors import Problem, SubscriberDataError, display_path
from mailer.store.columnmap import ColumnMap
from mailer.store.csvio import (
    FileProblems,
    ParsedMembers,
    Table,
    check_line_lengths,
    parse_members,
    read_table,
)
from mailer.store.emails import email_key
from mailer.store.listmonk import layout_of, read_listmonk
from mailer.store.mailchimp import EMAIL, is_mailchimp, read_mailchimp
from mailer.store.models import ImportCounts, ImportFormat, MemberRecord
from mailer.store.subscribers import SubscriberStore
from mailer.store.upsert import paused_gc

# A ZIP holding more than this once unpacked is refused (a list of a million is ~300 MB).
MAX_UNPACKED = 1 << 30


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
    try:
        with paused_gc():
            files = read_list(path, source_format, columns or ColumnMap())
    except FileProblems as error:
        raise SubscriberDataError(error.problems) from None
    merged = merge([parsed for parsed, _ in files])
    if merged.problems and (not skip_invalid or not merged.records):
        raise SubscriberDataError(merged.problems)
    outcome = store.upsert_outcomes(
        merged.records, source=f"import {display_path(path)}", dry_run=dry_run
    )
    by_file: list[Counter[str]] = [Counter() for _ in files]
    for origin, status in zip(merged.origins, outcome.outcomes, strict=True):
        by_file[origin][status] += 1
    report = [
        FileOutcome(parsed.path, found, dict(by_file[n]), merged.bad_rows[n])
        for n, (parsed, found) in enumerate(files)
    ]
    skipped = sum(merged.bad_rows)
    counts = ImportCounts(
        outcome.counts.added,
        outcome.counts.updated,
        outcome.counts.unchanged,
        skipped,
        outcome.counts.suppressed,
    )
    return ImportReport(counts, report, merged.problems)


# -- opening and recognising ---------------------------------------------------------


def read_list(
    path: Path, source_format: ImportFormat, columns: ColumnMap
) -> list[tuple[ParsedMembers, ImportFormat]]:
    """Each CSV file at ``path`` (one, or those in a ZIP), read in its format."""
    return [read_file(data, where, source_format, columns) for where, data in open_sources(path)]


def open_sources(path: Path) -> list[tuple[str, bytes]]:
    """(name for messages, bytes) of each CSV file: the file itself, or each CSV in a ZIP."""
    where = display_path(path)
    try:
        with path.open("rb") as stream:
            zipped = stream.read(4) == b"PK\x03\x04"
            stream.seek(0)
            if not zipped:
                check_line_lengths(stream, where)  # before the whole file is in memory
                stream.seek(0)
            data = stream.read()
    except OSError as error:
        raise FileProblems([Problem(where, 0, f"cannot read the file: {error.strerror}")]) from None
    if not zipped:
        return [(where, data)]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [info for info in archive.infolist() if _is_csv(info)]
            if sum(info.file_size for info in members) > MAX_UNPACKED:
                message = f"the ZIP file unpacks to more than {MAX_UNPACKED >> 20} MB; import its CSV files one by one"
                raise FileProblems([Problem(where, 0, message)])
            found = [
                (f"{where}/{info.filename}", archive.read(info))
                for info in sorted(members, key=lambda info: info.filename)
            ]
            for name, content in found:  # bounded by MAX_UNPACKED; every format's lines
                check_line_lengths(io.BytesIO(content), name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as error:
        message = f"cannot read the ZIP file ({error}); download the export again"
        raise FileProblems([Problem(where, 0, message)]) from None
    if not found:
        message = "the ZIP file holds no CSV file; is it the export you meant?"
        raise FileProblems([Problem(where, 0, message)])
    return found


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


def read_file(
    data: bytes, where: str, source_format: ImportFormat, columns: ColumnMap
) -> tuple[ParsedMembers, ImportFormat]:
    """One CSV file read in its format (the one given, or the one its header shows)."""
    table: Table | None = None
    if source_format is not ImportFormat.csv:
        table = read_table(data, where)
        if source_format is ImportFormat.auto:
            source_format = recognise(table.header)
    if source_format is ImportFormat.mailchimp:
        assert table is not None
        _expect(EMAIL in (cell.strip() for cell in table.header), table, _NOT_MAILCHIMP)
        return read_mailchimp(table, columns), source_format
    if source_format is ImportFormat.listmonk:
        assert table is not None
        _expect(layout_of(table.header) is not None, table, _NOT_LISTMONK)
        return read_listmonk(table, columns), source_format
    parsed = parse_members(data, where, columns.columns)
    if columns.values:
        parsed.records = [columns.apply(record) for record in parsed.records]
    return parsed, ImportFormat.csv


_NOT_MAILCHIMP = f"this is not a Mailchimp export: the header row has no '{EMAIL}' column"
_NOT_LISTMONK = (
    "this is not a listmonk CSV: its columns should be email,name,attributes (import) "
    "or uuid,email,name,attributes,status,created_at,updated_at (export)"
)


def _expect(condition: bool, table: Table, message: str) -> None:
    if not condition:
        raise FileProblems([Problem(table.where, table.header_line, message)])


# -- merging -------------------------------------------------------------------------


@dataclass
class Merged:
    """One record per address over every file, and where each came from."""

    records: list[MemberRecord] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)  # the file of each record, by position
    problems: list[Problem] = field(default_factory=list)
    bad_rows: list[int] = field(default_factory=list)  # per file


def merge(files: list[ParsedMembers]) -> Merged:
    """Every file's records, each address once; a repeat is a problem and cannot revive anyone."""
    merged = Merged(bad_rows=[parsed.bad_rows for parsed in files])
    seen: dict[str, int] = {}  # address key -> position in merged.records
    for n, parsed in enumerate(files):
        merged.problems.extend(parsed.problems)
        for record in parsed.records:
            key = email_key(record.email)
            first = seen.setdefault(key, len(merged.records))
            if first == len(merged.records):
                merged.records.append(record)
                merged.origins.append(n)
                continue
            kept = merged.records[first]
            origin = merged.origins[first]
            place = (
                f"on line {kept.line}" if origin == n else f"in {files[origin].path}:{kept.line}"
            )
            merged.problems.append(
                Problem(parsed.path, record.line, f"{record.email!r} is already {place}")
            )
            merged.bad_rows[n] += 1
            merged.records[first] = _stickier(kept, record)
    return merged


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
