"""One sample of each objectives event the first contract samples lack."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

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
    ObjectiveSetEdited,
    ObjectiveUnlinked,
    ScaleArchived,
    ScaleDefined,
    ScaleLevel,
    ScaleMark,
    ScalePublished,
    ScaleRevised,
)
from mastery_events.envelope import Event

SET_ID = UUID("0190a5c4-1e00-7000-8000-000000000005")
RATIOS = UUID("0190a5c4-1e00-7000-8000-0000000000b1")
UNIT_RATES = UUID("0190a5c4-1e00-7000-8000-0000000000b2")
LINK_ID = UUID("0190a5c4-1e00-7000-8000-00000000011c")
SCALE_ID = UUID("0190a5c4-1e00-7000-8000-00000000005c")
MONDAY = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
COORDINATOR = "coordinator-hoover"
LEVELS = (
    ScaleLevel(value=1, label="Beginning", short_label="B", colour="#d9534f"),
    ScaleLevel(value=2, label="Developing", short_label="D", colour="#f0ad4e"),
    ScaleLevel(value=3, label="Proficient", short_label="P", colour="#5cb85c"),
    ScaleLevel(value=4, label="Mastered", short_label="M", colour="#0275d8"),
)
MARKS = (
    ScaleMark(
        code="IE", label="Insufficient evidence", meaning="insufficient_evidence"
    ),
    ScaleMark(code="M", label="Missing", meaning="missing", counts_as_lowest=True),
)


def objective_samples() -> list[Event]:
    """Return one event of each objectives type beyond created/published."""
    return [
        ObjectiveSetEdited(
            objective_set_id=SET_ID,
            title="Grade 6 ratios",
            subject="mathematics",
            grade_bands=("6",),
            edited_by=COORDINATOR,
            edited_at=MONDAY,
        ),
        ObjectiveAdded(
            objective_set_id=SET_ID,
            objective_id=RATIOS,
            code="CCSS.Math.Content.6.RP.A",
            statement="Understand ratio concepts.",
            added_by=COORDINATOR,
            added_at=MONDAY,
        ),
        ObjectiveChanged(
            objective_set_id=SET_ID,
            objective_id=RATIOS,
            code="CCSS.Math.Content.6.RP.A",
            statement="Understand ratio concepts and use ratio reasoning.",
            changed_by=COORDINATOR,
            changed_at=MONDAY,
        ),
        ObjectiveMoved(
            objective_set_id=SET_ID,
            objective_id=UNIT_RATES,
            parent_id=RATIOS,
            moved_by=COORDINATOR,
            moved_at=MONDAY,
        ),
        ObjectiveLinked(
            objective_set_id=SET_ID,
            link_id=LINK_ID,
            objective_id=RATIOS,
            link_type="exactMatchOf",
            target_uri="https://example.org/case/ratios",
            linked_by=COORDINATOR,
            linked_at=MONDAY,
        ),
        ObjectiveUnlinked(
            objective_set_id=SET_ID,
            link_id=LINK_ID,
            unlinked_by=COORDINATOR,
            unlinked_at=MONDAY,
        ),
        ObjectiveRemoved(
            objective_set_id=SET_ID,
            objective_id=UNIT_RATES,
            removed_by=COORDINATOR,
            removed_at=MONDAY,
        ),
        CalculationPolicySet(
            objective_set_id=SET_ID,
            policy_version=1,
            policy=CalculationPolicy(method="decaying_average", decay=0.65),
            set_by=COORDINATOR,
            set_at=MONDAY,
        ),
        CalculationPolicyCleared(
            objective_set_id=SET_ID,
            objective_id=RATIOS,
            cleared_by=COORDINATOR,
            cleared_at=MONDAY,
        ),
        ObjectiveSetArchived(
            objective_set_id=SET_ID, archived_by=COORDINATOR, archived_at=MONDAY
        ),
        ScaleDefined(
            scale_id=SCALE_ID,
            name="Four levels",
            levels=LEVELS,
            mastery_threshold=3,
            marks=MARKS,
            defined_by=COORDINATOR,
            defined_at=MONDAY,
        ),
        ScaleRevised(
            scale_id=SCALE_ID,
            scale_version=2,
            name="Four levels",
            levels=LEVELS,
            mastery_threshold=3,
            cut_points=(1.5, 2.5, 3.5),
            marks=MARKS,
            revised_by=COORDINATOR,
            revised_at=MONDAY,
        ),
        ScalePublished(
            scale_id=SCALE_ID,
            scale_version=2,
            published_by=COORDINATOR,
            published_at=MONDAY,
        ),
        ScaleArchived(scale_id=SCALE_ID, archived_by=COORDINATOR, archived_at=MONDAY),
    ]
