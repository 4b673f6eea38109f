"""The subscriber store: every read and write of the list goes through :class:`SubscriberStore`.

Rules it keeps, whoever calls it:

* An address is unique by its key (the normalised address, lower-cased).
* Every status but ``active`` is sticky. Imports and ``add`` never move a member
  out of one; only :meth:`SubscriberStore.resubscribe` (an explicit request by the
  member, or an admin command, with a reason) does, and it is logged.
* A forgotten address is kept only as a hash and can never be added again, except
  by an explicit :meth:`SubscriberStore.resubscribe`.
* Every write is one transaction; every change of status is an event in the history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Text,
    delete,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import DBAPIError, IntegrityError

from mailer.errors import StoreError, SubscriberNotFound
from mailer.store.database import make_engine, migrate, write_connection
from mailer.store.emails import (
    InvalidEmail,
    email_key,
    mailbox_key,
    normalise_email,
    suppression_hash,
)
from mailer.store.eventlog import RejectedRow, WebhookEventRow
from mailer.store.models import (
    EventKind,
    ImportCounts,
    MemberRecord,
    Subscriber,
    SubscriberEvent,
    SubscriberStatus,
)
from mailer.store.schema import SubscriberEventRow, SubscriberRow, SuppressionRow
from mailer.store.signups import SignupAttemptRow, limit_key
from mailer.store.upsert import (
    ChunkedUpsert,
    Stored,
    UpsertOutcome,
    apply_plan,
    decode_json,
    decode_tags,
    event,
    insert_new,
    load_stored,
    new_row,
    paused_gc,
    plan_upsert,
    suppressed_among,
)

_S = SubscriberRow
_SUBSCRIBER_COLUMNS = (
    _S.id,
    _S.email,
    _S.email_key,
    _S.name,
    _S.organisation,
    _S.region,
    _S.tags,
    _S.attributes,
    _S.status,
    _S.status_changed_at,
    _S.status_reason,
    _S.created_at,
    _S.updated_at,
    _S.link_version,
)
SubscriberRef = int | str  # a subscriber id, or an email address
AnyRow = Row[*tuple[Any, ...]]


class Listed(NamedTuple):
    """A member as a list shows them: what segments are worked out from, and no more."""

    email: str
    name: str
    organisation: str
    region: str
    status: SubscriberStatus
    tags: tuple[str, ...]
    attributes: Mapping[str, str]  # shared between members: read, never change


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SubscriberStore:
    """The list of members, on SQLite or PostgreSQL. Open it with :func:`mailer.store.open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> SubscriberStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------

    def find(self, email: str) -> Subscriber | None:
        """The subscriber with this address (compared case-insensitively), or None."""
        with self._read() as connection:
            row = _select_one(connection, _S.email_key == _key_of(email))
        return None if row is None else _to_subscriber(row)

    def get(self, ref: SubscriberRef) -> Subscriber:
        """The subscriber with this id or address; raises SubscriberNotFound."""
        with self._read() as connection:
            row = _select_ref(connection, ref)
        return _to_subscriber(row)

    def list_subscribers(self, *, status: SubscriberStatus | None = None) -> list[Subscriber]:
        """Every subscriber (with that status, if given), ordered by address."""
        query = select(*_SUBSCRIBER_COLUMNS).order_by(_S.email_key)
        if status is not None:
            query = query.where(_S.status == status.value)
        with self._read() as connection:
            return [_to_subscriber(row) for row in connection.execute(query)]

    def stream(
        self,
        *,
        status: SubscriberStatus | None = None,
        where: ColumnElement[bool] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Subscriber]:
        """Every subscriber (with that status, matching ``where``), ordered by address.

        One query in one read transaction, its rows fetched ``batch_size`` at a time
        (a server-side cursor on PostgreSQL), so the list is never held whole: for
        commands that walk it once (export, list), not for long sends.
        """
        query = select(*_SUBSCRIBER_COLUMNS)
        if status is not None:
            query = query.where(_S.status == status.value)
        if where is None:
            query = query.order_by(_S.email_key)
        else:
            # Same order, but not by walking the address index: a filter (a segment) keeps
            # a few rows of many, and reading the table in index order to find them is a
            # random read per member (18 s at 1M on SQLite); a scan and a sort of the
            # few it keeps took 6.
            query = query.where(where).order_by(_S.email_key.concat(""))
        options = {"stream_results": True, "yield_per": batch_size}
        with self._read() as connection:
            for row in connection.execution_options(**options).execute(query):
                yield _to_subscriber(row)

    def stream_listed(
        self,
        *,
        status: SubscriberStatus | None = None,
        where: ColumnElement[bool] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Listed]:
        """:meth:`stream`, with only what a list of members shows (no dates), read quickly:
        a list repeats a few tag sets and attribute sets, each decoded once."""
        query = select(
            _S.email,
            _S.name,
            _S.organisation,
            _S.region,
            _S.status,
            sql_cast(_S.tags, Text),
            sql_cast(_S.attributes, Text),
        )
        if status is not None:
            query = query.where(_S.status == status.value)
        if where is None:
            query = query.order_by(_S.email_key)
        else:  # see stream()
            query = query.where(where).order_by(_S.email_key.concat(""))
        options = {"stream_results": True, "yield_per": batch_size}
        statuses = {status.value: status for status in SubscriberStatus}
        with self._read() as connection:
            for (
                email,
                name,
                organisation,
                region,
                state,
                tags,
                attributes,
            ) in connection.execution_options(**options).execute(query):
                yield Listed(
                    email,
                    name,
                    organisation,
                    region,
                    statuses[state],
                    decode_tags(tags),
                    decode_json(attributes),
                )

    def longest_email(
        self, *, status: SubscriberStatus | None = None, where: ColumnElement[bool] | None = None
    ) -> int:
        """The length of the longest address among the subscribers :meth:`stream` gives."""
        query = select(func.coalesce(func.max(func.length(_S.email)), 0))
        if status is not None:
            query = query.where(_S.status == status.value)
        if where is not None:
            query = query.where(where)
        with self._read() as connection:
            return int(connection.scalar(query) or 0)

    def attribute_names(self, *, status: SubscriberStatus | None = None) -> list[str]:
        """The names of every attribute any subscriber (with that status) has, sorted."""
        if self.engine.dialect.name == "sqlite":
            keys = func.json_each(_S.attributes).table_valued("key").alias("attribute")
            query = select(keys.c.key).select_from(_S).join(keys, true())
        else:
            query = select(func.jsonb_object_keys(_S.attributes))
        if status is not None:
            query = query.where(_S.status == status.value)
        with self._read() as connection:
            return sorted(set(connection.scalars(query.distinct())))

    def iter_subscribers(
        self, *, status: SubscriberStatus | None = None, batch_size: int = 1000
    ) -> Iterator[Subscriber]:
        """Every subscriber (with that status, if given) in id order, fetched in batches.

        Each batch is its own short read, so iterating a long list while sending never
        holds a transaction open (which would stall SQLite's WAL checkpoints).
        """
        last_id = 0
        while True:
            query = select(*_SUBSCRIBER_COLUMNS).where(_S.id > last_id)
            if status is not None:
                query = query.where(_S.status == status.value)
            with self._read() as connection:
                rows = connection.execute(query.order_by(_S.id).limit(batch_size)).all()
            if not rows:
                return
            yield from (_to_subscriber(row) for row in rows)
            last_id = rows[-1].id

    def active(self, *, batch_size: int = 1000) -> Iterator[Subscriber]:
        """The members who may be mailed: status active, in id order."""
        return self.iter_subscribers(status=SubscriberStatus.active, batch_size=batch_size)

    def counts(self) -> dict[SubscriberStatus, int]:
        """How many subscribers have each status (zero included)."""
        query = select(_S.status, func.count()).group_by(_S.status)
        with self._read() as connection:
            found = {SubscriberStatus(status): count for status, count in connection.execute(query)}
        return {status: found.get(status, 0) for status in SubscriberStatus}

    def history(self, ref: SubscriberRef) -> list[SubscriberEvent]:
        """A subscriber's events, oldest first."""
        E = SubscriberEventRow
        columns = (E.at, E.kind, E.detail, E.source, E.status_from, E.status_to)
        with self._read() as connection:
            row = _select_ref(connection, ref)
            query = select(*columns).where(E.subscriber_id == row.id).order_by(E.at, E.id)
            events = connection.execute(query).all()
        return [_to_event(event) for event in events]

    def is_suppressed(self, email: str) -> bool:
        """Whether the address was forgotten, and so may not be added again."""
        with self._read() as connection:
            return _is_suppressed(connection, _key_of(email))

    # -- writing -----------------------------------------------------------------

    def page(
        self,
        *,
        after_id: int = 0,
        limit: int = 100,
        status: SubscriberStatus | None = None,
        updated_since: dt.datetime | None = None,
        where: ColumnElement[bool] | None = None,
    ) -> list[Subscriber]:
        """Up to ``limit`` members with ids above ``after_id``, in id order, filtered as given."""
        query = select(*_SUBSCRIBER_COLUMNS).where(_S.id > after_id)
        if where is not None:
            query = query.where(where)
        if status is not None:
            query = query.where(_S.status == status.value)
        if updated_since is not None:
            query = query.where(_S.updated_at >= updated_since)
        with self._read() as connection:
            rows = connection.execute(query.order_by(_S.id).limit(limit)).all()
        return [_to_subscriber(row) for row in rows]

    def add(
        self, records: Sequence[MemberRecord], *, source: str, note: str | None = None
    ) -> list[Subscriber]:
        """Add new members, all or none; an address already listed or forgotten is refused.

        ``note``: a line for each new member's history, written with them (e.g. the
        consent an API caller holds for a member added as active).
        """
        when = now()
        keys = [email_key(record.email) for record in records]
        if len(set(keys)) < len(keys):
            raise StoreError("the same address is given twice; give each address once")
        with self._write() as connection:
            stored = load_stored(connection, keys)
            suppressed = suppressed_among(connection, keys)
            refused = [
                _refusal(record.email, stored.get(key))
                for record, key in zip(records, keys, strict=True)
                if key in stored or key in suppressed
            ]
            if refused:
                raise StoreError("\n".join(refused))
            rows = [new_row(record, when, source) for record in records]
            added = insert_new(connection, rows, when, source)
            found = connection.execute(select(*_SUBSCRIBER_COLUMNS).where(added)).all()
            if note:
                connection.execute(
                    insert(SubscriberEventRow),
                    [event(row.id, when, EventKind.updated, note, source) for row in found],
                )
        by_key = {row.email_key: _to_subscriber(row) for row in found}
        return [by_key[key] for key in keys]

    def upsert_many(
        self, records: Sequence[MemberRecord], *, source: str, dry_run: bool = False
    ) -> ImportCounts:
        """Import members: add the new, update the changed, in one transaction.

        Addresses must be unique within ``records`` (the CSV reader sees to it).
        Sticky statuses are never revived; forgotten addresses are counted as
        suppressed and not added. With ``dry_run`` the counts are worked out and
        nothing is written.
        """
        return self.upsert_outcomes(records, source=source, dry_run=dry_run).counts

    def upsert_outcomes(
        self, records: Sequence[MemberRecord], *, source: str, dry_run: bool = False
    ) -> UpsertOutcome:
        """:meth:`upsert_many`, also telling each record's status after the import."""
        when = now()
        with paused_gc(), self._write() as connection:
            keys = [email_key(record.email) for record in records]
            stored = load_stored(connection, keys)
            plan = plan_upsert(records, stored, suppressed_among(connection, keys), when, source)
            if not dry_run:
                apply_plan(connection, plan, when, source)
            return UpsertOutcome(plan.counts(), plan.outcomes)

    @contextmanager
    def upserting(
        self, *, source: str, dry_run: bool = False
    ) -> Iterator[Callable[[Sequence[MemberRecord]], UpsertOutcome]]:
        """:meth:`upsert_outcomes` a chunk of records at a time, every chunk in one transaction.

        For an import too long to hold whole: the ``with`` block calls the function it
        is given with each chunk (addresses unique over all of them). Everything is
        committed when the block ends, and nothing if it raises.
        """
        with self._write() as connection:
            upsert = ChunkedUpsert(connection, now(), source, dry_run=dry_run)
            yield upsert
            upsert.finish()

    def set_status(
        self, ref: SubscriberRef, status: SubscriberStatus, *, reason: str, source: str
    ) -> Subscriber:
        """Move a member to a sticky status (unsubscribed, bounced, complained, pending).

        Setting the status a member already has changes nothing (webhooks repeat
        themselves). Moving back to ``active`` is :meth:`resubscribe`'s job.
        """
        if status is SubscriberStatus.active:
            raise StoreError(
                "set_status cannot make a member active: use resubscribe, "
                "which needs the member's own request and a reason"
            )
        with self._write() as connection:
            row = _select_ref(connection, ref)
            if row.status != status.value:
                _change_status(connection, row, status, EventKind.status, reason, source)
            return _to_subscriber(_select_ref(connection, row.id))

    def unsubscribe(self, ref: SubscriberRef, *, reason: str, source: str) -> Subscriber:
        """Unsubscribe a member (idempotent)."""
        return self.set_status(ref, SubscriberStatus.unsubscribed, reason=reason, source=source)

    def resubscribe(self, email: str, *, reason: str, source: str) -> Subscriber:
        """Make a member active again at their explicit request; the reason is logged.

        Works for every sticky status and for a forgotten address (the suppression
        is lifted and the member added back with no other data).
        """
        if not reason.strip():
            raise StoreError("a re-subscription needs a reason, e.g. 'asked by email on 3 May'")
        address = normalise_email(email)
        when = now()
        with self._write() as connection:
            row = _select_one(connection, _S.email_key == address.key)
            if row is None:
                if not _lift_suppression(connection, address.key):
                    raise SubscriberNotFound(email)
                record = MemberRecord(email=address.email, status_reason=reason)
                insert_new(connection, [new_row(record, when, source)], when, source)
                row = _select_ref(connection, address.email)
            if row.status != SubscriberStatus.active:
                _change_status(
                    connection, row, SubscriberStatus.active, EventKind.resubscribed, reason, source
                )
            return _to_subscriber(_select_ref(connection, row.id))

    def confirm(self, email: str, *, source: str) -> Subscriber:
        """Confirm a pending sign-up: pending becomes active; other statuses are left alone."""
        with self._write() as connection:
            row = _select_ref(connection, email)
            if row.status == SubscriberStatus.pending:
                _change_status(
                    connection,
                    row,
                    SubscriberStatus.active,
                    EventKind.resubscribed,
                    "confirmed their sign-up",
                    source,
                )
            return _to_subscriber(_select_ref(connection, row.id))

    def change_email(self, ref: SubscriberRef, new_email: str, *, source: str) -> Subscriber:
        """Move a member to a new address, keeping everything else (status, history, links).

        For a change the member confirmed from the new address. StoreError if the
        new address is another member's or was forgotten; InvalidEmail if it is not
        an address.
        """
        address = normalise_email(new_email)
        with self._write() as connection:
            row = _select_ref(connection, ref)
            if row.email_key != address.key:
                taken = _select_one(connection, _S.email_key == address.key)
                if taken is not None or _is_suppressed(connection, address.key):
                    raise StoreError(
                        f"{address.email!r} cannot be used: it is another member's address, "
                        "or was forgotten at its owner's request"
                    )
            if row.email != address.email:
                when = now()
                connection.execute(
                    update(_S)
                    .where(_S.id == row.id)
                    .values(email=address.email, email_key=address.key, updated_at=when)
                )
                connection.execute(
                    insert(SubscriberEventRow),
                    event(row.id, when, EventKind.updated, "changed email", source),
                )
            return _to_subscriber(_select_ref(connection, row.id))

    def revoke_links(self, ref: SubscriberRef, *, reason: str, source: str) -> Subscriber:
        """Make every link sent to the member so far stop working; the next email has new ones.

        For a link that was forwarded or posted where others can use it. The
        member's status is not changed; the history says when and why.
        """
        with self._write() as connection:
            row = _select_ref(connection, ref)
            when = now()
            connection.execute(
                update(_S)
                .where(_S.id == row.id)
                .values(link_version=_S.link_version + 1, updated_at=when)
            )
            connection.execute(
                insert(SubscriberEventRow),
                event(row.id, when, EventKind.links_revoked, f"links revoked: {reason}", source),
            )
            return _to_subscriber(_select_ref(connection, row.id))

    def delete_pending(self, *, changed_before: dt.datetime) -> int:
        """Delete members still ``pending`` since before the time given, history and all.

        For sign-ups never confirmed: nothing of them is kept (not even a suppression,
        since they never asked for anything to be remembered). Returns how many.
        """
        with self._write() as connection:
            result = connection.execute(
                delete(_S).where(
                    _S.status == SubscriberStatus.pending.value,
                    _S.status_changed_at < changed_before,
                )
            )
            return int(result.rowcount or 0)

    def forget(self, email: str, *, reason: str, source: str) -> bool:
        """Erase a member and their history; keep a hash of the address so it is never re-added.

        Returns whether a member was erased (the address is suppressed either way).
        """
        key = _key_of(email)
        with self._write() as connection:
            if not _is_suppressed(connection, key):
                connection.execute(
                    insert(SuppressionRow),
                    {"email_hash": suppression_hash(key), "reason": reason, "created_at": now()},
                )
            # The history, the send ledger, segment choices and webhook events go with the
            # member (ON DELETE CASCADE); events that reached us about the address while it
            # was not a member's, and the sign-up form's counts, go here.
            erased = connection.execute(delete(_S).where(_S.email_key == key)).rowcount
            connection.execute(
                delete(WebhookEventRow).where(
                    WebhookEventRow.subscriber_id.is_(None),
                    func.lower(WebhookEventRow.email) == key,
                )
            )
            connection.execute(delete(RejectedRow).where(RejectedRow.email_key == key))
            connection.execute(
                delete(SignupAttemptRow).where(
                    SignupAttemptRow.key == limit_key("address", mailbox_key(key))
                )
            )
            return bool(erased)

    # -- transactions --------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._translated(), self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._translated(), write_connection(self.engine) as connection:
            yield connection

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Database failures as StoreError, naming the database but never its password."""
        where = self.engine.url.render_as_string(hide_password=True)
        try:
            yield
        except IntegrityError as error:
            raise StoreError(
                f"the subscriber store at {where} refused a change ({error.orig}); another "
                "process probably changed the same member at the same time: try again"
            ) from error
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) == "40001":  # PostgreSQL serialization failure
                raise StoreError(
                    f"another process changed the subscriber store at {where} at the same time; "
                    "nothing was changed: run the command again"
                ) from error
            raise StoreError(f"the subscriber store at {where} failed: {error.orig}") from error


# -- statements ---------------------------------------------------------------------


def _key_of(email: str) -> str:
    """The key of a looked-up address; one that does not validate simply matches nothing."""
    try:
        return normalise_email(email).key
    except InvalidEmail:
        return email.strip().lower()


def _select_one(connection: Connection, condition: Any) -> AnyRow | None:
    return connection.execute(select(*_SUBSCRIBER_COLUMNS).where(condition)).first()


def _select_ref(connection: Connection, ref: SubscriberRef) -> AnyRow:
    if isinstance(ref, int):
        row = _select_one(connection, _S.id == ref)
    else:
        row = _select_one(connection, _S.email_key == _key_of(ref))
    if row is None:
        raise SubscriberNotFound(str(ref))
    return row


def _is_suppressed(connection: Connection, key: str) -> bool:
    query = select(SuppressionRow.id).where(SuppressionRow.email_hash == suppression_hash(key))
    return connection.execute(query).first() is not None


def _lift_suppression(connection: Connection, key: str) -> bool:
    query = delete(SuppressionRow).where(SuppressionRow.email_hash == suppression_hash(key))
    return bool(connection.execute(query).rowcount)


def _change_status(
    connection: Connection,
    row: AnyRow,
    status: SubscriberStatus,
    kind: EventKind,
    reason: str,
    source: str,
) -> None:
    when = now()
    connection.execute(
        update(_S)
        .where(_S.id == row.id)
        .values(status=status.value, status_changed_at=when, status_reason=reason, updated_at=when)
    )
    connection.execute(
        insert(SubscriberEventRow),
        event(row.id, when, kind, reason, source, row.status, status.value),
    )


def _refusal(email: str, stored: Stored | None) -> str:
    if stored is None:
        return (
            f"{email!r} was forgotten at the member's request and may not be added again; "
            "if they ask to rejoin, use `mailer subscribers resubscribe`"
        )
    return (
        f"{email!r} is already on the list (status {stored.status}); "
        "`mailer subscribers show` has the details"
    )


# -- rows to models -----------------------------------------------------------------


def _to_subscriber(row: AnyRow) -> Subscriber:
    return Subscriber(
        id=row.id,
        email=row.email,
        name=row.name,
        organisation=row.organisation,
        region=row.region,
        tags=tuple(row.tags),
        attributes=dict(row.attributes),
        status=SubscriberStatus(row.status),
        status_changed_at=row.status_changed_at,
        status_reason=row.status_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        link_version=row.link_version,
    )


def _to_event(row: AnyRow) -> SubscriberEvent:
    return SubscriberEvent(
        at=row.at,
        kind=EventKind(row.kind),
        detail=row.detail,
        source=row.source,
        status_from=SubscriberStatus(row.status_from) if row.status_from else None,
        status_to=SubscriberStatus(row.status_to) if row.status_to else None,
    )


def open_store(database_url: str) -> SubscriberStore:
    """The store at ``database_url`` (a SQLite file is created on first use), migrated to the newest schema."""
    store = SubscriberStore(make_engine(database_url))
    try:
        with store._translated():
            migrate(store.engine)
    except BaseException:
        store.close()
        raise
    return store
