"""The JSON bodies the objectives API accepts, held to what the store keeps."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from mastery_events.contract.objectives import (
    CalculationMethod,
    CalculationPolicy,
    MarkMeaning,
    OwnerScope,
    Rounding,
    ScaleLevel,
    ScaleMark,
    TieRule,
)
from mastery_objectives.objective_sets import ObjectiveFields
from mastery_objectives.scales import Scale

# PostgreSQL text cannot hold NUL, and integer columns are 32-bit: bodies
# are held to what the store can keep, so nothing valid fails there.
Text = Annotated[str, msgspec.Meta(max_length=10_000, pattern="^[^\\x00]*$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern="^[^\\x00]*$")]
Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
MAX_VERSION = 2**31 - 1


class SetBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new objective set. ``owner_id`` defaults to the tenant (district),
    or the caller (teacher)."""

    title: Name
    subject: Text
    owner_scope: OwnerScope = "district"
    owner_id: Name | None = None
    grade_bands: list[Name] = []


class SetEditBody(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """A set's new title, subject and grade bands."""

    title: Name
    subject: Text
    grade_bands: list[Name] = []


class ObjectiveBody(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """An objective's fields; ``parent_id`` only when adding."""

    statement: Name
    code: Name | None = None
    label: Name | None = None
    order: Int32 = 0
    item_type: Name | None = None
    grade_bands: list[Name] = []
    parent_id: UUID | None = None

    def fields(self) -> ObjectiveFields:
        """Return the fields as the domain takes them."""
        return ObjectiveFields(
            code=self.code,
            statement=self.statement,
            label=self.label,
            order=self.order,
            item_type=self.item_type,
            grade_bands=tuple(self.grade_bands),
        )


class MoveBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where an objective goes: under ``parent_id``, or the top when null."""

    parent_id: UUID | None = None


class PolicyBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A calculation policy: the method and only its own parameter."""

    method: CalculationMethod
    decay: float | None = None
    recent_weight: float | None = None
    n: Int32 | None = None
    tie_rule: TieRule | None = None
    minimum_evidence: Int32 = 1

    def policy(self) -> CalculationPolicy:
        """Return the policy as events carry it."""
        return msgspec.convert(msgspec.to_builtins(self), CalculationPolicy)


class LevelBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One level of a scale."""

    value: float
    label: Name
    short_label: Name
    colour: Name
    description: Text = ""


class MarkBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A mark recorded instead of a level."""

    code: Name
    label: Name
    meaning: MarkMeaning
    counts_as_lowest: bool = False


class ScaleBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A whole scale version."""

    name: Name
    levels: list[LevelBody]
    mastery_threshold: float
    cut_points: list[float] = []
    rounding: Rounding = "nearest"
    marks: list[MarkBody] = []

    def scale(self) -> Scale:
        """Return the scale as the domain takes it."""
        return Scale(
            name=self.name,
            levels=tuple(ScaleLevel(**msgspec.structs.asdict(x)) for x in self.levels),
            mastery_threshold=self.mastery_threshold,
            cut_points=tuple(self.cut_points),
            rounding=self.rounding,
            marks=tuple(ScaleMark(**msgspec.structs.asdict(x)) for x in self.marks),
        )
