"""Properties every mastery result keeps, over generated evidence."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from mastery_grading.evidence import fold_evidence
from mastery_grading.mastery import METHODS, Method, Policy, compute, evaluate
from mastery_grading.scales import BUILT_IN_SCALES, ScaleView
from tests.unit.grading.gradebook import FOUR_LEVEL, Log, assessment

SCALES = list(BUILT_IN_SCALES.values())


@dataclass(frozen=True)
class Sitting:
    """One assessment to record: its level and the day it happened."""

    level: float
    on: int


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    """Draw any valid policy, with parameters in their allowed ranges."""
    method: Method = draw(st.sampled_from(METHODS))
    weight = None
    if method == "decaying_average":
        weight = draw(st.floats(min_value=0.5, max_value=0.99))
    elif method == "weighted_average":
        weight = draw(st.floats(min_value=0.01, max_value=0.99))
    return Policy(
        method=method,
        weight=weight,
        n=draw(st.integers(1, 10)) if method == "n_times" else None,
        tie=draw(st.sampled_from(["higher", "recent"])),
        minimum_evidence=draw(st.integers(1, 3)),
    )


def scores_on(scale: ScaleView) -> st.SearchStrategy[list[float]]:
    """Draw 1 to 12 scores inside ``scale``, levels or anything between."""
    levels = st.sampled_from([level.value for level in scale.levels])
    between = st.floats(min_value=scale.low, max_value=scale.high)
    return st.lists(levels | between, min_size=1, max_size=12)


@st.composite
def record_of_sittings(draw: st.DrawFn) -> list[Sitting]:
    """Draw 1 to 10 four-level assessments on distinct days."""
    days = draw(st.lists(st.integers(1, 28), min_size=1, max_size=10, unique=True))
    levels = draw(
        st.lists(
            st.sampled_from([1.0, 2.0, 3.0, 4.0, 2.5]),
            min_size=len(days),
            max_size=len(days),
        )
    )
    return [Sitting(level=level, on=on) for level, on in zip(levels, days, strict=True)]


def logged(sittings: list[Sitting]) -> Log:
    """Record ``sittings`` in the order given, one per assessment number."""
    log = Log()
    for number, sitting in enumerate(sittings, start=1):
        log.record(number, level=sitting.level, on=sitting.on)
    return log


@settings(max_examples=300, deadline=None)
@given(data=st.data(), scale=st.sampled_from(SCALES), policy=policies())
def test_every_score_stays_inside_the_scale(
    data: st.DataObject, scale: ScaleView, policy: Policy
) -> None:
    """Whatever the method and scores, the score and its unrounded value lie
    within the scale, and the level is one of the scale's levels."""
    scores = data.draw(scores_on(scale))

    outcome = evaluate(scores, policy, scale)

    if outcome.status == "scored":
        assert outcome.score is not None
        assert outcome.unrounded_score is not None
        assert scale.low <= outcome.score <= scale.high
        assert scale.low <= outcome.unrounded_score <= scale.high
        assert outcome.level in scale.levels
    else:
        assert outcome.score is None


@settings(max_examples=200, deadline=None)
@given(sittings=record_of_sittings(), policy=policies(), data=st.data())
def test_the_result_does_not_depend_on_the_order_evidence_was_recorded(
    sittings: list[Sitting], policy: Policy, data: st.DataObject
) -> None:
    """The same assessments recorded in another order, on the same days,
    give the same score, level and counted evidence."""
    reordered = data.draw(st.permutations(sittings))

    first = compute(fold_evidence(logged(sittings), FOUR_LEVEL), policy, FOUR_LEVEL)
    second = compute(fold_evidence(logged(reordered), FOUR_LEVEL), policy, FOUR_LEVEL)

    assert (second.status, second.score, second.level) == (
        first.status,
        first.score,
        first.level,
    )
    assert [item.reading for item in second.explanation.counted] == [
        item.reading for item in first.explanation.counted
    ]


@settings(max_examples=200, deadline=None)
@given(sittings=record_of_sittings(), policy=policies(), data=st.data())
def test_the_fold_does_not_depend_on_the_order_events_are_handed_over(
    sittings: list[Sitting], policy: Policy, data: st.DataObject
) -> None:
    """Shuffling the stored events, amends and voids included, folds to
    the same evidence and result: the log's positions decide."""
    log = logged(sittings)
    log.amend(1, level=2.0, reason="regraded")
    log.void(len(sittings), reason="duplicate")
    shuffled = data.draw(st.permutations(log.events))

    assert fold_evidence(shuffled, FOUR_LEVEL) == fold_evidence(log, FOUR_LEVEL)
    assert compute(fold_evidence(shuffled, FOUR_LEVEL), policy, FOUR_LEVEL) == (
        compute(fold_evidence(log, FOUR_LEVEL), policy, FOUR_LEVEL)
    )


@settings(max_examples=200, deadline=None)
@given(
    sittings=record_of_sittings(),
    policy=policies(),
    level=st.sampled_from([1.0, 4.0]),
    on=st.integers(1, 28),
)
def test_adding_a_voided_assessment_changes_nothing_but_the_left_out_list(
    sittings: list[Sitting], policy: Policy, level: float, on: int
) -> None:
    """An extra assessment, voided, leaves the score, level and counted
    evidence as they were, and shows up only among the left-out items."""
    log = logged(sittings)
    before = compute(fold_evidence(log, FOUR_LEVEL), policy, FOUR_LEVEL)
    log.record(99, level=level, on=on)
    log.void(99, reason="wrong class")

    after = compute(fold_evidence(log, FOUR_LEVEL), policy, FOUR_LEVEL)

    assert msgspec.structs.replace(after, explanation=before.explanation) == before
    assert after.explanation.counted == before.explanation.counted
    assert [item.standing for item in after.explanation.left_out] == ["voided"]
    assert after.explanation.left_out[-1].assessment_id == assessment(99)
