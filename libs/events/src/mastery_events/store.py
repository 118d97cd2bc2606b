"""The event store: an append-only PostgreSQL table per service schema.

Appends are atomic and checked against the version the writer expected, per
stream. Followers of the whole log read in ``(transaction_id, position)``
order and only below the oldest transaction still running, so an event whose
transaction commits late is never skipped: it is read once that transaction
ends, in its place in the order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import asyncpg
import msgspec

from mastery_events.contract import Registry
from mastery_events.database import Connection
from mastery_events.envelope import Envelope, PendingEvent
from mastery_events.errors import ConcurrencyError
from mastery_events.migrations import quote_schema
from mastery_events.subjects import check_tenant_id


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
    recorded_at, actor, correlation_id, causation_id, payload
"""


def notify_channel(schema: str) -> str:
    """Return the LISTEN/NOTIFY channel that hints at new events in
    ``schema``."""
    return f"mastery_events_{schema}"


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
        self._insert = f"""
            INSERT INTO {self._table} (
                event_id, tenant_id, stream_id, stream_version, event_type,
                event_version, occurred_at, actor, correlation_id,
                causation_id, payload
            )
            SELECT e.event_id, $1, $2, $3 + e.ordinal, e.event_type,
                   e.event_version, e.occurred_at, e.actor, e.correlation_id,
                   e.causation_id, e.payload
            FROM unnest(
                $4::uuid[], $5::text[], $6::int[], $7::timestamptz[],
                $8::text[], $9::uuid[], $10::uuid[], $11::json[]
            ) WITH ORDINALITY AS e(
                event_id, event_type, event_version, occurred_at, actor,
                correlation_id, causation_id, payload, ordinal
            )
            WHERE (
                SELECT coalesce(max(stream_version), 0) FROM {self._table}
                WHERE tenant_id = $1 AND stream_id = $2
            ) = $3
            ORDER BY e.ordinal
            RETURNING {ENVELOPE_COLUMNS}
        """
        self._stream_version = f"""
            SELECT coalesce(max(stream_version), 0) FROM {self._table}
            WHERE tenant_id = $1 AND stream_id = $2
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
        """Append to several streams in one transaction: all or nothing."""
        async with self.pool.acquire() as connection, connection.transaction():
            stored = await self.append_within(connection, batches)

        return stored

    async def append_within(
        self,
        connection: Connection,
        batches: Sequence[StreamAppend],
    ) -> list[Envelope]:
        """Append inside the caller's transaction, so that a service can
        change its own tables and record the events in one commit."""
        stored: list[Envelope] = []
        for batch in batches:
            if not batch.events:
                continue
            rows = await connection.fetch(self._insert, *self._arguments(batch))
            if len(rows) != len(batch.events):
                actual = await connection.fetchval(
                    self._stream_version, batch.tenant_id, batch.stream_id
                )
                raise ConcurrencyError(
                    batch.tenant_id,
                    batch.stream_id,
                    expected=batch.expected_version,
                    actual=actual,
                )
            stored.extend(envelope_from_row(row) for row in rows)
        if stored:
            await connection.execute("SELECT pg_notify($1, '')", self._channel)

        return stored

    def _arguments(self, batch: StreamAppend) -> tuple[object, ...]:
        check_tenant_id(batch.tenant_id)
        event_types = [self.registry.of(event.payload) for event in batch.events]
        return (
            batch.tenant_id,
            batch.stream_id,
            batch.expected_version,
            [event.event_id for event in batch.events],
            [event_type.name for event_type in event_types],
            [event_type.version for event_type in event_types],
            [event.occurred_at for event in batch.events],
            [event.actor for event in batch.events],
            [event.correlation_id for event in batch.events],
            [event.causation_id for event in batch.events],
            [msgspec.json.encode(event.payload).decode() for event in batch.events],
        )

    async def stream_version(self, tenant_id: str, stream_id: str) -> int:
        """Return the version of a stream: 0 when it has no events."""
        async with self.pool.acquire() as connection:
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
        async with self.pool.acquire() as connection:
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
        only from transactions older than every transaction still running."""
        query = f"""
            SELECT {ENVELOPE_COLUMNS} FROM {self._table}
            WHERE (transaction_id, position) > ($1::text::xid8, $2)
              AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY transaction_id, position
            LIMIT $3
        """
        arguments = (str(after.transaction_id), after.position, limit)
        if connection is not None:
            rows = await connection.fetch(query, *arguments)
        else:
            async with self.pool.acquire() as pooled:
                rows = await pooled.fetch(query, *arguments)

        return [envelope_from_row(row) for row in rows]

    async def read_all(
        self,
        after: Checkpoint | None = None,
        *,
        batch_size: int = 500,
    ) -> AsyncIterator[Envelope]:
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


def envelope_from_row(row: asyncpg.Record) -> Envelope:
    """Build an envelope from a row selected with ``ENVELOPE_COLUMNS``."""
    occurred_at: datetime = row["occurred_at"]
    return Envelope(
        event_id=row["event_id"],
        event_type=row["event_type"],
        event_version=row["event_version"],
        tenant_id=row["tenant_id"],
        stream_id=row["stream_id"],
        stream_version=row["stream_version"],
        position=row["position"],
        transaction_id=row["transaction_id"],
        occurred_at=occurred_at,
        recorded_at=row["recorded_at"],
        actor=row["actor"],
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        payload=msgspec.Raw(row["payload"].encode()),
    )
