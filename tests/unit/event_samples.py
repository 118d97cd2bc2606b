"""Sample events and envelopes with memorable values, shared by the contract's
unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import msgspec

from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentRecorded,
    AssessmentVoided,
    Evidence,
)
from mastery_events.contract.objectives import (
    ObjectiveSetCreated,
    ObjectiveSetPublished,
)
from mastery_events.contract.reports import (
    ReportViewed,
    ShareLinkCreated,
    ShareLinkRevoked,
)
from mastery_events.envelope import Envelope, Event
from tests.unit.grading.event_samples import mastery_samples, roster_samples
from tests.unit.objectives.event_samples import objective_samples

TENANT = "springfield-usd"
ASSESSMENT_ID = UUID("0190a5c4-1e00-7000-8000-00000000a55e")
OBJECTIVE_ID = UUID("0190a5c4-1e00-7000-8000-0000000000b1")
SCALE_ID = UUID("0190a5c4-1e00-7000-8000-00000000005c")
OBJECTIVE_SET_ID = UUID("0190a5c4-1e00-7000-8000-000000000005")
SHARE_LINK_ID = UUID("0190a5c4-1e00-7000-8000-00000000511c")
EVENT_ID = UUID("0190a5c4-1e00-7abc-8def-000000000001")
CORRELATION_ID = UUID("0190a5c4-1e00-7000-8000-00000000c0de")
MONDAY_MORNING = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
RECORDED = datetime(2026, 1, 5, 9, 30, 0, 125000, tzinfo=UTC)

FRACTIONS_QUIZ = AssessmentRecorded(
    assessment_id=ASSESSMENT_ID,
    student_id="student-ada",
    objective_id=OBJECTIVE_ID,
    scale_id=SCALE_ID,
    scale_version=1,
    level=3.0,
    assessed_at=MONDAY_MORNING,
    assessed_by="teacher-krabappel",
    evidence=Evidence(title="Fractions exit ticket", kind="formative"),
)


def sample_events() -> list[Event]:
    """Return one event of every type the contract has, at its current
    version."""
    return [
        ObjectiveSetCreated(
            objective_set_id=OBJECTIVE_SET_ID,
            title="Grade 4 mathematics",
            subject="mathematics",
            owner_scope="district",
            owner_id=TENANT,
            grade_bands=("4",),
            created_by="coordinator-hoover",
            created_at=MONDAY_MORNING,
        ),
        ObjectiveSetPublished(
            objective_set_id=OBJECTIVE_SET_ID,
            set_version=1,
            published_by="coordinator-hoover",
            published_at=MONDAY_MORNING,
        ),
        FRACTIONS_QUIZ,
        AssessmentAmended(
            assessment_id=ASSESSMENT_ID,
            level=3.5,
            reason="Rubric misread",
            amended_by="teacher-krabappel",
            amended_at=MONDAY_MORNING,
        ),
        AssessmentVoided(
            assessment_id=ASSESSMENT_ID,
            reason="Recorded for the wrong student",
            voided_by="teacher-krabappel",
            voided_at=MONDAY_MORNING,
        ),
        ShareLinkCreated(
            share_link_id=SHARE_LINK_ID,
            student_id="student-ada",
            section_ids=("room-12",),
            term_id="fall-2026",
            token_hash="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            created_by="teacher-krabappel",
            created_at=MONDAY_MORNING,
            expires_at=datetime(2026, 2, 5, 9, 30, tzinfo=UTC),
        ),
        ShareLinkRevoked(
            share_link_id=SHARE_LINK_ID,
            revoked_by="teacher-krabappel",
            revoked_at=MONDAY_MORNING,
            reason="the student was erased",
        ),
        ReportViewed(share_link_id=SHARE_LINK_ID, viewed_at=MONDAY_MORNING),
        *objective_samples(),
        *roster_samples(),
        *mastery_samples(),
    ]


def sample_envelope(**changes: object) -> Envelope:
    """Return the stored envelope of the fractions quiz assessment, with
    ``changes`` applied to its fields."""
    envelope = Envelope(
        event_id=EVENT_ID,
        event_type="AssessmentRecorded",
        event_version=2,
        tenant_id=TENANT,
        stream_id=f"assessment-{ASSESSMENT_ID}",
        stream_version=1,
        position=42,
        transaction_id=7_000_001,
        occurred_at=MONDAY_MORNING,
        recorded_at=RECORDED,
        actor="teacher-krabappel",
        correlation_id=CORRELATION_ID,
        payload=msgspec.Raw(msgspec.json.encode(FRACTIONS_QUIZ)),
    )

    return msgspec.structs.replace(envelope, **changes)
