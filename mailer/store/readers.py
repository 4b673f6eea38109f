"""What the readers of other tools' files share: cells checked as a members CSV's are.

Each reader (:mod:`mailer.store.mailchimp`, :mod:`mailer.store.listmonk`) turns
one row into a :class:`~mailer.store.models.MemberRecord`, or into the list of
everything wrong with it; these helpers do the checking the same way
:mod:`mailer.store.csvio` does, so that a problem reads the same whatever the
file came from.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Iterable

from mailer.store.emails import InvalidEmail, normalise_email


def email_cell(cell: str, problems: list[str]) -> str:
    """The normalised address in a cell; a problem if there is none or it is not valid."""
    if not cell:
        problems.append("there is no email address in this row")
        return ""
    try:
        return normalise_email(cell).email
    except InvalidEmail as error:
        problems.append(str(error))
        return ""


def when_cell(
    cell: str,
    column: str,
    problems: list[str],
    parse: Callable[[str], dt.datetime | None],
    example: str,
) -> dt.datetime | None:
    """A time from a cell, by the format's own parser; a problem naming the column if it is not one."""
    if not cell:
        return None
    try:
        return parse(cell)
    except ValueError:
        problems.append(f"'{cell}' in {column} is not a date and time such as {example}")
        return None


def as_utc(when: dt.datetime) -> dt.datetime:
    """A time without a zone is taken as UTC, as the tools that write these files mean it."""
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def unique_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags without blanks or repeats (ignoring capitals), first spelling and order kept."""
    found: dict[str, str] = {}
    for tag in tags:
        tag = tag.strip()
        if tag:
            found.setdefault(tag.lower(), tag)
    return tuple(found.values())


def quoted_list(cell: str) -> list[str]:
    """'"youth-loneliness","in-person"' -> the two tags: a list written as one CSV row."""
    if not cell.strip():
        return []
    return next(csv.reader([cell], skipinitialspace=True), [])


_WORDS = re.compile(r"\s+")


def one_spaced(*parts: str | None) -> str:
    """'Gwen', ' Parry ' -> 'Gwen Parry'."""
    return _WORDS.sub(" ", " ".join(part for part in parts if part)).strip()
