"""The retention job: erase the students whose district's retention period
has passed since they left, or list them without erasing (a dry run).

Each erasure is the same command a district admin's request runs, one
transaction per student, so a job stopped half way leaves every student
either erased completely or untouched, and a second run (or a replica
running at the same moment) finds the erased ones already done.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import structlog

from mastery_events.runtime import Schedule, ServiceRuntime
from mastery_events.tenancy import system_transaction, tenant_transaction
from mastery_grading.retention import (
    RETENTION_ACTOR,
    Leaver,
    RetentionPeriod,
    due_for_erasure,
)
from mastery_grading.rostering import Actor, Rostering

log = structlog.get_logger(__name__)


class RetentionRun(msgspec.Struct, frozen=True, kw_only=True):
    """What one run decided for one tenant: who was due, and whether they
    were erased or only listed."""

    tenant_id: str
    period: RetentionPeriod | None
    due: list[Leaver]
    erased: int
    dry_run: bool


class RetentionJob:
    """Apply retention periods through ``rostering``'s erasure."""

    def __init__(self, rostering: Rostering) -> None:
        self.rostering = rostering

    async def due(
        self, tenant_id: str, *, now: datetime
    ) -> tuple[RetentionPeriod | None, list[Leaver]]:
        """Return the tenant's period and the students due at ``now``;
        nobody is due while the tenant has no period."""
        reader = self.rostering.retention
        async with (
            self.rostering.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            period = await reader.period(connection, tenant_id)
            if period is None:
                return None, []
            leavers = await reader.leavers(connection, tenant_id)

        return period, due_for_erasure(leavers, period=period, now=now)

    async def run(
        self,
        tenant_id: str,
        *,
        now: datetime,
        dry_run: bool,
        subject: str = RETENTION_ACTOR,
    ) -> RetentionRun:
        """Erase every student of the tenant due at ``now``, or only list
        them when ``dry_run``."""
        period, due = await self.due(tenant_id, now=now)
        erased = 0
        if period is not None and not dry_run:
            for leaver in due:
                summary = await self.rostering.erase(
                    tenant_id,
                    leaver.person_id,
                    reason=period.reason(),
                    actor=Actor(subject=subject, at=now),
                )
                erased += summary.recorded

        log.info(
            "retention.ran",
            tenant=tenant_id,
            due=len(due),
            erased=erased,
            dry_run=dry_run,
        )
        return RetentionRun(
            tenant_id=tenant_id,
            period=period,
            due=due,
            erased=erased,
            dry_run=dry_run,
        )

    async def run_everywhere(self, *, now: datetime) -> list[RetentionRun]:
        """Run for every tenant that set a retention period."""
        async with (
            self.rostering.pool.acquire() as connection,
            system_transaction(connection),
        ):
            tenants = await self.rostering.retention.tenants_with_period(connection)

        return [
            await self.run(tenant_id, now=now, dry_run=False) for tenant_id in tenants
        ]


async def apply_retention(runtime: ServiceRuntime) -> None:
    """Run the retention job of a started grading runtime, as of now: the
    service's scheduled job."""
    rostering = Rostering(
        runtime.pool, runtime.store, runtime.keyring, schema=runtime.service.schema
    )
    await RetentionJob(rostering).run_everywhere(now=datetime.now(UTC))


RETENTION_SCHEDULE = Schedule(name="retention", run=apply_retention)
