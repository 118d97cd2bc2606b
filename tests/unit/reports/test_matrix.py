"""The section matrix and the leaders' roll-ups, from snapshots."""

from __future__ import annotations

from uuid import UUID

from mastery_reports.matrix import matrix_rows, roll_up, rollup_rows, section_matrix
from mastery_reports.snapshots import (
    Level,
    ObjectiveReport,
    SectionReport,
    SetReport,
    StudentSnapshot,
    Totals,
)

SET = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6f5e")
FRACTIONS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6f01")
DECIMALS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6f02")
PROFICIENT = Level(
    value=3, label="Proficient", short_label="P", colour="#2e7d32",
    text_colour="#ffffff", rank=3, ranks=4,
)  # fmt: skip


def objective(objective_id: UUID, code: str, *, mastered: bool) -> ObjectiveReport:
    """An objective in grade band 4, Proficient when mastered."""
    return ObjectiveReport(
        objective_id=objective_id,
        code=code,
        statement=code,
        grade_bands=("4",),
        level=PROFICIENT if mastered else None,
        mastered=mastered,
    )


def student(
    student_id: str, section_id: str, school_id: str, *mastered: bool
) -> StudentSnapshot:
    """A student of one section, mastering fractions and decimals as told."""
    objectives = (
        objective(FRACTIONS, "4.NF.1", mastered=mastered[0]),
        objective(DECIMALS, "=4.NF.6", mastered=mastered[1]),
    )
    return StudentSnapshot(
        student_id=student_id,
        sections=(
            SectionReport(
                section_id=section_id,
                school_id=school_id,
                title=section_id.title(),
                course_title="Mathematics 4",
                term_ids=(),
                objective_sets=(
                    SetReport(
                        objective_set_id=SET,
                        title="Grade 4",
                        totals=Totals(objectives=2, assessed=0, mastered=0),
                        objectives=objectives,
                    ),
                ),
            ),
        ),
    )


STUDENTS = [
    student("ada", "room-12", "lincoln", True, True),
    student("bo", "room-12", "lincoln", True, False),
    student("cy", "room-14", "lincoln", False, False),
    student("di", "room-3", "hoover", True, False),
]


def test_a_matrix_has_a_row_per_student_and_a_column_per_objective() -> None:
    """Room 12's Ada and Bo, fractions and decimals; the CSV escapes a
    code a spreadsheet would run as a formula."""
    matrix = section_matrix("room-12", "Room 12", STUDENTS)
    rows = matrix_rows(matrix)

    assert [row.student_id for row in matrix.students] == ["ada", "bo"]
    assert [o.code for o in matrix.objectives] == ["4.NF.1", "=4.NF.6"]
    assert rows[0] == ["student_id", "name", "4.NF.1", "'=4.NF.6"]
    assert rows[2] == ["bo", "", "Proficient", ""]


def test_roll_ups_count_pairs_at_mastery_per_group() -> None:
    """Over every section: fractions 3 of 4, Lincoln 3 of 6, Hoover 1 of
    2, grade band 4 at 4 of 8; a leader of Lincoln alone sees 3 students."""
    everything = roll_up(STUDENTS, visible=lambda section: True)
    lincoln = roll_up(STUDENTS, visible=lambda section: section.school_id == "lincoln")
    by_key = {share.key: share for share in everything.schools}

    assert everything.students == 4
    assert [(s.label, s.mastered, s.pairs) for s in everything.objectives] == [
        ("4.NF.1", 3, 4),
        ("=4.NF.6", 1, 4),
    ]
    assert (by_key["lincoln"].mastered, by_key["lincoln"].pairs) == (3, 6)
    assert by_key["hoover"].share == 0.5
    assert [(s.key, s.mastered, s.pairs) for s in everything.grade_bands] == [
        ("4", 4, 8)
    ]
    assert lincoln.students == 3
    assert rollup_rows(lincoln)[0] == [
        "group",
        "key",
        "label",
        "pairs",
        "mastered",
        "share",
    ]
