"""The demo district: a valid OneRoster bundle and a believable term."""

from __future__ import annotations

from statistics import mean

from mastery_deploy.demo_district import (
    LEVEL_COUNT,
    WEEKS_OF_EVIDENCE,
    demo_assignments,
    demo_corrections,
    demo_roster,
    roster_bundle,
)
from mastery_grading.oneroster import read_bundle

CODES = ("6.RP.A.1", "6.RP.A.2", "6.RP.A.3", "7.RP.A.1", "7.RP.A.2")


def test_the_demo_roster_is_a_bundle_the_oneroster_reader_accepts() -> None:
    """Two schools, six sections, 150 students each with a guardian, read
    by the same reader a district's own export goes through."""
    bundle = read_bundle(roster_bundle(demo_roster()))

    students = [p for p in bundle.people if p.role == "student"]
    assert len(bundle.schools) == 2
    assert len(bundle.sections) == 6
    assert len(students) == 150
    assert len(bundle.guardian_links) == 150
    assert {link.student_id for link in bundle.guardian_links} == {
        s.sourced_id for s in students
    }


def test_one_demo_section_mixes_two_grades() -> None:
    """The multi-age section has sixth and seventh graders side by side."""
    roster = demo_roster()

    mixed = [s for s in roster.sections if len(s.grades) > 1]

    assert len(mixed) == 1
    grades = {roster.person(student).grade for student in mixed[0].student_ids}
    assert grades == {"06", "07"}


def test_the_demo_is_the_same_every_time() -> None:
    """One seed, one district: two runs give the same files and scores."""
    roster = demo_roster()

    assert roster_bundle(roster) == roster_bundle(demo_roster())
    assert demo_assignments(roster, CODES) == demo_assignments(demo_roster(), CODES)


def test_students_grow_over_the_term_and_stay_on_the_scale() -> None:
    """Levels are indexes into the scale, and the last weeks' work is on
    average higher than the first weeks'."""
    assignments = demo_assignments(demo_roster(), CODES)

    levels = [score.level_index for a in assignments for score in a.scores]
    first = [s.level_index for a in assignments[:2] for s in a.scores]
    last = [
        s.level_index
        for a in assignments[WEEKS_OF_EVIDENCE - 2 :][:2]
        for s in a.scores
    ]
    assert set(levels) <= set(range(LEVEL_COUNT))
    assert mean(last) > mean(first) + 0.5


def test_corrections_include_amendments_and_voids_of_recorded_scores() -> None:
    """Each correction names a score that was recorded, and there are both
    kinds: a new level with a reason, and a void with a reason."""
    assignments = demo_assignments(demo_roster(), CODES)

    corrections = demo_corrections(assignments)

    recorded = {
        (a.title, a.section_id, s.student_id, s.objective_code)
        for a in assignments
        for s in a.scores
    }
    assert all(
        (c.assignment_title, c.section_id, c.student_id, c.objective_code) in recorded
        for c in corrections
    )
    assert any(c.new_level_index is None for c in corrections)
    assert any(c.new_level_index is not None for c in corrections)
    assert all(c.reason for c in corrections)
