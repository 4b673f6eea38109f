"""The bulk writer stores rows exactly as SQLAlchemy's own column types would."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, select, text

from mailer.store import SubscriberStore
from mailer.store.bulk import BulkWriter
from mailer.store.database import write_connection
from mailer.store.schema import SubscriberRow
from mailer.store.upsert import SUBSCRIBERS

WHEN = dt.datetime(2024, 5, 1, 10, 30, 15, 250, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def row(email: str, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "email": email,
        "email_key": email.lower(),
        "name": "Siân O'Neill",
        "organisation": 'Café "Cymru"',
        "region": "Wales",
        "tags": ["youth", "in-person"],
        "attributes": {"size": "small", "note": "ünïcode; commas, too"},
        "status": "active",
        "status_changed_at": WHEN,
        "status_reason": "added",
        "created_at": WHEN,
        "updated_at": WHEN,
    }
    values.update(changes)
    return values


def stored(store: SubscriberStore, email: str) -> tuple[Any, ...]:
    columns = [c for c in SUBSCRIBERS.columns if c.name not in ("id", "email", "email_key")]
    with store.engine.connect() as connection:
        return tuple(connection.execute(select(*columns).where(SubscriberRow.email == email)).one())


def raw(store: SubscriberStore, email: str) -> tuple[Any, ...]:
    """The values as the database holds them, without SQLAlchemy's result processing."""
    with store.engine.connect() as connection:
        return tuple(
            connection.execute(
                text(
                    "SELECT CAST(tags AS TEXT), CAST(attributes AS TEXT), CAST(created_at AS TEXT) "
                    "FROM subscribers WHERE email = :email"
                ),
                {"email": email},
            ).one()
        )


class TestBulkWriter:
    def test_inserted_rows_read_back_like_sqlalchemys(self, store: SubscriberStore) -> None:
        """Datetimes, JSON and text written in bulk equal the same values written by SQLAlchemy."""
        with write_connection(store.engine) as connection:
            connection.execute(insert(SubscriberRow), [row("orm@example.org")])
            BulkWriter(connection).insert(
                SUBSCRIBERS, [row("bulk@example.org"), row("bulk2@example.org")]
            )
        assert stored(store, "orm@example.org") == stored(store, "bulk@example.org")
        assert raw(store, "orm@example.org") == raw(store, "bulk@example.org")
        names = [c.name for c in SUBSCRIBERS.columns if c.name not in ("id", "email", "email_key")]
        assert WHEN == stored(store, "bulk@example.org")[names.index("updated_at")]

    def test_updates_by_id(self, store: SubscriberStore) -> None:
        """update() sets the given columns of each row found by its id."""
        later = WHEN + dt.timedelta(days=1)
        with write_connection(store.engine) as connection:
            connection.execute(
                insert(SubscriberRow), [row("orm@example.org"), row("bulk@example.org")]
            )
            ids = dict(connection.execute(select(SubscriberRow.email, SubscriberRow.id)).all())
            connection.execute(
                SubscriberRow.__table__.update()  # type: ignore[attr-defined]
                .where(SubscriberRow.id == ids["orm@example.org"])
                .values(tags=["a"], attributes={}, updated_at=later)
            )
            BulkWriter(connection).update(
                SUBSCRIBERS,
                [
                    {
                        "id": ids["bulk@example.org"],
                        "tags": ["a"],
                        "attributes": {},
                        "updated_at": later,
                    }
                ],
            )
        assert stored(store, "orm@example.org") == stored(store, "bulk@example.org")
        assert raw(store, "orm@example.org") == raw(store, "bulk@example.org")

    def test_equal_values_of_different_shapes_are_not_confused(
        self, store: SubscriberStore
    ) -> None:
        """The JSON cache tells an empty list from an empty dict, and lists from tuples of the same items."""
        with write_connection(store.engine) as connection:
            BulkWriter(connection).insert(
                SUBSCRIBERS,
                [
                    row("a@example.org", tags=[], attributes={}),
                    row("b@example.org", tags=("x", "y"), attributes={"x": "y"}),
                    row("c@example.org", tags=["x", "y"], attributes={"y": "x"}),
                ],
            )
        assert ([], {}) == stored(store, "a@example.org")[3:5]
        assert (["x", "y"], {"x": "y"}) == stored(store, "b@example.org")[3:5]
        assert (["x", "y"], {"y": "x"}) == stored(store, "c@example.org")[3:5]
