"""Routes that add, rewrite, move, remove and find objectives in sets."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from mastery_events.access import Caller, reads
from mastery_events.ids import uuid7
from mastery_objectives.objective_sets import (
    AddObjective,
    ChangeObjective,
    MoveObjective,
    ObjectiveSet,
    RemoveObjective,
)
from mastery_objectives.repository import FoundObjective
from mastery_objectives.routes.bodies import MoveBody, ObjectiveBody
from mastery_objectives.routes.callers import AREA, edits_objectives, tenant_of
from mastery_objectives.routes.dependencies import Repository
from mastery_objectives.routes.objective_sets import change_set

OBJECTIVE_PATH = (
    "/objective-sets/{objective_set_id:uuid}/objectives/{objective_id:uuid}"
)


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
    return await change_set(
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
    return await change_set(
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
    return await change_set(
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
    return await change_set(
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
