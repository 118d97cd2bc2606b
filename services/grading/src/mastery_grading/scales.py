"""The grading service's own view of a scale version, and the built-in ones.

Scales belong to the objectives service; grading learns them from its
events (``ScaleDefined``, ``ScaleRevised``) and keeps only what the mastery
engine needs: the levels with the lowest score that earns each, the
mastery threshold, the marks and what they mean, and the precision a
computed score is reported to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Literal
from uuid import UUID

import msgspec

from mastery_events.contract.objectives import MarkMeaning, Rounding
from mastery_grading.errors import InvalidParameterError

PrecisionMode = Literal["half_up", "half_even"]

_DECIMAL_MODES = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}


class Level(msgspec.Struct, frozen=True, kw_only=True):
    """One level of a scale: its numeric value, its label, and its cut
    point, the lowest score that earns it."""

    value: float
    label: str
    cut: float


class Mark(msgspec.Struct, frozen=True, kw_only=True):
    """A mark a teacher may record instead of a level: its code, what it
    means, and, for a missing mark, whether it counts as the lowest level."""

    code: str
    meaning: MarkMeaning
    counts_as_lowest: bool = False


class Precision(msgspec.Struct, frozen=True, kw_only=True):
    """How finely a computed score is reported, and so compared with the
    cut points and the mastery threshold."""

    decimals: int = 3
    mode: PrecisionMode = "half_up"

    def apply(self, score: float) -> float:
        """Round ``score`` as a teacher would on paper, from its shortest
        decimal spelling, so 2.675 rounds half up to 2.68 and not down."""
        step = Decimal(1).scaleb(-self.decimals)
        rounded = Decimal(repr(score)).quantize(step, _DECIMAL_MODES[self.mode])
        return float(rounded)


class ScaleView(msgspec.Struct, frozen=True, kw_only=True):
    """One version of a scale as the mastery engine reads it.

    ``levels`` go from lowest to highest value. Each level's cut lies above
    the previous level's value and at most at its own value, so a score
    equal to a level's value always earns at least that level.
    """

    name: str
    version: int
    levels: tuple[Level, ...]
    mastery_threshold: float
    marks: tuple[Mark, ...] = ()
    precision: Precision = Precision()
    scale_id: UUID | None = None

    def __post_init__(self) -> None:
        check_levels(self.levels)
        if not self.low <= self.mastery_threshold <= self.high:
            message = f"must lie within the scale, {self.low:g} to {self.high:g}"
            raise InvalidParameterError("threshold", message)
        if not 0 <= self.precision.decimals <= 6:
            raise InvalidParameterError("precision", "decimals must be 0 to 6")

    @property
    def low(self) -> float:
        """The lowest level's value: no score goes below it."""
        return self.levels[0].value

    @property
    def high(self) -> float:
        """The highest level's value: no score goes above it."""
        return self.levels[-1].value

    def clamp(self, score: float) -> float:
        """Keep ``score`` within the scale's range."""
        return min(max(score, self.low), self.high)

    def level_of(self, score: float) -> Level:
        """Return the highest level whose cut ``score`` reaches."""
        reached = self.levels[0]
        for level in self.levels:
            if score >= level.cut:
                reached = level
        return reached

    def holds(self, value: float) -> bool:
        """Say whether ``value`` lies within the scale's range."""
        return self.low <= value <= self.high

    def mark(self, code: str) -> Mark | None:
        """Return the scale's mark recorded as ``code``, if it has one."""
        return next((mark for mark in self.marks if mark.code == code), None)


def check_levels(levels: tuple[Level, ...]) -> None:
    """Refuse levels that are not ascending or whose cuts overlap."""
    if len(levels) < 2:
        raise InvalidParameterError("levels", "a scale needs at least two levels")
    if not all(math.isfinite(level.value) for level in levels):
        raise InvalidParameterError("levels", "every value must be a number")
    if levels[0].cut > levels[0].value:
        message = "the lowest level's cut must not lie above its value"
        raise InvalidParameterError("levels", message)
    for below, above in pairwise(levels):
        if not below.value < above.value:
            raise InvalidParameterError("levels", "values must go up strictly")
        if not below.value < above.cut <= above.value:
            message = (
                f"the cut of level {above.value:g} must lie above "
                f"{below.value:g} and at most at {above.value:g}"
            )
            raise InvalidParameterError("levels", message)


def cut_levels(
    levels: Sequence[tuple[float, str]],
    *,
    cut_points: Sequence[float] = (),
    rounding: Rounding = "nearest",
) -> tuple[Level, ...]:
    """Give each ``(value, label)`` level, lowest first, the lowest score
    that earns it, the way the objectives service reads a scale.

    ``cut_points[i]``, when given, opens level ``i + 1``. Without them,
    ``rounding`` decides: ``nearest`` cuts halfway between neighbours
    (halves go up), ``down`` at each level's own value, and ``up`` just
    above the level below.
    """
    values = [value for value, _ in levels]
    if cut_points and len(cut_points) != len(values) - 1:
        message = f"{len(values)} levels need {len(values) - 1} cut points"
        raise InvalidParameterError("cut_points", message)

    cuts = [values[0]] if values else []
    for index, (below, above) in enumerate(pairwise(values)):
        if cut_points:
            cuts.append(cut_points[index])
        elif rounding == "nearest":
            cuts.append((below + above) / 2)
        elif rounding == "down":
            cuts.append(above)
        else:
            cuts.append(math.nextafter(below, math.inf))

    return tuple(
        Level(value=value, label=label, cut=cut)
        for (value, label), cut in zip(levels, cuts, strict=True)
    )


# The usual marks, coded as the objectives service's starter scales code them.
USUAL_MARKS = (
    Mark(code="IE", meaning="insufficient_evidence"),
    Mark(code="EX", meaning="excused"),
    Mark(code="M", meaning="missing"),
)


def whole_levels(
    name: str,
    labels: tuple[str, ...],
    *,
    start: int,
    threshold: float,
    missing_counts_as_lowest: bool = False,
) -> ScaleView:
    """Build a built-in scale of whole-number levels from ``start``, cut
    halfway between neighbours so a score earns the nearest level."""
    values = [float(value) for value in range(start, start + len(labels))]
    marks = tuple(
        msgspec.structs.replace(mark, counts_as_lowest=True)
        if mark.meaning == "missing" and missing_counts_as_lowest
        else mark
        for mark in USUAL_MARKS
    )
    return ScaleView(
        name=name,
        version=1,
        levels=cut_levels(list(zip(values, labels, strict=True))),
        mastery_threshold=threshold,
        marks=marks,
    )


BUILT_IN_SCALES: dict[str, ScaleView] = {
    scale.name: scale
    for scale in (
        whole_levels(
            "four-level",
            ("Beginning", "Developing", "Proficient", "Exemplary"),
            start=1,
            threshold=3.0,
        ),
        whole_levels(
            "five-level",
            ("Beginning", "Emerging", "Developing", "Proficient", "Advanced"),
            start=1,
            threshold=4.0,
        ),
        whole_levels(
            "zero-to-four",
            ("Not yet", "Beginning", "Developing", "Proficient", "Exemplary"),
            start=0,
            threshold=3.0,
            missing_counts_as_lowest=True,
        ),
    )
}
DEFAULT_SCALE = "four-level"
