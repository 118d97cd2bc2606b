"""Import an uploaded file into a set: the one path the HTTP route and the
command line share."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import msgspec
import structlog

from mastery_events.contract.objectives import ObjectiveSetEvent, OwnerScope
from mastery_events.envelope import Envelope
from mastery_events.ids import uuid7
from mastery_objectives.import_plan import MAX_IMPORT_BYTES, ImportPlan, import_events
from mastery_objectives.objective_sets import ObjectiveSet
from mastery_objectives.repository import (
    Actor,
    ObjectivesRepository,
    ProgressCallback,
)
from mastery_objectives.uploads import plan_upload

log = structlog.get_logger(__name__)


class ImportRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What to import, into which set, on whose behalf."""

    data: bytes
    file_name: str
    objective_set_id: UUID | None = None
    title: str | None = None
    subject: str | None = None
    owner_scope: OwnerScope = "district"
    owner_id: str | None = None
    limit: int = MAX_IMPORT_BYTES


class ImportResult(msgspec.Struct, frozen=True, kw_only=True):
    """The set an import wrote to and what it recorded."""

    objective_set_id: UUID
    created: bool
    items: int
    events: int
    event_types: dict[str, int]


async def import_file(
    repository: ObjectivesRepository,
    tenant_id: str,
    *,
    request: ImportRequest,
    actor: Actor,
    on_plan: Callable[[ImportPlan], None] | None = None,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Read the upload, find the set it updates (by id, else by its CASE
    document) or start a new one, and store exactly the changes; nothing is
    stored when any part is refused."""
    plan = plan_upload(request.data, file_name=request.file_name, limit=request.limit)
    plan = msgspec.structs.replace(
        plan,
        title=request.title or plan.title,
        subject=request.subject if request.subject is not None else plan.subject,
    )
    if on_plan is not None:
        on_plan(plan)

    set_id = request.objective_set_id
    if set_id is None and plan.case_identifier is not None:
        set_id = await repository.find_set_by_case_identifier(
            tenant_id, plan.case_identifier
        )
    set_id = set_id or uuid7()
    created = False

    def decide(state: ObjectiveSet | None) -> list[ObjectiveSetEvent]:
        nonlocal created
        created = state is None
        return import_events(
            state,
            plan,
            objective_set_id=set_id,
            owner_scope=request.owner_scope,
            owner_id=request.owner_id or tenant_id,
            by=actor.actor,
            at=actor.at,
        )

    _, stored = await repository.change_set(
        tenant_id, set_id, decision=decide, actor=actor, progress=progress
    )
    counts = _count_types(stored)
    log.info(
        "objectives.imported",
        tenant=tenant_id,
        objective_set=str(set_id),
        items=len(plan.items),
        events=len(stored),
        created=created,
    )

    return ImportResult(
        objective_set_id=set_id,
        created=created,
        items=len(plan.items),
        events=len(stored),
        event_types=counts,
    )


def _count_types(stored: list[Envelope]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for envelope in stored:
        counts[envelope.event_type] = counts.get(envelope.event_type, 0) + 1

    return counts
