"""Assessments a teacher records, ready to append to the event store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from mastery_events.contract.grading import AssessmentRecorded, Evidence
from mastery_events.envelope import PendingEvent
from mastery_events.ids import uuid7
from mastery_events.store import StreamAppend

TENANT = "district-7"
OTHER_TENANT = "district-9"
TEACHER = "teacher-ada"
MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
RATIOS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fa2")
FOUR_POINT_SCALE = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fa3")


def recorded(student: int) -> PendingEvent:
    """Return the assessment of student number ``student`` on ratios."""
    assessed_at = MONDAY + timedelta(minutes=student)
    return PendingEvent(
        payload=AssessmentRecorded(
            assessment_id=uuid7(),
            student_id=f"student-{student:03d}",
            objective_id=RATIOS,
            scale_id=FOUR_POINT_SCALE,
            scale_version=1,
            level=float(student % 4 + 1),
            assessed_at=assessed_at,
            assessed_by=TEACHER,
            evidence=Evidence(title="Exit ticket", kind="formative"),
        ),
        occurred_at=assessed_at,
        actor=TEACHER,
        correlation_id=uuid7(),
    )


def student_stream(student: int) -> str:
    """Return the id of the stream that holds one student's assessments."""
    return f"student-{student:03d}-ratios"


def class_of(size: int, *, tenant_id: str = TENANT) -> list[StreamAppend]:
    """Return a first assessment for each student of a class of ``size``,
    each starting its student's stream."""
    return [
        StreamAppend(
            tenant_id=tenant_id,
            stream_id=student_stream(student),
            expected_version=0,
            events=[recorded(student)],
        )
        for student in range(1, size + 1)
    ]
