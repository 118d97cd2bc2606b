"""The event store: an append-only PostgreSQL table per service schema.

Appends are atomic and checked against the version the writer expected, per
stream: one statement checks every stream an append touches, inserts all of
its events or none, and notifies the schema's channel when it stored any.
Followers of the whole log read in ``(transaction_id, position)`` order and
only below the oldest transaction still running, so an event whose
transaction commits late is never skipped: it is read once that transaction
ends, in its place in the order.

Each append runs in a span of its own, and its events keep that span's
W3C trace context, so the relay and the consumers can continue the trace
(see ``mastery_events.tracing``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any, NoReturn

import asyncpg
import msgspec

from mastery_events.contract import EventType, Registry
from mastery_events.database import Connection
from mastery_events.envelope import Envelope, Event, PendingEvent
from mastery_events.errors import ConcurrencyError
from mastery_events.metrics import EVENTS_APPENDED
from mastery_events.migrations import quote_schema
from mastery_events.subjects import check_tenant_id
from mastery_events.tenancy import (
    set_tenant,
    sole_tenant,
    system_transaction,
    tenant_transaction,
)
from mastery_events.tracing import current_traceparent, traced


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True, order=True):
    """A place in the global order: everything at or before it was read."""

    transaction_id: int = 0
    position: int = 0


class StreamAppend(msgspec.Struct, frozen=True, kw_only=True):
    """New events for one stream, and the version the writer last saw."""

    tenant_id: str
    stream_id: str
    expected_version: int
    events: Sequence[PendingEvent]


ENVELOPE_COLUMNS = """
    event_id, event_type, event_version, tenant_id, stream_id, stream_version,
    position, transaction_id::text::bigint AS transaction_id, occurred_at,
    recorded_at, actor, correlation_id, causation_id, payload, traceparent
"""

# PostgreSQL's name for the UNIQUE (tenant_id, stream_id, stream_version)
# constraint of 0001_event_store.sql.
STREAM_VERSION_CONSTRAINT = "events_tenant_id_stream_id_stream_version_key"


def notify_channel(schema: str) -> str:
    """Return the LISTEN/NOTIFY channel that hints at new events in
    ``schema``."""
    return f"mastery_events_{schema}"


class AppendPlan:
    """The rows of one append as column arrays, and the version each stream
    touched must be at, so that one statement writes them all or none."""

    def __init__(self) -> None:
        self.checks: list[StreamAppend] = []
        self.pending: list[PendingEvent] = []
        self.event_types: list[EventType] = []
        self.payloads: list[bytes] = []
        self.tenant_ids: list[str] = []
        self.stream_ids: list[str] = []
        self.stream_versions: list[int] = []
        self.traceparent: str | None = None

    def envelopes(self, rows: Sequence[asyncpg.Record]) -> list[Envelope]:
        """Return the stored events in append order, completed with what the
        insert returned for each: position, transaction and times."""
        returned = {row[0]: row for row in rows}
        stored = []
        for index, event in enumerate(self.pending):
            _, position, transaction_id, recorded_at, occurred_at = returned[
                event.event_id
            ]
            event_type = self.event_types[index]
            stored.append(
                Envelope(
                    event_id=event.event_id,
                    event_type=event_type.name,
                    event_version=event_type.version,
                    tenant_id=self.tenant_ids[index],
                    stream_id=self.stream_ids[index],
                    stream_version=self.stream_versions[index],
                    position=position,
                    transaction_id=transaction_id,
                    occurred_at=occurred_at,
                    recorded_at=recorded_at,
                    actor=event.actor,
                    correlation_id=event.correlation_id,
                    causation_id=event.causation_id,
                    payload=msgspec.Raw(self.payloads[index]),
                    traceparent=self.traceparent,
                )
            )

        return stored

    def arguments(self) -> tuple[object, ...]:
        """Return the insert statement's parameters, ``$1`` to ``$15``."""
        pending = self.pending
        return (
            [check.tenant_id for check in self.checks],
            [check.stream_id for check in self.checks],
            [check.expected_version for check in self.checks],
            self.tenant_ids,
            self.stream_ids,
            self.stream_versions,
            [event.event_id for event in pending],
            [event_type.name for event_type in self.event_types],
            [event_type.version for event_type in self.event_types],
            [event.occurred_at for event in pending],
            [event.actor for event in pending],
            [event.correlation_id for event in pending],
            [event.causation_id for event in pending],
            [payload.decode() for payload in self.payloads],
            self.traceparent,
        )


def plan_append(
    batches: Sequence[StreamAppend],
    event_type_of: Callable[[Event], EventType],
) -> AppendPlan:
    """Lay out ``batches`` as rows with their stream versions.

    Every tenant id is checked before anything is written. Two batches for
    one stream whose versions follow on are checked as one, against the
    first's expected version; any other repeat keeps its own check, which
    then fails as the store's state cannot match both.
    """
    plan = AppendPlan()
    next_version: dict[tuple[str, str], int] = {}
    for batch in batches:
        check_tenant_id(batch.tenant_id)
        if not batch.events:
            continue
        key = (batch.tenant_id, batch.stream_id)
        if next_version.get(key) != batch.expected_version:
            plan.checks.append(batch)
        version = batch.expected_version
        for event in batch.events:
            version += 1
            plan.pending.append(event)
            plan.event_types.append(event_type_of(event.payload))
            plan.payloads.append(msgspec.json.encode(event.payload))
            plan.tenant_ids.append(batch.tenant_id)
            plan.stream_ids.append(batch.stream_id)
            plan.stream_versions.append(version)
        next_version[key] = version

    return plan


def conflicting_check(
    error: asyncpg.UniqueViolationError, plan: AppendPlan
) -> StreamAppend:
    """Return the stream whose key the server says already exists.

    The server prints the duplicate key as ``(tenant, stream, version)`` in
    every locale; when it withholds the key, the first stream is named.
    """
    detail = error.detail or ""
    for tenant_id, stream_id, version in zip(
        plan.tenant_ids, plan.stream_ids, plan.stream_versions, strict=True
    ):
        if f"=({tenant_id}, {stream_id}, {version})" in detail:
            for check in plan.checks:
                if (check.tenant_id, check.stream_id) == (tenant_id, stream_id):
                    return check

    return plan.checks[0]


class EventStore:
    """Append to and read from the events table of one service's schema."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        *,
        registry: Registry,
    ) -> None:
        self.pool = pool
        self.schema = schema
        self.registry = registry
        self._table = f"{quote_schema(schema)}.events"
        self._channel = notify_channel(schema)
        # One statement checks every stream and inserts every row, so an
        # append costs one round trip and needs no transaction of its own.
        # The check is not correlated with the rows: it passes or fails for
        # the whole append. Two writers that both pass it before either
        # commits collide on the stream-version key instead.
        self._insert = f"""
            WITH inserted AS (
                INSERT INTO {self._table} (
                    event_id, tenant_id, stream_id, stream_version,
                    event_type, event_version, occurred_at, actor,
                    correlation_id, causation_id, payload, traceparent
                )
                SELECT e.event_id, e.tenant_id, e.stream_id, e.stream_version,
                       e.event_type, e.event_version, e.occurred_at, e.actor,
                       e.correlation_id, e.causation_id, e.payload, $15::text
                FROM unnest(
                    $4::text[], $5::text[], $6::int[], $7::uuid[], $8::text[],
                    $9::int[], $10::timestamptz[], $11::text[], $12::uuid[],
                    $13::uuid[], $14::json[]
                ) WITH ORDINALITY AS e(
                    tenant_id, stream_id, stream_version, event_id,
                    event_type, event_version, occurred_at, actor,
                    correlation_id, causation_id, payload, ordinal
                )
                WHERE NOT EXISTS (
                    SELECT FROM unnest($1::text[], $2::text[], $3::int[])
                        AS s(tenant_id, stream_id, expected_version)
                    WHERE s.expected_version <> (
                        SELECT coalesce(max(v.stream_version), 0)
                        FROM {self._table} AS v
                        WHERE v.tenant_id = s.tenant_id
                          AND v.stream_id = s.stream_id
                    )
                )
                ORDER BY e.ordinal
                RETURNING event_id, position, transaction_id, recorded_at,
                          occurred_at
            ),
            notified AS (
                SELECT pg_notify($16, '')
                FROM (SELECT FROM inserted LIMIT 1) AS any_inserted
            )
            SELECT i.event_id, i.position, i.transaction_id::text::bigint,
                   i.recorded_at, i.occurred_at
            FROM inserted AS i CROSS JOIN notified
        """
        self._stream_version = f"""
            SELECT coalesce(max(stream_version), 0) FROM {self._table}
            WHERE tenant_id = $1 AND stream_id = $2
        """
        self._stream_versions = f"""
            SELECT (
                SELECT coalesce(max(v.stream_version), 0)
                FROM {self._table} AS v
                WHERE v.tenant_id = s.tenant_id AND v.stream_id = s.stream_id
            )
            FROM unnest($1::text[], $2::text[]) WITH ORDINALITY
                AS s(tenant_id, stream_id, ordinal)
            ORDER BY s.ordinal
        """

    async def append(
        self,
        tenant_id: str,
        stream_id: str,
        expected_version: int,
        events: Sequence[PendingEvent],
    ) -> list[Envelope]:
        """Append ``events`` to one stream atomically, or raise
        ``ConcurrencyError`` when the stream is not at ``expected_version``."""
        batch = StreamAppend(
            tenant_id=tenant_id,
            stream_id=stream_id,
            expected_version=expected_version,
            events=events,
        )

        return await self.append_many([batch])

    async def append_many(self, batches: Sequence[StreamAppend]) -> list[Envelope]:
        """Append to several streams in one statement, hence one
        transaction: all or nothing."""
        async with self.pool.acquire() as connection:
            stored = await self.append_within(connection, batches)

        return stored

    async def append_within(
        self,
        connection: Connection,
        batches: Sequence[StreamAppend],
    ) -> list[Envelope]:
        """Append on the caller's connection, inside its transaction if it
        has one, so that a service can change its own tables and record the
        events in one commit.

        Nothing of ``batches`` is written when one stream is not at its
        expected version, and then ``ConcurrencyError`` names that stream.
        When another writer's commit collides with this append, the caller's
        transaction is aborted and can only be rolled back.
        """
        plan = plan_append(batches, self.registry.of)
        if not plan.pending:
            return []

        attributes: dict[str, str | int] = {
            "db.system.name": "postgresql",
            "db.namespace": self.schema,
            "db.operation.name": "append",
            "db.operation.batch.size": len(plan.pending),
        }
        with traced(f"append {self.schema}.events", attributes=attributes):
            plan.traceparent = current_traceparent()
            return await self._append_planned(connection, plan)

    async def _append_planned(
        self, connection: Connection, plan: AppendPlan
    ) -> list[Envelope]:
        # A caller's transaction has its tenant set by the caller, and the
        # rows are checked against it; otherwise the append is a transaction
        # of its own for the one tenant it writes.
        own_transaction = not connection.is_in_transaction()
        try:
            if not own_transaction:
                return await self._insert_planned(connection, plan)
            async with connection.transaction():
                tenant_id = sole_tenant(plan.tenant_ids)
                if tenant_id is not None:
                    await set_tenant(connection, tenant_id)
                return await self._insert_planned(connection, plan)
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name != STREAM_VERSION_CONSTRAINT:
                raise
            check = conflicting_check(error, plan)
            actual = None
            if own_transaction:
                actual = await self._version_of(connection, check)
            raise ConcurrencyError(
                check.tenant_id,
                check.stream_id,
                expected=check.expected_version,
                actual=actual,
            ) from error

    async def _insert_planned(
        self, connection: Connection, plan: AppendPlan
    ) -> list[Envelope]:
        rows = await connection.fetch(self._insert, *plan.arguments(), self._channel)
        if len(rows) != len(plan.pending):
            await self._raise_stale(connection, plan)
        EVENTS_APPENDED.labels(self.schema).inc(len(rows))

        return plan.envelopes(rows)

    async def _version_of(self, connection: Connection, check: StreamAppend) -> int:
        async with tenant_transaction(connection, check.tenant_id):
            version: int = await connection.fetchval(
                self._stream_version, check.tenant_id, check.stream_id
            )
        return version

    async def _raise_stale(self, connection: Connection, plan: AppendPlan) -> NoReturn:
        versions = await connection.fetch(
            self._stream_versions,
            [check.tenant_id for check in plan.checks],
            [check.stream_id for check in plan.checks],
        )
        for check, (actual,) in zip(plan.checks, versions, strict=True):
            if actual != check.expected_version:
                raise ConcurrencyError(
                    check.tenant_id,
                    check.stream_id,
                    expected=check.expected_version,
                    actual=actual,
                )
        # Every stream is now where its writer expected: one was behind that
        # version when the append ran, and another writer has since caught
        # it up, so no single version describes it.
        check = plan.checks[0]
        raise ConcurrencyError(
            check.tenant_id,
            check.stream_id,
            expected=check.expected_version,
            actual=None,
        )

    async def stream_version(self, tenant_id: str, stream_id: str) -> int:
        """Return the version of a stream: 0 when it has no events."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            version: int = await connection.fetchval(
                self._stream_version, tenant_id, stream_id
            )

        return version

    async def read_stream(
        self,
        tenant_id: str,
        stream_id: str,
        *,
        after_version: int = 0,
    ) -> list[Envelope]:
        """Return one stream's events after ``after_version``, oldest first."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            rows = await connection.fetch(
                f"""
                SELECT {ENVELOPE_COLUMNS} FROM {self._table}
                WHERE tenant_id = $1 AND stream_id = $2 AND stream_version > $3
                ORDER BY stream_version
                """,
                tenant_id,
                stream_id,
                after_version,
            )

        return [envelope_from_row(row) for row in rows]

    async def read_batch(
        self,
        after: Checkpoint,
        *,
        limit: int = 500,
        connection: Connection | None = None,
    ) -> list[Envelope]:
        """Return up to ``limit`` events after ``after`` in the global order,
        only from transactions older than every transaction still running.

        Without ``connection`` it reads as the relay's role, across every
        tenant; a ``connection`` given must already be allowed to.
        """
        # The order names the table's columns: bare, ``transaction_id``
        # would mean the bigint it is selected as, which no index serves,
        # and every batch would sort the rest of the log.
        query = f"""
            SELECT {ENVELOPE_COLUMNS} FROM {self._table} AS events
            WHERE (events.transaction_id, events.position)
                  > ($1::text::xid8, $2)
              AND events.transaction_id
                  < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY events.transaction_id, events.position
            LIMIT $3
        """
        arguments = (str(after.transaction_id), after.position, limit)
        if connection is not None:
            rows = await connection.fetch(query, *arguments)
        else:
            # Reading every tenant's events in order is the relay's right.
            async with (
                self.pool.acquire() as pooled,
                system_transaction(pooled),
            ):
                rows = await pooled.fetch(query, *arguments)

        return [envelope_from_row(row) for row in rows]

    async def read_all(
        self,
        after: Checkpoint | None = None,
        *,
        batch_size: int = 500,
    ) -> AsyncGenerator[Envelope, None]:
        """Yield every committed event after ``after`` in the global order,
        fetching ``batch_size`` at a time so memory stays flat."""
        checkpoint = after or Checkpoint()
        while True:
            batch = await self.read_batch(checkpoint, limit=batch_size)
            for envelope in batch:
                yield envelope
            if len(batch) < batch_size:
                return
            checkpoint = checkpoint_of(batch[-1])


def checkpoint_of(envelope: Envelope) -> Checkpoint:
    """Return the checkpoint just after ``envelope`` in the global order."""
    return Checkpoint(
        transaction_id=envelope.transaction_id, position=envelope.position
    )


def envelope_from_row(row: asyncpg.Record | Sequence[Any]) -> Envelope:
    """Build an envelope from a row selected with ``ENVELOPE_COLUMNS``."""
    # Unpacking by position, in ENVELOPE_COLUMNS' order, is cheaper than
    # looking each column up by name, and a full read does it per event.
    (
        event_id,
        event_type,
        event_version,
        tenant_id,
        stream_id,
        stream_version,
        position,
        transaction_id,
        occurred_at,
        recorded_at,
        actor,
        correlation_id,
        causation_id,
        payload,
        traceparent,
    ) = row
    return Envelope(
        event_id=event_id,
        event_type=event_type,
        event_version=event_version,
        tenant_id=tenant_id,
        stream_id=stream_id,
        stream_version=stream_version,
        position=position,
        transaction_id=transaction_id,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        actor=actor,
        correlation_id=correlation_id,
        causation_id=causation_id,
        payload=msgspec.Raw(payload.encode()),
        traceparent=traceparent,
    )
