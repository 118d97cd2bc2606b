"""Recording assessments and correcting them, as pure decisions.

A command says what a teacher asks for and is given the time; the facts
say what grading knows at that moment (the scale versions, the objectives
and their sets, the section's sets and students). ``decide_*`` either
returns the events to append or raises a ``GradingError`` naming what is
wrong; ``evolve`` folds an assessment's events into its current state.
Corrections are new events: an amend or a void never rewrites a recording.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

import msgspec

from mastery_events.access import Owner, may
from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentEvent,
    AssessmentRecorded,
    AssessmentVoided,
    Evidence,
)
from mastery_events.identity import Identity
from mastery_grading.errors import (
    AssessmentNotFoundError,
    AssessmentRefusedError,
    AssessmentVoidedError,
    BatchRefusedError,
    NothingToAmendError,
    NotOnScaleError,
    ObjectiveOutsideSectionError,
    ReadingMissingError,
    RowProblem,
    SectionNotGradableError,
    StudentNotInSectionError,
    UnknownObjectiveError,
    UnknownScaleVersionError,
    UnknownSectionError,
)
from mastery_grading.scales import ScaleView

AREA = "grading"
# A refused batch names this many bad rows at most, and counts the rest.
MOST_ROW_PROBLEMS = 50


def assessment_stream(assessment_id: UUID) -> str:
    """Return the id of the stream that holds one assessment's events."""
    return f"assessment-{assessment_id}"


class SectionFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the roster says of one section: whether it holds the section
    at all, the objective sets it teaches and the students actively
    enrolled in it."""

    section_id: str
    known: bool
    objective_sets: frozenset[UUID]
    students: frozenset[str]


class GradingFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What grading knows when a recording is decided: the scale versions
    named, each known objective's set, and the section's roster."""

    scales: Mapping[tuple[UUID, int], ScaleView]
    objective_sets: Mapping[UUID, UUID]
    section: SectionFacts


class AssessmentRow(msgspec.Struct, frozen=True, kw_only=True):
    """One student's result on one objective within a batch; its own
    ``assessed_at`` and ``comment`` override the batch's."""

    assessment_id: UUID
    student_id: str
    objective_id: UUID
    level: float | None = None
    mark: str | None = None
    assessed_at: datetime | None = None
    comment: str | None = None


class RecordBatch(msgspec.Struct, frozen=True, kw_only=True):
    """Record many results of one piece of work in one section at once:
    all of them or, when one row is wrong, none."""

    section_id: str
    scale_id: UUID
    scale_version: int
    assessed_at: datetime
    evidence: Evidence
    rows: tuple[AssessmentRow, ...]
    assessed_by: str
    at: datetime


class RecordAssessment(msgspec.Struct, frozen=True, kw_only=True):
    """Record one student's level or mark on one objective."""

    assessment_id: UUID
    section_id: str
    student_id: str
    objective_id: UUID
    scale_id: UUID
    scale_version: int
    level: float | None = None
    mark: str | None = None
    assessed_at: datetime
    evidence: Evidence
    comment: str | None = None
    assessed_by: str
    at: datetime


class AmendAssessment(msgspec.Struct, frozen=True, kw_only=True):
    """Correct an assessment's level, mark or date, giving a reason."""

    assessment_id: UUID
    level: float | None = None
    mark: str | None = None
    assessed_at: datetime | None = None
    reason: str
    amended_by: str
    at: datetime


class VoidAssessment(msgspec.Struct, frozen=True, kw_only=True):
    """Withdraw an assessment from the evidence, giving a reason."""

    assessment_id: UUID
    reason: str
    voided_by: str
    at: datetime


class AmendmentNote(msgspec.Struct, frozen=True, kw_only=True):
    """One amend as it was made: what it set, who made it, when and why."""

    level: float | None
    mark: str | None
    assessed_at: datetime | None
    reason: str
    amended_by: str
    amended_at: datetime


class VoidNote(msgspec.Struct, frozen=True, kw_only=True):
    """Who voided an assessment, when and why."""

    reason: str
    voided_by: str
    voided_at: datetime


class AssessmentState(msgspec.Struct, frozen=True, kw_only=True):
    """An assessment as it stands after every correction, with the
    corrections themselves kept in order."""

    assessment_id: UUID
    student_id: str
    section_id: str | None
    objective_id: UUID
    scale_id: UUID
    scale_version: int
    level: float | None
    mark: str | None
    assessed_at: datetime
    assessed_by: str
    evidence: Evidence
    comment: str | None = None
    amendments: tuple[AmendmentNote, ...] = ()
    voided: VoidNote | None = None


def may_grade(caller: Identity, section_id: str | None) -> bool:
    """Tell whether ``caller`` may record grades in ``section_id``: a
    teacher of it, a district admin, or a service with the grading write
    scope; school leaders and auditors never do."""
    owner = Owner(tenant_id=caller.tenant_id, section_id=section_id)
    return may(caller, owner, action="write", area=AREA)


def check_section(caller: Identity, section_id: str) -> None:
    """Raise ``SectionNotGradableError`` unless ``caller`` may record grades
    in ``section_id``."""
    if not may_grade(caller, section_id):
        raise SectionNotGradableError(caller.subject, section_id=section_id)


def check_reading(
    scale: ScaleView, scale_id: UUID, *, level: float | None, mark: str | None
) -> None:
    """Raise unless exactly one of ``level`` and ``mark`` is given and it
    is one of the scale version's levels or marks."""
    if (level is None) == (mark is None):
        raise ReadingMissingError(both=level is not None)
    if level is not None and all(known.value != level for known in scale.levels):
        raise NotOnScaleError(scale_id, scale.version, field="level", value=level)
    if mark is not None and scale.mark(mark) is None:
        raise NotOnScaleError(scale_id, scale.version, field="mark", value=mark)


def decide_record(
    command: RecordAssessment, facts: GradingFacts, *, caller: Identity
) -> AssessmentRecorded:
    """Decide one recording: refuse it when the caller may not grade the
    section, the reading is not on the scale version, the objective is not
    taught there, or the student is not enrolled there."""
    check_section(caller, command.section_id)
    check_section_and_scale(
        command.section_id, command.scale_id, command.scale_version, facts
    )

    return recorded(command, facts)


def check_section_and_scale(
    section_id: str, scale_id: UUID, scale_version: int, facts: GradingFacts
) -> None:
    """Refuse what every row shares: a section the roster does not hold, a
    scale version grading does not know."""
    if not facts.section.known:
        raise UnknownSectionError(section_id)
    if (scale_id, scale_version) not in facts.scales:
        raise UnknownScaleVersionError(scale_id, scale_version)


def recorded(command: RecordAssessment, facts: GradingFacts) -> AssessmentRecorded:
    """Check one recording against the facts and return its event."""
    scale = facts.scales.get((command.scale_id, command.scale_version))
    if scale is None:
        raise UnknownScaleVersionError(command.scale_id, command.scale_version)
    check_reading(scale, command.scale_id, level=command.level, mark=command.mark)
    objective_set = facts.objective_sets.get(command.objective_id)
    if objective_set is None:
        raise UnknownObjectiveError(command.objective_id)
    section = facts.section
    if objective_set not in section.objective_sets:
        raise ObjectiveOutsideSectionError(
            command.objective_id, section_id=section.section_id
        )
    if command.student_id not in section.students:
        raise StudentNotInSectionError(
            command.student_id, section_id=section.section_id
        )

    return AssessmentRecorded(
        assessment_id=command.assessment_id,
        student_id=command.student_id,
        section_id=command.section_id,
        objective_id=command.objective_id,
        scale_id=command.scale_id,
        scale_version=command.scale_version,
        level=command.level,
        mark=command.mark,
        assessed_at=command.assessed_at,
        assessed_by=command.assessed_by,
        evidence=command.evidence,
        comment=command.comment,
    )


def row_command(batch: RecordBatch, row: AssessmentRow) -> RecordAssessment:
    """Return the recording one row of ``batch`` stands for."""
    return RecordAssessment(
        assessment_id=row.assessment_id,
        section_id=batch.section_id,
        student_id=row.student_id,
        objective_id=row.objective_id,
        scale_id=batch.scale_id,
        scale_version=batch.scale_version,
        level=row.level,
        mark=row.mark,
        assessed_at=row.assessed_at or batch.assessed_at,
        evidence=batch.evidence,
        comment=row.comment,
        assessed_by=batch.assessed_by,
        at=batch.at,
    )


def decide_batch(
    batch: RecordBatch, facts: GradingFacts, *, caller: Identity
) -> list[AssessmentRecorded]:
    """Decide a whole batch: every row recorded, or ``BatchRefusedError``
    naming each bad row by index and field and nothing recorded."""
    check_section(caller, batch.section_id)
    check_section_and_scale(
        batch.section_id, batch.scale_id, batch.scale_version, facts
    )

    events: list[AssessmentRecorded] = []
    problems: list[RowProblem] = []
    for index, row in enumerate(batch.rows):
        try:
            events.append(recorded(row_command(batch, row), facts))
        except AssessmentRefusedError as error:
            problems.append(
                RowProblem(row=index, field=error.field, message=str(error))
            )
    if problems:
        shown = tuple(problems[:MOST_ROW_PROBLEMS])
        raise BatchRefusedError(shown, total=len(problems))

    return events


def check_correctable(
    state: AssessmentState | None, assessment_id: UUID, *, caller: Identity
) -> AssessmentState:
    """Return the assessment a correction names, or raise when it is
    unknown, outside the caller's sections (answered alike) or voided."""
    if state is None:
        raise AssessmentNotFoundError(assessment_id)
    if not may_grade(caller, state.section_id):
        raise AssessmentNotFoundError(assessment_id)
    if state.voided is not None:
        raise AssessmentVoidedError(assessment_id)

    return state


def decide_amend(
    state: AssessmentState | None,
    command: AmendAssessment,
    *,
    scale: ScaleView | None,
    caller: Identity,
) -> AssessmentAmended:
    """Decide an amend of the assessment in ``state``, whose scale version
    is ``scale``: a new reading must be on that version, and an amend that
    changes nothing is refused."""
    current = check_correctable(state, command.assessment_id, caller=caller)
    new_reading = command.level is not None or command.mark is not None
    if new_reading:
        if scale is None:
            raise UnknownScaleVersionError(current.scale_id, current.scale_version)
        check_reading(scale, current.scale_id, level=command.level, mark=command.mark)
    same_reading = (command.level, command.mark) == (current.level, current.mark)
    same_date = command.assessed_at in (None, current.assessed_at)
    if (not new_reading or same_reading) and same_date:
        raise NothingToAmendError(command.assessment_id)

    return AssessmentAmended(
        assessment_id=command.assessment_id,
        level=command.level,
        mark=command.mark,
        assessed_at=command.assessed_at,
        reason=command.reason,
        amended_by=command.amended_by,
        amended_at=command.at,
    )


def decide_void(
    state: AssessmentState | None, command: VoidAssessment, *, caller: Identity
) -> AssessmentVoided:
    """Decide a void of the assessment in ``state``."""
    check_correctable(state, command.assessment_id, caller=caller)

    return AssessmentVoided(
        assessment_id=command.assessment_id,
        reason=command.reason,
        voided_by=command.voided_by,
        voided_at=command.at,
    )


def evolve(state: AssessmentState | None, event: AssessmentEvent) -> AssessmentState:
    """Return the assessment after ``event``.

    A new level clears the mark and a new mark the level, as an assessment
    says one or the other; a new date alone keeps the reading.
    """
    if isinstance(event, AssessmentRecorded):
        return AssessmentState(
            assessment_id=event.assessment_id,
            student_id=event.student_id,
            section_id=event.section_id,
            objective_id=event.objective_id,
            scale_id=event.scale_id,
            scale_version=event.scale_version,
            level=event.level,
            mark=event.mark,
            assessed_at=event.assessed_at,
            assessed_by=event.assessed_by,
            evidence=event.evidence,
            comment=event.comment,
        )
    if state is None:
        raise AssessmentNotFoundError(event.assessment_id)
    if isinstance(event, AssessmentAmended):
        level, mark = state.level, state.mark
        if event.level is not None or event.mark is not None:
            level, mark = event.level, event.mark
        note = AmendmentNote(
            level=event.level,
            mark=event.mark,
            assessed_at=event.assessed_at,
            reason=event.reason,
            amended_by=event.amended_by,
            amended_at=event.amended_at,
        )
        return msgspec.structs.replace(
            state,
            level=level,
            mark=mark,
            assessed_at=event.assessed_at or state.assessed_at,
            amendments=(*state.amendments, note),
        )
    if state.voided is not None:
        return state
    note_of_void = VoidNote(
        reason=event.reason, voided_by=event.voided_by, voided_at=event.voided_at
    )

    return msgspec.structs.replace(state, voided=note_of_void)
