"""What an uploaded file asks for, whatever its format, and the events that
bring a set from what it holds to what the file says.

A re-import recognises objectives by their CASE identifier (or, for a CSV
without identifiers, their code), so it records only what changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from uuid import UUID

import msgspec

from mastery_events.contract.objectives import (
    ObjectiveChanged,
    ObjectiveLinked,
    ObjectiveMoved,
    ObjectiveRemoved,
    ObjectiveSetCreated,
    ObjectiveSetEdited,
    ObjectiveSetEvent,
    ObjectiveUnlinked,
    OwnerScope,
)
from mastery_objectives.errors import ImportRejectedError, ObjectiveSetArchivedError
from mastery_objectives.objective_sets import (
    Link,
    ObjectiveFields,
    ObjectiveSet,
    check_hierarchy,
    fold,
    objective_added,
)

# Bounds on one import, so a single upload cannot tie up the service.
MAX_IMPORT_BYTES = 4 * 1024 * 1024
MAX_IMPORT_ITEMS = 10_000


class PlannedItem(msgspec.Struct, frozen=True, kw_only=True):
    """One objective as the file describes it; ``location`` is where."""

    key: str
    location: str
    fields: ObjectiveFields
    parent_key: str | None = None
    parent_location: str | None = None
    case_identifier: str | None = None
    case_uri: str | None = None


class PlannedLink(msgspec.Struct, frozen=True, kw_only=True):
    """A typed association from an item to another, in the file or not."""

    key: str
    origin_key: str
    link_type: str
    target_key: str | None = None
    target_identifier: str | None = None
    target_uri: str | None = None
    target_title: str | None = None


class ImportPlan(msgspec.Struct, frozen=True, kw_only=True):
    """The whole content of one uploaded file."""

    file_name: str
    title: str
    subject: str = ""
    grade_bands: tuple[str, ...] = ()
    case_identifier: str | None = None
    case_uri: str | None = None
    items: tuple[PlannedItem, ...] = ()
    links: tuple[PlannedLink, ...] = ()


def check_plan(plan: ImportPlan) -> None:
    """Raise ``ImportRejectedError`` at the first duplicate key or code, parent
    that is not in the file, or parent chain that loops."""
    if len(plan.items) > MAX_IMPORT_ITEMS:
        reason = f"{len(plan.items)} items, more than the limit of {MAX_IMPORT_ITEMS}"
        raise ImportRejectedError(plan.file_name, "whole file", reason)
    by_key: dict[str, PlannedItem] = {}
    codes: dict[str, PlannedItem] = {}
    for item in plan.items:
        if item.key in by_key:
            reason = f"the identifier {item.key!r} is used twice"
            raise ImportRejectedError(plan.file_name, item.location, reason)
        by_key[item.key] = item
        code = item.fields.code
        if code:
            if code in codes:
                reason = (
                    f"the human code {code!r} is already used at {codes[code].location}"
                )
                raise ImportRejectedError(plan.file_name, item.location, reason)
            codes[code] = item

    for item in plan.items:
        if item.parent_key is not None and item.parent_key not in by_key:
            reason = f"the parent {item.parent_key!r} is not an item of this file"
            location = item.parent_location or item.location
            raise ImportRejectedError(plan.file_name, location, reason)
    for item in plan.items:
        seen = {item.key}
        parent = item.parent_key
        while parent is not None:
            if parent in seen:
                reason = f"the parent links of {item.key!r} form a cycle"
                location = item.parent_location or item.location
                raise ImportRejectedError(plan.file_name, location, reason)
            seen.add(parent)
            parent = by_key[parent].parent_key


def objective_id_for(objective_set_id: UUID, key: str) -> UUID:
    """Return the id an imported item gets in a set: the same on every
    import of that item, so replays and re-imports agree."""
    return uuid.uuid5(objective_set_id, f"item:{key}")


def link_id_for(objective_set_id: UUID, key: str) -> UUID:
    """Return the id an imported association gets in a set."""
    return uuid.uuid5(objective_set_id, f"link:{key}")


def _parents_first(plan: ImportPlan) -> Iterator[PlannedItem]:
    by_key = {item.key: item for item in plan.items}
    placed: set[str] = set()

    def place(item: PlannedItem) -> Iterator[PlannedItem]:
        if item.key in placed:
            return
        if item.parent_key is not None:
            yield from place(by_key[item.parent_key])
        placed.add(item.key)
        yield item

    for item in plan.items:
        yield from place(item)


def import_events(
    state: ObjectiveSet | None,
    plan: ImportPlan,
    *,
    objective_set_id: UUID,
    owner_scope: OwnerScope,
    owner_id: str,
    by: str,
    at: datetime,
) -> list[ObjectiveSetEvent]:
    """Decide the events that make the set ``state`` (None: a new set) hold
    exactly what ``plan`` describes."""
    check_plan(plan)
    if state is not None and state.status == "archived":
        raise ObjectiveSetArchivedError(objective_set_id)

    events: list[ObjectiveSetEvent] = []
    if state is None:
        events.append(
            ObjectiveSetCreated(
                objective_set_id=objective_set_id,
                title=plan.title,
                subject=plan.subject,
                owner_scope=owner_scope,
                owner_id=owner_id,
                grade_bands=plan.grade_bands,
                case_identifier=plan.case_identifier,
                case_uri=plan.case_uri,
                created_by=by,
                created_at=at,
            )
        )
        state = fold(None, events)
    elif (state.title, state.subject, state.grade_bands) != (
        plan.title,
        plan.subject or state.subject,
        plan.grade_bands,
    ):
        events.append(
            ObjectiveSetEdited(
                objective_set_id=objective_set_id,
                title=plan.title,
                subject=plan.subject or state.subject,
                grade_bands=plan.grade_bands,
                edited_by=by,
                edited_at=at,
            )
        )

    existing = {o.key: o for o in state.objectives.values() if o.key}
    ids = {key: objective.objective_id for key, objective in existing.items()}
    for item in plan.items:
        ids.setdefault(item.key, objective_id_for(objective_set_id, item.key))
    events.extend(_item_events(state, plan, ids, by=by, at=at))
    events.extend(_link_events(state, plan, ids, by=by, at=at))

    check_hierarchy(fold(state, events))

    return events


def _item_events(
    state: ObjectiveSet,
    plan: ImportPlan,
    ids: dict[str, UUID],
    *,
    by: str,
    at: datetime,
) -> list[ObjectiveSetEvent]:
    set_id = state.objective_set_id
    events: list[ObjectiveSetEvent] = []
    for item in _parents_first(plan):
        objective_id = ids[item.key]
        parent_id = ids[item.parent_key] if item.parent_key is not None else None
        current = state.objectives.get(objective_id)
        if current is None:
            events.append(
                objective_added(
                    set_id,
                    objective_id,
                    parent_id=parent_id,
                    fields=item.fields,
                    by=by,
                    at=at,
                    case_identifier=item.case_identifier,
                    case_uri=item.case_uri,
                )
            )
            continue
        fields = item.fields
        now = ObjectiveFields(
            code=current.code,
            statement=current.statement,
            label=current.label,
            order=current.order,
            item_type=current.item_type,
            grade_bands=current.grade_bands,
        )
        if now != fields:
            events.append(
                ObjectiveChanged(
                    objective_set_id=set_id,
                    objective_id=objective_id,
                    code=fields.code,
                    statement=fields.statement,
                    label=fields.label,
                    order=fields.order,
                    item_type=fields.item_type,
                    grade_bands=fields.grade_bands,
                    changed_by=by,
                    changed_at=at,
                )
            )
        if current.parent_id != parent_id:
            events.append(
                ObjectiveMoved(
                    objective_set_id=set_id,
                    objective_id=objective_id,
                    parent_id=parent_id,
                    moved_by=by,
                    moved_at=at,
                )
            )

    # What the file no longer has goes, deepest first, so that no removal
    # leaves an objective without its parent.
    kept = {ids[item.key] for item in plan.items}
    gone = [o for o in state.objectives.values() if o.objective_id not in kept]
    depth = {o.objective_id: _depth(state, o.objective_id) for o in gone}
    for objective in sorted(gone, key=lambda o: -depth[o.objective_id]):
        events.append(
            ObjectiveRemoved(
                objective_set_id=set_id,
                objective_id=objective.objective_id,
                removed_by=by,
                removed_at=at,
            )
        )

    return events


def _depth(state: ObjectiveSet, objective_id: UUID) -> int:
    depth = 0
    parent_id = state.objectives[objective_id].parent_id
    while parent_id is not None and parent_id in state.objectives:
        depth += 1
        parent_id = state.objectives[parent_id].parent_id

    return depth


def _link_events(
    state: ObjectiveSet,
    plan: ImportPlan,
    ids: dict[str, UUID],
    *,
    by: str,
    at: datetime,
) -> list[ObjectiveSetEvent]:
    set_id = state.objective_set_id
    events: list[ObjectiveSetEvent] = []
    wanted: set[UUID] = set()
    for planned in plan.links:
        link_id = link_id_for(set_id, planned.key)
        wanted.add(link_id)
        target_id = ids.get(planned.target_key) if planned.target_key else None
        linked = ObjectiveLinked(
            objective_set_id=set_id,
            link_id=link_id,
            objective_id=ids[planned.origin_key],
            link_type=planned.link_type,
            target_objective_id=target_id,
            target_identifier=planned.target_identifier,
            target_uri=planned.target_uri,
            target_title=planned.target_title,
            linked_by=by,
            linked_at=at,
        )
        as_link = Link(
            link_id=link_id,
            objective_id=linked.objective_id,
            link_type=linked.link_type,
            target_objective_id=linked.target_objective_id,
            target_identifier=linked.target_identifier,
            target_uri=linked.target_uri,
            target_title=linked.target_title,
        )
        if state.links.get(link_id) != as_link:
            events.append(linked)
    for link_id in state.links:
        if link_id not in wanted:
            events.append(
                ObjectiveUnlinked(
                    objective_set_id=set_id,
                    link_id=link_id,
                    unlinked_by=by,
                    unlinked_at=at,
                )
            )

    return events
