"""Proficiency scales: their rules, how a score becomes a level, and the
starter library a district can begin from.

A scale version is immutable once recorded. Changing a scale makes a new
version, because assessments recorded against the old one must still be
read with the levels they were given in.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from mastery_events.contract.objectives import (
    Rounding,
    ScaleArchived,
    ScaleDefined,
    ScaleLevel,
    ScaleMark,
    ScalePublished,
    ScaleRevised,
)
from mastery_objectives.errors import (
    ScaleArchivedError,
    ScaleInvalidError,
    ScaleNotFoundError,
)

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")

ScaleEvent = ScaleDefined | ScaleRevised | ScalePublished | ScaleArchived
ScaleStatus = Literal["draft", "published", "archived"]


class Scale(msgspec.Struct, frozen=True, kw_only=True):
    """One version of a proficiency scale.

    ``cut_points`` are optional: when given, the one at index ``i`` is the
    lowest score that reaches level ``i + 1``; otherwise a score goes to a
    level by ``rounding``.
    """

    name: str
    levels: tuple[ScaleLevel, ...]
    mastery_threshold: float
    cut_points: tuple[float, ...] = ()
    rounding: Rounding = "nearest"
    marks: tuple[ScaleMark, ...] = ()


def validate_scale(scale: Scale) -> Scale:
    """Return ``scale`` when it keeps every rule, else raise
    ``ScaleInvalidError`` naming the part at fault."""
    if not scale.name.strip():
        raise ScaleInvalidError("name", "a scale needs a name")
    if len(scale.levels) < 2:
        raise ScaleInvalidError("levels", "a scale needs at least two levels")
    values = [level.value for level in scale.levels]
    if len(set(values)) != len(values):
        raise ScaleInvalidError("levels", "two levels share one value")
    if values != sorted(values):
        raise ScaleInvalidError("levels", "levels go from the lowest value up")
    for index, level in enumerate(scale.levels):
        if not math.isfinite(level.value):
            raise ScaleInvalidError(f"levels[{index}].value", "must be a number")
        if COLOUR.match(level.colour) is None:
            reason = f"{level.colour!r} is not a colour like #1f77b4"
            raise ScaleInvalidError(f"levels[{index}].colour", reason)
        if not level.label.strip() or not level.short_label.strip():
            reason = "every level needs a label and a short label"
            raise ScaleInvalidError(f"levels[{index}]", reason)

    lowest, highest = values[0], values[-1]
    if not lowest <= scale.mastery_threshold <= highest:
        reason = (
            f"{scale.mastery_threshold:g} lies outside the levels, "
            f"{lowest:g} to {highest:g}"
        )
        raise ScaleInvalidError("mastery_threshold", reason)
    _check_cut_points(scale, values)
    _check_marks(scale.marks)

    return scale


def _check_cut_points(scale: Scale, values: list[float]) -> None:
    cuts = scale.cut_points
    if not cuts:
        return
    if len(cuts) != len(values) - 1:
        reason = f"{len(values)} levels need {len(values) - 1} cut points"
        raise ScaleInvalidError("cut_points", reason)
    for index, cut in enumerate(cuts):
        # A cut point opens the level above it, so it sits between the two.
        if not values[index] < cut <= values[index + 1]:
            reason = (
                f"{cut:g} must lie above {values[index]:g} and at most "
                f"{values[index + 1]:g}"
            )
            raise ScaleInvalidError(f"cut_points[{index}]", reason)


def _check_marks(marks: tuple[ScaleMark, ...]) -> None:
    codes = [mark.code for mark in marks]
    if len(set(codes)) != len(codes):
        raise ScaleInvalidError("marks", "two marks share one code")
    if sum(mark.meaning == "missing" for mark in marks) > 1:
        raise ScaleInvalidError("marks", "a scale has at most one missing mark")
    for index, mark in enumerate(marks):
        if mark.counts_as_lowest and mark.meaning != "missing":
            reason = "only the missing mark may count as the lowest level"
            raise ScaleInvalidError(f"marks[{index}]", reason)


def level_for(scale: Scale, score: float) -> ScaleLevel:
    """Return the level a computed ``score`` shows as on ``scale``."""
    levels = scale.levels
    if scale.cut_points:
        reached = sum(score >= cut for cut in scale.cut_points)
        return levels[reached]
    if scale.rounding == "down":
        below = [level for level in levels if level.value <= score]
        return below[-1] if below else levels[0]
    if scale.rounding == "up":
        above = [level for level in levels if level.value >= score]
        return above[0] if above else levels[-1]

    # Nearest, and a score halfway between two levels goes to the higher.
    return min(levels, key=lambda level: (abs(level.value - score), -level.value))


def counts_as_evidence(scale: Scale, mark: str) -> bool:
    """Tell whether a recorded ``mark`` counts as evidence on ``scale``."""
    for known in scale.marks:
        if known.code == mark:
            return known.counts_as_lowest

    return False


# The starter library -------------------------------------------------------

_BLUE, _GREEN, _AMBER, _RED, _GREY = (
    "#1f77b4",
    "#2ca02c",
    "#ff9f1c",
    "#d62728",
    "#7f7f7f",
)
STARTER_MARKS = (
    ScaleMark(
        code="IE", label="Insufficient evidence", meaning="insufficient_evidence"
    ),
    ScaleMark(code="EX", label="Excused", meaning="excused"),
    ScaleMark(code="M", label="Missing", meaning="missing", counts_as_lowest=False),
)


def _level(value: float, label: str, short: str, colour: str, text: str) -> ScaleLevel:
    return ScaleLevel(
        value=value, label=label, short_label=short, colour=colour, description=text
    )


def _half_point_levels() -> tuple[ScaleLevel, ...]:
    colours = [_RED, _RED, _AMBER, _AMBER, _AMBER, _GREEN, _GREEN, _BLUE, _BLUE]
    return tuple(
        _level(
            step / 2,
            f"{step / 2:g}",
            f"{step / 2:g}",
            colours[step],
            f"Shows {step / 2:g} of 4 on the learning target.",
        )
        for step in range(9)
    )


STARTER_SCALES: dict[str, Scale] = {
    "four-levels": Scale(
        name="Four levels",
        levels=(
            _level(1, "Beginning", "B", _RED, "Starts to show the skill with help."),
            _level(2, "Developing", "D", _AMBER, "Shows parts of the skill."),
            _level(3, "Proficient", "P", _GREEN, "Shows the skill on their own."),
            _level(4, "Mastered", "M", _BLUE, "Applies the skill in new settings."),
        ),
        mastery_threshold=3,
        marks=STARTER_MARKS,
    ),
    "three-levels": Scale(
        name="Three levels",
        levels=(
            _level(1, "Beginning", "B", _RED, "Starts to show the skill with help."),
            _level(2, "Progressing", "P", _AMBER, "Shows parts of the skill."),
            _level(3, "Mastered", "M", _GREEN, "Shows the skill on their own."),
        ),
        mastery_threshold=3,
        marks=STARTER_MARKS,
    ),
    "zero-to-four-half-points": Scale(
        name="0-4 with half points",
        levels=_half_point_levels(),
        mastery_threshold=3,
        rounding="down",
        marks=STARTER_MARKS,
    ),
    "one-to-five": Scale(
        name="1-5",
        levels=tuple(
            _level(value, f"{value}", f"{value}", colour, text)
            for value, colour, text in (
                (1, _RED, "Little evidence of the skill."),
                (2, _AMBER, "Some evidence of the skill."),
                (3, _GREY, "Meets part of the standard."),
                (4, _GREEN, "Meets the standard."),
                (5, _BLUE, "Goes beyond the standard."),
            )
        ),
        mastery_threshold=4,
        marks=STARTER_MARKS,
    ),
}


# The scale as an aggregate --------------------------------------------------


class ScaleRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Every version a scale has had, and which one teachers assess with."""

    scale_id: UUID
    versions: dict[int, Scale]
    status: ScaleStatus = "draft"
    published_version: int | None = None

    @property
    def latest_version(self) -> int:
        """The number of the newest version."""
        return max(self.versions)

    @property
    def latest(self) -> Scale:
        """The newest version of the scale."""
        return self.versions[self.latest_version]

    def version(self, number: int) -> Scale:
        """Return version ``number`` or raise ``ScaleNotFoundError``."""
        try:
            return self.versions[number]
        except KeyError:
            raise ScaleNotFoundError(self.scale_id, number) from None


def define_scale(
    scale_id: UUID, scale: Scale, *, by: str, at: datetime
) -> list[ScaleEvent]:
    """Decide the first version of a new scale."""
    validate_scale(scale)

    return [
        ScaleDefined(
            scale_id=scale_id,
            scale_version=1,
            name=scale.name,
            levels=scale.levels,
            mastery_threshold=scale.mastery_threshold,
            cut_points=scale.cut_points,
            rounding=scale.rounding,
            marks=scale.marks,
            defined_by=by,
            defined_at=at,
        )
    ]


def revise_scale(
    record: ScaleRecord, scale: Scale, *, by: str, at: datetime
) -> list[ScaleEvent]:
    """Decide a new version of ``record``; nothing when nothing changed."""
    if record.status == "archived":
        raise ScaleArchivedError(record.scale_id)
    validate_scale(scale)
    if scale == record.latest:
        return []

    return [
        ScaleRevised(
            scale_id=record.scale_id,
            scale_version=record.latest_version + 1,
            name=scale.name,
            levels=scale.levels,
            mastery_threshold=scale.mastery_threshold,
            cut_points=scale.cut_points,
            rounding=scale.rounding,
            marks=scale.marks,
            revised_by=by,
            revised_at=at,
        )
    ]


def publish_scale(record: ScaleRecord, *, by: str, at: datetime) -> list[ScaleEvent]:
    """Decide that the newest version is the one teachers assess with."""
    if record.status == "archived":
        raise ScaleArchivedError(record.scale_id)
    if record.published_version == record.latest_version:
        return []

    return [
        ScalePublished(
            scale_id=record.scale_id,
            scale_version=record.latest_version,
            published_by=by,
            published_at=at,
        )
    ]


def archive_scale(record: ScaleRecord, *, by: str, at: datetime) -> list[ScaleEvent]:
    """Decide to retire a scale; archiving twice records nothing new."""
    if record.status == "archived":
        return []

    return [ScaleArchived(scale_id=record.scale_id, archived_by=by, archived_at=at)]


def evolve_scale(record: ScaleRecord | None, event: ScaleEvent) -> ScaleRecord:
    """Return the scale as it is after ``event``."""
    if isinstance(event, ScaleDefined | ScaleRevised):
        version = Scale(
            name=event.name,
            levels=event.levels,
            mastery_threshold=event.mastery_threshold,
            cut_points=event.cut_points,
            rounding=event.rounding,
            marks=event.marks,
        )
        if record is None:
            return ScaleRecord(
                scale_id=event.scale_id, versions={event.scale_version: version}
            )
        versions = {**record.versions, event.scale_version: version}
        return msgspec.structs.replace(record, versions=versions)
    assert record is not None, "a scale's first event defines it"
    if isinstance(event, ScalePublished):
        return msgspec.structs.replace(
            record, status="published", published_version=event.scale_version
        )

    return msgspec.structs.replace(record, status="archived")
