"""Rebuild the timelines from the whole log, then swap them in at once.

The rebuild fills copies of the projection's tables (``*_rebuild``) by
replaying the log timeline by timeline (see ``replay``), making the
projector's decisions without announcing anything: every change was
announced when it first happened. It replays up to where the projector
stood when it began, while the projector and the API carry on with the
live tables. To finish, one transaction takes the projector's lock (the
projector waits), replays what the projector applied meanwhile, gives the
copies their row security, and renames them over the live tables. Readers
wait a moment on that transaction and then read the rebuilt tables.

It connects as the schema's owner, who may create and rename tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import asyncpg
import msgspec
import structlog

from mastery_events.checkpoints import Checkpoints
from mastery_events.contract import CONTRACT, Registry
from mastery_events.database import Connection
from mastery_events.envelope import Envelope
from mastery_events.migrations import quote_schema
from mastery_events.store import Checkpoint, EventStore, checkpoint_of
from mastery_events.tenancy import RELAY_ROLE
from mastery_grading.projector import NAME, apply_batch, lock_key
from mastery_grading.replay import ASSESSMENT_TYPES, FastReplay
from mastery_grading.timeline_store import REBUILT_TABLES, TimelineProjection

SUFFIX = "_rebuild"
BATCH_SIZE = 2000

log = structlog.get_logger(__name__)


class RebuildReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a rebuild replayed and how long it took: the assessment events
    before the swap, the log events the projector applied meanwhile, and
    the seconds of each part."""

    events: int
    caught_up: int
    replay_seconds: float
    swap_seconds: float

    @property
    def events_per_second(self) -> float:
        """The replay's speed over the whole log."""
        return self.events / self.replay_seconds if self.replay_seconds else 0.0


class Rebuild:
    """Rebuild one schema's timelines on ``connection``, an owner's
    connection taken from ``pool``.

    The replay takes a second connection from ``pool`` to copy rows on
    while it computes, so ``pool`` must be able to lend one more.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        connection: Connection,
        schema: str,
        *,
        registry: Registry = CONTRACT,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.pool = pool
        self.connection = connection
        self.schema = schema
        self.batch_size = batch_size
        self._quoted = quote_schema(schema)
        self._checkpoints = Checkpoints(schema, NAME)
        self._projection = TimelineProjection(schema, suffix=SUFFIX)
        self._store = EventStore(pool, schema, registry=registry)

    async def prepare(self) -> tuple[Checkpoint, int]:
        """Create empty copies of the tables; return where the projector
        stands and how many assessment events lie up to there."""
        async with self.connection.transaction():
            for table in REBUILT_TABLES:
                live = f"{self._quoted}.{table}"
                await self.connection.execute(
                    f"DROP TABLE IF EXISTS {live}{SUFFIX}; "
                    f"CREATE TABLE {live}{SUFFIX} (LIKE {live} INCLUDING ALL)"
                )
            await self.connection.execute(f"SET LOCAL ROLE {RELAY_ROLE}")
            target = await self._checkpoints.load(self.connection)
            total: int = await self.connection.fetchval(
                f"SELECT count(*) FROM {self._quoted}.events "
                "WHERE (transaction_id, position) <= ($1::text::xid8, $2) "
                "AND event_type = ANY($3::text[])",
                str(target.transaction_id),
                target.position,
                ASSESSMENT_TYPES,
            )

        return target, total

    async def replay(
        self,
        target: Checkpoint,
        *,
        progress: Callable[[int], None] = lambda _: None,
    ) -> int:
        """Replay the log up to ``target`` into the copies, timeline by
        timeline; call ``progress`` with the events of each timeline."""
        replay = FastReplay(
            self.pool,
            self.connection,
            self.schema,
            registry=self._store.registry,
            suffix=SUFFIX,
        )
        return await replay.run(target, progress=progress)

    async def swap(self, replayed_to: Checkpoint) -> int:
        """Pause the projector, replay what it applied since
        ``replayed_to``, and put the copies in place of the live tables in
        one transaction; return how many events the catch-up replayed."""
        caught_up = 0
        async with self.connection.transaction():
            await self.connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                lock_key(self.schema),
            )
            await self.connection.execute(f"SET LOCAL ROLE {RELAY_ROLE}")
            live = await self._checkpoints.load(self.connection)
            await self.connection.execute("SET LOCAL ROLE NONE")
            checkpoint = replayed_to
            while checkpoint < live:
                batch = await self._read(checkpoint, until=live)
                if not batch:
                    break
                await apply_batch(
                    self.connection, self._projection, self._store.registry, batch
                )
                checkpoint = checkpoint_of(batch[-1])
                caught_up += len(batch)

            for table in REBUILT_TABLES:
                name = f"{self._quoted}.{table}"
                await self.connection.execute(
                    f"SELECT {self._quoted}.isolate_by_tenant($1::regclass)",
                    f"{name}{SUFFIX}",
                )
            tables = ", ".join(f"{self._quoted}.{table}" for table in REBUILT_TABLES)
            await self.connection.execute(
                f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE"
            )
            for table in REBUILT_TABLES:
                name = f"{self._quoted}.{table}"
                await self.connection.execute(
                    f"DROP TABLE {name}; ALTER TABLE {name}{SUFFIX} RENAME TO {table}"
                )

        return caught_up

    async def run(
        self,
        *,
        planned: Callable[[int], None] = lambda _: None,
        progress: Callable[[int], None] = lambda _: None,
    ) -> RebuildReport:
        """Prepare, replay and swap; call ``planned`` with the number of
        events to replay, then ``progress`` per batch; return what it
        took."""
        started = time.monotonic()
        target, total = await self.prepare()
        planned(total)
        log.info("timeline.rebuild_started", schema=self.schema, events=total)
        replayed = await self.replay(target, progress=progress)

        swapping = time.monotonic()
        caught_up = await self.swap(target)
        done = time.monotonic()
        report = RebuildReport(
            events=replayed,
            caught_up=caught_up,
            replay_seconds=round(swapping - started, 4),
            swap_seconds=round(done - swapping, 4),
        )
        log.info(
            "timeline.rebuilt",
            schema=self.schema,
            count=replayed,
            caught_up=caught_up,
            duration=report.replay_seconds,
            swap_duration=report.swap_seconds,
        )
        return report

    async def _read(self, after: Checkpoint, *, until: Checkpoint) -> list[Envelope]:
        await self.connection.execute(f"SET LOCAL ROLE {RELAY_ROLE}")
        batch = await self._store.read_batch(
            after, limit=self.batch_size, connection=self.connection
        )
        await self.connection.execute("SET LOCAL ROLE NONE")

        return [envelope for envelope in batch if checkpoint_of(envelope) <= until]
