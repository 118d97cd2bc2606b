"""The objective set aggregate: its commands, its decisions and its state.

A set starts as a draft. Publishing freezes its content as version 1; any
later change is recorded as a diff event against that version and becomes
part of version 2 when the set is published again. Every published version
stays readable by replaying the set's events up to its publication.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from mastery_events.contract.objectives import (
    CalculationPolicy,
    CalculationPolicyCleared,
    CalculationPolicySet,
    ObjectiveAdded,
    ObjectiveChanged,
    ObjectiveLinked,
    ObjectiveMoved,
    ObjectiveRemoved,
    ObjectiveSetArchived,
    ObjectiveSetCreated,
    ObjectiveSetEdited,
    ObjectiveSetEvent,
    ObjectiveSetPublished,
    ObjectiveUnlinked,
    OwnerScope,
)
from mastery_objectives.errors import (
    DuplicateCodeError,
    HierarchyCycleError,
    NothingToPublishError,
    ObjectiveExistsError,
    ObjectiveHasChildrenError,
    ObjectiveNotFoundError,
    ObjectiveSetArchivedError,
    ObjectiveSetExistsError,
    ObjectiveSetNotFoundError,
)
from mastery_objectives.policies import validate_policy

SetStatus = Literal["draft", "published", "archived"]


class Objective(msgspec.Struct, frozen=True, kw_only=True):
    """One objective of a set, where it sits in the hierarchy, and what it
    was imported from."""

    objective_id: UUID
    parent_id: UUID | None = None
    code: str | None = None
    statement: str
    label: str | None = None
    order: int = 0
    item_type: str | None = None
    grade_bands: tuple[str, ...] = ()
    case_identifier: str | None = None
    case_uri: str | None = None

    @property
    def key(self) -> str | None:
        """What an import recognises the objective by: its CASE identifier,
        else its code."""
        return self.case_identifier or self.code


class Link(msgspec.Struct, frozen=True, kw_only=True):
    """A typed association from an objective to another item."""

    link_id: UUID
    objective_id: UUID
    link_type: str
    target_objective_id: UUID | None = None
    target_identifier: str | None = None
    target_uri: str | None = None
    target_title: str | None = None


class PolicyVersion(msgspec.Struct, frozen=True, kw_only=True):
    """A calculation policy and the version it was recorded as."""

    policy: CalculationPolicy
    policy_version: int


class ObjectiveSet(msgspec.Struct, frozen=True, kw_only=True):
    """An objective set as its events leave it."""

    objective_set_id: UUID
    title: str
    subject: str
    owner_scope: OwnerScope
    owner_id: str
    grade_bands: tuple[str, ...] = ()
    case_identifier: str | None = None
    case_uri: str | None = None
    status: SetStatus = "draft"
    published_version: int = 0
    changed_since_published: bool = True
    objectives: dict[UUID, Objective] = {}
    links: dict[UUID, Link] = {}
    policy: PolicyVersion | None = None
    overrides: dict[UUID, PolicyVersion] = {}

    def objective(self, objective_id: UUID) -> Objective:
        """Return one objective, or raise ``ObjectiveNotFoundError``."""
        try:
            return self.objectives[objective_id]
        except KeyError:
            raise ObjectiveNotFoundError(self.objective_set_id, objective_id) from None

    def children_of(self, objective_id: UUID | None) -> list[Objective]:
        """Return the objectives right under ``objective_id``, in order."""
        found = [o for o in self.objectives.values() if o.parent_id == objective_id]
        return sorted(found, key=lambda o: (o.order, o.code or "", o.statement))


# Commands -------------------------------------------------------------------


class Command(msgspec.Struct, frozen=True, kw_only=True):
    """Base of the set's commands: who asks, and when."""

    objective_set_id: UUID
    by: str
    at: datetime


class CreateSet(Command, frozen=True, kw_only=True):
    """Draft a new objective set."""

    title: str
    subject: str
    owner_scope: OwnerScope
    owner_id: str
    grade_bands: tuple[str, ...] = ()
    case_identifier: str | None = None
    case_uri: str | None = None


class EditSet(Command, frozen=True, kw_only=True):
    """Change a set's title, subject or grade bands."""

    title: str
    subject: str
    grade_bands: tuple[str, ...] = ()


class ObjectiveFields(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of an objective a person edits."""

    code: str | None = None
    statement: str
    label: str | None = None
    order: int = 0
    item_type: str | None = None
    grade_bands: tuple[str, ...] = ()


class AddObjective(Command, frozen=True, kw_only=True):
    """Add an objective under ``parent_id`` (None: at the top)."""

    objective_id: UUID
    parent_id: UUID | None = None
    fields: ObjectiveFields


class ChangeObjective(Command, frozen=True, kw_only=True):
    """Rewrite an objective's fields."""

    objective_id: UUID
    fields: ObjectiveFields


class MoveObjective(Command, frozen=True, kw_only=True):
    """Put an objective under another parent, or at the top."""

    objective_id: UUID
    parent_id: UUID | None = None


class RemoveObjective(Command, frozen=True, kw_only=True):
    """Take a childless objective out of the set."""

    objective_id: UUID


class PublishSet(Command, frozen=True, kw_only=True):
    """Publish the set's current content as its next version."""


class ArchiveSet(Command, frozen=True, kw_only=True):
    """Retire the set."""


class SetPolicy(Command, frozen=True, kw_only=True):
    """Set the policy of the set, or of one objective when ``objective_id``
    is given."""

    objective_id: UUID | None = None
    policy: CalculationPolicy


class ClearPolicy(Command, frozen=True, kw_only=True):
    """Withdraw one objective's override."""

    objective_id: UUID


SetCommand = (
    CreateSet
    | EditSet
    | AddObjective
    | ChangeObjective
    | MoveObjective
    | RemoveObjective
    | PublishSet
    | ArchiveSet
    | SetPolicy
    | ClearPolicy
)


# Decisions ------------------------------------------------------------------


def decide(state: ObjectiveSet | None, command: SetCommand) -> list[ObjectiveSetEvent]:
    """Decide what ``command`` records on the set ``state``; raise an
    ``ObjectivesError`` when it is refused."""
    set_id, by, at = command.objective_set_id, command.by, command.at
    if isinstance(command, CreateSet):
        if state is not None:
            raise ObjectiveSetExistsError(set_id)
        return [
            ObjectiveSetCreated(
                objective_set_id=set_id,
                title=command.title,
                subject=command.subject,
                owner_scope=command.owner_scope,
                owner_id=command.owner_id,
                grade_bands=command.grade_bands,
                case_identifier=command.case_identifier,
                case_uri=command.case_uri,
                created_by=by,
                created_at=at,
            )
        ]
    if state is None:
        raise ObjectiveSetNotFoundError(set_id)
    if state.status == "archived":
        if isinstance(command, ArchiveSet):
            return []
        raise ObjectiveSetArchivedError(set_id)

    events = _decide_on(state, command)
    check_hierarchy(fold(state, events))

    return events


def _decide_on(state: ObjectiveSet, command: SetCommand) -> list[ObjectiveSetEvent]:
    set_id, by, at = command.objective_set_id, command.by, command.at
    match command:
        case EditSet():
            return [
                ObjectiveSetEdited(
                    objective_set_id=set_id,
                    title=command.title,
                    subject=command.subject,
                    grade_bands=command.grade_bands,
                    edited_by=by,
                    edited_at=at,
                )
            ]
        case AddObjective():
            if command.objective_id in state.objectives:
                raise ObjectiveExistsError(set_id, command.objective_id)
            if command.parent_id is not None:
                state.objective(command.parent_id)
            return [
                objective_added(
                    set_id,
                    command.objective_id,
                    parent_id=command.parent_id,
                    fields=command.fields,
                    by=by,
                    at=at,
                )
            ]
        case ChangeObjective():
            state.objective(command.objective_id)
            fields = command.fields
            return [
                ObjectiveChanged(
                    objective_set_id=set_id,
                    objective_id=command.objective_id,
                    code=fields.code,
                    statement=fields.statement,
                    label=fields.label,
                    order=fields.order,
                    item_type=fields.item_type,
                    grade_bands=fields.grade_bands,
                    changed_by=by,
                    changed_at=at,
                )
            ]
        case MoveObjective():
            state.objective(command.objective_id)
            if command.parent_id is not None:
                state.objective(command.parent_id)
            return [
                ObjectiveMoved(
                    objective_set_id=set_id,
                    objective_id=command.objective_id,
                    parent_id=command.parent_id,
                    moved_by=by,
                    moved_at=at,
                )
            ]
        case RemoveObjective():
            state.objective(command.objective_id)
            if state.children_of(command.objective_id):
                raise ObjectiveHasChildrenError(set_id, command.objective_id)
            return [
                *unlinks_of(state, command.objective_id, by=by, at=at),
                ObjectiveRemoved(
                    objective_set_id=set_id,
                    objective_id=command.objective_id,
                    removed_by=by,
                    removed_at=at,
                ),
            ]
        case PublishSet():
            if state.status == "published" and not state.changed_since_published:
                raise NothingToPublishError(set_id, state.published_version)
            return [
                ObjectiveSetPublished(
                    objective_set_id=set_id,
                    set_version=state.published_version + 1,
                    published_by=by,
                    published_at=at,
                )
            ]
        case ArchiveSet():
            return [
                ObjectiveSetArchived(
                    objective_set_id=set_id, archived_by=by, archived_at=at
                )
            ]
        case SetPolicy():
            return set_policy(state, command)
        case ClearPolicy():
            state.objective(command.objective_id)
            if command.objective_id not in state.overrides:
                return []
            return [
                CalculationPolicyCleared(
                    objective_set_id=set_id,
                    objective_id=command.objective_id,
                    cleared_by=by,
                    cleared_at=at,
                )
            ]
    raise AssertionError(f"no decision for {type(command).__name__}")


def objective_added(
    objective_set_id: UUID,
    objective_id: UUID,
    *,
    parent_id: UUID | None,
    fields: ObjectiveFields,
    by: str,
    at: datetime,
    case_identifier: str | None = None,
    case_uri: str | None = None,
) -> ObjectiveAdded:
    """Return the event of adding an objective with ``fields``."""
    return ObjectiveAdded(
        objective_set_id=objective_set_id,
        objective_id=objective_id,
        parent_id=parent_id,
        code=fields.code,
        statement=fields.statement,
        label=fields.label,
        order=fields.order,
        item_type=fields.item_type,
        grade_bands=fields.grade_bands,
        case_identifier=case_identifier,
        case_uri=case_uri,
        added_by=by,
        added_at=at,
    )


def unlinks_of(
    state: ObjectiveSet, objective_id: UUID, *, by: str, at: datetime
) -> list[ObjectiveSetEvent]:
    """Withdraw every link from or to an objective that is going away."""
    return [
        ObjectiveUnlinked(
            objective_set_id=state.objective_set_id,
            link_id=link.link_id,
            unlinked_by=by,
            unlinked_at=at,
        )
        for link in state.links.values()
        if objective_id in (link.objective_id, link.target_objective_id)
    ]


def set_policy(state: ObjectiveSet, command: SetPolicy) -> list[ObjectiveSetEvent]:
    """Decide a new version of the set's policy or of one override."""
    validate_policy(command.policy)
    if command.objective_id is None:
        current = state.policy
    else:
        state.objective(command.objective_id)
        current = state.overrides.get(command.objective_id)
    if current is not None and current.policy == command.policy:
        return []

    return [
        CalculationPolicySet(
            objective_set_id=state.objective_set_id,
            objective_id=command.objective_id,
            policy_version=(current.policy_version + 1) if current else 1,
            policy=command.policy,
            set_by=command.by,
            set_at=command.at,
        )
    ]


def check_hierarchy(state: ObjectiveSet) -> None:
    """Raise when a parent is missing, a parent chain loops, or two
    objectives share a code."""
    codes: dict[str, UUID] = {}
    for objective in state.objectives.values():
        if objective.code:
            if objective.code in codes:
                raise DuplicateCodeError(state.objective_set_id, objective.code)
            codes[objective.code] = objective.objective_id
        seen = {objective.objective_id}
        parent_id = objective.parent_id
        while parent_id is not None:
            if parent_id in seen:
                raise HierarchyCycleError(objective.objective_id, parent_id)
            seen.add(parent_id)
            parent_id = state.objective(parent_id).parent_id


# State ----------------------------------------------------------------------


def evolve(state: ObjectiveSet | None, event: ObjectiveSetEvent) -> ObjectiveSet:
    """Return the set as it is after ``event``."""
    if isinstance(event, ObjectiveSetCreated):
        return ObjectiveSet(
            objective_set_id=event.objective_set_id,
            title=event.title,
            subject=event.subject,
            owner_scope=event.owner_scope,
            owner_id=event.owner_id,
            grade_bands=event.grade_bands,
            case_identifier=event.case_identifier,
            case_uri=event.case_uri,
        )
    assert state is not None, "a set's first event creates it"
    replace = msgspec.structs.replace
    match event:
        case ObjectiveSetPublished():
            return replace(
                state,
                status="published",
                published_version=event.set_version,
                changed_since_published=False,
            )
        case ObjectiveSetArchived():
            return replace(state, status="archived")
        case CalculationPolicySet():
            version = PolicyVersion(
                policy=event.policy, policy_version=event.policy_version
            )
            if event.objective_id is None:
                return replace(state, policy=version)
            overrides = {**state.overrides, event.objective_id: version}
            return replace(state, overrides=overrides)
        case CalculationPolicyCleared():
            overrides = dict(state.overrides)
            overrides.pop(event.objective_id, None)
            return replace(state, overrides=overrides)

    # Everything else changes the content of the next version.
    state = replace(state, changed_since_published=True)
    match event:
        case ObjectiveSetEdited():
            return replace(
                state,
                title=event.title,
                subject=event.subject,
                grade_bands=event.grade_bands,
            )
        case ObjectiveAdded():
            objective = Objective(
                objective_id=event.objective_id,
                parent_id=event.parent_id,
                code=event.code,
                statement=event.statement,
                label=event.label,
                order=event.order,
                item_type=event.item_type,
                grade_bands=event.grade_bands,
                case_identifier=event.case_identifier,
                case_uri=event.case_uri,
            )
            return _with_objective(state, objective)
        case ObjectiveChanged():
            objective = replace(
                state.objectives[event.objective_id],
                code=event.code,
                statement=event.statement,
                label=event.label,
                order=event.order,
                item_type=event.item_type,
                grade_bands=event.grade_bands,
            )
            return _with_objective(state, objective)
        case ObjectiveMoved():
            objective = replace(
                state.objectives[event.objective_id], parent_id=event.parent_id
            )
            return _with_objective(state, objective)
        case ObjectiveRemoved():
            objectives = dict(state.objectives)
            del objectives[event.objective_id]
            overrides = dict(state.overrides)
            overrides.pop(event.objective_id, None)
            return replace(state, objectives=objectives, overrides=overrides)
        case ObjectiveLinked():
            link = Link(
                link_id=event.link_id,
                objective_id=event.objective_id,
                link_type=event.link_type,
                target_objective_id=event.target_objective_id,
                target_identifier=event.target_identifier,
                target_uri=event.target_uri,
                target_title=event.target_title,
            )
            return replace(state, links={**state.links, link.link_id: link})
        case ObjectiveUnlinked():
            links = dict(state.links)
            links.pop(event.link_id, None)
            return replace(state, links=links)
    raise AssertionError(f"no evolution for {type(event).__name__}")


def _with_objective(state: ObjectiveSet, objective: Objective) -> ObjectiveSet:
    objectives = {**state.objectives, objective.objective_id: objective}
    return msgspec.structs.replace(state, objectives=objectives)


def fold(state: ObjectiveSet | None, events: list[ObjectiveSetEvent]) -> ObjectiveSet:
    """Apply ``events`` to ``state`` in order."""
    for event in events:
        state = evolve(state, event)
    assert state is not None, "folding nothing onto nothing"

    return state
