"""Folding a student's assessment events into counted evidence, and the
mastery computed from it with its explanation."""

from __future__ import annotations

import msgspec
import pytest

from mastery_events.contract.grading import AssessmentRecorded
from mastery_grading.errors import MixedEvidenceError, OrphanCorrectionError
from mastery_grading.evidence import (
    EvidenceFold,
    StoredAssessmentEvent,
    fold_evidence,
)
from mastery_grading.mastery import Policy, compute
from tests.unit.grading.gradebook import (
    FOUR_LEVEL,
    ZERO_TO_FOUR,
    Log,
    assessment,
    day,
)

MOST_RECENT = Policy(method="most_recent")


def test_evidence_is_ordered_by_when_it_happened_not_when_it_was_recorded() -> None:
    """Recorded in the order 5th, 2nd, 9th of September, the items come out
    2nd, 5th, 9th, and the most recent is the one of the 9th."""
    log = Log()
    log.record(1, level=2.0, on=5)
    log.record(2, level=4.0, on=2)
    log.record(3, level=3.0, on=9)

    items = fold_evidence(log, FOUR_LEVEL)
    result = compute(items, MOST_RECENT, FOUR_LEVEL)

    assert [item.assessment_id for item in items] == [
        assessment(2),
        assessment(1),
        assessment(3),
    ]
    assert result.score == 3.0


def test_evidence_on_the_same_day_is_ordered_by_recorded_time() -> None:
    """Two assessments of the 4th: the one recorded later is the newer."""
    log = Log()
    log.record(1, level=4.0, on=4)
    log.record(2, level=1.0, on=4)

    result = compute(fold_evidence(log, FOUR_LEVEL), MOST_RECENT, FOUR_LEVEL)

    assert result.score == 1.0


def test_a_voided_assessment_is_left_out_with_its_reason() -> None:
    """A 1 voided as 'wrong student' leaves 3 and 4; the explanation keeps
    the 1 among the left-out items with who voided it and why."""
    log = Log()
    log.record(1, level=3.0, on=1)
    log.record(2, level=1.0, on=2)
    log.record(3, level=4.0, on=3)
    log.void(2, reason="wrong student")

    result = compute(fold_evidence(log, FOUR_LEVEL), Policy(method="mean"), FOUR_LEVEL)

    assert result.score == 3.5
    assert [item.value for item in result.explanation.counted] == [3.0, 4.0]
    [voided] = result.explanation.left_out
    assert voided.assessment_id == assessment(2)
    assert voided.standing == "voided"
    assert voided.voided is not None
    assert voided.voided.reason == "wrong student"
    assert voided.voided.voided_by == "teacher-hopper"


@pytest.mark.parametrize(
    ("mark", "meaning"), [("EX", "excused"), ("IE", "insufficient_evidence")]
)
def test_marks_that_are_no_evidence_are_left_out(mark: str, meaning: str) -> None:
    """An excused or insufficient-evidence mark neither counts nor drags the
    mean: 2 and 4 average 3 with the mark between them."""
    log = Log()
    log.record(1, level=2.0, on=1)
    log.record(2, mark=mark, on=2)
    log.record(3, level=4.0, on=3)

    result = compute(fold_evidence(log, FOUR_LEVEL), Policy(method="mean"), FOUR_LEVEL)

    assert result.score == 3.0
    assert [item.standing for item in result.explanation.left_out] == [meaning]


def test_missing_work_counts_as_the_lowest_level_when_the_scale_says_so() -> None:
    """On the zero-to-four scale a missing mark counts as 0: 4 and missing
    average 2, and the item says why it counted."""
    log = Log(scale=ZERO_TO_FOUR)
    log.record(1, level=4.0, on=1)
    log.record(2, mark="M", on=2)

    result = compute(
        fold_evidence(log, ZERO_TO_FOUR), Policy(method="mean"), ZERO_TO_FOUR
    )

    assert result.score == 2.0
    assert [item.standing for item in result.explanation.counted] == [
        "counted",
        "missing_counted_as_lowest",
    ]


def test_missing_work_is_left_out_when_the_scale_does_not_count_it() -> None:
    """On the four-level scale a missing mark is left out, as 'missing'."""
    log = Log()
    log.record(1, level=4.0, on=1)
    log.record(2, mark="M", on=2)

    result = compute(fold_evidence(log, FOUR_LEVEL), Policy(method="mean"), FOUR_LEVEL)

    assert result.score == 4.0
    assert [item.standing for item in result.explanation.left_out] == ["missing"]


def test_an_amended_date_moves_the_evidence_and_the_explanation_says_so() -> None:
    """A 4 recorded for the 9th, amended to the 1st, is no longer the most
    recent: the 2 of the 5th is. The amend keeps the reading before it."""
    log = Log()
    log.record(1, level=4.0, on=9)
    log.record(2, level=2.0, on=5)
    log.amend(1, on=1, reason="quiz was on the first")

    result = compute(fold_evidence(log, FOUR_LEVEL), MOST_RECENT, FOUR_LEVEL)

    assert result.score == 2.0
    moved = result.explanation.counted[0]
    assert moved.assessment_id == assessment(1)
    [amendment] = moved.amendments
    assert amendment.changed == ("assessed_at",)
    assert amendment.before.assessed_at == day(9)
    assert amendment.after.assessed_at == day(1)
    assert amendment.after.level == 4.0
    assert amendment.reason == "quiz was on the first"


def test_an_amended_level_replaces_a_mark_and_keeps_the_history() -> None:
    """An excused mark amended to level 3 counts as 3; the amend says the
    level and the mark changed, from excused to nothing."""
    log = Log()
    log.record(1, mark="EX", on=1)
    log.amend(1, level=3.0, reason="made up the quiz")

    [item] = fold_evidence(log, FOUR_LEVEL)

    assert item.standing == "counted"
    assert item.value == 3.0
    [amendment] = item.amendments
    assert amendment.changed == ("level", "mark")
    assert amendment.before.mark == "EX"
    assert amendment.after.mark is None


def test_amends_apply_in_log_order_whatever_order_they_arrive_in() -> None:
    """Amended to 2, then to 4: handed over backwards, the fold still ends
    at 4 with the two amends in the order they happened."""
    log = Log()
    log.record(1, level=1.0, on=1)
    log.amend(1, level=2.0, reason="regraded")
    log.amend(1, level=4.0, reason="regraded again")

    [item] = fold_evidence(reversed(log.events), FOUR_LEVEL)

    assert item.value == 4.0
    assert [amendment.after.level for amendment in item.amendments] == [2.0, 4.0]


def test_a_mark_the_scale_does_not_know_is_left_out() -> None:
    """'ABS' is no mark of the four-level scale: left out as unknown."""
    log = Log()
    log.record(1, mark="ABS", on=1)

    [item] = fold_evidence(log, FOUR_LEVEL)

    assert item.standing == "unknown_mark"
    assert item.value is None


def test_levels_off_the_scale_or_on_another_scale_are_left_out() -> None:
    """A 7 on the four-level scale and an assessment on another scale's
    version are both left out, each with its own standing."""
    log = Log()
    log.record(1, level=7.0, on=1)
    log.record(2, level=3.0, on=2)
    newer_version = msgspec.structs.replace(FOUR_LEVEL, version=2)

    items = fold_evidence(log, newer_version)
    by_id = {item.assessment_id: item.standing for item in items}

    assert by_id == {assessment(1): "other_scale", assessment(2): "other_scale"}
    assert fold_evidence(log, FOUR_LEVEL)[0].standing == "outside_scale"


def test_nothing_but_left_out_evidence_is_not_enough_evidence_yet() -> None:
    """Only a voided assessment: no score, and the explanation still
    shows what was left out, the method, and the scale and policy."""
    log = Log()
    log.record(1, level=3.0, on=1)
    log.void(1, reason="duplicate")
    policy = Policy(method="decaying_average", weight=0.7, minimum_evidence=1)

    result = compute(fold_evidence(log, FOUR_LEVEL), policy, FOUR_LEVEL)

    assert result.status == "not_enough_evidence"
    assert result.score is None
    assert len(result.explanation.left_out) == 1
    assert result.explanation.method == "decaying_average"
    assert result.explanation.parameters.weight == 0.7
    assert result.explanation.scale.scale_id == FOUR_LEVEL.scale_id
    assert result.explanation.scale.version == 1
    assert result.explanation.policy.version == 1


def test_a_correction_of_an_assessment_never_recorded_is_refused() -> None:
    """A void without its recording means the events given are incomplete."""
    log = Log()
    log.void(8, reason="duplicate")

    with pytest.raises(OrphanCorrectionError) as raised:
        fold_evidence(log, FOUR_LEVEL)

    assert raised.value.assessment_id == assessment(8)


def test_evidence_of_two_students_is_refused() -> None:
    """One fold is one student on one objective; another student's
    assessment among the events is named and refused."""
    log = Log()
    log.record(1, level=3.0, on=1)
    log.record(2, level=2.0, on=2)
    other = log.events[1]
    assert isinstance(other.event, AssessmentRecorded)
    log.events[1] = StoredAssessmentEvent(
        event=msgspec.structs.replace(other.event, student_id="student-043"),
        recorded_at=other.recorded_at,
        position=other.position,
    )

    with pytest.raises(MixedEvidenceError) as raised:
        fold_evidence(log, FOUR_LEVEL)

    assert raised.value.student_id == "student-043"


def test_a_fold_kept_across_events_gives_what_folding_anew_gives() -> None:
    """After every event of a log with late evidence, an amend of an early
    assessment and a void, the fold that took one event at a time lists
    the same items as ``fold_evidence`` over the log so far, on both the
    scale it was first read on and another."""
    log = Log()
    log.record(1, level=2.0, on=5)
    log.record(2, level=4.0, on=2)
    log.amend(1, level=3.0, on=1, reason="retook the quiz")
    log.record(3, mark="M", on=9)
    log.void(2, reason="wrong student")
    log.record(4, level=1.0, on=9)

    fold = EvidenceFold()
    for count, stored in enumerate(log.events, start=1):
        fold.add(stored)

        assert fold.items(FOUR_LEVEL) == fold_evidence(log.events[:count], FOUR_LEVEL)
    assert fold.items(ZERO_TO_FOUR) == fold_evidence(log, ZERO_TO_FOUR)
    assert fold.items(FOUR_LEVEL) == fold_evidence(log, FOUR_LEVEL)
    assert [item.standing for item in fold.items(FOUR_LEVEL)][:2] == [
        "counted",
        "voided",
    ]
