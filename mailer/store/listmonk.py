"""listmonk's two CSV layouts, read as listmonk writes them.

* Its **import** format, ``email,name,attributes`` (and an optional ``status``):
  ``attributes`` is a JSON object, whose keys are merged into the member's
  attributes as if each were a column, so ``organisation``, ``region`` and
  ``tags`` inside it fill those fields (``tags`` may be a list or a string).
* Its **export** (Subscribers → Export), ``uuid,email,name,attributes,status,
  created_at,updated_at``, with times as Go prints them
  (``2024-05-01 09:30:00.123456 +0000 UTC``).

listmonk's subscriber statuses map so that nobody who left is mailed:
``enabled`` → active; ``blocklisted`` → unsubscribed; ``disabled`` →
unsubscribed too, the conservative choice (listmonk sends a disabled subscriber
nothing, and the file does not say why). For a member who is not active, the
last change listmonk recorded (``updated_at``) is taken as when their status
changed. Attributes with nested objects are kept as JSON text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mailer.store.columnmap import ColumnMap
from mailer.store.csvio import (
    KNOWN,
    TAG_SEPARATORS,
    ParsedMembers,
    RowResult,
    Table,
    profile_text,
)
from mailer.store.models import MemberRecord, SubscriberStatus, column_key
from mailer.store.readers import as_utc, email_cell, unique_tags, when_cell

EXPORT = ("uuid", "email", "name", "attributes", "status", "created_at", "updated_at")
IMPORT = frozenset({"email", "name", "attributes", "status"})
STATUSES = {
    "enabled": (SubscriberStatus.active, None),
    "disabled": (SubscriberStatus.unsubscribed, "disabled in listmonk"),
    "blocklisted": (SubscriberStatus.unsubscribed, "blocklisted in listmonk"),
}
TIME_EXAMPLE = "2024-05-01 09:30:00.123456 +0000 UTC"
# Go's time.Time.String(): date, time, optional fraction, offset, zone name.
_GO_TIME = re.compile(
    r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d+))? ([+-]\d\d)(\d\d)(?: [A-Za-z0-9+-]+)?"
    r"(?: m=[+-][0-9.]+)?"
)


def layout_of(header: list[str]) -> str | None:
    """'export' or 'import' if the header row is one of listmonk's, else None."""
    keys = [column_key(cell) for cell in header]
    if set(EXPORT) <= set(keys):
        return "export"
    if {"email", "attributes"} <= set(keys) and set(keys) <= IMPORT:
        return "import"
    return None


@dataclass(frozen=True)
class Layout:
    width: int
    email: int
    name: int | None
    attributes: int | None
    status: int | None
    created_at: int | None
    updated_at: int | None


def read_listmonk(table: Table, columns: ColumnMap) -> ParsedMembers:
    """Every member of a listmonk CSV, and every problem with the other rows."""
    return ParsedMembers.of(table.where, listmonk_rows(table, columns))


def listmonk_rows(table: Table, columns: ColumnMap) -> Iterator[RowResult]:
    """Each row of a listmonk CSV as a member or its problems, as it is read."""
    keys = [column_key(cell) for cell in table.header]
    find = {key: i for i, key in reversed(list(enumerate(keys)))}
    layout = Layout(
        len(keys),
        find["email"],
        find.get("name"),
        find.get("attributes"),
        find.get("status"),
        find.get("created_at"),
        find.get("updated_at"),
    )
    for line, cells in table.rows:
        result = record(layout, line, cells, columns)
        yield line, columns.apply(result) if isinstance(result, MemberRecord) else result


def record(
    layout: Layout, line: int, cells: list[str], columns: ColumnMap
) -> MemberRecord | list[str]:
    """One row as a member, or every problem with it."""
    if len(cells) > layout.width:
        return [
            f"this row has {len(cells)} cells but the header row has {layout.width}; "
            "is there an unquoted comma in a cell?"
        ]
    cells = cells + [""] * (layout.width - len(cells))

    def cell(index: int | None) -> str | None:
        return None if index is None else cells[index].strip()

    problems: list[str] = []
    email = email_cell(cells[layout.email].strip(), problems)
    name = profile_text("name", cell(layout.name), problems)
    fields, attributes = _attributes(cell(layout.attributes) or "", columns, problems)
    status, reason = _status(cell(layout.status), problems)
    created_at = _when(cell(layout.created_at), "created_at", problems)
    updated_at = _when(cell(layout.updated_at), "updated_at", problems)
    organisation = profile_text("organisation", fields.get("organisation"), problems)
    region = profile_text("region", fields.get("region"), problems)
    if attributes.get("first_name"):
        attributes["first_name"] = profile_text("first_name", attributes["first_name"], problems)
    if problems:
        return problems
    tags = fields.get("tags")
    leaving = status is not None and status.sticky
    return MemberRecord(
        email,
        line,
        name,
        organisation,
        region,
        None if tags is None else unique_tags(tags.split("\n")),
        attributes,
        status,
        updated_at if leaving else None,
        reason,
        created_at,
    )


def _status(cell: str | None, problems: list[str]) -> tuple[SubscriberStatus | None, str | None]:
    if not cell:
        return None, None
    found = STATUSES.get(cell.lower())
    if found is None:
        problems.append(
            f"'{cell}' is not a listmonk status; expected enabled, disabled or blocklisted"
        )
        return None, None
    return found


def _attributes(
    cell: str, columns: ColumnMap, problems: list[str]
) -> tuple[dict[str, str], dict[str, str | None]]:
    """listmonk's JSON attributes: mailer's own fields among them, and the rest as attributes.

    Tags come back one a line, so that a tag with a comma in it stays whole.
    """
    if not cell:
        return {}, {}
    try:
        value = json.loads(cell)
    except json.JSONDecodeError as error:
        problems.append(f"the attributes are not JSON ({error.msg} at character {error.pos + 1})")
        return {}, {}
    if not isinstance(value, dict):
        problems.append('the attributes are not a JSON object such as {"region": "Wales"}')
        return {}, {}
    fields: dict[str, str] = {}
    attributes: dict[str, str | None] = {}
    for raw, item in value.items():
        key = columns.rename(column_key(str(raw)))
        if not key or item is None:
            continue
        if key == "tags":  # a list, or a string as a tags column holds them
            tags = TAG_SEPARATORS.split(item) if isinstance(item, str) else _texts(item)
            fields["tags"] = "\n".join(tags)
        elif key in ("organisation", "region"):
            fields[key] = "; ".join(_texts(item))
        elif key in KNOWN:  # email, name, status...: not attributes, or an export would repeat them
            attributes[f"listmonk_{key}"] = _text(item)
        else:
            attributes[key] = _text(item)
    return fields, attributes


def _texts(item: Any) -> Iterator[str]:
    if isinstance(item, list):
        yield from (_text(part) for part in item if part is not None)
    else:
        yield _text(item)


def _text(item: Any) -> str:
    """An attribute's value as the text mailer keeps: strings as they are, the rest as JSON."""
    if isinstance(item, str):
        return item.strip()
    if isinstance(item, list) and all(isinstance(part, str) for part in item):
        return "; ".join(item)
    return json.dumps(item, ensure_ascii=False, sort_keys=True)


def _when(cell: str | None, column: str, problems: list[str]) -> dt.datetime | None:
    return when_cell(cell or "", column, problems, parse_time, TIME_EXAMPLE)


def parse_time(cell: str) -> dt.datetime:
    """A listmonk time: as its CSV export writes it (Go's format), or ISO 8601 as its API does."""
    match = _GO_TIME.fullmatch(cell)
    if match is None:
        return as_utc(dt.datetime.fromisoformat(cell))
    date, time, fraction, hours, minutes = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    offset = f"{hours}:{minutes}"
    return dt.datetime.fromisoformat(f"{date}T{time}.{micro}{offset}")
