"""Routes that define, revise, publish and retire the district's scales."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, get, post, put
from litestar.params import FromPath, JSONBody

from mastery_events.access import Caller, NotAllowedError, reads
from mastery_events.contract.objectives import ScaleEvent
from mastery_events.identity import Identity
from mastery_events.ids import uuid7
from mastery_objectives import errors
from mastery_objectives.repository import Actor, ObjectivesRepository, ScaleSummary
from mastery_objectives.routes.bodies import MAX_VERSION, ScaleBody
from mastery_objectives.routes.callers import (
    AREA,
    actor_of,
    edits_objectives,
    may_edit_scales,
    tenant_of,
)
from mastery_objectives.routes.dependencies import Repository
from mastery_objectives.scales import (
    STARTER_SCALES,
    Scale,
    ScaleRecord,
    archive_scale,
    define_scale,
    publish_scale,
    revise_scale,
)


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


async def _change_scale(
    repository: ObjectivesRepository,
    identity: Identity,
    *,
    request: Request[Any, Any, Any],
    scale_id: UUID,
    decision: Callable[[Any, Actor], Sequence[ScaleEvent]],
    creates: bool = False,
) -> ScaleView:
    """Check the caller may edit scales, decide on the scale and store it."""
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


async def _define(
    repository: ObjectivesRepository,
    identity: Identity,
    *,
    request: Request[Any, Any, Any],
    scale: Scale,
) -> ScaleView:
    """Define ``scale`` as version 1 of a new scale."""
    scale_id = uuid7()

    def definition(record: ScaleRecord | None, actor: Actor) -> Sequence[ScaleEvent]:
        return define_scale(scale_id, scale, by=actor.actor, at=actor.at)

    return await _change_scale(
        repository,
        identity,
        request=request,
        scale_id=scale_id,
        decision=definition,
        creates=True,
    )


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
    return await _define(repository, identity, request=request, scale=data.scale())


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

    return await _define(
        repository, identity, request=request, scale=STARTER_SCALES[key]
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
