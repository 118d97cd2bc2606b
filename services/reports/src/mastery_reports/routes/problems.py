"""How each refusal of the reports service is answered over HTTP."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.plugins.problem_details import ProblemDetailsException

from mastery_reports import errors

STATUS: tuple[tuple[type[errors.ReportsError], int, str], ...] = (
    (errors.ShareLinkNotFoundError, 404, "Not found"),
    (errors.StudentNotFoundError, 404, "Not found"),
    (errors.SectionNotFoundError, 404, "Not found"),
    (errors.SharedReportNotFoundError, 404, "Not found"),
    (errors.InvalidShareRequestError, 422, "Invalid share link"),
)


def problem_of(error: errors.ReportsError) -> ProblemDetailsException:
    """Describe a refusal as an RFC 9457 problem; a missing record is
    described exactly as one of another tenant or outside the caller's
    sections is, without its id."""
    status, title = 400, "Request refused"
    for kind, kind_status, kind_title in STATUS:
        if isinstance(error, kind):
            status, title = kind_status, kind_title
            break
    extra = None
    if isinstance(error, errors.InvalidShareRequestError):
        extra = {"location": error.field, "reason": error.message}
    detail = "no such record" if status == 404 else str(error)

    return ProblemDetailsException(
        status_code=status, title=title, detail=detail, extra=extra
    )


def problem_response(
    request: Request[Any, Any, Any], error: errors.ReportsError
) -> Response[Any]:
    """Answer a refused request with its problem details."""
    return problem_of(error).to_response(request)
