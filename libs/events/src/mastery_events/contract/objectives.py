"""Events of the objectives service: objective sets, scales and policies.

Other services build their own views of objectives, scales and calculation
policies from these events alone, so each event carries everything a reader
needs: a scale event holds the whole scale version, a policy event the whole
policy, and an objective event every field of the objective.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from mastery_events.envelope import Event

OwnerScope = Literal["district", "school", "teacher"]
Rounding = Literal["nearest", "down", "up"]
MarkMeaning = Literal["insufficient_evidence", "excused", "missing"]
CalculationMethod = Literal[
    "most_recent",
    "highest",
    "mean",
    "median",
    "mode",
    "decaying_average",
    "weighted_average",
    "n_times",
    "power_law",
]
TieRule = Literal["higher_level", "most_recent"]


class ObjectiveSetCreated(Event, frozen=True, kw_only=True):
    """A new objective set was drafted."""

    objective_set_id: UUID
    title: str
    subject: str
    owner_scope: OwnerScope
    owner_id: str
    grade_bands: tuple[str, ...] = ()
    case_identifier: str | None = None
    case_uri: str | None = None
    created_by: str
    created_at: datetime


class ObjectiveSetEdited(Event, frozen=True, kw_only=True):
    """A set's title, subject or grade bands were changed; all three are
    given, changed or not."""

    objective_set_id: UUID
    title: str
    subject: str
    grade_bands: tuple[str, ...] = ()
    edited_by: str
    edited_at: datetime


class ObjectiveAdded(Event, frozen=True, kw_only=True):
    """An objective was added to a set, under ``parent_id`` or at its top."""

    objective_set_id: UUID
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
    added_by: str
    added_at: datetime


class ObjectiveChanged(Event, frozen=True, kw_only=True):
    """An objective's wording, code, order, type or grade bands changed; the
    event holds every field as it now is."""

    objective_set_id: UUID
    objective_id: UUID
    code: str | None = None
    statement: str
    label: str | None = None
    order: int = 0
    item_type: str | None = None
    grade_bands: tuple[str, ...] = ()
    changed_by: str
    changed_at: datetime


class ObjectiveMoved(Event, frozen=True, kw_only=True):
    """An objective was put under another parent, or at the set's top."""

    objective_set_id: UUID
    objective_id: UUID
    parent_id: UUID | None = None
    moved_by: str
    moved_at: datetime


class ObjectiveRemoved(Event, frozen=True, kw_only=True):
    """An objective, which had no children left, was taken out of a set."""

    objective_set_id: UUID
    objective_id: UUID
    removed_by: str
    removed_at: datetime


class ObjectiveLinked(Event, frozen=True, kw_only=True):
    """An objective was linked to another item by a typed association other
    than the hierarchy (``exactMatchOf``, ``precedes``, ...)."""

    objective_set_id: UUID
    link_id: UUID
    objective_id: UUID
    link_type: str
    target_objective_id: UUID | None = None
    target_identifier: str | None = None
    target_uri: str | None = None
    target_title: str | None = None
    linked_by: str
    linked_at: datetime


class ObjectiveUnlinked(Event, frozen=True, kw_only=True):
    """A typed association between an objective and another item was
    withdrawn."""

    objective_set_id: UUID
    link_id: UUID
    unlinked_by: str
    unlinked_at: datetime


class ObjectiveSetPublished(Event, frozen=True, kw_only=True):
    """An objective set's draft became a published version teachers can grade."""

    objective_set_id: UUID
    set_version: int
    published_by: str
    published_at: datetime


class ObjectiveSetArchived(Event, frozen=True, kw_only=True):
    """An objective set was retired: still readable, no longer editable."""

    objective_set_id: UUID
    archived_by: str
    archived_at: datetime


class CalculationPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How a student's evidence on one objective becomes a level.

    Only the parameters of ``method`` are set: ``decay`` for
    ``decaying_average`` (the newest evidence's weight, 0.5-0.99),
    ``recent_weight`` for ``weighted_average`` (1-99 %, as a fraction),
    ``n`` for ``n_times`` and ``tie_rule`` for ``mode``.
    """

    method: CalculationMethod
    decay: float | None = None
    recent_weight: float | None = None
    n: int | None = None
    tie_rule: TieRule | None = None
    minimum_evidence: int = 1


class CalculationPolicySet(Event, frozen=True, kw_only=True):
    """The calculation policy of a whole set (``objective_id`` is None), or
    of one objective overriding it, was set to a new version."""

    objective_set_id: UUID
    objective_id: UUID | None = None
    policy_version: int
    policy: CalculationPolicy
    set_by: str
    set_at: datetime


class CalculationPolicyCleared(Event, frozen=True, kw_only=True):
    """An objective's override was withdrawn: the set's policy applies."""

    objective_set_id: UUID
    objective_id: UUID
    cleared_by: str
    cleared_at: datetime


class ScaleLevel(msgspec.Struct, frozen=True, kw_only=True):
    """One level of a proficiency scale, as students and families see it."""

    value: float
    label: str
    short_label: str
    colour: str
    description: str = ""


class ScaleMark(msgspec.Struct, frozen=True, kw_only=True):
    """A mark a teacher may record instead of a level.

    Insufficient evidence and excused never count as evidence; missing
    counts as the lowest level only when ``counts_as_lowest`` says so.
    """

    code: str
    label: str
    meaning: MarkMeaning
    counts_as_lowest: bool = False


class ScaleDefined(Event, frozen=True, kw_only=True):
    """A proficiency scale was defined; this is its version 1, whole."""

    scale_id: UUID
    scale_version: int = 1
    name: str
    levels: tuple[ScaleLevel, ...]
    mastery_threshold: float
    cut_points: tuple[float, ...] = ()
    rounding: Rounding = "nearest"
    marks: tuple[ScaleMark, ...] = ()
    defined_by: str
    defined_at: datetime


class ScaleRevised(Event, frozen=True, kw_only=True):
    """A scale got a new version, whole; earlier versions stay as they were
    for the assessments recorded against them."""

    scale_id: UUID
    scale_version: int
    name: str
    levels: tuple[ScaleLevel, ...]
    mastery_threshold: float
    cut_points: tuple[float, ...] = ()
    rounding: Rounding = "nearest"
    marks: tuple[ScaleMark, ...] = ()
    revised_by: str
    revised_at: datetime


class ScalePublished(Event, frozen=True, kw_only=True):
    """A version of a scale became the one teachers assess with."""

    scale_id: UUID
    scale_version: int
    published_by: str
    published_at: datetime


class ScaleArchived(Event, frozen=True, kw_only=True):
    """A scale was retired: readable for past assessments, not for new ones."""

    scale_id: UUID
    archived_by: str
    archived_at: datetime


ObjectiveSetEvent = (
    ObjectiveSetCreated
    | ObjectiveSetEdited
    | ObjectiveAdded
    | ObjectiveChanged
    | ObjectiveMoved
    | ObjectiveRemoved
    | ObjectiveLinked
    | ObjectiveUnlinked
    | ObjectiveSetPublished
    | ObjectiveSetArchived
    | CalculationPolicySet
    | CalculationPolicyCleared
)

ScaleEvent = ScaleDefined | ScaleRevised | ScalePublished | ScaleArchived

OBJECTIVE_SET_EVENTS: tuple[type[Event], ...] = (
    ObjectiveSetCreated,
    ObjectiveSetEdited,
    ObjectiveAdded,
    ObjectiveChanged,
    ObjectiveMoved,
    ObjectiveRemoved,
    ObjectiveLinked,
    ObjectiveUnlinked,
    ObjectiveSetPublished,
    ObjectiveSetArchived,
    CalculationPolicySet,
    CalculationPolicyCleared,
)

SCALE_EVENTS: tuple[type[Event], ...] = (
    ScaleDefined,
    ScaleRevised,
    ScalePublished,
    ScaleArchived,
)
