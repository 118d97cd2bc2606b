"""Recalculation jobs: a new scale or policy version reaches the timelines.

The catalogue's consumer plans a job when a scale is revised or a policy
version comes into force, in the transaction that records it. The
projector then announces the job in grading's log as a
``RecalculationStarted``, applies it in the log's order (so a rebuild
replays it at the same place) and ends it with ``RecalculationFinished``.
The job's row says how far it has got.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
import structlog

from mastery_events.contract.grading import RecalculationStarted
from mastery_events.database import Connection
from mastery_events.envelope import Envelope, PendingEvent
from mastery_events.ids import uuid7
from mastery_events.migrations import quote_schema
from mastery_events.store import EventStore, StreamAppend
from mastery_events.tenancy import RELAY_ROLE, set_tenant, tenant_transaction
from mastery_grading.errors import RecalculationNotFoundError

log = structlog.get_logger(__name__)
started_decoder = msgspec.json.Decoder(RecalculationStarted)

# Jobs announced per projector step; the rest wait for the next.
ANNOUNCE_LIMIT = 50


class Trigger(msgspec.Struct, frozen=True, kw_only=True):
    """What a job puts in force: a scale version, or a set's policy
    version, or one objective's override (``policy_version`` ``None``
    when the override was cleared)."""

    reason: str
    scale_id: UUID | None = None
    scale_version: int | None = None
    objective_set_id: UUID | None = None
    objective_id: UUID | None = None
    policy_version: int | None = None


class Recalculation(msgspec.Struct, frozen=True, kw_only=True):
    """A job as its row tells it: what it recalculates, and how far."""

    job_id: UUID
    reason: str
    scale_id: UUID | None
    scale_version: int | None
    objective_set_id: UUID | None
    objective_id: UUID | None
    policy_version: int | None
    timelines: int
    done: int
    changed: int
    started_at: datetime
    finished_at: datetime | None
    announced: bool

    @property
    def status(self) -> str:
        """Say where the job is: planned, running or finished."""
        if self.finished_at is not None:
            return "finished"
        return "running" if self.announced else "planned"


JOB_COLUMNS = (
    "job_id, reason, scale_id, scale_version, objective_set_id, objective_id, "
    "policy_version, timelines, done, changed, started_at, finished_at, announced"
)


class Recalculations:
    """Plan, announce and read recalculation jobs in one service's schema."""

    def __init__(self, schema: str) -> None:
        quoted = quote_schema(schema)
        self._jobs = f"{quoted}.timeline_recalculations"
        self._states = f"{quoted}.timeline_states"
        self._events = f"{quoted}.events"

    async def plan(
        self, connection: Connection, envelope: Envelope, trigger: Trigger
    ) -> UUID | None:
        """Plan a job in the caller's tenant transaction; the number of
        timelines is today's count, for progress until it finishes.

        Return ``None``, planning nothing, when the log holds the start of
        this very job already: an imported history brings its jobs along,
        and the catalogue, hearing the objectives events again, would
        start each a second time.
        """
        if await self._started(connection, envelope, trigger):
            log.info(
                "recalculation.started_already",
                tenant=envelope.tenant_id,
                cause_event_id=str(envelope.event_id),
            )
            return None
        timelines = await connection.fetchval(
            f"SELECT count(*) FROM {self._states} WHERE tenant_id = $1 "
            "AND (scale_id = $2 OR (objective_set_id = $3 "
            "AND ($4::uuid IS NULL OR objective_id = $4)))",
            envelope.tenant_id,
            trigger.scale_id,
            trigger.objective_set_id,
            trigger.objective_id,
        )
        job_id = uuid7()
        await connection.execute(
            f"INSERT INTO {self._jobs} (tenant_id, job_id, reason, scale_id, "
            "scale_version, objective_set_id, objective_id, policy_version, "
            "timelines, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            envelope.tenant_id,
            job_id,
            trigger.reason,
            trigger.scale_id,
            trigger.scale_version,
            trigger.objective_set_id,
            trigger.objective_id,
            trigger.policy_version,
            timelines,
            envelope.occurred_at,
        )
        log.info(
            "recalculation.planned",
            tenant=envelope.tenant_id,
            job_id=str(job_id),
            timelines=timelines,
            cause_event_id=str(envelope.event_id),
        )
        return job_id

    async def _started(
        self, connection: Connection, envelope: Envelope, trigger: Trigger
    ) -> bool:
        """Tell whether the tenant's log holds a job started by the
        objectives event ``envelope``: the same change, started when that
        event happened."""
        payloads = await connection.fetch(
            f"SELECT payload FROM {self._events} WHERE tenant_id = $1 "
            "AND event_type = 'RecalculationStarted'",
            envelope.tenant_id,
        )
        wanted = (
            trigger.scale_id,
            trigger.scale_version,
            trigger.objective_set_id,
            trigger.objective_id,
            trigger.policy_version,
            envelope.occurred_at,
        )
        for row in payloads:
            started = started_decoder.decode(row["payload"])
            found = (
                started.scale_id,
                started.scale_version,
                started.objective_set_id,
                started.objective_id,
                started.policy_version,
                started.started_at,
            )
            if found == wanted:
                return True

        return False

    async def announce(self, connection: Connection, store: EventStore) -> int:
        """Append a ``RecalculationStarted`` for each planned job, inside
        the projector's transaction; return how many."""
        await connection.execute(f"SET LOCAL ROLE {RELAY_ROLE}")
        rows = await connection.fetch(
            f"SELECT tenant_id, {JOB_COLUMNS} FROM {self._jobs} "
            "WHERE NOT announced ORDER BY started_at, job_id LIMIT $1",
            ANNOUNCE_LIMIT,
        )
        await connection.execute("SET LOCAL ROLE NONE")

        for row in rows:
            tenant, job = row["tenant_id"], job_of(row)
            await set_tenant(connection, tenant)
            started = RecalculationStarted(
                job_id=job.job_id,
                reason=job.reason,
                scale_id=job.scale_id,
                scale_version=job.scale_version,
                objective_set_id=job.objective_set_id,
                objective_id=job.objective_id,
                policy_version=job.policy_version,
                timelines=job.timelines,
                started_at=job.started_at,
            )
            await store.append_within(
                connection,
                [
                    StreamAppend(
                        tenant_id=tenant,
                        stream_id=f"recalculation-{job.job_id}",
                        expected_version=0,
                        events=[job_started(started)],
                    )
                ],
            )
            await connection.execute(
                f"UPDATE {self._jobs} SET announced = true "
                "WHERE tenant_id = $1 AND job_id = $2",
                tenant,
                job.job_id,
            )

        return len(rows)

    async def job(
        self, connection: Connection, tenant_id: str, job_id: UUID
    ) -> Recalculation:
        """Return one job of ``tenant_id``, or raise
        ``RecalculationNotFoundError``."""
        async with tenant_transaction(connection, tenant_id):
            row = await connection.fetchrow(
                f"SELECT {JOB_COLUMNS} FROM {self._jobs} "
                "WHERE tenant_id = $1 AND job_id = $2",
                tenant_id,
                job_id,
            )
        if row is None:
            raise RecalculationNotFoundError(job_id)

        return job_of(row)

    async def jobs(
        self, connection: Connection, tenant_id: str, *, limit: int = 100
    ) -> list[Recalculation]:
        """Return the tenant's newest jobs first."""
        async with tenant_transaction(connection, tenant_id):
            rows = await connection.fetch(
                f"SELECT {JOB_COLUMNS} FROM {self._jobs} WHERE tenant_id = $1 "
                "ORDER BY started_at DESC, job_id DESC LIMIT $2",
                tenant_id,
                limit,
            )

        return [job_of(row) for row in rows]


def job_of(row: object) -> Recalculation:
    """Build a job from a row selected with ``JOB_COLUMNS``."""
    fields = dict(row)  # type: ignore[call-overload]
    fields.pop("tenant_id", None)
    return Recalculation(**fields)


def job_started(event: RecalculationStarted) -> PendingEvent:
    """Wrap a job's start as the projector appends it."""
    return PendingEvent(
        payload=event,
        occurred_at=event.started_at,
        actor="grading-timelines",
        correlation_id=event.job_id,
    )
