"""A believable, entirely made-up school district to try the system with.

Two middle schools, six mathematics sections (one of them multi-age, with
sixth and seventh graders side by side), about 150 students with a guardian
each, and a term of evidence on ratio and proportion standards in which
students grow at their own pace, with the odd correction a real gradebook
has. Everything follows from one seed, so the same demo comes out every
time. This module only decides what the district is; loading it into a
running stack happens elsewhere, through the services' own routes.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta

import msgspec

SEED = 2026
TERM_ID = "term-fall-2026"
TERM_STARTS = date(2026, 8, 24)
TERM_ENDS = date(2026, 12, 18)
DISTRICT_ID = "district-lakeside"
WEEKS_OF_EVIDENCE = 12
STUDENTS_PER_SECTION = 25
LEVEL_COUNT = 4

GIVEN_NAMES = (
    "Amara", "Ben", "Chloe", "Dev", "Elena", "Farah", "Gabe", "Hana", "Ivan",
    "Jada", "Kofi", "Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa",
    "Sami", "Tariq", "Uma", "Victor", "Wren", "Xavi", "Yara", "Zane", "Aiko",
    "Bruno", "Carmen", "Dmitri",
)  # fmt: skip
FAMILY_NAMES = (
    "Abara", "Brennan", "Castillo", "Dubois", "Eriksen", "Fontaine", "Garcia",
    "Haddad", "Ibarra", "Jensen", "Kowalski", "Lindqvist", "Mensah", "Nakamura",
    "Okafor", "Petrov", "Quintero", "Rahman", "Sato", "Toure", "Ueda", "Varga",
    "Whitfield", "Xu", "Yilmaz", "Zamora",
)  # fmt: skip


class DemoSchool(msgspec.Struct, frozen=True, kw_only=True):
    """A school of the demo district."""

    sourced_id: str
    name: str


class DemoSection(msgspec.Struct, frozen=True, kw_only=True):
    """A section, its teacher, the grades it mixes and its students."""

    sourced_id: str
    title: str
    school_id: str
    course_id: str
    grades: tuple[str, ...]
    teacher_id: str
    student_ids: tuple[str, ...]


class DemoPerson(msgspec.Struct, frozen=True, kw_only=True):
    """A made-up person: names and a school email, never a real one."""

    sourced_id: str
    role: str
    given_name: str
    family_name: str
    school_id: str
    grade: str | None = None
    guardian_of: str | None = None

    @property
    def email(self) -> str:
        """Return an address at a reserved example domain."""
        return f"{self.sourced_id}@lakeside.example.org"


class DemoRoster(msgspec.Struct, frozen=True, kw_only=True):
    """The whole demo district: its schools, sections and people."""

    schools: tuple[DemoSchool, ...]
    sections: tuple[DemoSection, ...]
    people: tuple[DemoPerson, ...]

    def person(self, sourced_id: str) -> DemoPerson:
        """Return the person ``sourced_id`` names."""
        return next(p for p in self.people if p.sourced_id == sourced_id)

    @property
    def students(self) -> tuple[DemoPerson, ...]:
        """The district's students."""
        return tuple(p for p in self.people if p.role == "student")


class DemoScore(msgspec.Struct, frozen=True, kw_only=True):
    """One student's level (an index into the scale's levels, lowest first)
    on one objective for one piece of evidence."""

    student_id: str
    objective_code: str
    level_index: int


class DemoAssignment(msgspec.Struct, frozen=True, kw_only=True):
    """One piece of evidence a whole section did on a day, scored on a few
    objectives."""

    section_id: str
    title: str
    kind: str
    assessed_at: datetime
    scores: tuple[DemoScore, ...]


class DemoCorrection(msgspec.Struct, frozen=True, kw_only=True):
    """A teacher's later correction of one score: a new level, or a void."""

    assignment_title: str
    section_id: str
    student_id: str
    objective_code: str
    new_level_index: int | None
    reason: str


def demo_roster(seed: int = SEED) -> DemoRoster:
    """Return the demo district's schools, sections and people."""
    rng = random.Random(seed)
    schools = (
        DemoSchool(sourced_id="school-lincoln", name="Lincoln Middle School"),
        DemoSchool(sourced_id="school-riverside", name="Riverside Middle School"),
    )
    plan = (
        ("lincoln-math-6a", "Mathematics 6A", "school-lincoln", ("06",)),
        ("lincoln-math-7a", "Mathematics 7A", "school-lincoln", ("07",)),
        ("lincoln-ratio-lab", "Ratio Lab 6-7", "school-lincoln", ("06", "07")),
        ("riverside-math-6b", "Mathematics 6B", "school-riverside", ("06",)),
        ("riverside-math-7b", "Mathematics 7B", "school-riverside", ("07",)),
        ("riverside-math-6c", "Mathematics 6C", "school-riverside", ("06",)),
    )
    names = _name_pool(rng)
    people: list[DemoPerson] = []
    sections: list[DemoSection] = []
    for number, (section_id, title, school_id, grades) in enumerate(plan, start=1):
        given, family = next(names)
        teacher = DemoPerson(
            sourced_id=f"teacher-{number:02d}",
            role="teacher",
            given_name=given,
            family_name=family,
            school_id=school_id,
        )
        people.append(teacher)
        students = []
        for seat in range(STUDENTS_PER_SECTION):
            given, family = next(names)
            student = DemoPerson(
                sourced_id=f"student-{number}{seat:02d}",
                role="student",
                given_name=given,
                family_name=family,
                school_id=school_id,
                grade=grades[seat % len(grades)],
            )
            guardian_given, _ = next(names)
            people.append(student)
            people.append(
                DemoPerson(
                    sourced_id=f"guardian-{number}{seat:02d}",
                    role="guardian",
                    given_name=guardian_given,
                    family_name=family,
                    school_id=school_id,
                    guardian_of=student.sourced_id,
                )
            )
            students.append(student.sourced_id)
        sections.append(
            DemoSection(
                sourced_id=section_id,
                title=title,
                school_id=school_id,
                course_id=f"course-math-{'-'.join(grades)}",
                grades=grades,
                teacher_id=teacher.sourced_id,
                student_ids=tuple(students),
            )
        )

    return DemoRoster(schools=schools, sections=tuple(sections), people=tuple(people))


def _name_pool(rng: random.Random) -> Iterator[tuple[str, str]]:
    """Yield distinct (given, family) pairs in a seeded order."""
    pairs = [(g, f) for g in GIVEN_NAMES for f in FAMILY_NAMES]
    rng.shuffle(pairs)
    yield from pairs


def roster_bundle(roster: DemoRoster) -> dict[str, bytes]:
    """Return the demo roster as a OneRoster 1.2 CSV bundle, file by file."""
    stamp = "2026-08-20T08:00:00Z"
    files = {
        "orgs.csv": _csv(
            ("sourcedId", "status", "dateLastModified", "name", "type",
             "identifier", "parentSourcedId"),
            [(DISTRICT_ID, "", stamp, "Lakeside Unified", "district", "", "")]
            + [
                (s.sourced_id, "", stamp, s.name, "school", "", DISTRICT_ID)
                for s in roster.schools
            ],
        ),
        "academicSessions.csv": _csv(
            ("sourcedId", "status", "dateLastModified", "title", "type",
             "startDate", "endDate", "parentSourcedId", "schoolYear"),
            [(TERM_ID, "", stamp, "Fall 2026", "semester",
              TERM_STARTS.isoformat(), TERM_ENDS.isoformat(), "", "2027")],
        ),
        "courses.csv": _csv(
            ("sourcedId", "status", "dateLastModified", "title", "courseCode",
             "orgSourcedId"),
            sorted(
                {
                    (c.course_id, "", stamp, f"Mathematics {'/'.join(c.grades)}",
                     c.course_id.upper(), DISTRICT_ID)
                    for c in roster.sections
                }
            ),
        ),
        "classes.csv": _csv(
            ("sourcedId", "status", "dateLastModified", "title", "classCode",
             "classType", "courseSourcedId", "schoolSourcedId", "termSourcedIds"),
            [
                (c.sourced_id, "", stamp, c.title, c.sourced_id.upper(),
                 "scheduled", c.course_id, c.school_id, TERM_ID)
                for c in roster.sections
            ],
        ),
        "users.csv": _csv(
            ("sourcedId", "status", "dateLastModified", "enabledUser", "username",
             "givenName", "familyName", "email", "agentSourcedIds", "grades"),
            [
                (p.sourced_id, "", stamp, "true", p.sourced_id, p.given_name,
                 p.family_name, p.email, _agents(roster, p), p.grade or "")
                for p in roster.people
            ],
        ),
        "roles.csv": _csv(
            ("sourcedId", "status", "dateLastModified", "userSourcedId",
             "roleType", "role", "orgSourcedId"),
            [
                (f"role-{p.sourced_id}", "", stamp, p.sourced_id, "primary",
                 p.role, p.school_id)
                for p in roster.people
            ],
        ),
        "enrollments.csv": _csv(
            ("sourcedId", "status", "dateLastModified", "classSourcedId",
             "schoolSourcedId", "userSourcedId", "role", "primary"),
            [
                (f"enr-{c.sourced_id}-{person}", "", stamp, c.sourced_id,
                 c.school_id, person, role, "true" if role == "teacher" else "false")
                for c in roster.sections
                for person, role in [
                    (c.teacher_id, "teacher"),
                    *((s, "student") for s in c.student_ids),
                ]
            ],
        ),
    }  # fmt: skip
    manifest_rows = [("manifest.version", "1.0"), ("oneroster.version", "1.2")]
    manifest_rows += [(f"file.{name.removesuffix('.csv')}", "bulk") for name in files]
    manifest_rows.append(("source.systemName", "Lakeside demo"))
    files["manifest.csv"] = _csv(("propertyName", "value"), manifest_rows)

    return files


def _agents(roster: DemoRoster, person: DemoPerson) -> str:
    """Return a student's guardians' sourcedIds, as OneRoster lists them."""
    if person.role != "student":
        return ""
    return ",".join(
        p.sourced_id for p in roster.people if p.guardian_of == person.sourced_id
    )


def _csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """Return ``rows`` under ``header`` as CSV text in UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def demo_assignments(
    roster: DemoRoster, objective_codes: Sequence[str], *, seed: int = SEED
) -> list[DemoAssignment]:
    """Return a term of weekly evidence for every section.

    Each student starts somewhere between Beginning and Developing and grows
    at a pace of their own; each objective is a little harder or easier than
    the next; a day's work wobbles around the student's current level. Each
    week a section works on two objectives, so every objective gathers a few
    pieces of evidence by the end of term.
    """
    rng = random.Random(seed + 1)
    difficulty = {code: rng.uniform(-0.4, 0.4) for code in objective_codes}
    start = {s.sourced_id: rng.uniform(0.2, 1.4) for s in roster.students}
    pace = {s.sourced_id: rng.uniform(0.06, 0.22) for s in roster.students}
    assignments = []
    for section in roster.sections:
        for week in range(WEEKS_OF_EVIDENCE):
            day = TERM_STARTS + timedelta(weeks=week, days=1 + week % 3)
            focus = [objective_codes[(week + k) % len(objective_codes)] for k in (0, 1)]
            summative = week % 4 == 3
            scores = tuple(
                DemoScore(
                    student_id=student,
                    objective_code=code,
                    level_index=_level(
                        start[student] + pace[student] * week - difficulty[code],
                        rng.gauss(0, 0.45),
                    ),
                )
                for student in section.student_ids
                for code in focus
            )
            assignments.append(
                DemoAssignment(
                    section_id=section.sourced_id,
                    title=f"{'Unit check' if summative else 'Exit ticket'} "
                    f"week {week + 1}",
                    kind="summative" if summative else "formative",
                    assessed_at=datetime.combine(day, time(10, 15), tzinfo=UTC),
                    scores=scores,
                )
            )

    return assignments


def _level(ability: float, wobble: float) -> int:
    """Return the level index a day's work shows, within the scale."""
    return max(0, min(LEVEL_COUNT - 1, round(ability + wobble)))


def demo_corrections(
    assignments: Sequence[DemoAssignment], *, seed: int = SEED
) -> list[DemoCorrection]:
    """Return a handful of corrections: rubrics misread (amended one level
    up) and work recorded for the wrong student (voided)."""
    rng = random.Random(seed + 2)
    picked = rng.sample(list(assignments), k=min(6, len(assignments)))
    corrections = []
    for number, assignment in enumerate(picked):
        score = rng.choice(assignment.scores)
        if number % 2 == 0:
            new_level: int | None = min(LEVEL_COUNT - 1, score.level_index + 1)
            reason = "Rubric misread: the work shows the next level"
        else:
            new_level = None
            reason = "Recorded for the wrong student"
        corrections.append(
            DemoCorrection(
                assignment_title=assignment.title,
                section_id=assignment.section_id,
                student_id=score.student_id,
                objective_code=score.objective_code,
                new_level_index=new_level,
                reason=reason,
            )
        )

    return corrections
