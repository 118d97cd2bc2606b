"""Events of the grading service: evidence of a student's mastery, the
mastery that follows from it, and traditional grades kept beside it.

People appear only by opaque ids (``student_id``, ``assessed_by``): names
and other personal data live sealed in roster events.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

import msgspec

from mastery_events.contract.objectives import CalculationMethod
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
    section_id: str | None = None
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

MasteryStatus = Literal["scored", "not_enough_evidence"]


class LeftOut(msgspec.Struct, frozen=True, kw_only=True):
    """An assessment that did not count, and why (voided, excused, ...)."""

    assessment_id: UUID
    reason: str


class MasteryChanged(Event, frozen=True, kw_only=True):
    """A student's mastery of one objective changed, with its explanation.

    ``valid_from`` is the ``assessed_at`` of the evidence that brought the
    change (valid time); the envelope's recorded time says when the school
    came to know it. ``cause_event_id`` is the assessment, amendment, void
    or recalculation that led here.
    """

    student_id: str
    objective_id: UUID
    valid_from: datetime
    status: MasteryStatus
    score: float | None = None
    level: float | None = None
    level_label: str | None = None
    mastered: bool = False
    method: CalculationMethod
    parameters: dict[str, float | int | str] = msgspec.field(default_factory=dict)
    scale_id: UUID
    scale_version: int
    policy_version: int | None = None
    counted: tuple[UUID, ...] = ()
    left_out: tuple[LeftOut, ...] = ()
    cause_event_id: UUID
    reason: str


class RecalculationStarted(Event, frozen=True, kw_only=True):
    """A new scale or policy version made grading recalculate the timelines
    it affects; ``timelines`` says how many, for progress.

    A policy names its set, and ``objective_id`` when it is one objective's
    override; an override cleared names the objective with no version.
    """

    job_id: UUID
    reason: str
    scale_id: UUID | None = None
    scale_version: int | None = None
    objective_set_id: UUID | None = None
    objective_id: UUID | None = None
    policy_version: int | None = None
    timelines: int
    started_at: datetime


class RecalculationFinished(Event, frozen=True, kw_only=True):
    """A recalculation job went through every timeline it named."""

    job_id: UUID
    timelines: int
    changed: int
    finished_at: datetime


MasteryEvent = MasteryChanged | RecalculationStarted | RecalculationFinished

AuditedRead = Literal["timeline", "student-summary"]


class AuditorAccessed(Event, frozen=True, kw_only=True):
    """An auditor read a student's mastery: who, what and when, so the
    school can answer for every look at its records.

    ``objective_id`` names the timeline read, none for a whole student's
    summary; ``as_of`` and ``known_at`` are the moments asked about, none
    for now. The auditor and the student appear by opaque id only.
    """

    access_id: UUID
    auditor: str
    read: AuditedRead
    student_id: str
    objective_id: UUID | None = None
    as_of: datetime | None = None
    known_at: datetime | None = None
    accessed_at: datetime


AuditEvent = AuditorAccessed

TraditionalKind = Literal["percent", "points", "pass_fail"]


class TraditionalGradeRecorded(Event, frozen=True, kw_only=True):
    """A section that keeps traditional grades recorded one: a percent, a
    points score out of ``points_possible``, or pass/fail."""

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


class TraditionalGradeVoided(Event, frozen=True, kw_only=True):
    """A traditional grade was withdrawn, with a reason."""

    grade_id: UUID
    reason: str
    voided_by: str
    voided_at: datetime


class LetterCut(msgspec.Struct, frozen=True, kw_only=True):
    """The lowest percent that earns ``letter``."""

    letter: str
    min_percent: float


class GradeBridgeSet(Event, frozen=True, kw_only=True):
    """A section chose how current mastery becomes a percent and a letter:
    the percent is the mean level's place between the scale's lowest and
    highest values, and the letter comes from the cut scores."""

    section_id: str
    cuts: tuple[LetterCut, ...]
    set_by: str
    set_at: datetime


GradebookEvent = TraditionalGradeRecorded | TraditionalGradeVoided | GradeBridgeSet
