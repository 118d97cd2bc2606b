"""Routes that read timelines: one student's on one objective (now, as of
a valid date, as known at a past moment), a student's summary, a section's
matrix, and the progress of recalculation jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import structlog
from litestar import Request, Response, Router, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, PathParameter
from litestar.plugins.problem_details import ProblemDetailsException

from mastery_events.access import Caller, NotVisibleError, Owner, may, reads
from mastery_events.contract.grading import AuditedRead
from mastery_events.identity import Identity
from mastery_events.runtime import ServiceRuntime
from mastery_events.store import EventStore
from mastery_grading.auditor_access import audited_read, record_access
from mastery_grading.errors import RecalculationNotFoundError, TimelineNotFoundError
from mastery_grading.recalculation import Recalculation, Recalculations
from mastery_grading.routes.callers import correlation_of
from mastery_grading.timeline_reads import MasteryCell, Timeline, TimelineReader

log = structlog.get_logger(__name__)

AREA = "grading"
Reader = NamedDependency[TimelineReader]
Jobs = NamedDependency[Recalculations]
Log = NamedDependency[EventStore]
# Roster ids are opaque text; control characters name nobody.
OpaqueId = Annotated[
    str, PathParameter(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")
]


def may_read(identity: Identity, tenant_id: str, section_id: str | None) -> bool:
    """Tell whether ``identity`` may read a timeline of ``section_id``.

    Teachers read their sections' timelines. School leaders read every
    timeline of their tenant: grading does not yet know which school a
    section is in (see docs/grading.md).
    """
    if identity.tenant_id == tenant_id and identity.has_role("school_leader"):
        return True
    owner = Owner(tenant_id=tenant_id, section_id=section_id)

    return may(identity, owner, action="read", area=AREA)


def check_visible(identity: Identity, tenant_id: str, section_id: str | None) -> None:
    """Raise ``NotVisibleError`` unless ``identity`` may read the section."""
    if not may_read(identity, tenant_id, section_id):
        raise NotVisibleError(identity.subject, tenant_id=tenant_id, action="read")


async def note_auditor_read(
    request: Request[Any, Any, Any],
    identity: Identity,
    events: EventStore,
    read: AuditedRead,
    student_id: str,
    objective_id: UUID | None,
    as_of: datetime | None,
    known_at: datetime | None,
) -> None:
    """Record an auditor's read of a student's mastery as an
    ``AuditorAccessed``; other callers' reads are not recorded."""
    if not identity.has_role("auditor"):
        return
    access = audited_read(
        identity.subject,
        read,
        student_id=student_id,
        objective_id=objective_id,
        as_of=as_of,
        known_at=known_at,
        at=datetime.now(UTC),
    )
    await record_access(
        events, identity.tenant_id, access, correlation_id=correlation_of(request)
    )


@get(
    "/timelines/{student_id:str}/{objective_id:uuid}",
    guards=[reads(AREA)],
    tags=["timelines"],
)
async def get_timeline(
    request: Request[Any, Any, Any],
    identity: Caller,
    reader: Reader,
    events: Log,
    student_id: OpaqueId,
    objective_id: FromPath[UUID],
    as_of: FromQuery[datetime | None] = None,
    known_at: FromQuery[datetime | None] = None,
) -> Timeline:
    """Return a student's timeline on one objective: every change point
    believed at ``known_at`` (now when not given) and the state in force at
    ``as_of`` (the newest when not given); both together answer "what did
    we believe then about that date". An auditor's read is recorded."""
    tenant = identity.tenant_id
    section = await reader.section_of(tenant, student_id, objective_id)
    check_visible(identity, tenant, section)

    timeline = await reader.timeline(
        tenant, student_id, objective_id, as_of=as_of, known_at=known_at
    )
    log.info(
        "timeline.read",
        tenant=tenant,
        objective_id=str(objective_id),
        as_of=as_of.isoformat() if as_of else None,
        known_at=known_at.isoformat() if known_at else None,
        points=len(timeline.points),
    )
    await note_auditor_read(
        request, identity, events, "timeline", student_id, objective_id, as_of, known_at
    )

    return timeline


@get("/students/{student_id:str}/mastery", guards=[reads(AREA)], tags=["timelines"])
async def get_student_summary(
    request: Request[Any, Any, Any],
    identity: Caller,
    reader: Reader,
    events: Log,
    student_id: OpaqueId,
    as_of: FromQuery[datetime | None] = None,
    known_at: FromQuery[datetime | None] = None,
) -> list[MasteryCell]:
    """Return a student's mastery on every objective the caller may read:
    the state in force at ``as_of`` as believed at ``known_at`` (the newest
    as known now when neither is given). A student with none of those is
    not found. An auditor's read is recorded."""
    tenant = identity.tenant_id
    found = await reader.summary(tenant, student_id, as_of=as_of, known_at=known_at)
    cells = [cell for cell in found if may_read(identity, tenant, cell.section_id)]
    if not cells:
        raise NotVisibleError(identity.subject, tenant_id=tenant, action="read")

    await note_auditor_read(
        request, identity, events, "student-summary", student_id, None, as_of, known_at
    )

    return cells


@get("/sections/{section_id:str}/mastery", guards=[reads(AREA)], tags=["timelines"])
async def get_section_matrix(
    identity: Caller,
    reader: Reader,
    section_id: OpaqueId,
) -> list[MasteryCell]:
    """Return a section's matrix: the newest mastery of each student on
    each objective assessed in the section, by student then objective."""
    tenant = identity.tenant_id
    check_visible(identity, tenant, section_id)
    cells = await reader.section(tenant, section_id)
    if not cells:
        raise NotVisibleError(identity.subject, tenant_id=tenant, action="read")

    return cells


@get("/recalculations", guards=[reads(AREA)], tags=["timelines"])
async def list_recalculations(
    identity: Caller, jobs: Jobs, reader: Reader
) -> list[Recalculation]:
    """Return the tenant's recalculation jobs, newest first, with their
    progress."""
    async with reader.pool.acquire() as connection:
        return await jobs.jobs(connection, identity.tenant_id)


@get("/recalculations/{job_id:uuid}", guards=[reads(AREA)], tags=["timelines"])
async def get_recalculation(
    identity: Caller, jobs: Jobs, reader: Reader, job_id: FromPath[UUID]
) -> Recalculation:
    """Return one recalculation job: what it recalculates, how many
    timelines it has gone through and how many changed."""
    async with reader.pool.acquire() as connection:
        return await jobs.job(connection, identity.tenant_id, job_id)


def not_found(
    request: Request[Any, Any, Any],
    error: TimelineNotFoundError | RecalculationNotFoundError,
) -> Response[Any]:
    """Answer a missing record with the 404 problem a hidden one gets, so
    ids never reveal what another tenant or section holds."""
    problem = ProblemDetailsException(
        status_code=404, title="Not found", detail="no such record"
    )
    return problem.to_response(request)


def timelines_router(runtime: ServiceRuntime) -> Router:
    """Return the timeline and recalculation routes, bound to ``runtime``."""

    def provide_reader() -> TimelineReader:
        return TimelineReader(runtime.pool, runtime.service.schema)

    def provide_jobs() -> Recalculations:
        return Recalculations(runtime.service.schema)

    def provide_log() -> EventStore:
        return runtime.store

    return Router(
        path="/",
        route_handlers=[
            get_timeline,
            get_student_summary,
            get_section_matrix,
            list_recalculations,
            get_recalculation,
        ],
        dependencies={
            "reader": Provide(provide_reader, sync_to_thread=False),
            "jobs": Provide(provide_jobs, sync_to_thread=False),
            "events": Provide(provide_log, sync_to_thread=False),
        },
        exception_handlers={
            TimelineNotFoundError: not_found,
            RecalculationNotFoundError: not_found,
        },
    )
