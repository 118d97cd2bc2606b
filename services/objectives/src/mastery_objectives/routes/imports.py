"""The route that imports a CSV or CASE JSON file sent as a multipart upload."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Request, Response, post
from litestar.datastructures import UploadFile
from litestar.params import MultipartBody
from litestar.plugins.problem_details import ProblemDetailsException

from mastery_events.access import Caller, NotAllowedError
from mastery_events.api_security import BULK, BULK_BODY_LIMIT
from mastery_events.contract.objectives import OwnerScope
from mastery_objectives import errors
from mastery_objectives.importing import ImportRequest, ImportResult, import_file
from mastery_objectives.routes.bodies import Name
from mastery_objectives.routes.callers import (
    actor_of,
    edits_objectives,
    may_create_set,
    may_edit_set,
    owner_of,
    tenant_of,
)
from mastery_objectives.routes.dependencies import Repository


@dataclass
class ImportForm:
    """A multipart upload: the file, and optionally the set it updates."""

    file: UploadFile | None = None
    objective_set_id: UUID | None = None
    title: str | None = None
    subject: str | None = None
    owner_scope: OwnerScope = "district"
    owner_id: Name | None = None


def unreadable_form(
    request: Request[Any, Any, Any], error: UnicodeDecodeError
) -> Response[Any]:
    """Answer a form whose text fields are not UTF-8, which the multipart
    parser refuses before any handler runs, as the client's mistake."""
    return ProblemDetailsException(
        status_code=400,
        title="Unreadable form",
        detail="a text field of the form is not UTF-8; send the file as a file part",
        extra={"location": "multipart form", "reason": error.reason},
    ).to_response(request)


@post(
    "/imports",
    guards=[edits_objectives],
    opt={BULK: True},
    request_max_body_size=BULK_BODY_LIMIT,
    exception_handlers={UnicodeDecodeError: unreadable_form},
)
async def import_upload(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    data: MultipartBody[ImportForm],
) -> ImportResult:
    """Import a CSV or CASE JSON file, told apart by its content: into the
    given set, else the set its CASE document was imported into before, else
    a new set. All of it is stored, or nothing."""
    tenant = tenant_of(identity)
    owner_id = owner_of(identity, data.owner_scope, data.owner_id)
    if data.objective_set_id is not None:
        state = await repository.get_set(tenant, data.objective_set_id)
        allowed = may_edit_set(identity, state)
    else:
        allowed = may_create_set(identity, data.owner_scope, owner_id)
    if not allowed:
        raise NotAllowedError(identity.subject, needed=f"{data.owner_scope} sets")

    for name in ("title", "subject", "owner_id"):
        value = getattr(data, name)
        if value is not None and ("\x00" in value or len(value) > 500):
            reason = "must be text of at most 500 characters, without NUL"
            raise errors.ImportRejectedError("upload", f"form field '{name}'", reason)
    if not isinstance(data.file, UploadFile):
        reason = "the form needs the file to import in a part named 'file'"
        raise errors.ImportRejectedError("upload", "form field 'file'", reason)
    content = await data.file.read()
    return await import_file(
        repository,
        tenant,
        request=ImportRequest(
            data=content,
            file_name=data.file.filename or "upload",
            objective_set_id=data.objective_set_id,
            title=data.title,
            subject=data.subject,
            owner_scope=data.owner_scope,
            owner_id=owner_id,
        ),
        actor=actor_of(identity, request),
    )
