"""Properties of re-imports over any hierarchy: importing a file twice
records nothing the second time, and importing file B over file A leaves
exactly what importing B alone would."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from mastery_objectives.import_plan import ImportPlan, PlannedItem, import_events
from mastery_objectives.objective_sets import ObjectiveFields, ObjectiveSet, fold

SET_ID = UUID("0190a5c4-1e00-7000-8000-000000000005")
MONDAY = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
WORDS = st.sampled_from(["ratios", "fractions", "rates", "percents", "area"])


@st.composite
def plans(draw: st.DrawFn) -> ImportPlan:
    """Draw a file of up to 12 items whose parents come from earlier items,
    so every hierarchy drawn is a forest."""
    keys = draw(st.lists(st.integers(0, 20), unique=True, max_size=12))
    # Codes come from one small pool, so a re-import moves codes between
    # items; within one file they stay unique.
    codes = draw(st.permutations([f"C.{n}" for n in range(12)]))
    items = []
    for index, key in enumerate(keys):
        parent = draw(st.none() | st.sampled_from(keys[:index])) if index else None
        items.append(
            PlannedItem(
                key=f"item-{key}",
                location=f"line {index + 2}",
                fields=ObjectiveFields(
                    code=codes[index] if draw(st.booleans()) else None,
                    statement=draw(WORDS),
                    order=draw(st.integers(0, 3)),
                ),
                parent_key=f"item-{parent}" if parent is not None else None,
                case_identifier=f"item-{key}",
            )
        )
    title = draw(WORDS)

    return ImportPlan(file_name="drawn.json", title=title, items=tuple(items))


def apply(state: ObjectiveSet | None, plan: ImportPlan) -> ObjectiveSet:
    """Import ``plan`` into ``state`` and return the result."""
    events = import_events(
        state,
        plan,
        objective_set_id=SET_ID,
        owner_scope="district",
        owner_id="springfield-usd",
        by="system:importer",
        at=MONDAY,
    )
    return fold(state, events) if events else _require(state)


def _require(state: ObjectiveSet | None) -> ObjectiveSet:
    assert state is not None
    return state


def content(state: ObjectiveSet) -> dict[str | None, tuple[object, ...]]:
    """Describe a set's objectives by key, with their parent's key."""
    keys = {o.objective_id: o.key for o in state.objectives.values()}
    return {
        o.key: (
            o.code,
            o.statement,
            o.order,
            keys[o.parent_id] if o.parent_id is not None else None,
        )
        for o in state.objectives.values()
    }


@settings(max_examples=60, deadline=None)
@given(plans())
def test_importing_the_same_file_twice_records_nothing_new(plan: ImportPlan) -> None:
    """The second import finds every item as it is."""
    state = apply(None, plan)

    again = import_events(
        state,
        plan,
        objective_set_id=SET_ID,
        owner_scope="district",
        owner_id="springfield-usd",
        by="system:importer",
        at=MONDAY,
    )

    assert again == []


@settings(max_examples=60, deadline=None)
@given(plans(), plans())
def test_importing_b_over_a_leaves_what_b_alone_would(
    first: ImportPlan, second: ImportPlan
) -> None:
    """Whatever A held, B's items, fields and parents are what remains."""
    over = apply(apply(None, first), second)
    alone = apply(None, second)

    assert content(over) == content(alone)
    assert over.title == alone.title
