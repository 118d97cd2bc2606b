"""Views for teachers and leaders: a section's students by objectives, and
the share of students at mastery rolled up by objective, section, school
and grade band. Pure functions over snapshots."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from uuid import UUID

import msgspec

from mastery_reports.snapshots import ObjectiveReport, SectionReport, StudentSnapshot

UNBANDED = "none"
# Characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class MatrixObjective(msgspec.Struct, frozen=True, kw_only=True):
    """A column of the matrix."""

    objective_id: UUID
    code: str | None
    statement: str


class Cell(msgspec.Struct, frozen=True, kw_only=True):
    """One student's standing on one objective."""

    objective_id: UUID
    label: str | None = None
    short_label: str | None = None
    rank: int | None = None
    mastered: bool = False


class MatrixRow(msgspec.Struct, frozen=True, kw_only=True):
    """One student's row, with their name when the keyring opens it."""

    student_id: str
    name: str | None = None
    cells: tuple[Cell, ...]


class Matrix(msgspec.Struct, frozen=True, kw_only=True):
    """A section's students by its objectives, a level in each cell."""

    section_id: str
    title: str
    objectives: tuple[MatrixObjective, ...]
    students: tuple[MatrixRow, ...]


def section_matrix(
    section_id: str,
    title: str,
    snapshots: Iterable[StudentSnapshot],
    *,
    names: Mapping[str, str | None] | None = None,
) -> Matrix:
    """Return the matrix of one section from its students' snapshots."""
    columns: dict[UUID, MatrixObjective] = {}
    rows = []
    for snapshot in sorted(snapshots, key=lambda s: s.student_id):
        section = next(
            (s for s in snapshot.sections if s.section_id == section_id), None
        )
        if section is None:
            continue
        cells = []
        for objective in objectives_of(section):
            columns.setdefault(
                objective.objective_id,
                MatrixObjective(
                    objective_id=objective.objective_id,
                    code=objective.code,
                    statement=objective.statement,
                ),
            )
            level = objective.level
            cells.append(
                Cell(
                    objective_id=objective.objective_id,
                    label=level.label if level else None,
                    short_label=level.short_label if level else None,
                    rank=level.rank if level else None,
                    mastered=objective.mastered,
                )
            )
        rows.append(
            MatrixRow(
                student_id=snapshot.student_id,
                name=(names or {}).get(snapshot.student_id),
                cells=tuple(cells),
            )
        )

    return Matrix(
        section_id=section_id,
        title=title,
        objectives=tuple(columns.values()),
        students=tuple(rows),
    )


def objectives_of(section: SectionReport) -> list[ObjectiveReport]:
    """Return a section's objectives in report order, each once."""
    seen: dict[UUID, ObjectiveReport] = {}
    for objective_set in section.objective_sets:
        for objective in objective_set.objectives:
            seen.setdefault(objective.objective_id, objective)

    return list(seen.values())


def matrix_rows(matrix: Matrix) -> list[list[str]]:
    """Return the matrix as CSV rows: a header of objective codes, then one
    row per student, their name, and each cell's level label."""
    header = ["student_id", "name"] + [o.code or o.statement for o in matrix.objectives]
    rows = [header]
    for student in matrix.students:
        by_objective = {cell.objective_id: cell for cell in student.cells}
        row = [student.student_id, student.name or ""]
        for objective in matrix.objectives:
            cell = by_objective.get(objective.objective_id)
            row.append(cell.label or "" if cell else "")
        rows.append(row)

    return [[spreadsheet_safe(value) for value in row] for row in rows]


def spreadsheet_safe(value: str) -> str:
    """Return ``value`` so a spreadsheet shows it as text, never runs it."""
    if value.startswith(FORMULA_STARTS):
        return "'" + value

    return value


class ShareView(msgspec.Struct, frozen=True, kw_only=True):
    """How many of a group's student-objective pairs are mastered, and
    what fraction that is."""

    key: str
    label: str
    pairs: int
    mastered: int
    share: float


class Rollup(msgspec.Struct, frozen=True, kw_only=True):
    """Shares of students at mastery, grouped four ways."""

    students: int
    objectives: tuple[ShareView, ...]
    sections: tuple[ShareView, ...]
    schools: tuple[ShareView, ...]
    grade_bands: tuple[ShareView, ...]


def roll_up(
    snapshots: Iterable[StudentSnapshot],
    *,
    visible: Callable[[SectionReport], bool],
) -> Rollup:
    """Return the share of student-objective pairs at mastery per
    objective, section, school and grade band, over the sections
    ``visible`` lets through. A student counts once per objective within a
    group even when two of their sections teach it."""
    groups: dict[tuple[str, str], dict[tuple[str, UUID], bool]] = {}
    labels: dict[tuple[str, str], str] = {}
    students = set()
    for snapshot in snapshots:
        for section in snapshot.sections:
            if not visible(section):
                continue
            students.add(snapshot.student_id)
            for objective in objectives_of(section):
                pair = (snapshot.student_id, objective.objective_id)
                keys = [
                    ("objective", str(objective.objective_id)),
                    ("section", section.section_id),
                    ("school", section.school_id),
                    *(("grade_band", b) for b in objective.grade_bands or (UNBANDED,)),
                ]
                labels[keys[0]] = objective.code or objective.statement
                labels[keys[1]] = section.title
                for key in keys:
                    labels.setdefault(key, key[1])
                    members = groups.setdefault(key, {})
                    members[pair] = members.get(pair, False) or objective.mastered

    def shares(kind: str) -> tuple[ShareView, ...]:
        found = [
            ShareView(
                key=key[1],
                label=labels[key],
                pairs=len(members),
                mastered=sum(members.values()),
                share=round(sum(members.values()) / len(members), 4),
            )
            for key, members in groups.items()
            if key[0] == kind
        ]
        return tuple(sorted(found, key=lambda s: (s.label, s.key)))

    return Rollup(
        students=len(students),
        objectives=shares("objective"),
        sections=shares("section"),
        schools=shares("school"),
        grade_bands=shares("grade_band"),
    )


def rollup_rows(rollup: Rollup) -> list[list[str]]:
    """Return a roll-up as CSV rows: group, key, label, pairs, mastered,
    share."""
    rows = [["group", "key", "label", "pairs", "mastered", "share"]]
    groups: Sequence[tuple[str, tuple[ShareView, ...]]] = (
        ("objective", rollup.objectives),
        ("section", rollup.sections),
        ("school", rollup.schools),
        ("grade_band", rollup.grade_bands),
    )
    for group, shares in groups:
        for share in shares:
            rows.append(
                [
                    group,
                    spreadsheet_safe(share.key),
                    spreadsheet_safe(share.label),
                    str(share.pairs),
                    str(share.mastered),
                    f"{share.share:.4f}",
                ]
            )

    return rows
