"""The timeline projector: follows grading's own log in its global order.

Each step is one transaction: it takes a transaction-level advisory lock
(so two processes never project at once, and a rebuild can pause the
projector), reads the checkpoint and the next batch of events as the
relay's role, applies each event under its own tenant, appends what it
announces, and moves the checkpoint. Read model, announcements and
checkpoint commit together or not at all.

The events of an imported history are applied quietly, without
announcements: the import brought those along (see ``history_import``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import msgspec
import structlog

from mastery_events.checkpoints import Checkpoints
from mastery_events.contract import Registry
from mastery_events.contract.grading import AssessmentRecorded, RecalculationStarted
from mastery_events.database import Connection
from mastery_events.envelope import Envelope
from mastery_events.migrations import quote_schema
from mastery_events.store import Checkpoint, EventStore, checkpoint_of
from mastery_events.tenancy import RELAY_ROLE, set_tenant
from mastery_grading.errors import GradingError
from mastery_grading.recalculation import Recalculations
from mastery_grading.timeline_store import TimelineProjection

NAME = "timelines"
APPLIED_TYPES = frozenset(
    {
        "AssessmentRecorded",
        "AssessmentAmended",
        "AssessmentVoided",
        "RecalculationStarted",
    }
)
# InternalClientError comes from a connection the server dropped mid-query.
FAILURES = (
    GradingError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)

log = structlog.get_logger(__name__)


class ProjectorSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How many events a step applies, how many timelines a step of a
    recalculation goes through, and how long the projector waits (in
    seconds) when it has caught up or failed."""

    batch_size: int = 200
    recalculation_chunk: int = 500
    poll_interval: float = 0.2
    retry_delay: float = 2.0


def lock_key(schema: str) -> str:
    """Return the text whose hash is the projector's advisory lock."""
    return f"mastery.{NAME}.{schema}"


def import_mark(tenant_id: str) -> str:
    """Return the checkpoint name that marks the tenant's imported history:
    its place is the last imported event."""
    return f"{NAME}.imported.{tenant_id}"


async def imports_after(
    connection: Connection, schema: str, checkpoint: Checkpoint
) -> frozenset[int]:
    """Return the transactions of the imports the projector has still to
    apply, read as the relay's role inside the caller's transaction."""
    await connection.execute(f"SET LOCAL ROLE {RELAY_ROLE}")
    rows = await connection.fetch(
        "SELECT transaction_id::text::bigint AS transaction_id "
        f"FROM {quote_schema(schema)}.checkpoints WHERE name LIKE $1 "
        "AND (transaction_id, position) > ($2::text::xid8, $3)",
        import_mark("%"),
        str(checkpoint.transaction_id),
        checkpoint.position,
    )
    await connection.execute("SET LOCAL ROLE NONE")

    return frozenset(row["transaction_id"] for row in rows)


async def read_as_relay(
    connection: Connection,
    store: EventStore,
    checkpoints: Checkpoints,
    *,
    limit: int,
) -> tuple[Checkpoint, list[Envelope]]:
    """Return the checkpoint and the events after it, read across tenants
    as the relay's role, inside the caller's transaction."""
    await connection.execute(f"SET LOCAL ROLE {RELAY_ROLE}")
    checkpoint = await checkpoints.load(connection)
    batch = await store.read_batch(checkpoint, limit=limit, connection=connection)
    await connection.execute("SET LOCAL ROLE NONE")

    return checkpoint, batch


async def save_as_relay(
    connection: Connection, checkpoints: Checkpoints, checkpoint: Checkpoint
) -> None:
    """Move the checkpoint inside the caller's transaction."""
    await connection.execute(f"SET LOCAL ROLE {RELAY_ROLE}")
    await checkpoints.save(connection, checkpoint)
    await connection.execute("SET LOCAL ROLE NONE")


async def apply_batch(
    connection: Connection,
    projection: TimelineProjection,
    registry: Registry,
    batch: list[Envelope],
    *,
    imported: frozenset[int] = frozenset(),
    quiet: TimelineProjection | None = None,
) -> tuple[int, list[Envelope]]:
    """Apply the timeline events of ``batch``, each under its tenant, those
    of the ``imported`` transactions with ``quiet``; return how many
    timelines changed and the events done with. A recalculation that
    needs another step ends the batch before it, so the next step reads
    it again and nothing after it runs first."""
    changed = 0
    for index, envelope in enumerate(batch):
        if envelope.event_type not in APPLIED_TYPES:
            continue
        event = registry.decode(envelope)
        await set_tenant(connection, envelope.tenant_id)
        chosen = projection
        if quiet is not None and envelope.transaction_id in imported:
            chosen = quiet
            if isinstance(event, AssessmentRecorded):
                await quiet.require_objective(
                    connection, envelope.tenant_id, event.objective_id
                )
            if isinstance(event, RecalculationStarted):
                await quiet.require_policy(connection, envelope.tenant_id, event)
        applied = await chosen.apply(connection, envelope, event)
        changed += applied.changed
        if not applied.complete:
            return changed, batch[:index]

    return changed, batch


class TimelineProjector:
    """Keep the timeline tables in step with grading's log, announcing
    each change as a ``MasteryChanged`` event."""

    def __init__(
        self, store: EventStore, *, settings: ProjectorSettings | None = None
    ) -> None:
        self.store = store
        self.settings = settings or ProjectorSettings()
        self.projection = TimelineProjection(
            store.schema, store=store, chunk=self.settings.recalculation_chunk
        )
        # Without the store it announces nothing: for imported histories.
        self.quiet = TimelineProjection(
            store.schema, chunk=self.settings.recalculation_chunk
        )
        self.recalculations = Recalculations(store.schema)
        self._checkpoints = Checkpoints(store.schema, NAME)
        self._lock = lock_key(store.schema)
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Project until ``stop`` is called."""
        log.info("timeline.projector_started", schema=self.store.schema)
        while not self._stopping.is_set():
            try:
                applied = await self.step()
            except FAILURES as error:
                # The batch rolled back whole; the next try starts from the
                # same checkpoint.
                log.warning(
                    "timeline.projector_failed",
                    schema=self.store.schema,
                    error=type(error).__name__,
                    retry_in=self.settings.retry_delay,
                )
                await self._sleep(self.settings.retry_delay)
                continue
            if not applied:
                await self._sleep(self.settings.poll_interval)
        log.info("timeline.projector_stopped", schema=self.store.schema)

    async def stop(self) -> None:
        """Let the projector finish the step in hand and return."""
        self._stopping.set()

    async def catch_up(self) -> int:
        """Apply every committed event past the checkpoint; return how many
        events were read. For commands and tests that need it now."""
        total = 0
        while True:
            applied = await self.step()
            if applied is None:
                await asyncio.sleep(self.settings.poll_interval)
                continue
            total += applied
            if applied == 0:
                return total

    async def step(self) -> int | None:
        """Apply one batch and announce planned jobs in one transaction;
        return how much it did (events done with, jobs announced, one for
        a part of a recalculation), or ``None`` when another process holds
        the lock."""
        started = time.monotonic()
        async with self.store.pool.acquire() as connection, connection.transaction():
            locked = await connection.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))",
                self._lock,
            )
            if not locked:
                return None
            checkpoint, batch = await read_as_relay(
                connection,
                self.store,
                self._checkpoints,
                limit=self.settings.batch_size,
            )
            imported = frozenset[int]()
            if batch:
                imported = await imports_after(
                    connection, self.store.schema, checkpoint
                )
            changed, done = await apply_batch(
                connection,
                self.projection,
                self.store.registry,
                batch,
                imported=imported,
                quiet=self.quiet,
            )
            if done:
                reached = checkpoint_of(done[-1])
                await save_as_relay(connection, self._checkpoints, reached)
            announced = await self.recalculations.announce(connection, self.store)

        if done:
            log.info(
                "timeline.projected",
                schema=self.store.schema,
                count=len(done),
                changed=changed,
                announced=announced,
                position=done[-1].position,
                duration=round(time.monotonic() - started, 4),
            )
        # A part of a recalculation moves no checkpoint, yet it is work done.
        return (len(done) if done else int(bool(batch))) + announced

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def timeline_projector(store: EventStore) -> TimelineProjector:
    """Return the projector the grading service runs on its own store."""
    return TimelineProjector(store)
