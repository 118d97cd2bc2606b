"""Export a tenant's history as CloudEvents, and import it elsewhere.

An export is NDJSON: one CloudEvent per line in structured JSON format, each
service's events in its store's global order, with the event's chain hash
as the ``chainhash`` extension. An import appends the same events, with the
same ids, stream versions, times and payload bytes, into a deployment that
holds none of the tenant's events yet, in one transaction: all or nothing.
As each event is stored the database chains it afresh, and the new chain
hash must equal the exported one, which shows the copy is faithful.
Positions and transaction ids are the new database's own.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import structlog

from mastery_events.cloudevents import (
    TYPE_PATTERN,
    CloudEventError,
    from_structured,
    to_structured,
)
from mastery_events.database import Connection
from mastery_events.envelope import Envelope
from mastery_events.errors import EventsError
from mastery_events.migrations import quote_schema
from mastery_events.store import ENVELOPE_COLUMNS, envelope_from_row
from mastery_events.tenancy import set_tenant, tenant_transaction

logger = structlog.get_logger(__name__)

CHAIN_EXTENSION = "chainhash"
IMPORT_BATCH = 1_000
_BYTE_OFFSET = re.compile(r"\(byte (\d+)\)")


class HistoryError(EventsError):
    """Root of the errors of exporting and importing a tenant's history."""


class HistoryFileError(HistoryError):
    """Raised when a line of an export cannot be imported: it names the
    file, the line and the column."""

    def __init__(self, source: str, line: int, column: int, reason: str) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.reason = reason
        super().__init__(f"{source}:{line}:{column}: {reason}")


class NotEmptyError(HistoryError):
    """Raised when the deployment imported into already holds events of the
    tenant, which the imported ones would interleave with."""

    def __init__(self, schema: str, tenant_id: str) -> None:
        self.schema = schema
        self.tenant_id = tenant_id
        message = (
            f"schema {schema!r} already holds events of tenant {tenant_id!r}; "
            "import only into a deployment without them"
        )
        super().__init__(message)


class ChainMismatchError(HistoryError):
    """Raised when an imported event chains to another hash than the one
    exported with it: the export was altered, or is incomplete."""

    def __init__(self, source: str, line: int, event_id: str) -> None:
        self.source = source
        self.line = line
        self.event_id = event_id
        message = (
            f"{source}:{line}:1: event {event_id} does not chain to the hash "
            "exported with it; the export was altered or misses an event"
        )
        super().__init__(message)


class ExportedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One line of an export, read back: the service whose store it belongs
    in, the event, and the chain hash it was exported with, if any."""

    line: int
    service: str
    envelope: Envelope
    chain_hash: bytes | None


class _ChainAttribute(msgspec.Struct, frozen=True):
    chainhash: str | None = None


_chain_attribute = msgspec.json.Decoder(_ChainAttribute)


async def export_history(
    connection: Connection,
    *,
    schema: str,
    service: str,
    tenant_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AsyncIterator[bytes]:
    """Yield ``tenant_id``'s events of one store as structured CloudEvents,
    in the global order, recorded at or after ``since`` and before
    ``until``; a cursor fetches them a batch at a time."""
    query = f"""
        SELECT {ENVELOPE_COLUMNS}, chain_hash
        FROM {quote_schema(schema)}.events AS events
        WHERE tenant_id = $1
          AND ($2::timestamptz IS NULL OR recorded_at >= $2)
          AND ($3::timestamptz IS NULL OR recorded_at < $3)
        ORDER BY events.transaction_id, events.position
    """
    async with tenant_transaction(connection, tenant_id):
        cursor = connection.cursor(query, tenant_id, since, until, prefetch=500)
        async for row in cursor:
            *columns, chain_hash = row
            yield to_structured(
                envelope_from_row(columns),
                service=service,
                extensions={CHAIN_EXTENSION: chain_hash.hex()},
            )


def read_export(lines: Iterable[bytes], *, source: str) -> Iterable[ExportedEvent]:
    """Read an export line by line, refusing the first line that is not one
    CloudEvent of this contract with its file, line and column."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            envelope = from_structured(text)
            chain = _chain_attribute.decode(text).chainhash
            chain_hash = None if chain is None else bytes.fromhex(chain)
        except CloudEventError as error:
            found = _BYTE_OFFSET.search(str(error))
            column = 1 if found is None else int(found[1]) + 1
            raise HistoryFileError(source, number, column, str(error)) from None
        except (msgspec.DecodeError, ValueError) as error:
            reason = f"the chainhash attribute is not hexadecimal text: {error}"
            raise HistoryFileError(source, number, 1, reason) from None
        yield ExportedEvent(
            line=number,
            service=_service_of(text),
            envelope=envelope,
            chain_hash=chain_hash,
        )


class _TypeAttribute(msgspec.Struct, frozen=True):
    type: str


_type_attribute = msgspec.json.Decoder(_TypeAttribute)


def _service_of(document: bytes) -> str:
    match = TYPE_PATTERN.fullmatch(_type_attribute.decode(document).type)
    assert match is not None, "from_structured has checked the type"
    return match["service"]


class HistoryImport:
    """Append an export's events into the stores of one deployment."""

    def __init__(self, schemas: Mapping[str, str], *, source: str) -> None:
        self.schemas = dict(schemas)
        self.source = source
        self.counts: dict[str, int] = dict.fromkeys(self.schemas.values(), 0)

    async def run(self, connection: Connection, events: Iterable[ExportedEvent]) -> str:
        """Import ``events``, all of one tenant, in one transaction; return
        that tenant's id."""
        iterator = iter(events)
        first = next(iterator, None)
        if first is None:
            raise HistoryFileError(self.source, 1, 1, "the export holds no event")
        tenant_id = first.envelope.tenant_id

        async with connection.transaction():
            await set_tenant(connection, tenant_id)
            for schema in self.schemas.values():
                await self._check_empty(connection, schema, tenant_id)
            pending: dict[str, list[ExportedEvent]] = {}
            for event in (first, *iterator):
                schema = self._schema_of(event, tenant_id)
                batch = pending.setdefault(schema, [])
                batch.append(event)
                if len(batch) >= IMPORT_BATCH:
                    await self._insert(connection, schema, batch)
                    batch.clear()
            for schema, batch in pending.items():
                await self._insert(connection, schema, batch)

        logger.info("audit.imported", tenant=tenant_id, events=self.counts)

        return tenant_id

    def _schema_of(self, event: ExportedEvent, tenant_id: str) -> str:
        if event.envelope.tenant_id != tenant_id:
            reason = (
                f"tenant {event.envelope.tenant_id!r} is not {tenant_id!r}, "
                "the tenant of the first line: an export holds one tenant"
            )
            raise HistoryFileError(self.source, event.line, 1, reason)
        schema = self.schemas.get(event.service)
        if schema is None:
            reason = f"no service {event.service!r} is installed to store it"
            raise HistoryFileError(self.source, event.line, 1, reason)
        return schema

    async def _check_empty(
        self, connection: Connection, schema: str, tenant_id: str
    ) -> None:
        found = await connection.fetchval(
            f"SELECT EXISTS (SELECT FROM {quote_schema(schema)}.events "
            "WHERE tenant_id = $1)",
            tenant_id,
        )
        if found:
            raise NotEmptyError(schema, tenant_id)

    async def _insert(
        self, connection: Connection, schema: str, batch: list[ExportedEvent]
    ) -> None:
        if not batch:
            return
        envelopes = [event.envelope for event in batch]
        try:
            rows = await connection.fetch(
                _insert_statement(schema), *_columns(envelopes)
            )
        except asyncpg.PostgresError as error:
            line = refused_line(batch, error)
            reason = f"the database refused the event: {error}"
            raise HistoryFileError(self.source, line, 1, reason) from None

        stored = {row[0]: row[1] for row in rows}
        for event in batch:
            exported = event.chain_hash
            if exported is not None and stored[event.envelope.event_id] != exported:
                event_id = str(event.envelope.event_id)
                raise ChainMismatchError(self.source, event.line, event_id)
        self.counts[schema] += len(batch)


def refused_line(batch: list[ExportedEvent], error: asyncpg.PostgresError) -> int:
    """Return the line of the event the server refused, found by the id or
    the stream version its message names; else the batch's first line."""
    said = f"{error} {getattr(error, 'detail', None) or ''}"
    for event in batch:
        envelope = event.envelope
        version = envelope.stream_version
        # The chain's trigger names a stream version that has no predecessor.
        gap = (
            f"stream {envelope.stream_id} has no version {version - 1} "
            f"to chain version {version} "
        )
        if str(envelope.event_id) in said or gap in said:
            return event.line

    return batch[0].line


def _insert_statement(schema: str) -> str:
    return f"""
        INSERT INTO {quote_schema(schema)}.events (
            event_id, tenant_id, stream_id, stream_version, event_type,
            event_version, occurred_at, recorded_at, actor, correlation_id,
            causation_id, payload
        )
        SELECT e.event_id, e.tenant_id, e.stream_id, e.stream_version,
               e.event_type, e.event_version, e.occurred_at, e.recorded_at,
               e.actor, e.correlation_id, e.causation_id, e.payload
        FROM unnest(
            $1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[],
            $6::int[], $7::timestamptz[], $8::timestamptz[], $9::text[],
            $10::uuid[], $11::uuid[], $12::json[]
        ) WITH ORDINALITY AS e(
            event_id, tenant_id, stream_id, stream_version, event_type,
            event_version, occurred_at, recorded_at, actor, correlation_id,
            causation_id, payload, ordinal
        )
        ORDER BY e.ordinal
        RETURNING event_id, chain_hash
    """


def _columns(envelopes: list[Envelope]) -> tuple[list[Any], ...]:
    return (
        [e.event_id for e in envelopes],
        [e.tenant_id for e in envelopes],
        [e.stream_id for e in envelopes],
        [e.stream_version for e in envelopes],
        [e.event_type for e in envelopes],
        [e.event_version for e in envelopes],
        [e.occurred_at for e in envelopes],
        [e.recorded_at for e in envelopes],
        [e.actor for e in envelopes],
        [e.correlation_id for e in envelopes],
        [e.causation_id for e in envelopes],
        [bytes(e.payload).decode() for e in envelopes],
    )
