"""A small school's grading log for timeline tests: grading's schema in a
test schema, a four-level scale and a policy in its catalogue, and
assessment events appended straight to grading's own store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import msgspec

from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentRecorded,
    AssessmentVoided,
    Evidence,
)
from mastery_events.contract.objectives import (
    CalculationPolicy,
    CalculationPolicySet,
    ObjectiveAdded,
    ScaleDefined,
    ScaleLevel,
    ScaleRevised,
)
from mastery_events.envelope import Envelope, Event, PendingEvent
from mastery_events.ids import uuid7
from mastery_events.migrations import migrate
from mastery_events.store import EventStore
from mastery_events.tenancy import tenant_transaction
from mastery_grading.catalogue_store import CatalogueWriter
from mastery_grading.recalculation import Recalculations
from mastery_grading.service import SERVICE

TENANT = "lakeside"
SCALE_ID = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fb1")
SET_ID = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fc2")
FRACTIONS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fd3")
DECIMALS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fd4")
LISA = "student-lisa"
BART = "student-bart"
ROOM_12 = "room-12"
MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
TEACHER = "ms-frizzle"


def day(n: int) -> datetime:
    """Return the ``n``-th school day after Monday, at the same hour."""
    return MONDAY + timedelta(days=n)


def four_levels(version: int, *, threshold: float = 3.0) -> ScaleDefined | ScaleRevised:
    """The four-level scale at ``version``; a revision may move mastery."""
    levels = tuple(
        ScaleLevel(value=value, label=label, short_label=label[0], colour="#336699")
        for value, label in (
            (1, "Beginning"),
            (2, "Developing"),
            (3, "Proficient"),
            (4, "Exemplary"),
        )
    )
    if version == 1:
        return ScaleDefined(
            scale_id=SCALE_ID,
            name="Four levels",
            levels=levels,
            mastery_threshold=threshold,
            defined_by="coordinator-hoover",
            defined_at=MONDAY,
        )
    return ScaleRevised(
        scale_id=SCALE_ID,
        scale_version=version,
        name="Four levels",
        levels=levels,
        mastery_threshold=threshold,
        revised_by="coordinator-hoover",
        revised_at=MONDAY,
    )


def catalogue_envelope(event: Event, stream_version: int, tenant: str) -> Envelope:
    """Wrap an objectives event as the catalogue's consumer receives it."""
    return Envelope(
        event_id=uuid7(),
        event_type=type(event).__name__,
        event_version=1,
        tenant_id=tenant,
        stream_id="catalogue",
        stream_version=stream_version,
        position=stream_version,
        transaction_id=stream_version,
        occurred_at=MONDAY,
        recorded_at=MONDAY,
        actor="coordinator-hoover",
        correlation_id=uuid7(),
        payload=msgspec.Raw(b"{}"),
    )


class School:
    """Grading's tables in one test schema, fed as the services would."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        store: EventStore,
        *,
        tenant: str = TENANT,
    ) -> None:
        self.tenant = tenant
        self.pool = pool
        self.schema = schema
        self.store = store
        self.writer = CatalogueWriter(schema, recalculations=Recalculations(schema))
        self._catalogue_version = 0

    async def open(self) -> School:
        """Migrate grading's tables and teach the catalogue the scale, the
        two objectives and a most-recent policy for their set."""
        async with self.pool.acquire() as connection:
            await migrate(connection, self.schema, SERVICE.migrations)
        await self.catalogue(four_levels(1))
        for objective_id, code in ((FRACTIONS, "4.NF.1"), (DECIMALS, "4.NF.6")):
            await self.catalogue(
                ObjectiveAdded(
                    objective_set_id=SET_ID,
                    objective_id=objective_id,
                    code=code,
                    statement=f"Objective {code}",
                    added_by="coordinator-hoover",
                    added_at=MONDAY,
                )
            )
        await self.set_policy(1, CalculationPolicy(method="most_recent"))
        return self

    async def catalogue(self, event: Event) -> None:
        """Apply an objectives event to grading's catalogue, as its
        consumer does."""
        self._catalogue_version += 1
        envelope = catalogue_envelope(event, self._catalogue_version, self.tenant)
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, self.tenant),
        ):
            await self.writer(connection, envelope, event)

    async def set_policy(self, version: int, policy: CalculationPolicy) -> None:
        """Set the objectives' set policy to ``policy`` at ``version``."""
        await self.catalogue(
            CalculationPolicySet(
                objective_set_id=SET_ID,
                policy_version=version,
                policy=policy,
                set_by="coordinator-hoover",
                set_at=MONDAY,
            )
        )

    async def record(
        self,
        level: float,
        *,
        on: datetime,
        student: str = LISA,
        objective: UUID = FRACTIONS,
        title: str = "Exit ticket",
    ) -> tuple[UUID, Envelope]:
        """Record an assessment as the recording routes would."""
        assessment_id = uuid7()
        event = AssessmentRecorded(
            assessment_id=assessment_id,
            student_id=student,
            section_id=ROOM_12,
            objective_id=objective,
            scale_id=SCALE_ID,
            scale_version=1,
            level=level,
            assessed_at=on,
            assessed_by=TEACHER,
            evidence=Evidence(title=title, kind="formative"),
        )
        stored = await self._append(assessment_id, 0, event)
        return assessment_id, stored

    async def amend(
        self,
        assessment_id: UUID,
        *,
        level: float | None = None,
        on: datetime | None = None,
        reason: str,
        version: int = 1,
    ) -> Envelope:
        """Amend an assessment's level or date, giving a reason."""
        event = AssessmentAmended(
            assessment_id=assessment_id,
            level=level,
            assessed_at=on,
            reason=reason,
            amended_by=TEACHER,
            amended_at=day(30),
        )
        return await self._append(assessment_id, version, event)

    async def void(
        self, assessment_id: UUID, *, reason: str, version: int = 1
    ) -> Envelope:
        """Withdraw an assessment from the evidence, giving a reason."""
        event = AssessmentVoided(
            assessment_id=assessment_id,
            reason=reason,
            voided_by=TEACHER,
            voided_at=day(30),
        )
        return await self._append(assessment_id, version, event)

    async def _append(
        self, assessment_id: UUID, version: int, event: Event
    ) -> Envelope:
        pending = PendingEvent(
            payload=event, occurred_at=MONDAY, actor=TEACHER, correlation_id=uuid7()
        )
        (stored,) = await self.store.append(
            self.tenant, f"assessment-{assessment_id}", version, [pending]
        )
        return stored
