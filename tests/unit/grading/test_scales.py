"""Grading's view of a scale: cuts, precision, marks and what it refuses."""

from __future__ import annotations

import math

import pytest

from mastery_grading.errors import InvalidParameterError
from mastery_grading.scales import (
    BUILT_IN_SCALES,
    Level,
    Precision,
    ScaleView,
    cut_levels,
)

ONE_TO_FOUR = [
    (1.0, "Beginning"),
    (2.0, "Developing"),
    (3.0, "Proficient"),
    (4.0, "Exemplary"),
]


def scale_of(levels: tuple[Level, ...]) -> ScaleView:
    """Wrap ``levels`` in a scale with mastery at 3."""
    return ScaleView(name="trial", version=1, levels=levels, mastery_threshold=3.0)


def test_nearest_cuts_halfway_and_a_half_goes_up() -> None:
    """Nearest on 1-4: 2.5 is Proficient, 2.499 Developing."""
    scale = scale_of(cut_levels(ONE_TO_FOUR, rounding="nearest"))

    assert [level.cut for level in scale.levels] == [1.0, 1.5, 2.5, 3.5]
    assert scale.level_of(2.5).label == "Proficient"
    assert scale.level_of(2.499).label == "Developing"


def test_down_gives_a_level_only_once_the_score_reaches_it() -> None:
    """Down on 1-4: 2.99 is still Developing, 3 is Proficient."""
    scale = scale_of(cut_levels(ONE_TO_FOUR, rounding="down"))

    assert scale.level_of(2.99).label == "Developing"
    assert scale.level_of(3.0).label == "Proficient"


def test_up_gives_the_next_level_as_soon_as_a_score_passes_one() -> None:
    """Up on 1-4: 2 is Developing, anything above 2 Proficient."""
    scale = scale_of(cut_levels(ONE_TO_FOUR, rounding="up"))

    assert scale.level_of(2.0).label == "Developing"
    assert scale.level_of(2.001).label == "Proficient"


def test_cut_points_open_the_level_above_them() -> None:
    """Cut points 1.75, 2.6, 3.25: 2.6 reaches Proficient, 3.2 does not
    reach Exemplary."""
    scale = scale_of(cut_levels(ONE_TO_FOUR, cut_points=[1.75, 2.6, 3.25]))

    assert scale.level_of(2.59).label == "Developing"
    assert scale.level_of(2.6).label == "Proficient"
    assert scale.level_of(3.2).label == "Proficient"
    assert scale.level_of(3.25).label == "Exemplary"


def test_cut_points_must_number_one_fewer_than_the_levels() -> None:
    """Two cut points for four levels are refused, naming the cut points."""
    with pytest.raises(InvalidParameterError) as raised:
        cut_levels(ONE_TO_FOUR, cut_points=[1.5, 2.5])

    assert raised.value.field == "cut_points"


@pytest.mark.parametrize("cut_points", [[1.5, 3.5, 3.75], [1.0, 2.5, 3.5]])
def test_a_cut_outside_its_two_levels_is_refused(cut_points: list[float]) -> None:
    """A cut must lie above the level below and at most at its own level."""
    with pytest.raises(InvalidParameterError) as raised:
        scale_of(cut_levels(ONE_TO_FOUR, cut_points=cut_points))

    assert raised.value.field == "levels"


def test_levels_must_go_up_and_be_numbers() -> None:
    """Levels out of order, or not a number, make no scale."""
    backwards = [(2.0, "Developing"), (1.0, "Beginning")]
    not_a_number = [(1.0, "Beginning"), (math.nan, "Unknown")]

    for levels in (backwards, not_a_number):
        with pytest.raises(InvalidParameterError):
            scale_of(cut_levels(levels))


def test_a_threshold_off_the_scale_is_refused() -> None:
    """Mastery at 5 on a 1-4 scale cannot be reached: refused."""
    with pytest.raises(InvalidParameterError) as raised:
        ScaleView(
            name="trial",
            version=1,
            levels=cut_levels(ONE_TO_FOUR),
            mastery_threshold=5.0,
        )

    assert raised.value.field == "threshold"


def test_precision_rounds_half_up_from_the_decimal_spelling() -> None:
    """2.675 is stored just below itself in binary; as written it rounds
    half up to 2.68, and half even to 2.68 too, while 2.665 goes to 2.66
    half even."""
    assert Precision(decimals=2).apply(2.675) == 2.68
    assert Precision(decimals=2, mode="half_even").apply(2.675) == 2.68
    assert Precision(decimals=2, mode="half_even").apply(2.665) == 2.66
    assert Precision().apply(4.46961875) == 4.47


def test_only_the_zero_to_four_scale_counts_missing_work() -> None:
    """The built-in scales share the IE, EX and M marks; M counts as the
    lowest level only on zero-to-four."""
    four = BUILT_IN_SCALES["four-level"]
    zero = BUILT_IN_SCALES["zero-to-four"]

    assert [mark.code for mark in four.marks] == ["IE", "EX", "M"]
    assert four.mark("M") is not None
    assert four.mark("M").counts_as_lowest is False  # type: ignore[union-attr]
    assert zero.mark("M").counts_as_lowest is True  # type: ignore[union-attr]
    assert four.mark("ABS") is None
