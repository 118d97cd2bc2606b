"""Each mastery method on scores worked out by hand, oldest first."""

from __future__ import annotations

import pytest

from mastery_grading.errors import InvalidParameterError, NoScoresError
from mastery_grading.mastery import (
    METHODS,
    Policy,
    decaying_average,
    evaluate,
    highest,
    mean,
    median,
    mode,
    most_recent,
    n_times,
    power_law,
    weighted_average,
)
from mastery_grading.scales import BUILT_IN_SCALES

ONE_TO_FIVE = [1.0, 2.0, 3.0, 4.0, 5.0]
FIVE_LEVEL = BUILT_IN_SCALES["five-level"]
FOUR_LEVEL = BUILT_IN_SCALES["four-level"]
ZERO_TO_FOUR = BUILT_IN_SCALES["zero-to-four"]


def test_decaying_average_of_one_to_five_at_065_reports_4_47() -> None:
    """1,2,3,4,5 at w = 0.65 folds to 4.46961875 (1 → 1.65 → 2.5275 →
    3.484625 → 4.46961875), which the scale's rounding reports as 4.47."""
    policy = Policy(method="decaying_average", weight=0.65)

    outcome = evaluate(ONE_TO_FIVE, policy, FIVE_LEVEL)

    assert decaying_average(ONE_TO_FIVE, 0.65) == pytest.approx(4.46961875)
    assert outcome.unrounded_score == pytest.approx(4.46961875)
    assert outcome.score == 4.47


def test_weighted_average_of_one_to_five_at_065_reports_4_125() -> None:
    """1,2,3,4,5 at w = 0.65 is 5 x 0.65 + mean(1,2,3,4) x 0.35 = 3.25 +
    0.875 = 4.125, reported as it is: the rounding keeps thousandths."""
    policy = Policy(method="weighted_average", weight=0.65)

    outcome = evaluate(ONE_TO_FIVE, policy, FIVE_LEVEL)

    assert weighted_average(ONE_TO_FIVE, 0.65) == 4.125
    assert outcome.score == 4.125
    assert outcome.level is not None
    assert outcome.level.label == "Proficient"


def test_the_simple_methods_on_a_jagged_record() -> None:
    """3, 1, 4, 1, 3 oldest first: newest 3, best 4, mean 12/5, middle 3."""
    scores = [3.0, 1.0, 4.0, 1.0, 3.0]

    assert most_recent(scores) == 3.0
    assert highest(scores) == 4.0
    assert mean(scores) == 2.4
    assert median(scores) == 3.0


def test_the_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    """2, 4, 1, 3 sorts to 1, 2, 3, 4; the middle two average 2.5."""
    assert median([2.0, 4.0, 1.0, 3.0]) == 2.5


def test_mode_picks_the_most_frequent_score_without_a_tie() -> None:
    """2, 3, 3, 4: three appears twice, whatever the tie rule."""
    scores = [2.0, 3.0, 3.0, 4.0]

    assert mode(scores, tie="higher") == 3.0
    assert mode(scores, tie="recent") == 3.0


def test_a_mode_tie_goes_to_the_higher_level_when_the_policy_says_so() -> None:
    """4, 4, 2, 2: a tie between 4 and 2, and the higher is 4."""
    assert mode([4.0, 4.0, 2.0, 2.0], tie="higher") == 4.0


def test_a_mode_tie_goes_to_the_most_recent_level_when_the_policy_says_so() -> None:
    """4, 4, 2, 2: a tie between 4 and 2, and 2 was seen last."""
    assert mode([4.0, 4.0, 2.0, 2.0], tie="recent") == 2.0


def test_the_most_recent_tie_rule_looks_at_the_last_sighting_only() -> None:
    """2, 4, 4, 2: both twice; 2 was seen last, although 4 came in between."""
    assert mode([2.0, 4.0, 4.0, 2.0], tie="recent") == 2.0
    assert mode([2.0, 4.0, 4.0, 2.0], tie="higher") == 4.0


def test_n_times_gives_no_score_until_n_scores_reach_the_threshold() -> None:
    """Threshold 3, n = 3: 3, 2, 4 has only two at or above 3."""
    assert n_times([3.0, 2.0, 4.0], 3, threshold=3.0) is None


def test_n_times_averages_the_scores_that_reached_the_threshold() -> None:
    """Threshold 3, n = 3: 3, 2, 4, 4 has three at or above 3, which
    average 11/3; the 2 plays no part."""
    assert n_times([3.0, 2.0, 4.0, 4.0], 3, threshold=3.0) == pytest.approx(11 / 3)


def test_n_times_below_n_says_why_there_is_no_score() -> None:
    """The outcome names the count reached, the count needed and the bar."""
    policy = Policy(method="n_times", n=3)

    outcome = evaluate([3.0, 2.0, 4.0], policy, FOUR_LEVEL)

    assert outcome.status == "not_enough_evidence"
    assert outcome.score is None
    assert outcome.mastered is False
    assert outcome.note == (
        "not enough evidence yet: 2 of the 3 scores at or above 3 that n_times needs"
    )


def test_power_law_follows_a_perfect_power_curve() -> None:
    """Scores 1, 2, 3, 4 are exactly score = attempt ** 1, so the fit at
    attempt 4 is 4."""
    assert power_law([1.0, 2.0, 3.0, 4.0], low=1.0) == pytest.approx(4.0)


def test_power_law_fits_by_least_squares_on_the_logarithms() -> None:
    """2, 2, 4 on a 1-4 scale, by hand: x = ln 1, ln 2, ln 3 (mean 0.59725),
    y = ln 2, ln 2, ln 4 (mean 0.92420); slope 0.34752 / 0.61728 = 0.56298;
    at x = ln 3 the line is 0.92420 + 0.56298 x 0.50137 = 1.20646, and
    e ** 1.20646 = 3.3416."""
    assert power_law([2.0, 2.0, 4.0], low=1.0) == pytest.approx(3.3416, abs=1e-4)


def test_power_law_takes_a_zero_on_a_scale_that_starts_at_zero() -> None:
    """0, 1, 2, 3 on a 0-4 scale fits on score + 1 = 1, 2, 3, 4, which is
    the curve attempt ** 1; 4 at attempt 4, shifted back, is 3."""
    assert power_law([0.0, 1.0, 2.0, 3.0], low=0.0) == pytest.approx(3.0)


def test_power_law_with_zeros_only_stays_at_zero() -> None:
    """Three zeros fit ln 1 = 0 everywhere: the prediction is zero."""
    assert power_law([0.0, 0.0, 0.0], low=0.0) == pytest.approx(0.0)


def test_a_power_law_beyond_the_scale_is_clamped_to_its_top() -> None:
    """1, 2, 4, 4 climbs steeply; the fit lies above 4, and the result
    stays at the four-level scale's top, with the offset it used."""
    policy = Policy(method="power_law")

    outcome = evaluate([1.0, 2.0, 4.0, 4.0], policy, FOUR_LEVEL)

    assert power_law([1.0, 2.0, 4.0, 4.0], low=1.0) > 4.0
    assert outcome.score == 4.0
    assert outcome.level is not None
    assert outcome.level.label == "Exemplary"


@pytest.mark.parametrize("method", METHODS)
def test_a_single_score_is_its_own_result_under_every_method(method: str) -> None:
    """One score of 3 on a four-level scale: every method gives 3."""
    policy = Policy(
        method=method,  # type: ignore[arg-type]
        weight={"decaying_average": 0.65, "weighted_average": 0.3}.get(method),
        n=1 if method == "n_times" else None,
    )

    outcome = evaluate([3.0], policy, FOUR_LEVEL)

    assert outcome.score == 3.0
    assert outcome.mastered is True


@pytest.mark.parametrize(
    "function",
    [most_recent, highest, mean, median],
)
def test_a_method_refuses_to_summarise_no_scores(function: object) -> None:
    """An empty list is a caller's mistake, not a zero."""
    with pytest.raises(NoScoresError):
        function([])  # type: ignore[operator]


@pytest.mark.parametrize(
    ("method", "weight", "n", "field"),
    [
        ("decaying_average", 0.49, None, "weight"),
        ("decaying_average", None, None, "weight"),
        ("weighted_average", 1.0, None, "weight"),
        ("weighted_average", 0.0, None, "weight"),
        ("mean", 0.65, None, "weight"),
        ("n_times", None, 11, "n"),
        ("n_times", None, 0, "n"),
        ("n_times", None, None, "n"),
        ("median", None, 2, "n"),
    ],
)
def test_a_policy_refuses_parameters_its_method_cannot_use(
    method: str, weight: float | None, n: int | None, field: str
) -> None:
    """Out of range, missing or meant for another method: named and refused."""
    with pytest.raises(InvalidParameterError) as raised:
        Policy(method=method, weight=weight, n=n)  # type: ignore[arg-type]

    assert raised.value.field == field


def test_the_weight_ranges_include_their_ends() -> None:
    """0.50 and 0.99 are decaying weights; 0.01 and 0.99 weighted ones."""
    for method, weight in [
        ("decaying_average", 0.5),
        ("decaying_average", 0.99),
        ("weighted_average", 0.01),
        ("weighted_average", 0.99),
    ]:
        assert Policy(method=method, weight=weight).weight == weight  # type: ignore[arg-type]


def test_a_score_on_a_cut_point_earns_that_level() -> None:
    """On the four-level scale 2.5 is Proficient's cut: mean of 2 and 3
    earns Proficient, while 2, 2, 3 (2.333) stays Developing."""
    policy = Policy(method="mean")

    on_cut = evaluate([2.0, 3.0], policy, FOUR_LEVEL)
    below = evaluate([2.0, 2.0, 3.0], policy, FOUR_LEVEL)

    assert on_cut.level is not None
    assert on_cut.level.label == "Proficient"
    assert below.level is not None
    assert below.level.label == "Developing"
    assert below.score == 2.333


def test_the_level_is_read_from_the_rounded_score() -> None:
    """Mean of 2, 3, 2.4999 is 2.4999666...; rounded to 2.5 it is what the
    teacher sees, so it earns Proficient, and the unrounded value is kept."""
    policy = Policy(method="mean")

    outcome = evaluate([2.0, 3.0, 2.4999], policy, FOUR_LEVEL)

    assert outcome.score == 2.5
    assert outcome.unrounded_score == pytest.approx(7.4999 / 3)
    assert outcome.level is not None
    assert outcome.level.value == 3.0


def test_fewer_counted_scores_than_the_minimum_give_no_score_yet() -> None:
    """A policy needing three pieces of evidence, given two, says so."""
    policy = Policy(method="highest", minimum_evidence=3)

    outcome = evaluate([4.0, 4.0], policy, FOUR_LEVEL)

    assert outcome.status == "not_enough_evidence"
    assert outcome.level is None
    assert outcome.note == "not enough evidence yet: 2 counted, the policy needs 3"
