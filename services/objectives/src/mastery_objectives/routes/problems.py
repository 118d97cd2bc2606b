"""How each refusal of the objectives domain is answered over HTTP."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.plugins.problem_details import ProblemDetailsException

from mastery_objectives import errors

STATUS: tuple[tuple[type[errors.ObjectivesError], int, str], ...] = (
    (errors.ImportTooLargeError, 413, "Upload too large"),
    (errors.ImportRejectedError, 422, "Upload refused"),
    (errors.ObjectiveSetNotFoundError, 404, "Objective set not found"),
    (errors.SetVersionNotFoundError, 404, "Objective set version not found"),
    (errors.ObjectiveNotFoundError, 404, "Objective not found"),
    (errors.ScaleNotFoundError, 404, "Scale not found"),
    (errors.StarterScaleNotFoundError, 404, "Starter scale not found"),
    (errors.ScaleInvalidError, 422, "Invalid scale"),
    (errors.PolicyInvalidError, 422, "Invalid calculation policy"),
    (errors.HierarchyCycleError, 422, "Objective hierarchy would loop"),
    (errors.DuplicateCodeError, 422, "Duplicate objective code"),
    (errors.ObjectiveHasChildrenError, 409, "Objective has children"),
    (errors.ObjectiveExistsError, 409, "Objective exists"),
    (errors.ObjectiveSetExistsError, 409, "Objective set exists"),
    (errors.ObjectiveSetArchivedError, 409, "Objective set archived"),
    (errors.ScaleArchivedError, 409, "Scale archived"),
    (errors.NothingToPublishError, 409, "Nothing to publish"),
    (errors.ConcurrentChangeError, 409, "Changed concurrently"),
)


def problem_of(error: errors.ObjectivesError) -> ProblemDetailsException:
    """Describe a refusal of the objectives domain as an RFC 9457 problem,
    with the place at fault when there is one."""
    status, title = 400, "Request refused"
    for kind, kind_status, kind_title in STATUS:
        if isinstance(error, kind):
            status, title = kind_status, kind_title
            break
    extra: dict[str, Any] = {}
    if isinstance(error, errors.ImportRejectedError):
        extra = {
            "file": error.file_name,
            "location": error.location,
            "reason": error.reason,
        }
    elif isinstance(error, errors.ScaleInvalidError):
        extra = {"location": error.field, "reason": error.reason}
    elif isinstance(error, errors.PolicyInvalidError):
        extra = {"location": error.parameter, "reason": error.reason}

    # A missing record is described without its id, exactly as a record
    # of another tenant is, so answers never echo ids back.
    detail = "no such record" if status == 404 else str(error)

    return ProblemDetailsException(
        status_code=status, title=title, detail=detail, extra=extra or None
    )


def problem_response(
    request: Request[Any, Any, Any], error: errors.ObjectivesError
) -> Response[Any]:
    """Answer a refused request with its problem details."""
    return problem_of(error).to_response(request)
