"""Routes of the traditional gradebook kept beside mastery: percent,
points and pass/fail grades, and the letter cuts a section reads mastery
through."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeAlias
from uuid import UUID

from litestar import Router, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from mastery_events.access import Caller, reads, writes
from mastery_events.ids import uuid7
from mastery_events.runtime import ServiceRuntime
from mastery_grading.assessments import AREA
from mastery_grading.errors import GradingError
from mastery_grading.gradebook import (
    RecordTraditionalGrade,
    SetGradeBridge,
    VoidTraditionalGrade,
)
from mastery_grading.gradebook_store import (
    BridgeView,
    GradebookStore,
    GradeView,
    SectionGrades,
)
from mastery_grading.routes.bodies import (
    GradeBridgeBody,
    IdempotencyHeader,
    SectionPath,
    TraditionalGradeBody,
    VoidBody,
)
from mastery_grading.routes.callers import AnyRequest, store_request
from mastery_grading.routes.problems import problem_response

Gradebook: TypeAlias = NamedDependency[GradebookStore]
"""How a handler asks for the gradebook store."""


@post(
    "/sections/{section_id:str}/traditional-grades",
    status_code=201,
    guards=[writes(AREA)],
    tags=["gradebook"],
)
async def record_traditional_grade(
    section_id: SectionPath,
    data: JSONBody[TraditionalGradeBody],
    identity: Caller,
    gradebook: Gradebook,
    request: AnyRequest,
    idempotency_key: IdempotencyHeader = None,
) -> GradeView:
    """Record a percent, points or pass/fail grade for a student of the
    section."""
    command = RecordTraditionalGrade(
        grade_id=uuid7(),
        section_id=section_id,
        student_id=str(data.student_id),
        title=data.title,
        kind=data.kind,
        percent=data.percent,
        points=data.points,
        points_possible=data.points_possible,
        passed=data.passed,
        assessed_at=data.assessed_at,
        recorded_by=identity.subject,
        at=datetime.now(UTC),
    )

    return await gradebook.record_grade(
        command, store_request(identity, request, idempotency_key, data)
    )


@post(
    "/traditional-grades/{grade_id:uuid}/void",
    status_code=200,
    guards=[writes(AREA)],
    tags=["gradebook"],
)
async def void_traditional_grade(
    grade_id: FromPath[UUID],
    data: JSONBody[VoidBody],
    identity: Caller,
    gradebook: Gradebook,
    request: AnyRequest,
    idempotency_key: IdempotencyHeader = None,
) -> GradeView:
    """Withdraw a traditional grade, giving a reason."""
    command = VoidTraditionalGrade(
        grade_id=grade_id,
        reason=data.reason,
        voided_by=identity.subject,
        at=datetime.now(UTC),
    )

    return await gradebook.void_grade(
        command, store_request(identity, request, idempotency_key, data)
    )


@put(
    "/sections/{section_id:str}/grade-bridge",
    status_code=200,
    guards=[writes(AREA)],
    tags=["gradebook"],
)
async def set_grade_bridge(
    section_id: SectionPath,
    data: JSONBody[GradeBridgeBody],
    identity: Caller,
    gradebook: Gradebook,
    request: AnyRequest,
    idempotency_key: IdempotencyHeader = None,
) -> BridgeView:
    """Choose the letter cuts the section's mastery is read through: the
    lowest percent that earns each letter, one of them at 0."""
    command = SetGradeBridge(
        section_id=section_id,
        cuts=tuple(cut.cut() for cut in data.cuts),
        set_by=identity.subject,
        at=datetime.now(UTC),
    )

    return await gradebook.set_bridge(
        command, store_request(identity, request, idempotency_key, data)
    )


@get(
    "/students/{student_id:uuid}/traditional-grades",
    guards=[reads(AREA)],
    tags=["gradebook"],
)
async def student_traditional_grades(
    student_id: FromPath[UUID], identity: Caller, gradebook: Gradebook
) -> list[SectionGrades]:
    """Return a student's traditional grades per section the caller may
    see, with each section's letter cuts."""
    return await gradebook.of_student(identity, str(student_id))


def gradebook_router(runtime: ServiceRuntime) -> Router:
    """Return the gradebook routes, bound to ``runtime``."""

    def provide_store() -> GradebookStore:
        return GradebookStore(runtime.store)

    return Router(
        path="/",
        route_handlers=[
            record_traditional_grade,
            void_traditional_grade,
            set_grade_bridge,
            student_traditional_grades,
        ],
        dependencies={"gradebook": Provide(provide_store, sync_to_thread=False)},
        exception_handlers={GradingError: problem_response},
    )
