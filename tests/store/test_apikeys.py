"""The members API's keys and kept answers: migration 0010 on both databases, hashes only."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

import mailer.store.apikeys
from mailer.errors import StoreError
from mailer.store import MemberRecord, SubscriberStore, open_store
from mailer.store.apikeys import (
    ApiKeyRow,
    Scope,
    authenticate,
    create_key,
    keep_answer,
    kept_answer,
    list_keys,
    revoke_key,
)
from mailer.store.database import alembic_config

TABLES = ("api_keys", "api_idempotency")


class TestMigration:
    def test_the_migration_matches_the_tables(self, database_url: str) -> None:
        """0010 creates exactly what mailer.store.apikeys declares, on SQLite and PostgreSQL."""
        assert mailer.store.apikeys
        with open_store(database_url) as store, store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, mailer.store.apikeys.Base.metadata)
        assert [] == [d for d in differences if any(t in repr(d) for t in TABLES)]

    def test_an_existing_store_is_upgraded_and_keeps_its_members(self, database_url: str) -> None:
        with open_store(database_url) as store:
            store.add([MemberRecord(email="kept@example.org")], source="test")
            config = alembic_config()
            with store.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.downgrade(config, "0008")
                assert not inspect(connection).has_table("api_keys")
                command.upgrade(config, "head")
                assert all(inspect(connection).has_table(t) for t in TABLES)
            assert store.find("kept@example.org") is not None


class TestKeys:
    def test_only_a_hash_is_stored_and_the_key_works_until_revoked(
        self, store: SubscriberStore
    ) -> None:
        key, secret = create_key(store.engine, "website", [Scope.members_write])
        with store.engine.connect() as connection:
            stored = connection.execute(select(ApiKeyRow.__table__)).one()
        assert all(secret not in str(value) for value in stored)
        assert key.name == "website"
        found = authenticate(store.engine, secret)
        assert found is not None and frozenset({Scope.members_write}) == found.scopes
        assert list_keys(store.engine)[0].last_used_at is not None
        assert authenticate(store.engine, secret[:-1] + ("x" if secret[-1] != "x" else "y")) is None
        revoke_key(store.engine, "website")
        assert authenticate(store.engine, secret) is None
        assert list_keys(store.engine)[0].revoked_at is not None

    def test_names_are_unique_and_scopes_needed(self, store: SubscriberStore) -> None:
        create_key(store.engine, "crm", [Scope.members_read])
        with pytest.raises(StoreError, match="already an API key named 'crm'"):
            create_key(store.engine, "crm", [Scope.members_read])
        with pytest.raises(StoreError, match="at least one scope"):
            create_key(store.engine, "other", [])
        with pytest.raises(StoreError, match="no API key named 'nope'"):
            revoke_key(store.engine, "nope")

    def test_an_answer_is_kept_per_key(self, store: SubscriberStore) -> None:
        a, _ = create_key(store.engine, "a", [Scope.members_write])
        b, _ = create_key(store.engine, "b", [Scope.members_write])
        keep_answer(store.engine, a.id, "k1", "hash", 201, "{}")
        keep_answer(store.engine, a.id, "k1", "hash", 409, "{}")  # a retry that raced the first
        assert ("hash", 201, "{}") == kept_answer(store.engine, a.id, "k1")
        assert kept_answer(store.engine, b.id, "k1") is None
