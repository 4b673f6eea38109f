"""Alembic migrations of the subscriber store, shipped inside the package (see database.migrate)."""
