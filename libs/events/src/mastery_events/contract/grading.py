"""Events of the grading service: evidence of a student's mastery."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

import msgspec

from mastery_events.envelope import Event

EvidenceKind = Literal["formative", "summative", "observation", "unspecified"]


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """What the student did that shows the level: a title and its kind."""

    title: str
    kind: EvidenceKind = "unspecified"
    weight: float | None = None
    link: str | None = None


class AssessmentRecorded(Event, frozen=True, kw_only=True):
    """A teacher recorded a student's level on one objective.

    Version 1 carried only ``evidence_title``; version 2 carries the whole
    ``evidence``.
    """

    version: ClassVar[int] = 2

    assessment_id: UUID
    student_id: str
    objective_id: UUID
    scale_id: UUID
    scale_version: int
    level: float | None = None
    mark: str | None = None
    assessed_at: datetime
    assessed_by: str
    evidence: Evidence
    comment: str | None = None


class AssessmentAmended(Event, frozen=True, kw_only=True):
    """A teacher corrected an assessment's level or date, giving a reason."""

    assessment_id: UUID
    level: float | None = None
    mark: str | None = None
    assessed_at: datetime | None = None
    reason: str
    amended_by: str
    amended_at: datetime


class AssessmentVoided(Event, frozen=True, kw_only=True):
    """A teacher withdrew an assessment from the evidence, giving a reason."""

    assessment_id: UUID
    reason: str
    voided_by: str
    voided_at: datetime


AssessmentEvent = AssessmentRecorded | AssessmentAmended | AssessmentVoided
