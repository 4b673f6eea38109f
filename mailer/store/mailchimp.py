"""Mailchimp's audience export, read as Mailchimp writes it.

Mailchimp exports an audience as a ZIP of CSV files, one per kind of contact
(``subscribed_…csv``, ``unsubscribed_…csv``, ``cleaned_…csv``, sometimes
``nonsubscribed_…csv``), each with a header row such as::

    Email Address, First Name, Last Name, <merge fields>, <group columns>,
    MEMBER_RATING, OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP, LATITUDE,
    LONGITUDE, GMTOFF, DSTOFF, TIMEZONE, CC, REGION, LAST_CHANGED, LEID, EUID,
    NOTES, TAGS

The unsubscribed file adds UNSUB_TIME, UNSUB_CAMPAIGN_TITLE, UNSUB_CAMPAIGN_ID,
UNSUB_REASON, UNSUB_REASON_OTHER; the cleaned file (addresses that bounced)
CLEAN_TIME, CLEAN_CAMPAIGN_TITLE, CLEAN_CAMPAIGN_ID. Times are UTC,
``2024-05-01 09:30:00``.

The rule that matters: **only a clearly opted-in subscriber becomes active**.
A row is unsubscribed if its file's name or columns say so or it has an
UNSUB_TIME; bounced if its file is the cleaned one or it has a CLEAN_TIME; a
non-subscribed contact (who never opted in) is imported as unsubscribed. A file
imported on its own keeps what it says, whatever it is renamed to, as long as
its columns say it. In a file whose name does not say ``subscribed`` (and
without a Status column), a row is active only if it records an opt-in or a
confirmation time; otherwise it is imported as unsubscribed.

The rest: First and Last Name make ``name`` (and ``first_name``); TAGS holds
quoted tags separated by commas; a group (interest) column becomes tags when
mailer.toml's column map names it as ``tags`` (the export does not mark which
columns are groups); the opt-in and confirmation times (and addresses they came
from) go into the member's history; Mailchimp's own tracking columns (rating,
location, time zone, ids) are left out; other merge fields become attributes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath

from mailer.store.columnmap import ColumnMap
from mailer.store.csvio import ParsedMembers, RowResult, Table, profile_text
from mailer.store.models import MemberRecord, SubscriberStatus, column_key
from mailer.store.readers import (
    as_utc,
    email_cell,
    one_spaced,
    quoted_list,
    unique_tags,
    when_cell,
)

EMAIL = "Email Address"
LEFT_OUT = frozenset(
    {"MEMBER_RATING", "LATITUDE", "LONGITUDE", "GMTOFF", "DSTOFF", "TIMEZONE", "CC"}
    | {"REGION", "LAST_CHANGED", "LEID", "EUID", "UNSUB_CAMPAIGN_ID", "CLEAN_CAMPAIGN_ID"}
)
READ = frozenset(
    {"OPTIN_TIME", "OPTIN_IP", "CONFIRM_TIME", "CONFIRM_IP", "NOTES", "TAGS"}
    | {"UNSUB_TIME", "UNSUB_CAMPAIGN_TITLE", "UNSUB_REASON", "UNSUB_REASON_OTHER"}
    | {"CLEAN_TIME", "CLEAN_CAMPAIGN_TITLE"}
)
SYSTEM = LEFT_OUT | READ
# Columns only Mailchimp writes: with "Email Address", they mark its export.
SIGNS = frozenset({"MEMBER_RATING", "OPTIN_TIME", "CONFIRM_TIME", "LAST_CHANGED", "LEID", "EUID"})
# A merge field read as one of mailer's own fields.
FIELDS = {"name": "name", "organisation": "organisation", "company": "organisation"}
FIELDS |= {"region": "region"}
# Mailchimp's words for a contact's status, in a "Status" column some exports have.
STATUS_WORDS = {
    "subscribed": SubscriberStatus.active,
    "pending": SubscriberStatus.pending,
    "unsubscribed": SubscriberStatus.unsubscribed,
    "cleaned": SubscriberStatus.bounced,
    "non-subscribed": SubscriberStatus.unsubscribed,
    "nonsubscribed": SubscriberStatus.unsubscribed,
    "transactional": SubscriberStatus.unsubscribed,
    "archived": SubscriberStatus.unsubscribed,
}
NEVER_SUBSCRIBED = "never subscribed on Mailchimp (a non-subscribed contact)"
NO_OPT_IN = (
    "no opt-in in Mailchimp's export: neither its file's name nor a status says subscribed, "
    "and it has no OPTIN_TIME or CONFIRM_TIME"
)
TIME_EXAMPLE = "2024-05-01 09:30:00"


def is_mailchimp(header: list[str]) -> bool:
    """Whether a header row is a Mailchimp export's."""
    cells = {cell.strip() for cell in header}
    return EMAIL in cells and bool(cells & (SIGNS | {"UNSUB_TIME", "CLEAN_TIME"}))


@dataclass(frozen=True)
class Said:
    """What a whole file says about its members' status, and why."""

    status: SubscriberStatus
    reason: str | None = None
    sure: bool = True  # False: nothing said it, active is only the default


_NON = re.compile(r"non.?subscribed|transactional")


def said_by_name(name: str) -> Said | None:
    """What a file's name says: Mailchimp names each file of the export for its contacts."""
    base = PurePosixPath(name).name.lower()
    if _NON.search(base):
        return Said(SubscriberStatus.unsubscribed, NEVER_SUBSCRIBED)
    if "unsubscribed" in base:
        return Said(SubscriberStatus.unsubscribed)
    if "cleaned" in base:
        return Said(SubscriberStatus.bounced)
    if "subscribed" in base:
        return Said(SubscriberStatus.active)
    return None


@dataclass(frozen=True)
class Layout:
    """Where each of Mailchimp's columns is, worked out once from the header row."""

    width: int
    email: int
    system: dict[str, int]
    first: int | None
    last: int | None
    fields: tuple[tuple[int, str], ...]
    groups: tuple[int, ...]
    status: int | None
    attributes: tuple[tuple[int, str], ...]
    said: Said


def layout(table: Table, columns: ColumnMap) -> Layout:
    """The layout of a Mailchimp file; the file's name and columns tell its members' status."""
    header = [cell.strip() for cell in table.header]
    system = {cell: i for i, cell in enumerate(header) if cell in READ}
    first = last = status = None
    fields: list[tuple[int, str]] = []
    groups: list[int] = []
    attributes: list[tuple[int, str]] = []
    for i, cell in enumerate(header):
        if cell in SYSTEM or cell == EMAIL or not cell:
            continue
        key = columns.rename(column_key(cell))
        if key == "first_name":
            first = i
        elif key == "last_name":
            last = i
        elif key in ("status", "email_marketing_status"):
            status = i
        elif key == "tags":
            groups.append(i)
        elif key in FIELDS:
            fields.append((i, FIELDS[key]))
        elif key and key != "email":
            attributes.append((i, key))
    if "NOTES" in system:
        attributes.append((system["NOTES"], "notes"))
    return Layout(
        width=len(header),
        email=header.index(EMAIL),
        system=system,
        first=first,
        last=last,
        fields=tuple(fields),
        groups=tuple(groups),
        status=status,
        attributes=tuple(attributes),
        said=_said(table.where, system, has_status=status is not None),
    )


def _said(where: str, system: dict[str, int], *, has_status: bool) -> Said:
    named = said_by_name(where)
    if has_status:  # each row says its own status; the name may still say they all left
        return named or Said(SubscriberStatus.active, sure=False)
    # Columns outrank the name: a renamed file of unsubscribed members stays unsubscribed.
    if "CLEAN_TIME" in system:
        return Said(SubscriberStatus.bounced)
    if "UNSUB_TIME" in system and (named is None or named.status is SubscriberStatus.active):
        return Said(SubscriberStatus.unsubscribed)
    return named or Said(SubscriberStatus.active, sure=False)


def read_mailchimp(table: Table, columns: ColumnMap) -> ParsedMembers:
    """Every member of one file of a Mailchimp export, and every problem with the other rows."""
    return ParsedMembers.of(table.where, mailchimp_rows(table, columns))


def mailchimp_rows(table: Table, columns: ColumnMap) -> Iterator[RowResult]:
    """Each row of one file of a Mailchimp export as a member or its problems, as it is read."""
    where = layout(table, columns)
    for line, cells in table.rows:
        result = record(where, line, cells)
        yield line, columns.apply(result) if isinstance(result, MemberRecord) else result


def record(layout: Layout, line: int, cells: list[str]) -> MemberRecord | list[str]:
    """One row as a member, or every problem with it."""
    if len(cells) > layout.width:
        return [
            f"this row has {len(cells)} cells but the header row has {layout.width}; "
            "is there an unquoted comma in a cell?"
        ]
    if len(cells) < layout.width:
        cells = cells + [""] * (layout.width - len(cells))
    problems: list[str] = []
    system = {name: cells[i].strip() for name, i in layout.system.items()}
    email = email_cell(cells[layout.email].strip(), problems)
    first = None if layout.first is None else cells[layout.first].strip()
    last = None if layout.last is None else cells[layout.last].strip()
    given = {name: cells[i].strip() for i, name in layout.fields}
    name = given.get("name")
    if first is not None or last is not None:
        name = one_spaced(first, last)
    name = profile_text("name", name, problems)
    attributes: dict[str, str | None] = {
        key: cells[i].strip() or None for i, key in layout.attributes
    }
    if first is not None:
        attributes["first_name"] = profile_text("first_name", first, problems) or None
    tags = _tags(layout, system, cells)
    optin = _when(system, "OPTIN_TIME", problems)
    confirm = _when(system, "CONFIRM_TIME", problems)
    status, changed_at, reason = _status(layout, system, cells, problems)
    organisation = profile_text("organisation", given.get("organisation"), problems)
    region = profile_text("region", given.get("region"), problems)
    if problems:
        return problems
    return MemberRecord(
        email,
        line,
        name,
        organisation,
        region,
        tags,
        attributes,
        status,
        changed_at,
        reason,
        optin or confirm,
        _history(system, optin, confirm),
    )


def _tags(layout: Layout, system: dict[str, str], cells: list[str]) -> tuple[str, ...] | None:
    if "TAGS" not in system and not layout.groups:
        return None  # the file says nothing about tags: keep what is stored
    return _tag_cells(system.get("TAGS", ""), tuple(cells[i] for i in layout.groups))


@lru_cache(maxsize=4096)  # a list repeats a few combinations of tags and groups many times
def _tag_cells(tags: str, groups: tuple[str, ...]) -> tuple[str, ...]:
    found = quoted_list(tags)
    for cell in groups:  # Mailchimp writes a contact's groups as "A, B"
        found.extend(cell.split(","))
    return unique_tags(found)


def _status(
    layout: Layout, system: dict[str, str], cells: list[str], problems: list[str]
) -> tuple[SubscriberStatus, dt.datetime | None, str | None]:
    """The stickiest status anything in the row or its file gives; active only if nothing else."""
    unsub_at = _when(system, "UNSUB_TIME", problems)
    clean_at = _when(system, "CLEAN_TIME", problems)
    said = layout.said
    if layout.status is not None and cells[layout.status].strip():
        word = cells[layout.status].strip().lower()
        if word not in STATUS_WORDS:
            known = ", ".join(sorted(STATUS_WORDS))
            problems.append(f"'{cells[layout.status].strip()}' is not a Mailchimp status ({known})")
        elif STATUS_WORDS[word] is not SubscriberStatus.active:
            reason = NEVER_SUBSCRIBED if word in ("non-subscribed", "nonsubscribed") else None
            said = Said(STATUS_WORDS[word], reason)
        elif said.status is SubscriberStatus.active:
            said = Said(SubscriberStatus.active)
    if clean_at or said.status is SubscriberStatus.bounced:
        return SubscriberStatus.bounced, clean_at, _cleaned(system)
    if unsub_at or said.status is SubscriberStatus.unsubscribed:
        return SubscriberStatus.unsubscribed, unsub_at, said.reason or _unsubscribed(system)
    if said.status is SubscriberStatus.pending:
        return SubscriberStatus.pending, None, "pending on Mailchimp (not yet confirmed)"
    if not said.sure and not _opted_in(system):
        return SubscriberStatus.unsubscribed, None, NO_OPT_IN
    return SubscriberStatus.active, None, None


def _opted_in(system: dict[str, str]) -> bool:
    """Whether the row records an opt-in or a confirmation (non-subscribed contacts have neither)."""
    times = (system.get("OPTIN_TIME", ""), system.get("CONFIRM_TIME", ""))
    return any(time and not time.startswith("0000-00-00") for time in times)


def _unsubscribed(system: dict[str, str]) -> str:
    reason = "unsubscribed on Mailchimp"
    why = ": ".join(
        part for part in (system.get("UNSUB_REASON"), system.get("UNSUB_REASON_OTHER")) if part
    )
    if why:
        reason += f" ({why})"
    if system.get("UNSUB_CAMPAIGN_TITLE"):
        reason += f", from the campaign '{system['UNSUB_CAMPAIGN_TITLE']}'"
    return reason


def _cleaned(system: dict[str, str]) -> str:
    reason = "cleaned by Mailchimp: the address bounced"
    if system.get("CLEAN_CAMPAIGN_TITLE"):
        reason += f" (campaign '{system['CLEAN_CAMPAIGN_TITLE']}')"
    return reason


def _history(
    system: dict[str, str], optin: dt.datetime | None, confirm: dt.datetime | None
) -> tuple[tuple[dt.datetime, str], ...]:
    history = []
    if optin:
        history.append((optin, _from("opted in on Mailchimp", system.get("OPTIN_IP"))))
    if confirm:
        history.append(
            (confirm, _from("confirmed the subscription on Mailchimp", system.get("CONFIRM_IP")))
        )
    return tuple(history)


def _from(what: str, address: str | None) -> str:
    return f"{what}, from {address}" if address else what


def _when(system: dict[str, str], column: str, problems: list[str]) -> dt.datetime | None:
    cell = system.get(column, "")
    if cell.startswith("0000-00-00"):  # how some exports write "never"
        return None
    return when_cell(cell, column, problems, _parse, TIME_EXAMPLE)


@lru_cache(maxsize=65536)  # many members joined on the same second in a bulk import
def _parse(cell: str) -> dt.datetime:
    return as_utc(dt.datetime.fromisoformat(cell))
