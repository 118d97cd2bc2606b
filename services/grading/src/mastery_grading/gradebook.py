"""The traditional gradebook kept beside mastery, as pure decisions.

A section may keep percent, points and pass/fail grades, and may choose
letter cuts that turn current mastery into a percent and a letter.
``bridge`` does that turning for the mastery levels it is given, so the
gradebook shows a letter next to mastery without computing mastery.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import msgspec

from mastery_events.contract.grading import (
    GradeBridgeSet,
    LetterCut,
    TraditionalGradeRecorded,
    TraditionalGradeVoided,
    TraditionalKind,
)
from mastery_events.identity import Identity
from mastery_grading.assessments import check_section, may_grade
from mastery_grading.errors import (
    GradeNotFoundError,
    GradeVoidedError,
    InvalidGradeError,
    NoScoresError,
    SectionNotFoundError,
    StudentNotInSectionError,
)
from mastery_grading.scales import ScaleView

BRIDGE = "bridge"


def grade_stream(grade_id: UUID) -> str:
    """Return the id of the stream that holds one traditional grade."""
    return f"traditional-grade-{grade_id}"


def bridge_stream(section_id: str) -> str:
    """Return the id of the stream that holds a section's letter cuts."""
    return f"grade-bridge-{section_id}"


class RecordTraditionalGrade(msgspec.Struct, frozen=True, kw_only=True):
    """Record a percent, a points score or a pass/fail for one student."""

    grade_id: UUID
    section_id: str
    student_id: str
    title: str
    kind: TraditionalKind
    percent: float | None = None
    points: float | None = None
    points_possible: float | None = None
    passed: bool | None = None
    assessed_at: datetime
    recorded_by: str
    at: datetime


class VoidTraditionalGrade(msgspec.Struct, frozen=True, kw_only=True):
    """Withdraw a traditional grade, giving a reason."""

    grade_id: UUID
    reason: str
    voided_by: str
    at: datetime


class SetGradeBridge(msgspec.Struct, frozen=True, kw_only=True):
    """Choose the letter cuts a section's mastery is read through."""

    section_id: str
    cuts: tuple[LetterCut, ...]
    set_by: str
    at: datetime


class GradeState(msgspec.Struct, frozen=True, kw_only=True):
    """A traditional grade as it stands, voided or not."""

    grade_id: UUID
    section_id: str
    student_id: str
    title: str
    kind: TraditionalKind
    percent: float | None
    points: float | None
    points_possible: float | None
    passed: bool | None
    assessed_at: datetime
    recorded_by: str
    void_reason: str | None = None
    voided_by: str | None = None
    voided_at: datetime | None = None


class BridgedGrade(msgspec.Struct, frozen=True, kw_only=True):
    """Mastery read as a traditional grade: a percent and its letter."""

    percent: float
    letter: str


# Which values each kind of grade carries; the others must be absent.
KIND_FIELDS: dict[TraditionalKind, tuple[str, ...]] = {
    "percent": ("percent",),
    "points": ("points", "points_possible"),
    "pass_fail": ("passed",),
}
VALUE_FIELDS = ("percent", "points", "points_possible", "passed")


def check_values(command: RecordTraditionalGrade) -> None:
    """Raise ``InvalidGradeError`` unless the grade carries exactly the
    values of its kind, each in range."""
    needed = KIND_FIELDS[command.kind]
    for field in VALUE_FIELDS:
        given = getattr(command, field) is not None
        if given != (field in needed):
            state = "needs" if field in needed else "does not take"
            message = f"a {command.kind} grade {state} this value"
            raise InvalidGradeError(field, message)
    if command.percent is not None and not 0 <= command.percent <= 1000:
        raise InvalidGradeError("percent", "must lie between 0 and 1000")
    if command.points_possible is not None and command.points_possible <= 0:
        raise InvalidGradeError("points_possible", "must be above 0")
    if command.points is not None and command.points < 0:
        raise InvalidGradeError("points", "must not be below 0")


def decide_grade(
    command: RecordTraditionalGrade,
    *,
    known: bool,
    students: frozenset[str],
    caller: Identity,
) -> TraditionalGradeRecorded:
    """Decide a traditional grade in a section the roster holds when
    ``known``, for a student among ``students``, those actively enrolled
    in it."""
    check_section(caller, command.section_id)
    if not known:
        raise SectionNotFoundError(caller.tenant_id, command.section_id)
    check_values(command)
    if command.student_id not in students:
        raise StudentNotInSectionError(
            command.student_id, section_id=command.section_id
        )

    return TraditionalGradeRecorded(
        grade_id=command.grade_id,
        section_id=command.section_id,
        student_id=command.student_id,
        title=command.title,
        kind=command.kind,
        percent=command.percent,
        points=command.points,
        points_possible=command.points_possible,
        passed=command.passed,
        assessed_at=command.assessed_at,
        recorded_by=command.recorded_by,
    )


def decide_grade_void(
    state: GradeState | None, command: VoidTraditionalGrade, *, caller: Identity
) -> TraditionalGradeVoided:
    """Decide a void of the grade in ``state``; one outside the caller's
    sections is answered as unknown."""
    if state is None:
        raise GradeNotFoundError(command.grade_id)
    if not may_grade(caller, state.section_id):
        raise GradeNotFoundError(command.grade_id)
    if state.voided_at is not None:
        raise GradeVoidedError(command.grade_id)

    return TraditionalGradeVoided(
        grade_id=command.grade_id,
        reason=command.reason,
        voided_by=command.voided_by,
        voided_at=command.at,
    )


def check_cuts(cuts: Sequence[LetterCut]) -> None:
    """Raise ``InvalidGradeError`` unless the cuts give every percent from
    0 up exactly one letter: distinct letters and distinct percents, one
    of them at 0."""
    if not cuts:
        raise InvalidGradeError("cuts", "give at least one letter")
    letters = [cut.letter for cut in cuts]
    if len(set(letters)) != len(letters):
        raise InvalidGradeError("cuts", "each letter may appear once")
    lows = [cut.min_percent for cut in cuts]
    if len(set(lows)) != len(lows):
        raise InvalidGradeError("cuts", "two letters start at the same percent")
    if any(not 0 <= low <= 100 for low in lows):
        raise InvalidGradeError("cuts", "every min_percent lies between 0 and 100")
    if min(lows) != 0:
        raise InvalidGradeError("cuts", "one letter must start at 0")


def decide_bridge(
    command: SetGradeBridge, *, known: bool, caller: Identity
) -> GradeBridgeSet:
    """Decide the letter cuts of a section the roster holds when
    ``known``, kept highest first."""
    check_section(caller, command.section_id)
    if not known:
        raise SectionNotFoundError(caller.tenant_id, command.section_id)
    check_cuts(command.cuts)
    ordered = tuple(sorted(command.cuts, key=lambda cut: -cut.min_percent))

    return GradeBridgeSet(
        section_id=command.section_id,
        cuts=ordered,
        set_by=command.set_by,
        set_at=command.at,
    )


def evolve_grade(
    state: GradeState | None, event: TraditionalGradeRecorded | TraditionalGradeVoided
) -> GradeState:
    """Return the traditional grade after ``event``."""
    if isinstance(event, TraditionalGradeRecorded):
        return GradeState(
            grade_id=event.grade_id,
            section_id=event.section_id,
            student_id=event.student_id,
            title=event.title,
            kind=event.kind,
            percent=event.percent,
            points=event.points,
            points_possible=event.points_possible,
            passed=event.passed,
            assessed_at=event.assessed_at,
            recorded_by=event.recorded_by,
        )
    if state is None:
        raise GradeNotFoundError(event.grade_id)
    if state.voided_at is not None:
        return state

    return msgspec.structs.replace(
        state,
        void_reason=event.reason,
        voided_by=event.voided_by,
        voided_at=event.voided_at,
    )


def bridge(
    readings: Sequence[tuple[float, ScaleView]], *, cuts: Sequence[LetterCut]
) -> BridgedGrade:
    """Turn current mastery levels, each with its scale, into a percent and
    a letter.

    Each level's place between its scale's lowest and highest values is a
    percent (the lowest level 0 %, the highest 100 %); the grade is their
    mean, rounded to one decimal, which on one scale is the mean level's
    place. The letter is that of the highest cut the percent reaches.
    """
    if not readings:
        raise NoScoresError(BRIDGE)
    check_cuts(cuts)
    places = [
        (scale.clamp(level) - scale.low) / (scale.high - scale.low)
        for level, scale in readings
    ]
    percent = round(math.fsum(places) / len(places) * 100, 1)
    reached = [cut for cut in cuts if percent >= cut.min_percent]
    letter = max(reached, key=lambda cut: cut.min_percent).letter

    return BridgedGrade(percent=percent, letter=letter)
