"""Alembic environment for the subscriber store.

mailer runs migrations itself (``mailer.store.database.migrate``) and passes the
connection in ``config.attributes["connection"]``. For writing a new revision by
hand, ``alembic -c mailer/store/migrations/alembic.ini revision -m "..."`` works
against the database in MAILER_DATABASE_URL (or the default SQLite file).
"""

from __future__ import annotations

import importlib
import os
import pkgutil

from alembic import context
from sqlalchemy import Connection

import mailer.store
from mailer.store.database import make_engine
from mailer.store.schema import Base

DEFAULT_URL = "sqlite:///subscribers/mailer.db"

# Tables live in several modules of mailer.store (the list, the send ledger, ...);
# importing them all puts every table on Base.metadata for autogenerate.
for _module in pkgutil.iter_modules(mailer.store.__path__):
    importlib.import_module(f"mailer.store.{_module.name}")


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode recreates tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(os.environ.get("MAILER_DATABASE_URL", DEFAULT_URL))
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("mailer's migrations run online only: they need a database connection")
run_migrations_online()
