"""Routes that draft, read, edit, publish and retire objective sets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal
from uuid import UUID

from litestar import Request, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from mastery_events.access import Caller, NotAllowedError, NotVisibleError, reads
from mastery_events.contract.objectives import ObjectiveSetEvent
from mastery_events.identity import Identity
from mastery_events.ids import uuid7
from mastery_objectives import errors
from mastery_objectives.objective_sets import (
    ArchiveSet,
    CreateSet,
    EditSet,
    ObjectiveSet,
    PublishSet,
    SetCommand,
    decide,
)
from mastery_objectives.repository import Actor, ObjectivesRepository, SetSummary
from mastery_objectives.routes.bodies import MAX_VERSION, SetBody, SetEditBody
from mastery_objectives.routes.callers import (
    AREA,
    actor_of,
    edits_objectives,
    may_create_set,
    may_edit_set,
    owner_of,
    tenant_of,
)
from mastery_objectives.routes.dependencies import Repository


async def change_set(
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
    owner_id = owner_of(identity, data.owner_scope, data.owner_id)
    if not may_create_set(identity, data.owner_scope, owner_id):
        raise NotAllowedError(identity.subject, needed=f"{data.owner_scope} sets")
    set_id = uuid7()

    return await change_set(
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
    return await change_set(
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
    return await change_set(
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
    return await change_set(
        repository,
        identity,
        request=request,
        objective_set_id=objective_set_id,
        build=lambda actor: ArchiveSet(
            objective_set_id=objective_set_id, by=actor.actor, at=actor.at
        ),
    )
