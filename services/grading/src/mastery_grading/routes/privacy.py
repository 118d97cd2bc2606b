"""Routes of student privacy for district admins: a student's records, the
district's retention period, and who the retention job would erase now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, get, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from litestar.plugins.problem_details import ProblemDetailsException

from mastery_events.access import Caller, requires_role
from mastery_events.runtime import ServiceRuntime
from mastery_grading.errors import GradingError, PersonNotFoundError
from mastery_grading.records import RecordsRequest, StudentRecords
from mastery_grading.retention import LONGEST_PERIOD_DAYS, Leaver
from mastery_grading.retention_job import RetentionJob
from mastery_grading.rostering import Rostering
from mastery_grading.routes.roster import actor_of

Records = NamedDependency[RecordsRequest]
RosteringService = NamedDependency[Rostering]
admins_only = requires_role("district_admin")


class RetentionBody(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """How many days a student who left is kept before being erased."""

    days: Annotated[int, msgspec.Meta(ge=1, le=LONGEST_PERIOD_DAYS)]


class RetentionView(msgspec.Struct, frozen=True, kw_only=True):
    """The district's retention period, ``days`` ``None`` while unset;
    ``recorded`` tells whether a change was recorded."""

    days: int | None
    set_by: str | None
    set_at: datetime | None
    recorded: bool = False


@get(
    "/people/{person_id:uuid}/records",
    guards=[admins_only],
    tags=["privacy"],
)
async def student_records(
    identity: Caller, records: Records, person_id: FromPath[UUID]
) -> StudentRecords:
    """Return everything grading holds about one person: their roster data
    opened, enrollments, assessments with corrections, timelines,
    traditional grades, and every event of the log about them."""
    return await records.gather(identity.tenant_id, person_id, at=datetime.now(UTC))


@get("/retention-period", guards=[admins_only], tags=["privacy"])
async def retention_period(
    identity: Caller, rostering: RosteringService
) -> RetentionView:
    """Return the district's retention period."""
    period = await rostering.retention_period(identity.tenant_id)
    if period is None:
        return RetentionView(days=None, set_by=None, set_at=None)

    return RetentionView(days=period.days, set_by=period.set_by, set_at=period.set_at)


@put("/retention-period", guards=[admins_only], tags=["privacy"])
async def set_retention_period(
    identity: Caller,
    request: Request[Any, Any, Any],
    rostering: RosteringService,
    data: JSONBody[RetentionBody],
) -> RetentionView:
    """Set how long students who left are kept before the retention job
    erases them; the same period again records nothing."""
    period, recorded = await rostering.set_retention_period(
        identity.tenant_id, data.days, actor=actor_of(identity, request)
    )

    return RetentionView(
        days=period.days,
        set_by=period.set_by,
        set_at=period.set_at,
        recorded=recorded,
    )


@get("/retention/due", guards=[admins_only], tags=["privacy"])
async def retention_due(identity: Caller, rostering: RosteringService) -> list[Leaver]:
    """List the students the retention job would erase now, longest gone
    first, erasing nobody: the job's dry run."""
    _, due = await RetentionJob(rostering).due(
        identity.tenant_id, now=datetime.now(UTC)
    )

    return due


def privacy_problem(
    request: Request[Any, Any, Any], error: GradingError
) -> Response[Any]:
    """Answer an unknown person, or one of another tenant, as a 404."""
    problem = ProblemDetailsException(
        status_code=404, title="Not found", detail="no such record"
    )
    return problem.to_response(request)


def privacy_router(runtime: ServiceRuntime) -> Router:
    """Return the privacy routes, bound to ``runtime``."""

    def provide_rostering() -> Rostering:
        return Rostering(
            runtime.pool,
            runtime.store,
            runtime.keyring,
            schema=runtime.service.schema,
        )

    def provide_records() -> RecordsRequest:
        return RecordsRequest(runtime.store, runtime.keyring)

    return Router(
        path="/",
        route_handlers=[
            student_records,
            retention_period,
            set_retention_period,
            retention_due,
        ],
        dependencies={
            "rostering": Provide(provide_rostering, sync_to_thread=False),
            "records": Provide(provide_records, sync_to_thread=False),
        },
        exception_handlers={PersonNotFoundError: privacy_problem},
    )
