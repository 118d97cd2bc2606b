"""One sample of every roster, mastery and gradebook event, with memorable
values, for the contract's round-trip tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

from mastery_events.contract.grading import (
    GradeBridgeSet,
    LeftOut,
    LetterCut,
    MasteryChanged,
    RecalculationFinished,
    RecalculationStarted,
    TraditionalGradeRecorded,
    TraditionalGradeVoided,
)
from mastery_events.contract.roster import (
    GuardianLinked,
    GuardianUnlinked,
    ObjectiveSetLinked,
    ObjectiveSetUnlinked,
    PersonEnrolled,
    PersonErased,
    PersonRemoved,
    PersonRostered,
    PersonUnenrolled,
    RetentionPeriodSet,
    RosterImported,
    SchoolRemoved,
    SchoolRostered,
    Sealed,
    SectionRemoved,
    SectionRostered,
    TermRemoved,
    TermRostered,
)
from mastery_events.envelope import Event

FIRST_DAY = datetime(2026, 8, 24, 8, 0, tzinfo=UTC)
LISA = UUID("0190a5c4-1e00-7000-8000-0000000115a0")
MARGE = UUID("0190a5c4-1e00-7000-8000-00000000ba12")
FRACTIONS = UUID("0190a5c4-1e00-7000-8000-0000000000b1")
GRADE_4_MATH = UUID("0190a5c4-1e00-7000-8000-000000000005")
FOURTH_SCALE = UUID("0190a5c4-1e00-7000-8000-00000000005c")
QUIZ = UUID("0190a5c4-1e00-7000-8000-00000000a55e")
JOB = UUID("0190a5c4-1e00-7000-8000-0000000000a0")
GRADE = UUID("0190a5c4-1e00-7000-8000-00000000062a")


def roster_samples() -> list[Event]:
    """Return one event of every roster type."""
    return [
        SchoolRostered(
            school_id="springfield-elementary",
            name="Springfield Elementary",
            rostered_at=FIRST_DAY,
        ),
        SchoolRemoved(school_id="springfield-elementary", removed_at=FIRST_DAY),
        TermRostered(
            term_id="fall-2026",
            title="Fall 2026",
            kind="semester",
            starts_on=date(2026, 8, 24),
            ends_on=date(2026, 12, 18),
            school_year="2027",
            rostered_at=FIRST_DAY,
        ),
        TermRemoved(term_id="fall-2026", removed_at=FIRST_DAY),
        SectionRostered(
            section_id="math-4b",
            title="Mathematics 4B",
            school_id="springfield-elementary",
            course_id="math-4",
            course_title="Mathematics 4",
            term_ids=("fall-2026",),
            rostered_at=FIRST_DAY,
        ),
        SectionRemoved(section_id="math-4b", removed_at=FIRST_DAY),
        PersonRostered(
            person_id=LISA,
            sourced_id_digest="5f1d",
            role="student",
            school_ids=("springfield-elementary",),
            personal=Sealed(key_id=LISA, nonce=b"twelve bytes", ciphertext=b"sealed"),
            rostered_at=FIRST_DAY,
        ),
        PersonRemoved(person_id=LISA, removed_at=FIRST_DAY),
        PersonEnrolled(
            person_id=LISA, section_id="math-4b", role="student", enrolled_at=FIRST_DAY
        ),
        PersonUnenrolled(person_id=LISA, section_id="math-4b", unenrolled_at=FIRST_DAY),
        GuardianLinked(guardian_id=MARGE, student_id=LISA, linked_at=FIRST_DAY),
        GuardianUnlinked(guardian_id=MARGE, student_id=LISA, unlinked_at=FIRST_DAY),
        RosterImported(
            import_id=QUIZ,
            counts={"people_added": 2},
            imported_by="admin-chalmers",
            imported_at=FIRST_DAY,
        ),
        ObjectiveSetLinked(
            section_id="math-4b",
            objective_set_id=GRADE_4_MATH,
            linked_by="teacher-krabappel",
            linked_at=FIRST_DAY,
        ),
        ObjectiveSetUnlinked(
            section_id="math-4b",
            objective_set_id=GRADE_4_MATH,
            unlinked_by="teacher-krabappel",
            unlinked_at=FIRST_DAY,
        ),
        PersonErased(
            person_id=LISA,
            erased_by="admin-chalmers",
            erased_at=FIRST_DAY,
            reason="Records request: erase after transfer",
        ),
        RetentionPeriodSet(
            days=365,
            set_by="admin-chalmers",
            set_at=FIRST_DAY,
        ),
    ]


def mastery_samples() -> list[Event]:
    """Return one event of every mastery and gradebook type."""
    return [
        MasteryChanged(
            student_id=str(LISA),
            objective_id=FRACTIONS,
            valid_from=FIRST_DAY,
            status="scored",
            score=3.0,
            level=3.0,
            level_label="Proficient",
            mastered=True,
            method="decaying_average",
            parameters={"weight": 0.65},
            scale_id=FOURTH_SCALE,
            scale_version=1,
            policy_version=1,
            counted=(QUIZ,),
            left_out=(LeftOut(assessment_id=GRADE, reason="voided"),),
            cause_event_id=QUIZ,
            reason="assessment recorded",
        ),
        RecalculationStarted(
            job_id=JOB,
            reason="scale version 2 published",
            scale_id=FOURTH_SCALE,
            scale_version=2,
            timelines=30,
            started_at=FIRST_DAY,
        ),
        RecalculationStarted(
            job_id=JOB,
            reason="override version 3",
            objective_set_id=GRADE_4_MATH,
            objective_id=FRACTIONS,
            policy_version=3,
            timelines=12,
            started_at=FIRST_DAY,
        ),
        RecalculationFinished(
            job_id=JOB, timelines=30, changed=4, finished_at=FIRST_DAY
        ),
        TraditionalGradeRecorded(
            grade_id=GRADE,
            section_id="math-4b",
            student_id=str(LISA),
            title="Unit 1 test",
            kind="points",
            points=18.0,
            points_possible=20.0,
            assessed_at=FIRST_DAY,
            recorded_by="teacher-krabappel",
        ),
        TraditionalGradeVoided(
            grade_id=GRADE,
            reason="Wrong student",
            voided_by="teacher-krabappel",
            voided_at=FIRST_DAY,
        ),
        GradeBridgeSet(
            section_id="math-4b",
            cuts=(LetterCut(letter="A", min_percent=90.0),),
            set_by="teacher-krabappel",
            set_at=FIRST_DAY,
        ),
    ]
