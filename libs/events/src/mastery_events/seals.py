"""Seal each tenant's events in the global order, so that deleting or moving
an event shows even where its stream's chain cannot tell.

Every event is chained to the one before it in its stream as it is stored
(``0003_hash_chain.sql``). A stream's chain alone misses two things: its last
event deleted, and events of different streams swapped in the global order.
Sealing closes both: it walks a tenant's committed events in the global
order and writes one seal row per event, hashing the one before, with the
event's id, stream, version, place and chain hash. Sealing runs apart from
appends, so appends pay nothing for it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import structlog
from nats.errors import Error as NatsError

from mastery_events.anchors import Anchor, SealAnchors
from mastery_events.database import Connection
from mastery_events.migrations import quote_schema
from mastery_events.tenancy import system_transaction, tenant_transaction

logger = structlog.get_logger(__name__)

SEAL_BATCH = 1_000


class Seal(msgspec.Struct, frozen=True, kw_only=True):
    """One event as it was sealed: where it stood and what it hashed to."""

    seal_number: int
    event_id: UUID
    stream_id: str
    stream_version: int
    position: int
    transaction_id: int
    chain_hash: bytes
    seal_hash: bytes

    @property
    def place(self) -> tuple[int, int]:
        """Return where the event stood in the global order when sealed."""
        return (self.transaction_id, self.position)


def seal_hash(
    previous: bytes,
    seal_number: int,
    *,
    event_id: UUID,
    stream_id: str,
    stream_version: int,
    position: int,
    transaction_id: int,
    chain_hash: bytes,
) -> bytes:
    """Return the hash of one seal: SHA-256 over the previous seal's hash
    (empty for a tenant's first) and the sealed event's fields, each of fixed
    width or length-prefixed so that no two seals give the same bytes."""
    stream = stream_id.encode()
    digest = hashlib.sha256()
    digest.update(len(previous).to_bytes(4, "big") + previous)
    digest.update(seal_number.to_bytes(8, "big"))
    digest.update(event_id.bytes)
    digest.update(len(stream).to_bytes(4, "big") + stream)
    digest.update(stream_version.to_bytes(4, "big"))
    digest.update(position.to_bytes(8, "big"))
    digest.update(transaction_id.to_bytes(8, "big"))
    digest.update(len(chain_hash).to_bytes(4, "big") + chain_hash)

    return digest.digest()


SEAL_COLUMNS = """
    seal_number, event_id, stream_id, stream_version, position,
    transaction_id::text::bigint AS transaction_id, chain_hash, seal_hash
"""


def seal_from_row(row: asyncpg.Record) -> Seal:
    """Build a seal from a row selected with ``SEAL_COLUMNS``."""
    number, event_id, stream_id, version, position, transaction_id, chain, own = row
    return Seal(
        seal_number=number,
        event_id=event_id,
        stream_id=stream_id,
        stream_version=version,
        position=position,
        transaction_id=transaction_id,
        chain_hash=chain,
        seal_hash=own,
    )


async def tenants_of(connection: Connection, schema: str) -> list[str]:
    """Return every tenant with events in ``schema``, in name order.

    Listing them crosses tenants, so it runs as the relay's role, which may
    read the whole log."""
    async with system_transaction(connection):
        rows = await connection.fetch(
            f"SELECT DISTINCT tenant_id FROM {quote_schema(schema)}.events "
            "ORDER BY tenant_id"
        )

    return [row[0] for row in rows]


class Sealer:
    """Seal one schema's committed events, one tenant at a time."""

    def __init__(self, schema: str, *, batch_size: int = SEAL_BATCH) -> None:
        self.schema = schema
        self.batch_size = batch_size
        quoted = quote_schema(schema)
        self._last = f"""
            SELECT {SEAL_COLUMNS} FROM {quoted}.event_seals
            WHERE tenant_id = $1 ORDER BY seal_number DESC LIMIT 1
        """
        # Only below the oldest running transaction, as the relay reads: a
        # transaction that commits later cannot land before a sealed event.
        self._unsealed = f"""
            SELECT event_id, stream_id, stream_version, position,
                   transaction_id::text::bigint, chain_hash
            FROM {quoted}.events AS events
            WHERE events.tenant_id = $1
              AND (events.transaction_id, events.position)
                  > ($2::text::xid8, $3)
              AND events.transaction_id
                  < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY events.transaction_id, events.position
            LIMIT $4
        """
        self._insert = f"""
            INSERT INTO {quoted}.event_seals (
                tenant_id, seal_number, event_id, stream_id, stream_version,
                position, transaction_id, chain_hash, seal_hash
            )
            SELECT $1, s.seal_number, s.event_id, s.stream_id,
                   s.stream_version, s.position, s.transaction_id::text::xid8,
                   s.chain_hash, s.seal_hash
            FROM unnest(
                $2::bigint[], $3::uuid[], $4::text[], $5::int[], $6::bigint[],
                $7::bigint[], $8::bytea[], $9::bytea[]
            ) AS s(
                seal_number, event_id, stream_id, stream_version, position,
                transaction_id, chain_hash, seal_hash
            )
        """

    async def last(self, connection: Connection, tenant_id: str) -> Seal | None:
        """Return ``tenant_id``'s newest seal, if it has one."""
        async with tenant_transaction(connection, tenant_id):
            row = await connection.fetchrow(self._last, tenant_id)

        return None if row is None else seal_from_row(row)

    async def seal(self, connection: Connection, tenant_id: str) -> int:
        """Seal every committed event of ``tenant_id`` not sealed yet, one
        batch per transaction; return how many were sealed."""
        sealed = 0
        while True:
            count = await self._seal_batch(connection, tenant_id)
            sealed += count
            if count < self.batch_size:
                break
        if sealed:
            logger.info(
                "audit.sealed", schema=self.schema, tenant=tenant_id, events=sealed
            )

        return sealed

    async def _seal_batch(self, connection: Connection, tenant_id: str) -> int:
        async with tenant_transaction(connection, tenant_id):
            # Two sealers of one tenant would race for the same numbers.
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                f"mastery.seal.{self.schema}.{tenant_id}",
            )
            row = await connection.fetchrow(self._last, tenant_id)
            last = None if row is None else seal_from_row(row)
            after = (0, 0) if last is None else last.place
            events = await connection.fetch(
                self._unsealed, tenant_id, str(after[0]), after[1], self.batch_size
            )
            seals = chain_seals(last, [tuple(event) for event in events])
            if seals:
                await connection.execute(
                    self._insert,
                    tenant_id,
                    [s.seal_number for s in seals],
                    [s.event_id for s in seals],
                    [s.stream_id for s in seals],
                    [s.stream_version for s in seals],
                    [s.position for s in seals],
                    [s.transaction_id for s in seals],
                    [s.chain_hash for s in seals],
                    [s.seal_hash for s in seals],
                )

        return len(seals)


def chain_seals(last: Seal | None, events: Iterable[Sequence[Any]]) -> list[Seal]:
    """Return the seals of ``events``, in order, following on from ``last``."""
    previous = b"" if last is None else last.seal_hash
    number = 0 if last is None else last.seal_number
    seals = []
    for event_id, stream_id, stream_version, position, transaction_id, chain in events:
        number += 1
        previous = seal_hash(
            previous,
            number,
            event_id=event_id,
            stream_id=stream_id,
            stream_version=stream_version,
            position=position,
            transaction_id=transaction_id,
            chain_hash=chain,
        )
        seals.append(
            Seal(
                seal_number=number,
                event_id=event_id,
                stream_id=stream_id,
                stream_version=stream_version,
                position=position,
                transaction_id=transaction_id,
                chain_hash=chain,
                seal_hash=previous,
            )
        )

    return seals


class SealingWorker:
    """Seal a schema's new events every ``interval`` seconds, every tenant
    in turn, for as long as the service runs, and anchor each tenant's
    newest seal on NATS once ``anchors`` gives a way there.

    A round that fails (the database away, a connection lost) is logged and
    tried again at the next interval: what it missed is still unsealed
    then, and sealing only ever continues from the last seal. An anchor
    that could not be published is published at a later round.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        *,
        interval: float,
        anchors: Callable[[], SealAnchors | None] = lambda: None,
    ) -> None:
        self.pool = pool
        self.sealer = Sealer(schema)
        self.interval = interval
        self.anchors = anchors
        self._anchored: dict[str, int] = {}
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Seal, wait, and again, until ``stop`` is called."""
        while not self._stopping.is_set():
            try:
                await self.seal_all()
            except (
                OSError,
                TimeoutError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,
            ) as error:
                logger.warning(
                    "audit.sealing_failed",
                    schema=self.sealer.schema,
                    error=type(error).__name__,
                )
            try:
                await asyncio.wait_for(self._stopping.wait(), self.interval)
            except TimeoutError:
                continue

    async def seal_all(self) -> int:
        """Seal every tenant's new events once, and anchor what is new;
        return how many events were sealed."""
        sealed = 0
        async with self.pool.acquire() as connection:
            for tenant_id in await tenants_of(connection, self.sealer.schema):
                sealed += await self.sealer.seal(connection, tenant_id)
                await self._anchor(connection, tenant_id)

        return sealed

    async def _anchor(self, connection: Connection, tenant_id: str) -> None:
        anchors = self.anchors()
        if anchors is None:
            return
        last = await self.sealer.last(connection, tenant_id)
        if last is None or last.seal_number <= self._anchored.get(tenant_id, 0):
            return
        anchor = Anchor.of(self.sealer.schema, tenant_id, last, at=datetime.now(UTC))
        try:
            await anchors.publish(anchor)
        except (NatsError, TimeoutError) as error:
            logger.warning(
                "audit.anchor_failed",
                schema=self.sealer.schema,
                tenant=tenant_id,
                error=type(error).__name__,
            )
            return
        self._anchored[tenant_id] = last.seal_number
        logger.info(
            "audit.anchored",
            schema=self.sealer.schema,
            tenant=tenant_id,
            seal_number=last.seal_number,
        )

    async def stop(self) -> None:
        """Ask ``run`` to return; a round cut short rolls its batch back,
        and the next run seals those events again."""
        self._stopping.set()
