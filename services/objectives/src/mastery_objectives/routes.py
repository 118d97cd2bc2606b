"""The objectives API: sets, objectives, policies, scales and imports.

Handlers take the tenant and the actor from the authenticated caller, turn
the request into a domain command, and let the repository store it. Every
refusal of the domain becomes an RFC 9457 problem here, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeAlias
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody
from litestar.plugins.problem_details import ProblemDetailsException

from mastery_events.access import (
    Caller,
    NotAllowedError,
    NotVisibleError,
    identity_of,
    reads,
    scoped,
)
from mastery_events.api_security import BULK, BULK_BODY_LIMIT
from mastery_events.contract.objectives import (
    CalculationMethod,
    CalculationPolicy,
    MarkMeaning,
    ObjectiveSetEvent,
    OwnerScope,
    Rounding,
    ScaleEvent,
    ScaleLevel,
    ScaleMark,
    TieRule,
)
from mastery_events.identity import Identity
from mastery_events.ids import uuid7
from mastery_events.runtime import ServiceRuntime
from mastery_objectives import errors
from mastery_objectives.importing import ImportRequest, ImportResult, import_file
from mastery_objectives.objective_sets import (
    AddObjective,
    ArchiveSet,
    ChangeObjective,
    ClearPolicy,
    CreateSet,
    EditSet,
    MoveObjective,
    ObjectiveFields,
    ObjectiveSet,
    PublishSet,
    RemoveObjective,
    SetCommand,
    SetPolicy,
    decide,
)
from mastery_objectives.repository import (
    Actor,
    FoundObjective,
    ObjectivesRepository,
    ScaleSummary,
    SetSummary,
)
from mastery_objectives.scales import (
    STARTER_SCALES,
    Scale,
    ScaleRecord,
    archive_scale,
    define_scale,
    publish_scale,
    revise_scale,
)

AREA = "objectives"
# PostgreSQL text cannot hold NUL, and integer columns are 32-bit: bodies
# are held to what the store can keep, so nothing valid fails there.
Text = Annotated[str, msgspec.Meta(max_length=10_000, pattern="^[^\\x00]*$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern="^[^\\x00]*$")]
Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
MAX_VERSION = 2**31 - 1
Repository: TypeAlias = NamedDependency[ObjectivesRepository]
"""How a handler asks for the objectives repository."""
PROBLEM_JSON = "application/problem+json"


# Who may change what -------------------------------------------------------


def tenant_of(identity: Identity) -> str:
    """Return the tenant every read and write of this request is scoped to."""
    return identity.tenant_id


def may_edit_set(identity: Identity, state: ObjectiveSet) -> bool:
    """Tell whether the caller may change a set: district admins any set,
    school leaders their schools' sets, teachers their own."""
    if identity.has_role("district_admin"):
        return True
    if identity.has_role("service") and scoped(identity, action="write", area=AREA):
        return True
    if state.owner_scope == "school" and identity.has_role("school_leader"):
        return state.owner_id in identity.schools
    if state.owner_scope == "teacher" and identity.has_role("teacher"):
        return state.owner_id == identity.subject

    return False


def may_create_set(identity: Identity, scope: OwnerScope, owner_id: str) -> bool:
    """Tell whether the caller may start a set owned by ``owner_id``."""
    draft = ObjectiveSet(
        objective_set_id=UUID(int=0),
        title="",
        subject="",
        owner_scope=scope,
        owner_id=owner_id,
    )
    return may_edit_set(identity, draft)


def may_edit_scales(identity: Identity) -> bool:
    """Tell whether the caller may define or change the district's scales."""
    if identity.has_role("service"):
        return scoped(identity, action="write", area=AREA)
    return identity.has_role("district_admin")


def edits_objectives(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard a route that changes objectives: auditors never pass."""
    identity = identity_of(connection)
    if identity.has_role("district_admin", "school_leader", "teacher"):
        return
    if identity.has_role("service") and scoped(identity, action="write", area=AREA):
        return
    raise NotAllowedError(identity.subject, needed=f"{AREA}:write")


def actor_of(identity: Identity, request: Request[Any, Any, Any]) -> Actor:
    """Return who acts, now, under the request's correlation id when the
    caller sent one."""
    header = request.headers.get("x-correlation-id")
    try:
        correlation = UUID(header) if header else uuid7()
    except ValueError:
        correlation = uuid7()

    return Actor(
        actor=identity.subject, at=datetime.now(UTC), correlation_id=correlation
    )


# Bodies --------------------------------------------------------------------


class SetBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new objective set. ``owner_id`` defaults to the tenant (district),
    or the caller (teacher)."""

    title: Name
    subject: Text
    owner_scope: OwnerScope = "district"
    owner_id: Name | None = None
    grade_bands: list[Name] = []


class SetEditBody(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """A set's new title, subject and grade bands."""

    title: Name
    subject: Text
    grade_bands: list[Name] = []


class ObjectiveBody(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """An objective's fields; ``parent_id`` only when adding."""

    statement: Name
    code: Name | None = None
    label: Name | None = None
    order: Int32 = 0
    item_type: Name | None = None
    grade_bands: list[Name] = []
    parent_id: UUID | None = None

    def fields(self) -> ObjectiveFields:
        """Return the fields as the domain takes them."""
        return ObjectiveFields(
            code=self.code,
            statement=self.statement,
            label=self.label,
            order=self.order,
            item_type=self.item_type,
            grade_bands=tuple(self.grade_bands),
        )


class MoveBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where an objective goes: under ``parent_id``, or the top when null."""

    parent_id: UUID | None = None


class PolicyBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A calculation policy: the method and only its own parameter."""

    method: CalculationMethod
    decay: float | None = None
    recent_weight: float | None = None
    n: Int32 | None = None
    tie_rule: TieRule | None = None
    minimum_evidence: Int32 = 1

    def policy(self) -> CalculationPolicy:
        """Return the policy as events carry it."""
        return msgspec.convert(msgspec.to_builtins(self), CalculationPolicy)


class LevelBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One level of a scale."""

    value: float
    label: Name
    short_label: Name
    colour: Name
    description: Text = ""


class MarkBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A mark recorded instead of a level."""

    code: Name
    label: Name
    meaning: MarkMeaning
    counts_as_lowest: bool = False


class ScaleBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A whole scale version."""

    name: Name
    levels: list[LevelBody]
    mastery_threshold: float
    cut_points: list[float] = []
    rounding: Rounding = "nearest"
    marks: list[MarkBody] = []

    def scale(self) -> Scale:
        """Return the scale as the domain takes it."""
        return Scale(
            name=self.name,
            levels=tuple(ScaleLevel(**msgspec.structs.asdict(x)) for x in self.levels),
            mastery_threshold=self.mastery_threshold,
            cut_points=tuple(self.cut_points),
            rounding=self.rounding,
            marks=tuple(ScaleMark(**msgspec.structs.asdict(x)) for x in self.marks),
        )


@dataclass
class ImportForm:
    """A multipart upload: the file, and optionally the set it updates."""

    file: UploadFile | None = None
    objective_set_id: UUID | None = None
    title: str | None = None
    subject: str | None = None
    owner_scope: OwnerScope = "district"
    owner_id: Name | None = None


# Answers -------------------------------------------------------------------


class ScaleView(msgspec.Struct, frozen=True, kw_only=True):
    """A scale with every version it has had."""

    scale_id: UUID
    status: str
    latest_version: int
    published_version: int | None
    versions: dict[int, Scale]


class ScaleVersionView(msgspec.Struct, frozen=True, kw_only=True):
    """One version of a scale, as assessments recorded with it read it."""

    scale_id: UUID
    scale_version: int
    scale: Scale


def scale_view(record: ScaleRecord) -> ScaleView:
    """Describe a scale for a client."""
    return ScaleView(
        scale_id=record.scale_id,
        status=record.status,
        latest_version=record.latest_version,
        published_version=record.published_version,
        versions=record.versions,
    )


# Sets ----------------------------------------------------------------------


async def _change_set(
    repository: ObjectivesRepository,
    identity: Identity,
    *,
    request: Request[Any, Any, Any],
    objective_set_id: UUID,
    build: Callable[[Actor], SetCommand],
) -> ObjectiveSet:
    """Load, check the caller may edit, decide ``build(actor)`` and store."""
    actor = actor_of(identity, request)
    command: SetCommand = build(actor)

    def decision(state: ObjectiveSet | None) -> Sequence[ObjectiveSetEvent]:
        if state is not None and not may_edit_set(identity, state):
            raise NotVisibleError(
                identity.subject, tenant_id=identity.tenant_id, action="write"
            )
        return decide(state, command)

    state, _ = await repository.change_set(
        tenant_of(identity), objective_set_id, decision=decision, actor=actor
    )
    if state is None:
        raise errors.ObjectiveSetNotFoundError(objective_set_id)

    return state


@post("/objective-sets", guards=[edits_objectives])
async def create_set(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    data: JSONBody[SetBody],
) -> ObjectiveSet:
    """Draft a new objective set."""
    if data.owner_id is not None:
        owner_id = data.owner_id
    elif data.owner_scope == "teacher":
        owner_id = identity.subject
    else:
        owner_id = tenant_of(identity)
    if not may_create_set(identity, data.owner_scope, owner_id):
        raise NotAllowedError(identity.subject, needed=f"{data.owner_scope} sets")
    set_id = uuid7()

    return await _change_set(
        repository,
        identity,
        request=request,
        objective_set_id=set_id,
        build=lambda actor: CreateSet(
            objective_set_id=set_id,
            by=actor.actor,
            at=actor.at,
            title=data.title,
            subject=data.subject,
            owner_scope=data.owner_scope,
            owner_id=owner_id,
            grade_bands=tuple(data.grade_bands),
        ),
    )


@get("/objective-sets", guards=[reads(AREA)])
async def list_sets(
    identity: Caller,
    repository: Repository,
    status: FromQuery[Literal["draft", "published", "archived"] | None] = None,
) -> list[SetSummary]:
    """List the district's objective sets, optionally by status."""
    return await repository.list_sets(tenant_of(identity), status=status)


@get("/objective-sets/{objective_set_id:uuid}", guards=[reads(AREA)])
async def get_set(
    identity: Caller, repository: Repository, objective_set_id: FromPath[UUID]
) -> ObjectiveSet:
    """Return a set as it now stands, unpublished changes included."""
    return await repository.get_set(tenant_of(identity), objective_set_id)


@get(
    "/objective-sets/{objective_set_id:uuid}/versions/{set_version:int}",
    guards=[reads(AREA)],
)
async def get_set_version(
    identity: Caller,
    repository: Repository,
    objective_set_id: FromPath[UUID],
    set_version: FromPath[int],
) -> ObjectiveSet:
    """Return a set exactly as it was published at ``set_version``."""
    if not 1 <= set_version <= MAX_VERSION:
        raise errors.SetVersionNotFoundError(objective_set_id, set_version)
    return await repository.get_set_version(
        tenant_of(identity), objective_set_id, set_version=set_version
    )


@patch("/objective-sets/{objective_set_id:uuid}", guards=[edits_objectives])
async def edit_set(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    objective_set_id: FromPath[UUID],
    data: JSONBody[SetEditBody],
) -> ObjectiveSet:
    """Change a set's title, subject and grade bands."""
    return await _change_set(
        repository,
        identity,
        request=request,
        objective_set_id=objective_set_id,
        build=lambda actor: EditSet(
            objective_set_id=objective_set_id,
            by=actor.actor,
            at=actor.at,
            title=data.title,
            subject=data.subject,
            grade_bands=tuple(data.grade_bands),
        ),
    )


@post("/objective-sets/{objective_set_id:uuid}/publish", guards=[edits_objectives])
async def publish_set(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    objective_set_id: FromPath[UUID],
) -> ObjectiveSet:
    """Publish the set's current content as its next version."""
    return await _change_set(
        repository,
        identity,
        request=request,
        objective_set_id=objective_set_id,
        build=lambda actor: PublishSet(
            objective_set_id=objective_set_id, by=actor.actor, at=actor.at
        ),
    )


@post("/objective-sets/{objective_set_id:uuid}/archive", guards=[edits_objectives])
async def archive_set(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    objective_set_id: FromPath[UUID],
) -> ObjectiveSet:
    """Retire a set; it stays readable."""
    return await _change_set(
        repository,
        identity,
        request=request,
        objective_set_id=objective_set_id,
        build=lambda actor: ArchiveSet(
            objective_set_id=objective_set_id, by=actor.actor, at=actor.at
        ),
    )


# Objectives ----------------------------------------------------------------


@post("/objective-sets/{objective_set_id:uuid}/objectives", guards=[edits_objectives])
async def add_objective(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    objective_set_id: FromPath[UUID],
    data: JSONBody[ObjectiveBody],
) -> ObjectiveSet:
    """Add an objective to a set, under ``parent_id`` or at the top."""
    objective_id = uuid7()
    return await _change_set(
        repository,
        identity,
        request=request,
        objective_set_id=objective_set_id,
        build=lambda actor: AddObjective(
            objective_set_id=objective_set_id,
            by=actor.actor,
            at=actor.at,
            objective_id=objective_id,
            parent_id=data.parent_id,
            fields=data.fields(),
        ),
    )


OBJECTIVE_PATH = (
    "/objective-sets/{objective_set_id:uuid}/objectives/{objective_id:uuid}"
)


@patch(OBJECTIVE_PATH, guards=[edits_objectives])
async def change_objective(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    objective_set_id: FromPath[UUID],
    objective_id: FromPath[UUID],
    data: JSONBody[ObjectiveBody],
) -> ObjectiveSet:
    """Rewrite an objective's fields (a move goes through ``/move``)."""
    return await _change_set(
        repository,
        identity,
        request=request,
        objective_set_id=objective_set_id,
        build=lambda actor: ChangeObjective(
            objective_set_id=objective_set_id,
            by=actor.actor,
            at=actor.at,
            objective_id=objective_id,
            fields=data.fields(),
        ),
    )


@post(f"{OBJECTIVE_PATH}/move", guards=[edits_objectives])
async def move_objective(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    objective_set_id: FromPath[UUID],
    objective_id: FromPath[UUID],
    data: JSONBody[MoveBody],
) -> ObjectiveSet:
    """Put an objective under another parent, or at the top."""
    return await _change_set(
        repository,
        identity,
        request=request,
        objective_set_id=objective_set_id,
        build=lambda actor: MoveObjective(
            objective_set_id=objective_set_id,
            by=actor.actor,
            at=actor.at,
            objective_id=objective_id,
            parent_id=data.parent_id,
        ),
    )


@delete(OBJECTIVE_PATH, guards=[edits_objectives], status_code=200)
async def remove_objective(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    objective_set_id: FromPath[UUID],
    objective_id: FromPath[UUID],
) -> ObjectiveSet:
    """Take a childless objective out of a set."""
    return await _change_set(
        repository,
        identity,
        request=request,
        objective_set_id=objective_set_id,
        build=lambda actor: RemoveObjective(
            objective_set_id=objective_set_id,
            by=actor.actor,
            at=actor.at,
            objective_id=objective_id,
        ),
    )


@get("/objectives", guards=[reads(AREA)])
async def search_objectives(
    identity: Caller, repository: Repository, q: FromQuery[str]
) -> list[FoundObjective]:
    """Find objectives by the start of their code or a word of their text."""
    if "\x00" in q:
        return []
    return await repository.search_objectives(tenant_of(identity), q)


# Policies ------------------------------------------------------------------


@put("/objective-sets/{objective_set_id:uuid}/policy", guards=[edits_objectives])
async def set_set_policy(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    objective_set_id: FromPath[UUID],
    data: JSONBody[PolicyBody],
) -> ObjectiveSet:
    """Set the calculation policy of a whole set."""
    return await _change_set(
        repository,
        identity,
        request=request,
        objective_set_id=objective_set_id,
        build=lambda actor: SetPolicy(
            objective_set_id=objective_set_id,
            by=actor.actor,
            at=actor.at,
            policy=data.policy(),
        ),
    )


@put(f"{OBJECTIVE_PATH}/policy", guards=[edits_objectives])
async def set_objective_policy(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    objective_set_id: FromPath[UUID],
    objective_id: FromPath[UUID],
    data: JSONBody[PolicyBody],
) -> ObjectiveSet:
    """Override the set's policy for one objective."""
    return await _change_set(
        repository,
        identity,
        request=request,
        objective_set_id=objective_set_id,
        build=lambda actor: SetPolicy(
            objective_set_id=objective_set_id,
            by=actor.actor,
            at=actor.at,
            objective_id=objective_id,
            policy=data.policy(),
        ),
    )


@delete(f"{OBJECTIVE_PATH}/policy", guards=[edits_objectives], status_code=200)
async def clear_objective_policy(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    objective_set_id: FromPath[UUID],
    objective_id: FromPath[UUID],
) -> ObjectiveSet:
    """Withdraw one objective's override; the set's policy applies again."""
    return await _change_set(
        repository,
        identity,
        request=request,
        objective_set_id=objective_set_id,
        build=lambda actor: ClearPolicy(
            objective_set_id=objective_set_id,
            by=actor.actor,
            at=actor.at,
            objective_id=objective_id,
        ),
    )


# Scales --------------------------------------------------------------------


async def _change_scale(
    repository: ObjectivesRepository,
    identity: Identity,
    *,
    request: Request[Any, Any, Any],
    scale_id: UUID,
    decision: Callable[[Any, Actor], Sequence[ScaleEvent]],
    creates: bool = False,
) -> ScaleView:
    if not may_edit_scales(identity):
        raise NotAllowedError(identity.subject, needed="the district_admin role")
    actor = actor_of(identity, request)

    def decide_scale(record: ScaleRecord | None) -> Sequence[ScaleEvent]:
        if record is None and not creates:
            raise errors.ScaleNotFoundError(scale_id)
        result: Sequence[ScaleEvent] = decision(record, actor)
        return result

    record, _ = await repository.change_scale(
        tenant_of(identity), scale_id, decision=decide_scale, actor=actor
    )
    assert record is not None

    return scale_view(record)


@get("/scales/starter", guards=[reads(AREA)], sync_to_thread=False)
def starter_scales() -> dict[str, Scale]:
    """Return the starter library a district can define its scales from."""
    return STARTER_SCALES


@post("/scales", guards=[edits_objectives])
async def create_scale(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    data: JSONBody[ScaleBody],
) -> ScaleView:
    """Define a new scale as its version 1."""
    scale_id = uuid7()

    def define(record: ScaleRecord | None, actor: Actor) -> Sequence[ScaleEvent]:
        return define_scale(scale_id, data.scale(), by=actor.actor, at=actor.at)

    return await _change_scale(
        repository,
        identity,
        request=request,
        scale_id=scale_id,
        decision=define,
        creates=True,
    )


@post("/scales/starter/{key:str}", guards=[edits_objectives])
async def create_starter_scale(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    key: FromPath[str],
) -> ScaleView:
    """Define a new scale as a copy of one from the starter library."""
    if key not in STARTER_SCALES:
        raise errors.StarterScaleNotFoundError(key)
    scale_id = uuid7()

    def define(record: ScaleRecord | None, actor: Actor) -> Sequence[ScaleEvent]:
        return define_scale(scale_id, STARTER_SCALES[key], by=actor.actor, at=actor.at)

    return await _change_scale(
        repository,
        identity,
        request=request,
        scale_id=scale_id,
        decision=define,
        creates=True,
    )


@get("/scales", guards=[reads(AREA)])
async def list_scales(identity: Caller, repository: Repository) -> list[ScaleSummary]:
    """List the district's scales."""
    return await repository.list_scales(tenant_of(identity))


@get("/scales/{scale_id:uuid}", guards=[reads(AREA)])
async def get_scale(
    identity: Caller, repository: Repository, scale_id: FromPath[UUID]
) -> ScaleView:
    """Return a scale with every version it has had."""
    return scale_view(await repository.get_scale(tenant_of(identity), scale_id))


@get("/scales/{scale_id:uuid}/versions/{scale_version:int}", guards=[reads(AREA)])
async def get_scale_version(
    identity: Caller,
    repository: Repository,
    scale_id: FromPath[UUID],
    scale_version: FromPath[int],
) -> ScaleVersionView:
    """Return one version of a scale, as assessments made with it read it."""
    if not 1 <= scale_version <= MAX_VERSION:
        raise errors.ScaleNotFoundError(scale_id, scale_version)
    record = await repository.get_scale(tenant_of(identity), scale_id)

    return ScaleVersionView(
        scale_id=scale_id,
        scale_version=scale_version,
        scale=record.version(scale_version),
    )


@put("/scales/{scale_id:uuid}", guards=[edits_objectives])
async def revise(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    scale_id: FromPath[UUID],
    data: JSONBody[ScaleBody],
) -> ScaleView:
    """Record a new version of a scale; earlier versions stay readable."""

    def revision(record: ScaleRecord, actor: Actor) -> Sequence[ScaleEvent]:
        return revise_scale(record, data.scale(), by=actor.actor, at=actor.at)

    return await _change_scale(
        repository,
        identity,
        request=request,
        scale_id=scale_id,
        decision=revision,
    )


@post("/scales/{scale_id:uuid}/publish", guards=[edits_objectives])
async def publish(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    scale_id: FromPath[UUID],
) -> ScaleView:
    """Make the newest version the one teachers assess with."""

    def publication(record: ScaleRecord, actor: Actor) -> Sequence[ScaleEvent]:
        return publish_scale(record, by=actor.actor, at=actor.at)

    return await _change_scale(
        repository,
        identity,
        request=request,
        scale_id=scale_id,
        decision=publication,
    )


@post("/scales/{scale_id:uuid}/archive", guards=[edits_objectives])
async def archive(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    scale_id: FromPath[UUID],
) -> ScaleView:
    """Retire a scale; its versions stay readable."""

    def retirement(record: ScaleRecord, actor: Actor) -> Sequence[ScaleEvent]:
        return archive_scale(record, by=actor.actor, at=actor.at)

    return await _change_scale(
        repository,
        identity,
        request=request,
        scale_id=scale_id,
        decision=retirement,
    )


# Imports -------------------------------------------------------------------


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
    owner_id = data.owner_id or (
        identity.subject if data.owner_scope == "teacher" else tenant
    )
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


# Problems ------------------------------------------------------------------

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


def objectives_router(runtime: ServiceRuntime) -> Router:
    """Return every route of the objectives API, bound to ``runtime``."""

    def provide_repository() -> ObjectivesRepository:
        return ObjectivesRepository(runtime.store)

    return Router(
        path="/",
        route_handlers=[
            create_set,
            list_sets,
            get_set,
            get_set_version,
            edit_set,
            publish_set,
            archive_set,
            add_objective,
            change_objective,
            move_objective,
            remove_objective,
            search_objectives,
            set_set_policy,
            set_objective_policy,
            clear_objective_policy,
            starter_scales,
            create_scale,
            create_starter_scale,
            list_scales,
            get_scale,
            get_scale_version,
            revise,
            publish,
            archive,
            import_upload,
        ],
        dependencies={"repository": Provide(provide_repository, sync_to_thread=False)},
        exception_handlers={errors.ObjectivesError: problem_response},
        tags=["objectives"],
    )
