"""Building a student's snapshot from facts: the current level, when the
current run of mastery began, one point per moment, the evidence in date
order, totals, and the traditional grade or its bridge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec

from mastery_reports.snapshots import (
    AssessmentFact,
    GradeFact,
    LetterCutFact,
    MasteryPointFact,
    ObjectiveFact,
    ObjectiveReport,
    ObjectiveSetFact,
    ReportedObjective,
    ScaleLevelFact,
    SectionFact,
    SectionReport,
    SetReport,
    StoredReport,
    StoredSection,
    StoredSet,
    StudentFacts,
    StudentSnapshot,
    build_snapshot,
    level_of,
    narrowed,
)

SCALE = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6f5c")
SET = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6f5e")
FRACTIONS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6f01")
DECIMALS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6f02")
MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
LEVELS = (
    ScaleLevelFact(value=1, label="Beginning", short_label="B", colour="#b3261e"),
    ScaleLevelFact(value=2, label="Developing", short_label="D", colour="#f2c12e"),
    ScaleLevelFact(value=3, label="Proficient", short_label="P", colour="#2e7d32"),
    ScaleLevelFact(value=4, label="Exemplary", short_label="E", colour="#1a237e"),
)


def point(
    days: int, level: float, *, mastered: bool, position: int
) -> MasteryPointFact:
    """A mastery change on fractions ``days`` after Monday."""
    return MasteryPointFact(
        objective_id=FRACTIONS,
        valid_from=MONDAY + timedelta(days=days),
        position=position,
        status="scored",
        level=level,
        level_label=None,
        mastered=mastered,
        scale_id=SCALE,
        scale_version=1,
    )


def assessment(days: int, level: float, title: str) -> AssessmentFact:
    """An assessment of fractions ``days`` after Monday."""
    return AssessmentFact(
        assessment_id=UUID(int=days + 1),
        objective_id=FRACTIONS,
        scale_id=SCALE,
        scale_version=1,
        level=level,
        mark=None,
        assessed_at=MONDAY + timedelta(days=days),
        evidence=title,
        evidence_kind="formative",
        comment=None,
    )


def facts(*points: MasteryPointFact, **changes: object) -> StudentFacts:
    """Ada in room 12, whose set has fractions and decimals."""
    base = StudentFacts(
        student_id="ada",
        sections=(
            SectionFact(
                section_id="room-12",
                school_id="lincoln",
                title="Room 12",
                course_title="Mathematics 4",
                term_ids=("fall",),
            ),
        ),
        objective_sets=(
            ObjectiveSetFact(
                objective_set_id=SET, title="Grade 4", section_ids=("room-12",)
            ),
        ),
        objectives=(
            ObjectiveFact(
                objective_id=DECIMALS,
                objective_set_id=SET,
                code="4.NF.6",
                statement="Decimals",
                sort_order=2,
            ),
            ObjectiveFact(
                objective_id=FRACTIONS,
                objective_set_id=SET,
                code="4.NF.1",
                statement="Fractions",
                sort_order=1,
            ),
        ),
        mastery=points,
        scales={(SCALE, 1): LEVELS},
    )
    for name, value in changes.items():
        base = StudentFacts(
            **{**{f: getattr(base, f) for f in base.__struct_fields__}, name: value}
        )
    return base


def test_mastery_since_is_the_start_of_the_current_run() -> None:
    """Mastered on the 3rd, lost on the 5th, mastered again on the 9th and
    kept on the 12th: mastered since the 9th, four points, Exemplary."""
    snapshot = build_snapshot(
        facts(
            point(3, 3, mastered=True, position=10),
            point(5, 2, mastered=False, position=11),
            point(9, 3, mastered=True, position=12),
            point(12, 4, mastered=True, position=13),
        )
    )
    fractions = snapshot.sections[0].objective_sets[0].objectives[0]

    assert fractions.code == "4.NF.1"
    assert fractions.mastered_since == MONDAY + timedelta(days=9)
    assert [p.level for p in fractions.timeline] == [3, 2, 3, 4]
    assert fractions.level is not None
    assert (fractions.level.label, fractions.level.rank) == ("Exemplary", 4)


def test_a_later_recording_for_the_same_moment_replaces_the_earlier() -> None:
    """Two changes valid from the same day: the one recorded later stands,
    whichever order they come in, and it is not mastered."""
    first = point(3, 3, mastered=True, position=20)
    corrected = point(3, 2, mastered=False, position=21)

    forwards = build_snapshot(facts(first, corrected))
    backwards = build_snapshot(facts(corrected, first))
    objective = forwards.sections[0].objective_sets[0].objectives[0]

    assert forwards == backwards
    assert [p.level for p in objective.timeline] == [2]
    assert objective.mastered_since is None
    assert not objective.mastered


def test_totals_count_assessed_and_mastered_objectives() -> None:
    """Fractions mastered, decimals never assessed: two objectives, one
    assessed, one mastered, objectives in their set's order."""
    snapshot = build_snapshot(facts(point(1, 3, mastered=True, position=1)))
    objective_set = snapshot.sections[0].objective_sets[0]

    assert [o.code for o in objective_set.objectives] == ["4.NF.1", "4.NF.6"]
    assert (objective_set.totals.objectives, objective_set.totals.assessed) == (2, 1)
    assert objective_set.totals.mastered == 1


def test_evidence_is_listed_oldest_first_with_its_level() -> None:
    """A quiz on the 8th recorded before an exit ticket on the 2nd is
    listed after it, each with the label its level has on the scale."""
    snapshot = build_snapshot(
        facts(
            assessments=(
                assessment(8, 3, "Quiz"),
                assessment(2, 1, "Exit ticket"),
            )
        )
    )
    evidence = snapshot.sections[0].objective_sets[0].objectives[0].evidence

    assert [e.title for e in evidence] == ["Exit ticket", "Quiz"]
    assert [e.level.label if e.level else None for e in evidence] == [
        "Beginning",
        "Proficient",
    ]


def test_a_bridge_turns_mean_levels_into_a_percent_and_letter() -> None:
    """Fractions at 4 on a 1-4 scale is 100 % of the way up, which the
    room's cuts call an A; without a bridge the mean of a 90 % grade and
    8 of 10 points is 85 %."""
    cuts = {
        "room-12": (
            LetterCutFact(letter="A", min_percent=90),
            LetterCutFact(letter="B", min_percent=80),
        )
    }
    bridged = build_snapshot(
        facts(point(1, 4, mastered=True, position=1), bridges=cuts)
    )
    graded = build_snapshot(
        facts(
            grades=(
                GradeFact(section_id="room-12", kind="percent", percent=90),
                GradeFact(
                    section_id="room-12", kind="points", points=8, points_possible=10
                ),
                GradeFact(section_id="room-12", kind="pass_fail", passed=True),
            )
        )
    )

    assert bridged.sections[0].traditional is not None
    assert (
        bridged.sections[0].traditional.percent,
        bridged.sections[0].traditional.letter,
    ) == (100.0, "A")
    assert graded.sections[0].traditional is not None
    assert graded.sections[0].traditional.percent == 85.0
    assert graded.sections[0].traditional.grades == 3


def test_a_level_between_values_reads_as_the_level_below() -> None:
    """2.6 on the four-level scale shows as Developing, rank 2 of 4, with
    text readable on its yellow; a level below the scale shows its value."""
    between = level_of(2.6, None, LEVELS)
    below = level_of(0.5, None, LEVELS)

    assert (between.label, between.rank, between.ranks) == ("Developing", 2, 4)
    assert between.text_colour == "#1a1a1a"
    assert below.label == "0.5"
    assert below.rank is None


def test_a_link_narrows_the_report_to_its_sections_and_term() -> None:
    """A link for room 14 leaves Ada's room 12 out; one for room 12 in the
    spring term shows nothing, and in the fall shows room 12."""
    snapshot = build_snapshot(facts(point(1, 3, mastered=True, position=1)))

    assert narrowed(snapshot, ["room-14"]).sections == ()
    assert narrowed(snapshot, ["room-12"], term_id="spring").sections == ()
    fall = narrowed(snapshot, ["room-12"], term_id="fall")
    assert [s.section_id for s in fall.sections] == ["room-12"]


def test_the_stored_shapes_a_patch_reads_name_every_field_of_the_report() -> None:
    """A patch reads and writes a stored report through shapes of its own
    that keep objectives as JSON; each names exactly the fields of the
    report part it stands for, so a field added to the report is never
    dropped by a patch, and an objective's summary names fields of it."""
    mirrors: list[tuple[type[msgspec.Struct], type[msgspec.Struct]]] = [
        (StoredReport, StudentSnapshot),
        (StoredSection, SectionReport),
        (StoredSet, SetReport),
    ]

    for stored, report in mirrors:
        assert names_of(stored) == names_of(report)
    assert set(names_of(ReportedObjective)) <= set(names_of(ObjectiveReport))


def names_of(struct: type[msgspec.Struct]) -> list[str]:
    """Return a Struct type's field names, in order."""
    return [field.name for field in msgspec.structs.fields(struct)]
