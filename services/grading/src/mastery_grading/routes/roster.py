"""Routes of the roster: sections and their students, the objective sets a
section teaches, bundle uploads, and erasure of a person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, delete, get, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, JSONBody, MultipartBody
from litestar.plugins.problem_details import ProblemDetailsException

from mastery_events.access import (
    Caller,
    NotAllowedError,
    Owner,
    authorize,
    identity_of,
    may,
    reads,
    requires_role,
    scoped,
)
from mastery_events.api_security import BULK, BULK_BODY_LIMIT
from mastery_events.identity import Identity
from mastery_events.ids import uuid7
from mastery_events.runtime import ServiceRuntime
from mastery_grading.errors import (
    GradingError,
    PersonNotFoundError,
    RosterImportError,
    RosterProblem,
    SectionNotFoundError,
    UnknownObjectiveSetError,
)
from mastery_grading.oneroster import read_bundle
from mastery_grading.roster_archive import read_archive
from mastery_grading.roster_store import SectionRow
from mastery_grading.rostering import (
    Actor,
    ErasureSummary,
    ImportSummary,
    LinkSummary,
    Rostering,
)

AREA = "grading"
ERASED_NAME = "Erased student"
RosteringService = NamedDependency[Rostering]


class SectionView(msgspec.Struct, frozen=True, kw_only=True):
    """A section as its readers see it, with the objective sets it teaches."""

    section_id: str
    title: str
    class_code: str | None
    school_id: str
    course_id: str
    course_title: str
    course_code: str | None
    term_ids: list[str]
    objective_set_ids: list[UUID]


class StudentView(msgspec.Struct, frozen=True, kw_only=True):
    """A student of a section, named from their sealed fields; an erased
    student has no names and shows as "Erased student"."""

    person_id: UUID
    display_name: str
    given_name: str | None
    family_name: str | None
    erased: bool


class ErasureRequest(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """Why a person is erased, kept in the erasure event."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


@dataclass
class RosterUpload:
    """A multipart upload of a OneRoster bundle zipped, in a part named
    ``file``."""

    file: UploadFile | None = None


def actor_of(identity: Identity, request: Request[Any, Any, Any]) -> Actor:
    """Return who acts, now, under the request's correlation id when the
    caller sent one."""
    header = request.headers.get("x-correlation-id")
    try:
        correlation = UUID(header) if header else uuid7()
    except ValueError:
        correlation = uuid7()

    return Actor(
        subject=identity.subject, at=datetime.now(UTC), correlation_id=correlation
    )


def owner_of(identity: Identity, section: SectionRow) -> Owner:
    """Return where ``section`` belongs, for the access checks."""
    return Owner(
        tenant_id=identity.tenant_id,
        school_id=section.school_id,
        section_id=section.section_id,
    )


def may_link(identity: Identity, section: SectionRow) -> bool:
    """Tell whether ``identity`` may choose the objective sets ``section``
    teaches: its teacher, a leader of its school, a district admin, or a
    service with ``grading:write``."""
    if identity.has_role("district_admin"):
        return True
    if identity.has_role("service") and scoped(identity, action="write", area=AREA):
        return True
    if identity.has_role("teacher") and section.section_id in identity.sections:
        return True

    return identity.has_role("school_leader") and section.school_id in identity.schools


def links_sections(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard the link routes: only roles that may link any section pass."""
    identity = identity_of(connection)
    allowed = identity.has_role("district_admin", "school_leader", "teacher") or (
        identity.has_role("service") and scoped(identity, action="write", area=AREA)
    )
    if not allowed:
        raise NotAllowedError(identity.subject, needed=f"{AREA}:write")


@get("/sections", guards=[reads(AREA)], tags=["roster"])
async def list_sections(
    identity: Caller, rostering: RosteringService
) -> list[SectionView]:
    """List the sections the caller may see, with their objective sets."""
    sections = await rostering.sections(identity.tenant_id)

    return [
        view_of(section)
        for section in sections
        if may(identity, owner_of(identity, section), action="read", area=AREA)
    ]


@get("/sections/{section_id:str}/students", guards=[reads(AREA)], tags=["roster"])
async def section_students(
    identity: Caller, rostering: RosteringService, section_id: FromPath[str]
) -> list[StudentView]:
    """List a section's students by name, opened through the keyring."""
    section = await rostering.section(identity.tenant_id, section_id)
    authorize(identity, owner_of(identity, section), action="read", area=AREA)

    students = await rostering.students(identity.tenant_id, section_id)
    views = []
    for student in students:
        fields = student.fields or {}
        given, family = fields.get("given_name"), fields.get("family_name")
        name = " ".join(part for part in (given, family) if part)
        views.append(
            StudentView(
                person_id=student.person_id,
                display_name=ERASED_NAME if student.fields is None else name,
                given_name=given,
                family_name=family,
                erased=student.fields is None,
            )
        )
    return views


@put(
    "/sections/{section_id:str}/objective-sets/{objective_set_id:uuid}",
    guards=[links_sections],
    tags=["roster"],
)
async def link_objective_set(
    identity: Caller,
    request: Request[Any, Any, Any],
    rostering: RosteringService,
    section_id: FromPath[str],
    objective_set_id: FromPath[UUID],
) -> LinkSummary:
    """Let the section's students be assessed on the set's objectives; the
    set must be in grading's catalogue."""
    await _check_link(identity, rostering, section_id)

    return await rostering.link(
        identity.tenant_id,
        section_id,
        objective_set_id,
        linked=True,
        actor=actor_of(identity, request),
    )


@delete(
    "/sections/{section_id:str}/objective-sets/{objective_set_id:uuid}",
    guards=[links_sections],
    status_code=200,
    tags=["roster"],
)
async def unlink_objective_set(
    identity: Caller,
    request: Request[Any, Any, Any],
    rostering: RosteringService,
    section_id: FromPath[str],
    objective_set_id: FromPath[UUID],
) -> LinkSummary:
    """Stop the section teaching the set; evidence recorded stays."""
    await _check_link(identity, rostering, section_id)

    return await rostering.link(
        identity.tenant_id,
        section_id,
        objective_set_id,
        linked=False,
        actor=actor_of(identity, request),
    )


async def _check_link(
    identity: Identity, rostering: Rostering, section_id: str
) -> None:
    """Refuse a caller who may not link the section: 404 when they may not
    even see it, 403 when they see it but do not teach or lead it."""
    section = await rostering.section(identity.tenant_id, section_id)
    authorize(identity, owner_of(identity, section), action="read", area=AREA)
    if not may_link(identity, section):
        raise NotAllowedError(identity.subject, needed="this section's links")


def unreadable_form(
    request: Request[Any, Any, Any], error: UnicodeDecodeError
) -> Response[Any]:
    """Answer a form part sent as text that is not UTF-8, which Litestar's
    multipart parser refuses before the handler runs, as a bad upload."""
    problem = ProblemDetailsException(
        status_code=400,
        title="Unreadable form",
        detail="a text part of the form is not UTF-8; send the zip as a file part",
        extra={"reason": error.reason},
    )
    return problem.to_response(request)


@post(
    "/rosters/imports",
    guards=[requires_role("district_admin")],
    opt={BULK: True},
    request_max_body_size=BULK_BODY_LIMIT,
    status_code=200,
    tags=["roster"],
    exception_handlers={UnicodeDecodeError: unreadable_form},
)
async def import_roster(
    identity: Caller,
    request: Request[Any, Any, Any],
    rostering: RosteringService,
    data: MultipartBody[RosterUpload],
) -> ImportSummary:
    """Import a zipped OneRoster 1.2 bundle, all of it or nothing; an
    unchanged bundle records nothing."""
    if not isinstance(data.file, UploadFile):
        missing = RosterProblem(
            file="upload",
            line=None,
            column="file",
            message="the form needs the zipped bundle in a part named 'file'",
        )
        raise RosterImportError((missing,), total=1)
    bundle = read_bundle(read_archive(await data.file.read()))

    return await rostering.import_bundle(
        identity.tenant_id, bundle, actor=actor_of(identity, request)
    )


@post(
    "/people/{person_id:uuid}/erasure",
    guards=[requires_role("district_admin")],
    status_code=200,
    tags=["roster"],
)
async def erase_person(
    identity: Caller,
    request: Request[Any, Any, Any],
    rostering: RosteringService,
    person_id: FromPath[UUID],
    data: JSONBody[ErasureRequest],
) -> ErasureSummary:
    """Erase a person: destroy their data key, so every sealed field of
    theirs is unreadable, and record who did it, when and why."""
    return await rostering.erase(
        identity.tenant_id,
        person_id,
        reason=data.reason,
        actor=actor_of(identity, request),
    )


def view_of(section: SectionRow) -> SectionView:
    """Return ``section`` as the API shows it."""
    return SectionView(
        section_id=section.section_id,
        title=section.title,
        class_code=section.class_code,
        school_id=section.school_id,
        course_id=section.course_id,
        course_title=section.course_title,
        course_code=section.course_code,
        term_ids=section.term_ids,
        objective_set_ids=section.objective_set_ids,
    )


def roster_problem(
    request: Request[Any, Any, Any], error: GradingError
) -> Response[Any]:
    """Answer a refusal of the roster routes with an RFC 9457 problem:
    a bundle's problems each with file, line and column."""
    if isinstance(error, RosterImportError):
        problem = ProblemDetailsException(
            status_code=422,
            title="Roster bundle refused",
            detail=str(error),
            extra={
                "problems": [msgspec.to_builtins(p) for p in error.problems],
                "total": error.total,
            },
        )
    elif isinstance(error, UnknownObjectiveSetError):
        problem = ProblemDetailsException(
            status_code=422,
            title="Unknown objective set",
            detail="grading's catalogue holds no objective of this set",
        )
    else:
        # Missing records are answered as one of another tenant would be.
        problem = ProblemDetailsException(
            status_code=404, title="Not found", detail="no such record"
        )
    return problem.to_response(request)


def roster_router(runtime: ServiceRuntime) -> Router:
    """Return the roster routes, bound to ``runtime``."""

    def provide_rostering() -> Rostering:
        return Rostering(
            runtime.pool,
            runtime.store,
            runtime.keyring,
            schema=runtime.service.schema,
        )

    return Router(
        path="/",
        route_handlers=[
            list_sections,
            section_students,
            link_objective_set,
            unlink_objective_set,
            import_roster,
            erase_person,
        ],
        dependencies={"rostering": Provide(provide_rostering, sync_to_thread=False)},
        exception_handlers={
            RosterImportError: roster_problem,
            UnknownObjectiveSetError: roster_problem,
            SectionNotFoundError: roster_problem,
            PersonNotFoundError: roster_problem,
        },
    )
