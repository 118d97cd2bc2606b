"""Routes that set a set's calculation policy and override it per objective."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, delete, put
from litestar.params import FromPath, JSONBody

from mastery_events.access import Caller
from mastery_objectives.objective_sets import ClearPolicy, ObjectiveSet, SetPolicy
from mastery_objectives.routes.bodies import PolicyBody
from mastery_objectives.routes.callers import edits_objectives
from mastery_objectives.routes.dependencies import Repository
from mastery_objectives.routes.objective_sets import change_set
from mastery_objectives.routes.objectives import OBJECTIVE_PATH


@put("/objective-sets/{objective_set_id:uuid}/policy", guards=[edits_objectives])
async def set_set_policy(
    identity: Caller,
    request: Request[Any, Any, Any],
    repository: Repository,
    objective_set_id: FromPath[UUID],
    data: JSONBody[PolicyBody],
) -> ObjectiveSet:
    """Set the calculation policy of a whole set."""
    return await change_set(
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
    return await change_set(
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
    return await change_set(
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
