"""The grading service's own view of a scale version, and the built-in ones.

Scales belong to the objectives service; grading learns them from its
events and keeps only what the mastery engine needs: the levels with their
values and cut points, the mastery threshold, the rounding rule and whether
a ``missing`` mark counts as the lowest level.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Literal
from uuid import UUID

import msgspec

from mastery_grading.errors import InvalidParameterError

RoundingMode = Literal["half_up", "half_even"]

_DECIMAL_MODES = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}


class Level(msgspec.Struct, frozen=True, kw_only=True):
    """One level of a scale: its numeric value, its label, and its cut
    point, the lowest score that earns it."""

    value: float
    label: str
    cut: float


class Rounding(msgspec.Struct, frozen=True, kw_only=True):
    """How a computed score is rounded before it meets the cut points."""

    decimals: int = 3
    mode: RoundingMode = "half_up"

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
    rounding: Rounding = Rounding()
    missing_counts_as_lowest: bool = False
    scale_id: UUID | None = None

    def __post_init__(self) -> None:
        check_levels(self.levels)
        if not self.low <= self.mastery_threshold <= self.high:
            message = f"must lie within the scale, {self.low} to {self.high}"
            raise InvalidParameterError("threshold", message)
        if not 0 <= self.rounding.decimals <= 6:
            raise InvalidParameterError("rounding", "decimals must be 0 to 6")

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


def check_levels(levels: tuple[Level, ...]) -> None:
    """Refuse levels that are not ascending or whose cuts overlap."""
    if len(levels) < 2:
        raise InvalidParameterError("levels", "a scale needs at least two levels")
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


def evenly_cut(
    name: str,
    labels: tuple[str, ...],
    *,
    start: int,
    threshold: float,
    missing_counts_as_lowest: bool = False,
) -> ScaleView:
    """Build a built-in scale of whole-number levels from ``start``, cut
    halfway between neighbours so a score earns the nearest level, halves
    going up."""
    values = range(start, start + len(labels))
    levels = tuple(
        Level(
            value=float(value),
            label=label,
            cut=value - 0.5 if value > start else float(value),
        )
        for value, label in zip(values, labels, strict=True)
    )
    return ScaleView(
        name=name,
        version=1,
        levels=levels,
        mastery_threshold=threshold,
        missing_counts_as_lowest=missing_counts_as_lowest,
    )


BUILT_IN_SCALES: dict[str, ScaleView] = {
    scale.name: scale
    for scale in (
        evenly_cut(
            "four-level",
            ("Beginning", "Developing", "Proficient", "Exemplary"),
            start=1,
            threshold=3.0,
        ),
        evenly_cut(
            "five-level",
            ("Beginning", "Emerging", "Developing", "Proficient", "Advanced"),
            start=1,
            threshold=4.0,
        ),
        evenly_cut(
            "zero-to-four",
            ("Not yet", "Beginning", "Developing", "Proficient", "Exemplary"),
            start=0,
            threshold=3.0,
            missing_counts_as_lowest=True,
        ),
    )
}
DEFAULT_SCALE = "four-level"
