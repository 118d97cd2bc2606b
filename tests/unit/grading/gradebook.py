"""One student's assessments on one objective, as the grading log holds
them, for the mastery engine's unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec

from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentRecorded,
    AssessmentVoided,
    Evidence,
)
from mastery_grading.evidence import StoredAssessmentEvent
from mastery_grading.scales import BUILT_IN_SCALES, ScaleView

STUDENT = "student-042"
TEACHER = "teacher-hopper"
FRACTIONS = UUID("01a23cb1-6997-74ca-8af2-00000000f7ac")
FOUR_LEVEL_ID = UUID("01a23cb1-6997-74ca-8af2-000000000004")
SEPTEMBER_1 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
FOUR_LEVEL = msgspec.structs.replace(
    BUILT_IN_SCALES["four-level"], scale_id=FOUR_LEVEL_ID
)
ZERO_TO_FOUR = msgspec.structs.replace(
    BUILT_IN_SCALES["zero-to-four"], scale_id=FOUR_LEVEL_ID
)


def day(number: int) -> datetime:
    """Return nine o'clock on day ``number`` of September 2026."""
    return SEPTEMBER_1 + timedelta(days=number - 1)


def assessment(number: int) -> UUID:
    """Return a memorable assessment id ending in ``number``."""
    return UUID(f"01a23cb1-6997-74ca-8af2-{number:012d}")


class Log:
    """A grading log in the making: each event gets the next position and
    is recorded a minute after the previous one."""

    def __init__(self, *, scale: ScaleView = FOUR_LEVEL) -> None:
        self.scale = scale
        self.events: list[StoredAssessmentEvent] = []

    def __iter__(self) -> Iterator[StoredAssessmentEvent]:
        return iter(self.events)

    def store(
        self, event: AssessmentRecorded | AssessmentAmended | AssessmentVoided
    ) -> None:
        """Append ``event`` as the store would."""
        position = len(self.events) + 1
        self.events.append(
            StoredAssessmentEvent(
                event=event,
                recorded_at=day(30) + timedelta(minutes=position),
                position=position,
            )
        )

    def record(
        self,
        number: int,
        *,
        level: float | None = None,
        mark: str | None = None,
        on: int,
        title: str = "Exit ticket",
    ) -> UUID:
        """Record assessment ``number`` with its level or mark, assessed on
        day ``on`` of September."""
        assert self.scale.scale_id is not None
        self.store(
            AssessmentRecorded(
                assessment_id=assessment(number),
                student_id=STUDENT,
                objective_id=FRACTIONS,
                scale_id=self.scale.scale_id,
                scale_version=self.scale.version,
                level=level,
                mark=mark,
                assessed_at=day(on),
                assessed_by=TEACHER,
                evidence=Evidence(title=title, kind="formative"),
            )
        )
        return assessment(number)

    def amend(
        self,
        number: int,
        *,
        level: float | None = None,
        mark: str | None = None,
        on: int | None = None,
        reason: str,
    ) -> None:
        """Amend assessment ``number``: a new level, mark or day."""
        self.store(
            AssessmentAmended(
                assessment_id=assessment(number),
                level=level,
                mark=mark,
                assessed_at=None if on is None else day(on),
                reason=reason,
                amended_by=TEACHER,
                amended_at=day(30),
            )
        )

    def void(self, number: int, *, reason: str) -> None:
        """Void assessment ``number``."""
        self.store(
            AssessmentVoided(
                assessment_id=assessment(number),
                reason=reason,
                voided_by=TEACHER,
                voided_at=day(30),
            )
        )
