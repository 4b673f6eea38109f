"""mailer.toml's column map: reading a file whose columns or values are not mailer's own.

A list kept elsewhere calls the region ``Area`` and writes ``WLS`` for Wales; the
segments in mailer.toml say ``regions = ["Wales"]``. Rather than editing the
file, editors describe it once in mailer.toml::

    [imports.columns]
    "Area" = "region"                 # a heading in the file = the column mailer reads

    [imports.values.region]
    "WLS" = "Wales"                   # a value in the file = the value stored

Columns are matched as every heading is (any case, spaces or hyphens for
underscores); values ignoring capitals and surrounding spaces. A value that the
map does not name is kept as it is. The map applies to every format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mailer.store.models import MemberRecord, column_key


@dataclass(frozen=True)
class ColumnMap:
    """Renamed columns, and values to store instead of others, by column."""

    columns: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, columns: Mapping[str, str], values: Mapping[str, Mapping[str, str]]) -> ColumnMap:
        """The map as mailer.toml writes it, with its keys put in the form they are looked up in."""
        return cls(
            {column_key(heading): column_key(name) for heading, name in columns.items()},
            {
                column_key(name): {_value_key(cell): value for cell, value in mapping.items()}
                for name, mapping in values.items()
            },
        )

    def __bool__(self) -> bool:
        return bool(self.columns or self.values)

    def rename(self, key: str) -> str:
        """The column a heading (as :func:`column_key` made it) is read as."""
        return self.columns.get(key, key)

    def value(self, column: str, cell: str) -> str:
        """The value to store for a cell of this column."""
        mapping = self.values.get(column)
        if not mapping:
            return cell
        return mapping.get(_value_key(cell), cell)

    def apply(self, record: MemberRecord) -> MemberRecord:
        """The record with the mapped values of its name, organisation, region, tags and attributes."""
        if not self.values:
            return record
        tags = record.tags
        if tags and "tags" in self.values:
            mapped: dict[str, str] = {}
            for tag in tags:
                value = self.value("tags", tag)
                mapped.setdefault(value.lower(), value)
            tags = tuple(mapped.values())
        return record._replace(
            name=self._field("name", record.name),
            organisation=self._field("organisation", record.organisation),
            region=self._field("region", record.region),
            tags=tags,
            attributes={
                name: cell if cell is None else self.value(name, cell)
                for name, cell in record.attributes.items()
            },
        )

    def _field(self, name: str, cell: str | None) -> str | None:
        return self.value(name, cell) if cell else cell


def _value_key(cell: str) -> str:
    return cell.strip().casefold()
