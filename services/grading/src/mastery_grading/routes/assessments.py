"""Routes that record assessments, one or a batch, correct them, and read
them back.

Every write may carry an ``Idempotency-Key``: a retry of the same request
returns the first answer and records nothing again. Refusals are RFC 9457
problems naming the field, or each bad row of a batch, at fault.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeAlias
from uuid import UUID

from litestar import Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from mastery_events.access import Caller, reads, writes
from mastery_events.api_security import BULK, BULK_BODY_LIMIT
from mastery_events.contract.grading import Evidence
from mastery_events.ids import uuid7
from mastery_events.runtime import ServiceRuntime
from mastery_grading.assessment_store import (
    AssessmentStore,
    AssessmentView,
    BatchRecorded,
)
from mastery_grading.assessments import (
    AREA,
    AmendAssessment,
    AssessmentRow,
    RecordAssessment,
    RecordBatch,
    VoidAssessment,
)
from mastery_grading.errors import GradingError
from mastery_grading.routes.bodies import (
    AmendmentBody,
    AssessmentBody,
    BatchBody,
    EvidenceBody,
    IdempotencyHeader,
    VoidBody,
)
from mastery_grading.routes.callers import AnyRequest, store_request
from mastery_grading.routes.problems import problem_response

Assessments: TypeAlias = NamedDependency[AssessmentStore]
"""How a handler asks for the assessment store."""


def evidence_of(body: EvidenceBody) -> Evidence:
    """Return the evidence as the contract carries it."""
    return Evidence(
        title=body.title, kind=body.kind, weight=body.weight, link=body.link
    )


@post("/assessments", status_code=201, guards=[writes(AREA)], tags=["assessments"])
async def record_assessment(
    data: JSONBody[AssessmentBody],
    identity: Caller,
    assessments: Assessments,
    request: AnyRequest,
    idempotency_key: IdempotencyHeader = None,
) -> AssessmentView:
    """Record one student's level or mark on one objective, as evidence
    from the work done at ``assessed_at``."""
    command = RecordAssessment(
        assessment_id=uuid7(),
        section_id=data.section_id,
        student_id=str(data.student_id),
        objective_id=data.objective_id,
        scale_id=data.scale_id,
        scale_version=data.scale_version,
        level=data.level,
        mark=data.mark,
        assessed_at=data.assessed_at,
        evidence=evidence_of(data.evidence),
        comment=data.comment,
        assessed_by=identity.subject,
        at=datetime.now(UTC),
    )

    return await assessments.record(
        command, store_request(identity, request, idempotency_key, data)
    )


@post(
    "/assessments/batch",
    status_code=201,
    guards=[writes(AREA)],
    tags=["assessments"],
    opt={BULK: True},
    request_max_body_size=BULK_BODY_LIMIT,
)
async def record_batch(
    data: JSONBody[BatchBody],
    identity: Caller,
    assessments: Assessments,
    request: AnyRequest,
    idempotency_key: IdempotencyHeader = None,
) -> BatchRecorded:
    """Record a whole section's results on one piece of work at once: every
    row, or none when one is wrong (the problem names each bad row)."""
    batch = RecordBatch(
        section_id=data.section_id,
        scale_id=data.scale_id,
        scale_version=data.scale_version,
        assessed_at=data.assessed_at,
        evidence=evidence_of(data.evidence),
        rows=tuple(
            AssessmentRow(
                assessment_id=uuid7(),
                student_id=str(row.student_id),
                objective_id=row.objective_id,
                level=row.level,
                mark=row.mark,
                assessed_at=row.assessed_at,
                comment=row.comment,
            )
            for row in data.rows
        ),
        assessed_by=identity.subject,
        at=datetime.now(UTC),
    )

    return await assessments.record_batch(
        batch, store_request(identity, request, idempotency_key, data)
    )


@post(
    "/assessments/{assessment_id:uuid}/amendments",
    status_code=201,
    guards=[writes(AREA)],
    tags=["assessments"],
)
async def amend_assessment(
    assessment_id: FromPath[UUID],
    data: JSONBody[AmendmentBody],
    identity: Caller,
    assessments: Assessments,
    request: AnyRequest,
    idempotency_key: IdempotencyHeader = None,
) -> AssessmentView:
    """Correct an assessment's level, mark or date, giving a reason; the
    recording stays in the history beside the amend."""
    command = AmendAssessment(
        assessment_id=assessment_id,
        level=data.level,
        mark=data.mark,
        assessed_at=data.assessed_at,
        reason=data.reason,
        amended_by=identity.subject,
        at=datetime.now(UTC),
    )

    return await assessments.amend(
        command, store_request(identity, request, idempotency_key, data)
    )


@post(
    "/assessments/{assessment_id:uuid}/void",
    status_code=200,
    guards=[writes(AREA)],
    tags=["assessments"],
)
async def void_assessment(
    assessment_id: FromPath[UUID],
    data: JSONBody[VoidBody],
    identity: Caller,
    assessments: Assessments,
    request: AnyRequest,
    idempotency_key: IdempotencyHeader = None,
) -> AssessmentView:
    """Withdraw an assessment from the evidence, giving a reason."""
    command = VoidAssessment(
        assessment_id=assessment_id,
        reason=data.reason,
        voided_by=identity.subject,
        at=datetime.now(UTC),
    )

    return await assessments.void(
        command, store_request(identity, request, idempotency_key, data)
    )


@get("/assessments/{assessment_id:uuid}", guards=[reads(AREA)], tags=["assessments"])
async def get_assessment(
    assessment_id: FromPath[UUID], identity: Caller, assessments: Assessments
) -> AssessmentView:
    """Return an assessment as it stands, with every amend and any void."""
    return await assessments.get(identity, assessment_id)


@get(
    "/students/{student_id:uuid}/assessments",
    guards=[reads(AREA)],
    tags=["assessments"],
)
async def student_assessments(
    student_id: FromPath[UUID], identity: Caller, assessments: Assessments
) -> list[AssessmentView]:
    """Return a student's assessments the caller may see, voided ones
    included and marked, oldest evidence first."""
    return await assessments.of_student(identity, str(student_id))


def assessments_router(runtime: ServiceRuntime) -> Router:
    """Return the assessment routes, bound to ``runtime``."""

    def provide_store() -> AssessmentStore:
        return AssessmentStore(runtime.store)

    return Router(
        path="/",
        route_handlers=[
            record_assessment,
            record_batch,
            amend_assessment,
            void_assessment,
            get_assessment,
            student_assessments,
        ],
        dependencies={"assessments": Provide(provide_store, sync_to_thread=False)},
        exception_handlers={GradingError: problem_response},
    )
