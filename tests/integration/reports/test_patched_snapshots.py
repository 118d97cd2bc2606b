"""A snapshot patched with the objectives a batch graded is the snapshot a
whole rebuild gives: random runs of catalogue, roster and grading events,
cut into random batches and applied through the consumers' handler on
real PostgreSQL, leave after every batch each student's stored snapshot
equal to one built from all of their facts."""

from __future__ import annotations

import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import asyncpg
import msgspec
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentRecorded,
    AssessmentVoided,
    Evidence,
    GradeBridgeSet,
    LetterCut,
    MasteryChanged,
    TraditionalGradeRecorded,
    TraditionalGradeVoided,
)
from mastery_events.contract.objectives import (
    ObjectiveAdded,
    ObjectiveChanged,
    ObjectiveRemoved,
    ObjectiveSetCreated,
    ScaleDefined,
    ScaleLevel,
    ScaleRevised,
)
from mastery_events.contract.roster import (
    ObjectiveSetLinked,
    ObjectiveSetUnlinked,
    PersonEnrolled,
    PersonUnenrolled,
    SectionRostered,
    TermRostered,
)
from mastery_events.database import Connection
from mastery_events.envelope import Event
from mastery_events.ids import uuid7
from mastery_events.migrations import migrate
from mastery_events.tenancy import tenant_transaction
from mastery_reports.facts_store import FactsWriter
from mastery_reports.service import SERVICE as REPORTS
from mastery_reports.snapshot_store import SnapshotWriter
from mastery_reports.snapshots import StudentSnapshot, build_snapshot
from tests.integration.reports.district import relayed

MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
SECTIONS = ("room-1", "room-2")
FIRST_LEVELS = (
    ScaleLevel(value=1, label="Beginning", short_label="B", colour="#b3261e"),
    ScaleLevel(value=2, label="Developing", short_label="D", colour="#f2c12e"),
    ScaleLevel(value=3, label="Proficient", short_label="P", colour="#2e7d32"),
    ScaleLevel(value=4, label="Exemplary", short_label="E", colour="#1a237e"),
)
SECOND_LEVELS = (
    ScaleLevel(value=0, label="Not yet", short_label="N", colour="#eeeeee"),
    ScaleLevel(value=2, label="Nearly", short_label="Ne", colour="#ffcc80"),
    ScaleLevel(value=4, label="Secure", short_label="S", colour="#004d40"),
)
OBJECTIVES_SOURCE = "objectives"
GRADING_SOURCE = "grading"


@dataclass
class School:
    """One tenant's ids, and the assessments and grades recorded so far,
    which later corrections pick from."""

    tenant: str = field(default_factory=lambda: f"patch-{secrets.token_hex(4)}")
    scale_id: UUID = field(default_factory=uuid7)
    sets: tuple[UUID, UUID] = field(default_factory=lambda: (uuid7(), uuid7()))
    # Three objectives in the first set, two in the second.
    objectives: tuple[UUID, ...] = field(
        default_factory=lambda: tuple(uuid7() for _ in range(5))
    )
    students: tuple[UUID, UUID] = field(default_factory=lambda: (uuid7(), uuid7()))
    assessments: list[UUID] = field(default_factory=list)
    grades: list[UUID] = field(default_factory=list)

    def set_of(self, objective: int) -> UUID:
        """Return the set objective number ``objective`` belongs to."""
        return self.sets[0] if objective < 3 else self.sets[1]


def opening(school: School) -> list[Event]:
    """The scale, both sets and their objectives, the term, two sections
    (the second teaching both sets and bridging levels to letters) and both
    students enrolled, every student with a snapshot."""
    events: list[Event] = [
        ScaleDefined(
            scale_id=school.scale_id,
            name="Four steps",
            levels=FIRST_LEVELS,
            mastery_threshold=3.0,
            defined_by="coordinator",
            defined_at=MONDAY,
        )
    ]
    for number, set_id in enumerate(school.sets):
        events.append(
            ObjectiveSetCreated(
                objective_set_id=set_id,
                title=f"Set {number}",
                subject="Mathematics",
                owner_scope="district",
                owner_id=school.tenant,
                created_by="coordinator",
                created_at=MONDAY,
            )
        )
    for number, objective_id in enumerate(school.objectives):
        events.append(
            ObjectiveAdded(
                objective_set_id=school.set_of(number),
                objective_id=objective_id,
                code=f"M.{number}",
                statement=f"Objective {number}",
                order=number,
                added_by="coordinator",
                added_at=MONDAY,
            )
        )
    events.append(
        TermRostered(
            term_id="fall",
            title="Fall",
            kind="term",
            starts_on=date(2026, 8, 31),
            ends_on=date(2026, 12, 18),
            school_year="2026-27",
            rostered_at=MONDAY,
        )
    )
    for section_id in SECTIONS:
        events.append(
            SectionRostered(
                section_id=section_id,
                title=f"Mathematics {section_id}",
                school_id="lincoln",
                course_id="math",
                course_title="Mathematics",
                term_ids=("fall",),
                rostered_at=MONDAY,
            )
        )
    events += [
        *events_of(school, Bridge(1)),
        linking(school, 0, 0, linked=True),
        linking(school, 1, 0, linked=True),
        linking(school, 1, 1, linked=True),
        PersonEnrolled(
            person_id=school.students[0],
            section_id=SECTIONS[0],
            role="student",
            enrolled_at=MONDAY,
        ),
    ]
    for section_id in SECTIONS:
        events.append(
            PersonEnrolled(
                person_id=school.students[1],
                section_id=section_id,
                role="student",
                enrolled_at=MONDAY,
            )
        )

    return events


def linking(school: School, section: int, set_number: int, *, linked: bool) -> Event:
    """Link a set to a section, or unlink it."""
    if linked:
        return ObjectiveSetLinked(
            section_id=SECTIONS[section],
            objective_set_id=school.sets[set_number],
            linked_by="teacher",
            linked_at=MONDAY,
        )

    return ObjectiveSetUnlinked(
        section_id=SECTIONS[section],
        objective_set_id=school.sets[set_number],
        unlinked_by="teacher",
        unlinked_at=MONDAY,
    )


@dataclass(frozen=True)
class Grade:
    """An assessment, with the mastery point grading derives when
    ``point`` says so."""

    student: int
    objective: int
    level: float | None
    day: int
    version: int = 1
    mastered: bool = False
    label: str | None = None
    comment: str | None = None
    point: bool = True


@dataclass(frozen=True)
class Point:
    """A mastery point alone, as a recalculation publishes."""

    student: int
    objective: int
    level: float | None
    day: int


@dataclass(frozen=True)
class Amend:
    """A correction of an earlier assessment's level or date."""

    pick: int
    level: float | None
    day: int | None


@dataclass(frozen=True)
class Void:
    """An earlier assessment voided."""

    pick: int


@dataclass(frozen=True)
class Score:
    """A traditional grade."""

    student: int
    section: int
    kind: Literal["percent", "points", "pass_fail"]
    value: int


@dataclass(frozen=True)
class Unscore:
    """An earlier traditional grade voided."""

    pick: int


@dataclass(frozen=True)
class Bridge:
    """A section's letter cuts."""

    section: int


@dataclass(frozen=True)
class Link:
    """A set linked to a section, or unlinked."""

    section: int
    set_number: int
    linked: bool


@dataclass(frozen=True)
class Enrol:
    """A student enrolled in a section, or unenrolled."""

    student: int
    section: int
    enrolled: bool


@dataclass(frozen=True)
class Reword:
    """An objective's statement changed."""

    objective: int


@dataclass(frozen=True)
class Remove:
    """An objective removed."""

    objective: int


@dataclass(frozen=True)
class Revise:
    """The scale's second version."""


Move = (
    Grade | Point | Amend | Void | Score | Unscore | Bridge | Link | Enrol | Reword
) | (Remove | Revise)

levels = st.sampled_from([0.0, 1.0, 2.0, 2.5, 3.0, 4.0])
days = st.integers(min_value=0, max_value=12)
students = st.integers(min_value=0, max_value=1)
sections = st.integers(min_value=0, max_value=1)
objectives = st.integers(min_value=0, max_value=4)
picks = st.integers(min_value=0, max_value=50)

grading_moves: st.SearchStrategy[Move] = st.one_of(
    st.builds(
        Grade,
        students,
        objectives,
        st.none() | levels,
        days,
        version=st.sampled_from([1, 2]),
        mastered=st.booleans(),
        label=st.sampled_from([None, "Proficient!"]),
        comment=st.sampled_from([None, "Well explained"]),
        point=st.booleans(),
    ),
    st.builds(Point, students, objectives, st.none() | levels, days),
    st.builds(Amend, picks, st.none() | levels, st.none() | days),
    st.builds(Void, picks),
    st.builds(
        Score,
        students,
        sections,
        st.sampled_from(["percent", "points", "pass_fail"]),
        st.integers(0, 100),
    ),
    st.builds(Unscore, picks),
)
other_moves: st.SearchStrategy[Move] = st.one_of(
    st.builds(Bridge, sections),
    st.builds(Link, sections, st.integers(0, 1), st.booleans()),
    st.builds(Enrol, students, sections, st.booleans()),
    st.builds(Reword, objectives),
    st.builds(Remove, objectives),
    st.just(Revise()),
)
# Grades are what a patch applies, so most moves are grades; the rest,
# rebuilt whole, change what the next patch starts from.
moves = st.one_of(
    grading_moves, grading_moves, grading_moves, grading_moves, other_moves
)


def events_of(school: School, move: Move) -> list[Event]:
    """Turn one drawn move into the events a service would publish."""
    at = MONDAY + timedelta(days=1)
    match move:
        case Grade():
            assessment_id = uuid7()
            school.assessments.append(assessment_id)
            recorded: list[Event] = [
                AssessmentRecorded(
                    assessment_id=assessment_id,
                    student_id=str(school.students[move.student]),
                    section_id=SECTIONS[0],
                    objective_id=school.objectives[move.objective],
                    scale_id=school.scale_id,
                    scale_version=move.version,
                    level=move.level,
                    mark=None if move.level is not None else "missing",
                    assessed_at=MONDAY + timedelta(days=move.day),
                    assessed_by="teacher",
                    evidence=Evidence(title=f"Quiz {move.day}", kind="formative"),
                    comment=move.comment,
                )
            ]
            if move.point:
                recorded.append(
                    mastery_point(
                        school,
                        Point(move.student, move.objective, move.level, move.day),
                        version=move.version,
                        mastered=move.mastered,
                        label=move.label,
                    )
                )
            return recorded
        case Point():
            mastered = move.level is not None and move.level >= 3
            return [mastery_point(school, move, version=1, mastered=mastered)]
        case Amend() if school.assessments:
            return [
                AssessmentAmended(
                    assessment_id=school.assessments[
                        move.pick % len(school.assessments)
                    ],
                    level=move.level,
                    assessed_at=None
                    if move.day is None
                    else MONDAY + timedelta(days=move.day, hours=1),
                    reason="typo",
                    amended_by="teacher",
                    amended_at=at,
                )
            ]
        case Void() if school.assessments:
            return [
                AssessmentVoided(
                    assessment_id=school.assessments[
                        move.pick % len(school.assessments)
                    ],
                    reason="wrong student",
                    voided_by="teacher",
                    voided_at=at,
                )
            ]
        case Score():
            grade_id = uuid7()
            school.grades.append(grade_id)
            return [
                TraditionalGradeRecorded(
                    grade_id=grade_id,
                    section_id=SECTIONS[move.section],
                    student_id=str(school.students[move.student]),
                    title="Unit test",
                    kind=move.kind,
                    percent=float(move.value) if move.kind == "percent" else None,
                    points=float(move.value) if move.kind == "points" else None,
                    points_possible=80.0 if move.kind == "points" else None,
                    passed=move.value >= 50 if move.kind == "pass_fail" else None,
                    assessed_at=at,
                    recorded_by="teacher",
                )
            ]
        case Unscore() if school.grades:
            return [
                TraditionalGradeVoided(
                    grade_id=school.grades[move.pick % len(school.grades)],
                    reason="retaken",
                    voided_by="teacher",
                    voided_at=at,
                )
            ]
        case Bridge():
            return [
                GradeBridgeSet(
                    section_id=SECTIONS[move.section],
                    cuts=(
                        LetterCut(letter="A", min_percent=80),
                        LetterCut(letter="B", min_percent=50),
                        LetterCut(letter="C", min_percent=0),
                    ),
                    set_by="principal",
                    set_at=at,
                )
            ]
        case Link():
            return [linking(school, move.section, move.set_number, linked=move.linked)]
        case Enrol() if move.enrolled:
            return [
                PersonEnrolled(
                    person_id=school.students[move.student],
                    section_id=SECTIONS[move.section],
                    role="student",
                    enrolled_at=at,
                )
            ]
        case Enrol():
            return [
                PersonUnenrolled(
                    person_id=school.students[move.student],
                    section_id=SECTIONS[move.section],
                    unenrolled_at=at,
                )
            ]
        case Reword():
            return [
                ObjectiveChanged(
                    objective_set_id=school.set_of(move.objective),
                    objective_id=school.objectives[move.objective],
                    code=f"M.{move.objective}",
                    statement=f"Objective {move.objective}, reworded",
                    order=move.objective,
                    changed_by="coordinator",
                    changed_at=at,
                )
            ]
        case Remove():
            return [
                ObjectiveRemoved(
                    objective_set_id=school.set_of(move.objective),
                    objective_id=school.objectives[move.objective],
                    removed_by="coordinator",
                    removed_at=at,
                )
            ]
        case Revise():
            return [
                ScaleRevised(
                    scale_id=school.scale_id,
                    scale_version=2,
                    name="Three steps",
                    levels=SECOND_LEVELS,
                    mastery_threshold=2.0,
                    revised_by="coordinator",
                    revised_at=at,
                )
            ]
        case _:
            # A correction drawn before anything it could correct.
            return []


def mastery_point(
    school: School,
    point: Point,
    *,
    version: int,
    mastered: bool,
    label: str | None = None,
) -> MasteryChanged:
    """A point of a student's timeline on one objective."""
    return MasteryChanged(
        student_id=str(school.students[point.student]),
        objective_id=school.objectives[point.objective],
        valid_from=MONDAY + timedelta(days=point.day),
        status="scored" if point.level is not None else "not_enough_evidence",
        score=point.level,
        level=point.level,
        level_label=label,
        mastered=mastered and point.level is not None,
        method="most_recent",
        scale_id=school.scale_id,
        scale_version=version,
        counted=(),
        cause_event_id=uuid7(),
        reason="assessment recorded",
    )


def source_of(event: Event) -> str:
    """Return the service whose stream carries ``event``."""
    catalogue = (
        ScaleDefined,
        ScaleRevised,
        ObjectiveSetCreated,
        ObjectiveAdded,
        ObjectiveChanged,
        ObjectiveRemoved,
    )
    return OBJECTIVES_SOURCE if isinstance(event, catalogue) else GRADING_SOURCE


def batches(events: list[Event], sizes: list[int]) -> list[list[Event]]:
    """Cut ``events`` into batches of one source each, their sizes taken in
    turn from ``sizes``, as two consumers fetching at random would."""
    cut: list[list[Event]] = []
    turn = 0
    for event in events:
        last = cut[-1] if cut else None
        if (
            last is None
            or source_of(last[0]) != source_of(event)
            or len(last) >= sizes[turn % len(sizes)]
        ):
            if last is not None:
                turn += 1
            cut.append([])
        cut[-1].append(event)

    return cut


@pytest.fixture
async def reports_schema(pool: asyncpg.Pool, schema: str) -> str:
    """This test's schema with reports' tables in it."""
    async with pool.acquire() as connection:
        await migrate(connection, schema, REPORTS.migrations)
    return schema


async def stored_and_rebuilt(
    pool: asyncpg.Pool, schema: str, school: School
) -> list[tuple[StudentSnapshot | None, StudentSnapshot]]:
    """Return, per student, the stored snapshot and one built from all of
    the student's facts."""
    writer = SnapshotWriter(schema)
    pairs = []
    async with (
        pool.acquire() as connection,
        tenant_transaction(connection, school.tenant),
    ):
        for student in school.students:
            document = await connection.fetchval(
                f'SELECT document FROM "{schema}".snapshots '
                "WHERE tenant_id = $1 AND student_id = $2",
                school.tenant,
                str(student),
            )
            facts = await writer.facts(connection, school.tenant, str(student))
            stored = (
                None
                if document is None
                else msgspec.json.decode(document, type=StudentSnapshot)
            )
            pairs.append((stored, build_snapshot(facts)))

    return pairs


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    drawn=st.lists(moves, min_size=10, max_size=40),
    sizes=st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=6),
)
async def test_a_patched_snapshot_equals_a_whole_rebuild_after_every_batch(
    pool: asyncpg.Pool,
    reports_schema: str,
    drawn: list[Move],
    sizes: list[int],
) -> None:
    """Whatever the events after the opening and however they are
    batched, the snapshot stored after each batch is the one a rebuild from
    the facts gives."""
    school = School()
    writers = {
        source: FactsWriter(reports_schema, source=source)
        for source in (OBJECTIVES_SOURCE, GRADING_SOURCE)
    }
    positions = dict.fromkeys(writers, 0)
    events = []
    for move in drawn:
        events += events_of(school, move)

    for batch in [*batches(opening(school), [100]), *batches(events, sizes)]:
        source = source_of(batch[0])
        enveloped = []
        for event in batch:
            positions[source] += 1
            enveloped.append(
                (
                    relayed(
                        school.tenant,
                        event,
                        positions[source],
                        stream_version=positions[source],
                    ),
                    event,
                )
            )
        async with (
            pool.acquire() as connection,
            tenant_transaction(connection, school.tenant),
        ):
            await writers[source].apply_batch(connection, enveloped)

        for stored, rebuilt in await stored_and_rebuilt(pool, reports_schema, school):
            if stored is not None:
                assert stored == rebuilt


async def test_a_grade_on_a_reported_objective_is_patched_not_rebuilt(
    pool: asyncpg.Pool, reports_schema: str
) -> None:
    """A second grade on an objective the report shows is applied by the
    patch alone, which gives the rebuild's answer: Proficient, mastered,
    two pieces of evidence, one objective of three mastered in the set."""
    school = School()
    writers = {
        source: FactsWriter(reports_schema, source=source)
        for source in (OBJECTIVES_SOURCE, GRADING_SOURCE)
    }
    first = events_of(school, Grade(0, 1, 2.0, 2, label="Developing"))
    second = events_of(
        school, Grade(0, 1, 3.0, 5, mastered=True, comment="Well explained")
    )
    position = 0

    async def apply(batch: list[Event]) -> None:
        nonlocal position
        enveloped = []
        for event in batch:
            position += 1
            enveloped.append(
                (
                    relayed(school.tenant, event, position, stream_version=position),
                    event,
                )
            )
        async with (
            pool.acquire() as connection,
            tenant_transaction(connection, school.tenant),
        ):
            await writers[source_of(batch[0])].apply_batch(connection, enveloped)

    for batch in batches(opening(school), [50]):
        await apply(batch)
    await apply(first)
    with structlog.testing.capture_logs() as logged:
        await apply(second)

    [applied] = [entry for entry in logged if entry["event"] == "snapshots.applied"]
    [(stored, rebuilt), _] = await stored_and_rebuilt(pool, reports_schema, school)
    [section] = rebuilt.sections
    first_set = section.objective_sets[0]
    graded = first_set.objectives[1]
    assert (applied["snapshots"], applied["patched"]) == (1, 1)
    assert stored == rebuilt
    assert graded.level is not None
    assert graded.level.label == "Proficient"
    assert graded.mastered
    assert [item.comment for item in graded.evidence] == [None, "Well explained"]
    assert (first_set.totals.objectives, first_set.totals.mastered) == (3, 1)


async def test_a_batch_reads_its_students_rows_not_the_tenants_history(
    pool: asyncpg.Pool, reports_schema: str
) -> None:
    """A grade patched in, and an enrolment that builds the student's
    snapshot again, applied through statements planned while the tables
    were nearly empty (as a consumer's cached statements are after a
    deployment), read a handful of rows, not the 20,000 assessments and
    mastery points of the tenant's other students recorded since."""
    school = School()
    writers = {
        source: FactsWriter(reports_schema, source=source)
        for source in (OBJECTIVES_SOURCE, GRADING_SOURCE)
    }
    position = 0

    async def apply(
        connection: Connection, batch: list[Event]
    ) -> tuple[MutableMapping[str, Any], dict[str, int]]:
        """Apply ``batch``; return what it logged and the rows it read of
        each table."""
        nonlocal position
        enveloped = []
        for event in batch:
            position += 1
            enveloped.append(
                (
                    relayed(school.tenant, event, position, stream_version=position),
                    event,
                )
            )
        with structlog.testing.capture_logs() as logged:
            async with tenant_transaction(connection, school.tenant):
                await writers[source_of(batch[0])].apply_batch(connection, enveloped)
                read = {
                    row["relname"]: row["tuples"]
                    for row in await connection.fetch(
                        "SELECT relname, seq_tup_read + coalesce(idx_tup_fetch, 0) "
                        "AS tuples FROM pg_stat_xact_user_tables "
                        "WHERE schemaname = $1",
                        reports_schema,
                    )
                }
        [applied] = [entry for entry in logged if entry["event"] == "snapshots.applied"]

        return applied, read

    async with pool.acquire() as connection:
        # Each statement keeps the first plan it was given, as one run
        # often enough does.
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        for batch in [
            *batches(opening(school), [50]),
            events_of(school, Grade(0, 1, 2.0, 2, label="Developing")),
            events_of(school, Enrol(0, 1, enrolled=True)),
        ]:
            await apply(connection, batch)
        async with tenant_transaction(connection, school.tenant):
            await connection.execute(
                f'INSERT INTO "{reports_schema}".assessments (tenant_id, '
                "assessment_id, student_id, objective_id, scale_id, "
                "scale_version, level, assessed_at, evidence, evidence_kind) "
                "SELECT $1, gen_random_uuid(), 'other-' || n % 500, $2, $3, 1, "
                "2, $4, 'Quiz', 'formative' FROM generate_series(1, 20000) AS n",
                school.tenant,
                school.objectives[1],
                school.scale_id,
                MONDAY,
            )
            await connection.execute(
                f'INSERT INTO "{reports_schema}".mastery_points (tenant_id, '
                "event_id, student_id, objective_id, valid_from, position, "
                "status, level, level_label, mastered, scale_id, scale_version) "
                "SELECT $1, gen_random_uuid(), 'other-' || n % 500, $2, $3, n, "
                "'scored', 2, 'Developing', false, $4, 1 "
                "FROM generate_series(1, 20000) AS n",
                school.tenant,
                school.objectives[1],
                MONDAY,
                school.scale_id,
            )

        patched, read_by_patch = await apply(
            connection, events_of(school, Grade(0, 1, 3.0, 5, mastered=True))
        )
        rebuilt, read_by_rebuild = await apply(
            connection, events_of(school, Enrol(0, 1, enrolled=False))
        )

    assert (patched["snapshots"], patched["patched"]) == (1, 1)
    assert (rebuilt["snapshots"], rebuilt["patched"]) == (1, 0)
    for read in (read_by_patch, read_by_rebuild):
        assert read["assessments"] < 20
        assert read["mastery_points"] < 20
