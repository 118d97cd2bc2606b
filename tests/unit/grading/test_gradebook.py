"""The traditional gradebook's pure decisions, and mastery read as a
percent and a letter through a section's cuts."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import msgspec
import pytest

from mastery_events.contract.grading import LetterCut
from mastery_events.identity import Identity
from mastery_grading.errors import (
    GradeNotFoundError,
    GradeVoidedError,
    InvalidGradeError,
    NoScoresError,
    SectionNotFoundError,
    SectionNotGradableError,
    StudentNotInSectionError,
)
from mastery_grading.gradebook import (
    RecordTraditionalGrade,
    SetGradeBridge,
    VoidTraditionalGrade,
    bridge,
    decide_bridge,
    decide_grade,
    decide_grade_void,
    evolve_grade,
)
from mastery_grading.scales import BUILT_IN_SCALES

MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
FRIZZLE = Identity(
    subject="ms-frizzle",
    tenant_id="lakeside",
    roles=frozenset({"teacher"}),
    sections=frozenset({"room-12"}),
)
RATBURN = msgspec.structs.replace(
    FRIZZLE, subject="mr-ratburn", sections=frozenset({"room-14"})
)
LETTERS = (
    LetterCut(letter="A", min_percent=90),
    LetterCut(letter="B", min_percent=80),
    LetterCut(letter="C", min_percent=70),
    LetterCut(letter="F", min_percent=0),
)
FOUR = BUILT_IN_SCALES["four-level"]


def grade(**changes: object) -> RecordTraditionalGrade:
    """Ana's 17 points out of 20 on a spelling test, changed as given."""
    command = RecordTraditionalGrade(
        grade_id=UUID(int=7),
        section_id="room-12",
        student_id="ana",
        title="Spelling test",
        kind="points",
        points=17,
        points_possible=20,
        assessed_at=MONDAY,
        recorded_by="ms-frizzle",
        at=MONDAY,
    )
    return msgspec.structs.replace(command, **changes)


def decide(command: RecordTraditionalGrade, caller: Identity = FRIZZLE) -> object:
    """Decide ``command`` in room 12, whose students are Ana and Ben."""
    return decide_grade(
        command, known=True, students=frozenset({"ana", "ben"}), caller=caller
    )


def test_a_points_grade_is_recorded_as_given() -> None:
    """17 of 20 keeps both numbers and no percent."""
    event = decide_grade(
        grade(), known=True, students=frozenset({"ana"}), caller=FRIZZLE
    )

    assert (event.points, event.points_possible, event.percent) == (17, 20, None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"points_possible": None}, "points_possible"),
        ({"percent": 85.0}, "percent"),
        ({"kind": "percent"}, "percent"),
        ({"kind": "pass_fail", "points": None, "points_possible": None}, "passed"),
        ({"points_possible": 0.0}, "points_possible"),
        ({"points": -1.0}, "points"),
    ],
)
def test_a_grade_carries_exactly_the_values_of_its_kind(
    changes: dict[str, object], field: str
) -> None:
    """A value missing, one of another kind, or one out of range is
    refused with the field named."""
    with pytest.raises(InvalidGradeError) as refused:
        decide(grade(**changes))

    assert refused.value.field == field


def test_grades_are_refused_outside_the_callers_roster() -> None:
    """A student not in the room, a room the roster lacks, and another
    room's teacher are each refused."""
    with pytest.raises(StudentNotInSectionError):
        decide(grade(student_id="dee"))
    with pytest.raises(SectionNotFoundError):
        decide_grade(grade(), known=False, students=frozenset(), caller=FRIZZLE)
    with pytest.raises(SectionNotGradableError):
        decide(grade(), RATBURN)


def test_a_grade_is_voided_once() -> None:
    """The void is kept with its reason; a second void and a void by
    another room's teacher are refused."""
    state = evolve_grade(
        None,
        decide_grade(grade(), known=True, students=frozenset({"ana"}), caller=FRIZZLE),
    )
    void = VoidTraditionalGrade(
        grade_id=UUID(int=7), reason="Wrong test", voided_by="ms-frizzle", at=MONDAY
    )

    voided = evolve_grade(state, decide_grade_void(state, void, caller=FRIZZLE))

    assert voided.void_reason == "Wrong test"
    with pytest.raises(GradeVoidedError):
        decide_grade_void(voided, void, caller=FRIZZLE)
    with pytest.raises(GradeNotFoundError):
        decide_grade_void(state, void, caller=RATBURN)
    with pytest.raises(GradeNotFoundError):
        decide_grade_void(None, void, caller=FRIZZLE)


def test_cuts_are_kept_highest_first() -> None:
    """Cuts given in any order come back from 90 down to 0."""
    shuffled = (LETTERS[2], LETTERS[0], LETTERS[3], LETTERS[1])
    event = decide_bridge(
        SetGradeBridge(
            section_id="room-12", cuts=shuffled, set_by="ms-frizzle", at=MONDAY
        ),
        known=True,
        caller=FRIZZLE,
    )

    assert [cut.letter for cut in event.cuts] == ["A", "B", "C", "F"]


@pytest.mark.parametrize(
    "cuts",
    [
        (),
        (LetterCut(letter="A", min_percent=90), LetterCut(letter="A", min_percent=0)),
        (LetterCut(letter="A", min_percent=0), LetterCut(letter="B", min_percent=0)),
        (LetterCut(letter="A", min_percent=50),),
    ],
    ids=["none", "letter-twice", "percent-twice", "nothing-at-zero"],
)
def test_cuts_that_leave_a_percent_without_one_letter_are_refused(
    cuts: tuple[LetterCut, ...],
) -> None:
    """Every percent from 0 up must earn exactly one letter."""
    with pytest.raises(InvalidGradeError):
        decide_bridge(
            SetGradeBridge(section_id="room-12", cuts=cuts, set_by="x", at=MONDAY),
            known=True,
            caller=FRIZZLE,
        )


@pytest.mark.parametrize(
    ("levels", "percent", "letter"),
    [
        ([4, 4, 4], 100.0, "A"),
        ([1, 1], 0.0, "F"),
        ([3, 4, 4], 88.9, "B"),
        ([3, 3, 4], 77.8, "C"),
        ([2, 3], 50.0, "F"),
        ([3.7], 90.0, "A"),
    ],
)
def test_mastery_levels_become_a_percent_and_a_letter(
    levels: list[float], percent: float, letter: str
) -> None:
    """On levels 1 to 4, the mean level's place between 1 and 4 is the
    percent: a mean of 11/3 is 88.9 %, a B; exactly 90 % is an A."""
    found = bridge([(level, FOUR) for level in levels], cuts=LETTERS)

    assert (found.percent, found.letter) == (percent, letter)


def test_no_levels_give_no_grade() -> None:
    """Without mastery there is nothing to bridge."""
    with pytest.raises(NoScoresError):
        bridge([], cuts=LETTERS)


def test_levels_on_different_scales_are_placed_on_their_own_scales() -> None:
    """Exemplary on levels 1 to 4 is 100 % and Emerging (2) on 1 to 5 is
    25 %: the grade is their mean, 62.5 %, an F under these cuts."""
    five = BUILT_IN_SCALES["five-level"]

    found = bridge([(4, FOUR), (2, five)], cuts=LETTERS)

    assert (found.percent, found.letter) == (62.5, "F")
