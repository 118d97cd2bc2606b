"""How the refusals of assessments and the gradebook are answered over
HTTP: RFC 9457 problem details that name the field or row at fault."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.plugins.problem_details import ProblemDetailsException

from mastery_grading import errors

STATUS: tuple[tuple[type[errors.GradingError], int, str], ...] = (
    (errors.SectionNotGradableError, 403, "Section not yours to grade"),
    (errors.AssessmentNotFoundError, 404, "Assessment not found"),
    (errors.GradeNotFoundError, 404, "Traditional grade not found"),
    (errors.StudentNotFoundError, 404, "Student not found"),
    (errors.SectionNotFoundError, 404, "Section not found"),
    (errors.AssessmentVoidedError, 409, "Assessment voided"),
    (errors.GradeVoidedError, 409, "Traditional grade voided"),
    (errors.ConcurrentChangeError, 409, "Changed concurrently"),
    (errors.IdempotencyKeyReusedError, 422, "Idempotency key reused"),
    (errors.BatchRefusedError, 422, "Batch refused"),
    (errors.NotOnScaleError, 422, "Not on the scale version"),
    (errors.ObjectiveOutsideSectionError, 422, "Objective not taught there"),
    (errors.StudentNotInSectionError, 422, "Student not in the section"),
    (errors.AssessmentRefusedError, 422, "Assessment refused"),
)


def problem_of(error: errors.GradingError) -> ProblemDetailsException:
    """Describe a refusal as an RFC 9457 problem, with the field at fault,
    or every bad row of a batch, when there is one."""
    status, title = 400, "Request refused"
    for kind, kind_status, kind_title in STATUS:
        if isinstance(error, kind):
            status, title = kind_status, kind_title
            break
    extra: dict[str, Any] = {}
    if isinstance(error, errors.BatchRefusedError):
        extra = {
            "total": error.total,
            "rows": [
                {
                    "row": problem.row,
                    "field": f"rows[{problem.row}].{problem.field}",
                    "message": problem.message,
                }
                for problem in error.problems
            ],
        }
    elif isinstance(error, errors.AssessmentRefusedError):
        extra = {"field": error.field}

    # A missing record is described without its id, exactly as a record of
    # another tenant is, so answers never confirm that an id exists.
    detail = "no such record" if status == 404 else str(error)

    return ProblemDetailsException(
        status_code=status, title=title, detail=detail, extra=extra or None
    )


def problem_response(
    request: Request[Any, Any, Any], error: errors.GradingError
) -> Response[Any]:
    """Answer a refused request with its problem details."""
    return problem_of(error).to_response(request)
