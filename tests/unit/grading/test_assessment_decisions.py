"""The pure decisions behind recording and correcting assessments: what
each command becomes, and each refusal with the field it names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
import pytest

from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentRecorded,
    Evidence,
)
from mastery_events.identity import Identity, Role
from mastery_grading.assessments import (
    AmendAssessment,
    AssessmentRow,
    GradingFacts,
    RecordAssessment,
    RecordBatch,
    SectionFacts,
    VoidAssessment,
    decide_amend,
    decide_batch,
    decide_record,
    decide_void,
    evolve,
)
from mastery_grading.errors import (
    AssessmentNotFoundError,
    AssessmentVoidedError,
    BatchRefusedError,
    NothingToAmendError,
    NotOnScaleError,
    ObjectiveOutsideSectionError,
    ReadingMissingError,
    SectionNotGradableError,
    StudentNotInSectionError,
    UnknownObjectiveError,
    UnknownScaleVersionError,
    UnknownSectionError,
)
from mastery_grading.scales import Level, Mark, ScaleView

TENANT = "lakeside"
SCALE = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd7031")
MATHS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd7001")
SCIENCE = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd7002")
RATIOS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd7011")
MAGNETS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd7021")
PHONICS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd7099")
MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
NOW = MONDAY + timedelta(days=3)

FOUR = ScaleView(
    name="Lakeside four",
    version=1,
    levels=tuple(
        Level(value=value, label=label, cut=value - 0.5 if value > 1 else 1)
        for value, label in ((1, "B"), (2, "D"), (3, "P"), (4, "E"))
    ),
    mastery_threshold=3,
    marks=(Mark(code="M", meaning="missing", counts_as_lowest=True),),
    scale_id=SCALE,
)
FACTS = GradingFacts(
    scales={(SCALE, 1): FOUR},
    objective_sets={RATIOS: MATHS, MAGNETS: SCIENCE},
    section=SectionFacts(
        section_id="room-12",
        known=True,
        objective_sets=frozenset({MATHS}),
        students=frozenset({"ana", "ben", "cy"}),
    ),
)


def person(*roles: Role, sections: tuple[str, ...] = ()) -> Identity:
    """Someone of the tenant holding ``roles``."""
    return Identity(
        subject="ms-frizzle",
        tenant_id=TENANT,
        roles=frozenset(roles),
        sections=frozenset(sections),
    )


FRIZZLE = person("teacher", sections=("room-12",))


def record(**changes: object) -> RecordAssessment:
    """Ana's level 3 on ratios in room 12, changed as given."""
    command = RecordAssessment(
        assessment_id=UUID(int=1),
        section_id="room-12",
        student_id="ana",
        objective_id=RATIOS,
        scale_id=SCALE,
        scale_version=1,
        level=3,
        assessed_at=MONDAY,
        evidence=Evidence(title="Quiz", kind="summative"),
        assessed_by="ms-frizzle",
        at=NOW,
    )
    return msgspec.structs.replace(command, **changes)


def test_a_recording_becomes_one_event_carrying_every_field() -> None:
    """The event says who, which student, objective, section, scale
    version, level, when the work happened and the evidence."""
    event = decide_record(record(), FACTS, caller=FRIZZLE)

    assert event == AssessmentRecorded(
        assessment_id=UUID(int=1),
        student_id="ana",
        section_id="room-12",
        objective_id=RATIOS,
        scale_id=SCALE,
        scale_version=1,
        level=3,
        assessed_at=MONDAY,
        assessed_by="ms-frizzle",
        evidence=Evidence(title="Quiz", kind="summative"),
    )


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"level": 2.5}, NotOnScaleError, "level"),
        ({"level": None, "mark": "LATE"}, NotOnScaleError, "mark"),
        ({"level": None}, ReadingMissingError, "level"),
        ({"mark": "M"}, ReadingMissingError, "level"),
        ({"scale_version": 2}, UnknownScaleVersionError, "scale_version"),
        ({"objective_id": PHONICS}, UnknownObjectiveError, "objective_id"),
        ({"objective_id": MAGNETS}, ObjectiveOutsideSectionError, "objective_id"),
        ({"student_id": "dee"}, StudentNotInSectionError, "student_id"),
    ],
)
def test_each_mistake_is_refused_with_its_field(
    changes: dict[str, object], error: type[Exception], field: str
) -> None:
    """A level between levels, an unknown mark, no reading or two, an
    unknown scale version or objective, an objective of another section's
    set and a student not enrolled are each refused, naming the field."""
    with pytest.raises(error) as refused:
        decide_record(record(**changes), FACTS, caller=FRIZZLE)

    assert refused.value.field == field  # type: ignore[attr-defined]


def test_a_missing_mark_is_recorded_without_a_level() -> None:
    """``M`` is one of the scale's marks, so it is recorded as given."""
    event = decide_record(record(level=None, mark="M"), FACTS, caller=FRIZZLE)

    assert (event.level, event.mark) == (None, "M")


def test_an_unknown_section_is_refused() -> None:
    """A section the roster does not hold is named as such."""
    facts = msgspec.structs.replace(
        FACTS, section=msgspec.structs.replace(FACTS.section, known=False)
    )

    with pytest.raises(UnknownSectionError):
        decide_record(record(), facts, caller=FRIZZLE)


@pytest.mark.parametrize(
    "caller",
    [
        person("teacher", sections=("room-14",)),
        person("school_leader"),
        person("auditor"),
    ],
    ids=["teacher-of-another-room", "school-leader", "auditor"],
)
def test_only_the_sections_teachers_and_admins_record(caller: Identity) -> None:
    """Another room's teacher, a school leader and an auditor may not
    record grades in room 12."""
    with pytest.raises(SectionNotGradableError):
        decide_record(record(), FACTS, caller=caller)


def test_a_district_admin_records_in_any_section() -> None:
    """The admin needs no section claim."""
    event = decide_record(record(), FACTS, caller=person("district_admin"))

    assert event.section_id == "room-12"


def batch(*rows: AssessmentRow) -> RecordBatch:
    """A batch of ``rows`` for one quiz in room 12."""
    return RecordBatch(
        section_id="room-12",
        scale_id=SCALE,
        scale_version=1,
        assessed_at=MONDAY,
        evidence=Evidence(title="Quiz"),
        rows=rows,
        assessed_by="ms-frizzle",
        at=NOW,
    )


def row(number: int, student: str, **changes: object) -> AssessmentRow:
    """Row ``number``: ``student`` at level 2 on ratios."""
    found = AssessmentRow(
        assessment_id=UUID(int=number), student_id=student, objective_id=RATIOS, level=2
    )
    return msgspec.structs.replace(found, **changes)


def test_a_batch_gives_each_row_its_own_assessment() -> None:
    """Three rows make three events in order; a row's own date wins over
    the batch's."""
    later = MONDAY + timedelta(hours=2)
    events = decide_batch(
        batch(row(1, "ana"), row(2, "ben", assessed_at=later), row(3, "cy")),
        FACTS,
        caller=FRIZZLE,
    )

    assert [event.student_id for event in events] == ["ana", "ben", "cy"]
    assert [event.assessed_at for event in events] == [MONDAY, later, MONDAY]
    assert {event.evidence.title for event in events} == {"Quiz"}


def test_a_batch_with_bad_rows_is_refused_naming_each_row() -> None:
    """Rows 1 and 2 are wrong in different ways: both are named with
    their fields, and the whole batch is refused."""
    with pytest.raises(BatchRefusedError) as refused:
        decide_batch(
            batch(row(1, "ana"), row(2, "dee"), row(3, "cy", level=9)),
            FACTS,
            caller=FRIZZLE,
        )

    assert refused.value.total == 2
    assert [(p.row, p.field) for p in refused.value.problems] == [
        (1, "student_id"),
        (2, "level"),
    ]


def test_a_batch_on_an_unknown_scale_version_is_refused_once() -> None:
    """A scale version every row shares is a problem of the batch, not of
    each row."""
    unknown = msgspec.structs.replace(batch(row(1, "ana")), scale_version=4)

    with pytest.raises(UnknownScaleVersionError):
        decide_batch(unknown, FACTS, caller=FRIZZLE)


def amend(**changes: object) -> AmendAssessment:
    """An amend of Ana's assessment, changed as given."""
    command = AmendAssessment(
        assessment_id=UUID(int=1), reason="Typo", amended_by="ms-frizzle", at=NOW
    )
    return msgspec.structs.replace(command, **changes)


def test_an_amend_changes_the_level_and_keeps_the_history() -> None:
    """Level 2 amended to 3: the state reads 3 and keeps the amend with
    its reason; the recording's date stays."""
    state = evolve(None, decide_record(record(level=2), FACTS, caller=FRIZZLE))

    event = decide_amend(state, amend(level=3), scale=FOUR, caller=FRIZZLE)
    after = evolve(state, event)

    assert isinstance(event, AssessmentAmended)
    assert (after.level, after.assessed_at) == (3, MONDAY)
    assert [note.reason for note in after.amendments] == ["Typo"]


def test_an_amend_to_a_mark_clears_the_level() -> None:
    """An assessment says a level or a mark, never both."""
    state = evolve(None, decide_record(record(level=2), FACTS, caller=FRIZZLE))

    after = evolve(
        state, decide_amend(state, amend(mark="M"), scale=FOUR, caller=FRIZZLE)
    )

    assert (after.level, after.mark) == (None, "M")


def test_amends_that_change_nothing_or_leave_the_scale_are_refused() -> None:
    """The same level and no new date changes nothing; level 5 is not on
    the scale."""
    state = evolve(None, decide_record(record(level=2), FACTS, caller=FRIZZLE))

    with pytest.raises(NothingToAmendError):
        decide_amend(state, amend(level=2), scale=FOUR, caller=FRIZZLE)
    with pytest.raises(NothingToAmendError):
        decide_amend(state, amend(), scale=FOUR, caller=FRIZZLE)
    with pytest.raises(NotOnScaleError):
        decide_amend(state, amend(level=5), scale=FOUR, caller=FRIZZLE)


def test_a_void_withdraws_once_and_ends_corrections() -> None:
    """After a void, another void and an amend are refused as voided."""
    state = evolve(None, decide_record(record(), FACTS, caller=FRIZZLE))
    void = VoidAssessment(
        assessment_id=UUID(int=1), reason="Retaken", voided_by="ms-frizzle", at=NOW
    )

    voided = evolve(state, decide_void(state, void, caller=FRIZZLE))

    assert voided.voided is not None
    assert voided.voided.reason == "Retaken"
    with pytest.raises(AssessmentVoidedError):
        decide_void(voided, void, caller=FRIZZLE)
    with pytest.raises(AssessmentVoidedError):
        decide_amend(voided, amend(level=4), scale=FOUR, caller=FRIZZLE)


def test_corrections_of_unknown_or_unseen_assessments_are_not_found() -> None:
    """No state, or another room's teacher, reads as not found."""
    state = evolve(None, decide_record(record(), FACTS, caller=FRIZZLE))
    void = VoidAssessment(
        assessment_id=UUID(int=1), reason="Mine", voided_by="mr-ratburn", at=NOW
    )
    ratburn = person("teacher", sections=("room-14",))

    with pytest.raises(AssessmentNotFoundError):
        decide_void(None, void, caller=FRIZZLE)
    with pytest.raises(AssessmentNotFoundError):
        decide_void(state, void, caller=ratburn)
