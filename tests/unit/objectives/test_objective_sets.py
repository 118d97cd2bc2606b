"""The objective set aggregate: drafting, editing the hierarchy, publishing
versions, archiving and policies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from mastery_events.contract.objectives import (
    CalculationPolicy,
    ObjectiveSetEvent,
    ObjectiveSetPublished,
)
from mastery_objectives.errors import (
    DuplicateCodeError,
    HierarchyCycleError,
    NothingToPublishError,
    ObjectiveHasChildrenError,
    ObjectiveNotFoundError,
    ObjectiveSetArchivedError,
    ObjectiveSetNotFoundError,
    PolicyInvalidError,
)
from mastery_objectives.objective_sets import (
    AddObjective,
    ArchiveSet,
    ChangeObjective,
    CreateSet,
    MoveObjective,
    ObjectiveFields,
    ObjectiveSet,
    PublishSet,
    RemoveObjective,
    SetCommand,
    SetPolicy,
    decide,
    evolve,
)

SET_ID = UUID("0190a5c4-1e00-7000-8000-000000000005")
RATIOS = UUID("0190a5c4-1e00-7000-8000-0000000000b1")
UNIT_RATES = UUID("0190a5c4-1e00-7000-8000-0000000000b2")
PERCENTS = UUID("0190a5c4-1e00-7000-8000-0000000000b3")
MONDAY = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
HOOVER = "coordinator-hoover"


def command(kind: type[SetCommand], **fields: Any) -> SetCommand:
    """Return a command by the coordinator on Monday morning."""
    return kind(objective_set_id=SET_ID, by=HOOVER, at=MONDAY, **fields)


def fields(code: str, statement: str) -> ObjectiveFields:
    """Return an objective's fields with a code and a statement."""
    return ObjectiveFields(code=code, statement=statement)


def run(*commands: SetCommand) -> tuple[ObjectiveSet, list[ObjectiveSetEvent]]:
    """Decide and apply each command in turn; return the state and every
    event recorded."""
    state: ObjectiveSet | None = None
    recorded: list[ObjectiveSetEvent] = []
    for each in commands:
        events = decide(state, each)
        for event in events:
            state = evolve(state, event)
        recorded.extend(events)
    assert state is not None

    return state, recorded


CREATE = command(
    CreateSet,
    title="Grade 6 ratios",
    subject="mathematics",
    owner_scope="district",
    owner_id="springfield-usd",
    grade_bands=("6", "7"),
)
ADD_RATIOS = command(
    AddObjective,
    objective_id=RATIOS,
    fields=fields("6.RP.A", "Understand ratio concepts."),
)
ADD_UNIT_RATES = command(
    AddObjective,
    objective_id=UNIT_RATES,
    parent_id=RATIOS,
    fields=fields("6.RP.A.2", "Understand the concept of a unit rate."),
)


def test_a_set_is_built_as_a_hierarchy_of_objectives() -> None:
    """A sub-objective sits under its standard; grade bands stay a list."""
    state, events = run(CREATE, ADD_RATIOS, ADD_UNIT_RATES)

    assert [type(e).__name__ for e in events] == [
        "ObjectiveSetCreated",
        "ObjectiveAdded",
        "ObjectiveAdded",
    ]
    assert state.grade_bands == ("6", "7")
    assert [o.objective_id for o in state.children_of(RATIOS)] == [UNIT_RATES]
    assert state.status == "draft"


def test_a_command_on_a_set_that_does_not_exist_is_refused() -> None:
    """Only a creation may start a set."""
    with pytest.raises(ObjectiveSetNotFoundError):
        decide(None, ADD_RATIOS)


def test_two_objectives_may_not_share_a_code() -> None:
    """Human codes are unique within a set."""
    twin = command(
        AddObjective, objective_id=PERCENTS, fields=fields("6.RP.A", "Percents.")
    )

    with pytest.raises(DuplicateCodeError) as caught:
        run(CREATE, ADD_RATIOS, twin)

    assert caught.value.code == "6.RP.A"


def test_moving_an_objective_under_its_own_child_is_refused() -> None:
    """The hierarchy never loops."""
    move = command(MoveObjective, objective_id=RATIOS, parent_id=UNIT_RATES)

    with pytest.raises(HierarchyCycleError):
        run(CREATE, ADD_RATIOS, ADD_UNIT_RATES, move)


def test_an_objective_with_children_cannot_be_removed() -> None:
    """Children would lose their parent."""
    remove = command(RemoveObjective, objective_id=RATIOS)

    with pytest.raises(ObjectiveHasChildrenError):
        run(CREATE, ADD_RATIOS, ADD_UNIT_RATES, remove)


def test_a_parent_that_is_not_in_the_set_is_refused() -> None:
    """An objective cannot hang under a stranger."""
    orphan = command(
        AddObjective,
        objective_id=PERCENTS,
        parent_id=UUID(int=7),
        fields=fields("6.RP.A.3", "Percents."),
    )

    with pytest.raises(ObjectiveNotFoundError):
        run(CREATE, orphan)


def test_changes_after_publishing_become_the_next_version() -> None:
    """Version 1 is published; a change and a second publish make version 2,
    and publishing with no change is refused."""
    change = command(
        ChangeObjective,
        objective_id=RATIOS,
        fields=fields("6.RP.A", "Understand ratio concepts and reasoning."),
    )
    state, events = run(
        CREATE, ADD_RATIOS, command(PublishSet), change, command(PublishSet)
    )

    published = [e for e in events if isinstance(e, ObjectiveSetPublished)]
    assert [e.set_version for e in published] == [1, 2]
    assert state.status == "published"
    with pytest.raises(NothingToPublishError):
        decide(state, command(PublishSet))


def test_an_archived_set_cannot_change() -> None:
    """Archiving is the end of editing; archiving again records nothing."""
    state, _ = run(CREATE, ADD_RATIOS, command(ArchiveSet))

    with pytest.raises(ObjectiveSetArchivedError):
        decide(state, ADD_UNIT_RATES)
    assert decide(state, command(ArchiveSet)) == []


def test_policies_are_versioned_per_set_and_per_objective() -> None:
    """A set policy and an objective's override each count their versions."""
    mean = CalculationPolicy(method="mean")
    decaying = CalculationPolicy(method="decaying_average", decay=0.7)
    state, _ = run(
        CREATE,
        ADD_RATIOS,
        command(SetPolicy, policy=mean),
        command(SetPolicy, policy=decaying),
        command(SetPolicy, objective_id=RATIOS, policy=mean),
    )

    assert state.policy is not None
    assert state.policy.policy_version == 2
    assert state.policy.policy == decaying
    assert state.overrides[RATIOS].policy == mean
    assert decide(state, command(SetPolicy, policy=decaying)) == []


def test_a_policy_out_of_range_is_refused() -> None:
    """An n of 11 for n_times is outside 1-10."""
    state, _ = run(CREATE)

    with pytest.raises(PolicyInvalidError):
        decide(
            state, command(SetPolicy, policy=CalculationPolicy(method="n_times", n=11))
        )
