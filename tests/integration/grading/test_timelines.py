"""Timelines projected from grading's own log on real PostgreSQL:
corrections change them with their reasons kept, as-of and as-known reads
return earlier states, every change is announced in the log, and a new
scale version recalculates the timelines it affects."""

from __future__ import annotations

import secrets
from datetime import timedelta
from uuid import UUID

import asyncpg
import pytest

from mastery_deploy.credentials import enable_app_login
from mastery_events.contract import CONTRACT
from mastery_events.contract.grading import MasteryChanged, RecalculationFinished
from mastery_events.contract.objectives import CalculationPolicy
from mastery_events.ids import uuid7
from mastery_events.store import EventStore
from mastery_events.tenancy import tenant_transaction
from mastery_grading.projector import ProjectorSettings, TimelineProjector
from mastery_grading.recalculation import Recalculations
from mastery_grading.timeline_reads import TimelineReader
from tests.integration.grading.school import (
    BART,
    FRACTIONS,
    LISA,
    SCALE_ID,
    SET_ID,
    TENANT,
    School,
    day,
    four_levels,
)

# The store's finest time: just before an event was recorded.
INSTANT = timedelta(microseconds=1)


@pytest.fixture
async def school(pool: asyncpg.Pool, schema: str, store: EventStore) -> School:
    """Grading's tables, catalogue and a policy in this test's schema."""
    return await School(pool, schema, store).open()


@pytest.fixture
def projector(store: EventStore) -> TimelineProjector:
    """The projector on this test's store, in small batches."""
    return TimelineProjector(store, settings=ProjectorSettings(batch_size=7))


@pytest.fixture
def reader(pool: asyncpg.Pool, schema: str) -> TimelineReader:
    """The timeline reads of this test's schema."""
    return TimelineReader(pool, schema)


async def announced(store: EventStore) -> list[MasteryChanged]:
    """Return every MasteryChanged in the log, in the log's order."""
    found = []
    async for envelope in store.read_all():
        if envelope.event_type == "MasteryChanged":
            event = store.registry.decode(envelope)
            assert isinstance(event, MasteryChanged)
            found.append(event)
    return found


async def test_each_assessment_adds_a_change_point_at_its_valid_time(
    school: School, projector: TimelineProjector, reader: TimelineReader
) -> None:
    """Levels 2 on day 1 and 3 on day 4 give two points under most_recent,
    2 then 3, each naming the assessment behind it and the policy."""
    first, _ = await school.record(2, on=day(1))
    second, _ = await school.record(3, on=day(4))
    await projector.catch_up()

    timeline = await reader.timeline(TENANT, LISA, FRACTIONS)

    assert [p.valid_from for p in timeline.points] == [day(1), day(4)]
    assert [p.score for p in timeline.points] == [2.0, 3.0]
    assert [p.mastered for p in timeline.points] == [False, True]
    assert timeline.state is not None
    assert timeline.state.level_label == "Proficient"
    counted = [i.assessment_id for i in timeline.state.result.explanation.counted]
    assert counted == [first, second]
    assert timeline.state.result.explanation.policy.version == 1


async def test_an_amend_changes_the_timeline_and_keeps_its_reason(
    school: School, projector: TimelineProjector, reader: TimelineReader
) -> None:
    """Amending day 4's 3 down to 1 replaces that point with score 1; the
    new point says it was amended and why, and the amendment shows in the
    evidence with its before and after."""
    await school.record(2, on=day(1))
    quiz, _ = await school.record(3, on=day(4))
    await projector.catch_up()
    await school.amend(quiz, level=1, reason="scored the wrong rubric row")
    await projector.catch_up()

    timeline = await reader.timeline(TENANT, LISA, FRACTIONS)

    assert [p.score for p in timeline.points] == [2.0, 1.0]
    state = timeline.state
    assert state is not None
    assert state.reason == "assessment amended: scored the wrong rubric row"
    (amendment,) = state.result.explanation.counted[-1].amendments
    assert amendment.reason == "scored the wrong rubric row"
    assert (amendment.before.level, amendment.after.level) == (3.0, 1.0)


async def test_a_void_leaves_the_assessment_out_with_its_reason(
    school: School, projector: TimelineProjector, reader: TimelineReader
) -> None:
    """Voiding day 4's 4 brings the state from day 4 back to day 1's 2:
    the void is left out as voided and the point says why."""
    await school.record(2, on=day(1))
    copied, _ = await school.record(4, on=day(4))
    await projector.catch_up()
    await school.void(copied, reason="copied from a neighbour")
    await projector.catch_up()

    timeline = await reader.timeline(TENANT, LISA, FRACTIONS)

    state = timeline.state
    assert state is not None
    assert state.score == 2.0
    assert state.reason == "assessment voided: copied from a neighbour"
    (left_out,) = state.result.explanation.left_out
    assert left_out.assessment_id == copied
    assert left_out.standing == "voided"
    assert left_out.voided is not None
    assert left_out.voided.reason == "copied from a neighbour"


async def test_as_of_an_earlier_date_returns_the_state_then(
    school: School, projector: TimelineProjector, reader: TimelineReader
) -> None:
    """As of day 2, between the evidence of day 1 and day 4, the state is
    day 1's 2; before any evidence there is none."""
    await school.record(2, on=day(1))
    await school.record(4, on=day(4))
    await projector.catch_up()

    then = await reader.timeline(TENANT, LISA, FRACTIONS, as_of=day(2))
    before = await reader.timeline(TENANT, LISA, FRACTIONS, as_of=day(0))

    assert then.state is not None
    assert then.state.score == 2.0
    assert before.state is None


async def test_as_known_at_a_past_moment_returns_what_was_believed(
    school: School, projector: TimelineProjector, reader: TimelineReader
) -> None:
    """Before the amend was recorded the school believed day 4's 3; after
    it, 1. As of day 2 and known before the late day-1 evidence arrived,
    there was nothing yet: both axes together."""
    quiz, _ = await school.record(3, on=day(4))
    await projector.catch_up()
    _, late = await school.record(2, on=day(1), title="Found in a drawer")
    await projector.catch_up()
    amended = await school.amend(quiz, level=1, reason="wrong student's sheet")
    await projector.catch_up()

    before_amend = await reader.timeline(
        TENANT, LISA, FRACTIONS, known_at=amended.recorded_at - INSTANT
    )
    now = await reader.timeline(TENANT, LISA, FRACTIONS)
    before_late = await reader.timeline(
        TENANT, LISA, FRACTIONS, as_of=day(2), known_at=late.recorded_at - INSTANT
    )
    after_late = await reader.timeline(
        TENANT, LISA, FRACTIONS, as_of=day(2), known_at=late.recorded_at
    )

    assert before_amend.state is not None
    assert before_amend.state.score == 3.0
    assert now.state is not None
    assert now.state.score == 1.0
    assert before_late.state is None
    assert after_late.state is not None
    assert after_late.state.score == 2.0
    replaced = [p for p in before_amend.points if p.recorded_until is not None]
    assert [p.valid_from for p in replaced] == [day(4)]


async def test_every_change_is_announced_in_the_log_with_its_explanation(
    school: School, projector: TimelineProjector, store: EventStore
) -> None:
    """An out-of-order recording changes its own day and every later one,
    so it is announced once per changed valid time, each naming the
    assessment that caused it, what counted and the policy version."""
    await school.record(3, on=day(4))
    await projector.catch_up()
    _, late = await school.record(2, on=day(1))
    await projector.catch_up()

    events = await announced(store)

    assert [(e.valid_from, e.score) for e in events] == [
        (day(4), 3.0),
        (day(1), 2.0),
        (day(4), 3.0),
    ]
    assert events[-1].cause_event_id == late.event_id
    assert len(events[-1].counted) == 2
    assert events[-1].policy_version == 1
    assert events[-1].method == "most_recent"
    assert {e.reason for e in events} == {"assessment recorded"}


async def test_a_new_scale_version_recalculates_the_timelines_on_it(
    school: School,
    projector: TimelineProjector,
    reader: TimelineReader,
    store: EventStore,
    pool: asyncpg.Pool,
    schema: str,
) -> None:
    """Version 2 raises mastery to 4: Lisa's 3 is no longer mastered and
    Bart's 4 still is, now read on version 2. The job is announced, goes
    through both timelines with the reason said, and finishes."""
    await school.record(3, on=day(1))
    await school.record(4, on=day(1), student=BART)
    await projector.catch_up()

    await school.catalogue(four_levels(2, threshold=4.0))
    await projector.catch_up()

    lisa = await reader.timeline(TENANT, LISA, FRACTIONS)
    bart = await reader.timeline(TENANT, BART, FRACTIONS)
    assert lisa.state is not None
    assert lisa.state.mastered is False
    assert lisa.state.reason == "recalculated: scale version 2"
    assert lisa.state.result.explanation.scale.version == 2
    assert bart.state is not None
    assert bart.state.mastered is True
    assert bart.state.result.explanation.scale.version == 2

    async with pool.acquire() as connection:
        (job, *_) = await Recalculations(schema).jobs(connection, TENANT)
    assert (job.scale_id, job.scale_version) == (SCALE_ID, 2)
    assert (job.status, job.timelines, job.done, job.changed) == ("finished", 2, 2, 2)
    finished = [
        store.registry.decode(e)
        async for e in store.read_all()
        if e.event_type == "RecalculationFinished"
    ]
    assert any(
        isinstance(e, RecalculationFinished) and e.job_id == job.job_id
        for e in finished
    )


async def test_a_new_policy_version_recalculates_with_its_method(
    school: School, projector: TimelineProjector, reader: TimelineReader
) -> None:
    """Policy version 2 chooses highest: 4 then 2 reads 4, not 2, from
    the job on; the state names policy version 2."""
    await school.record(4, on=day(1))
    await school.record(2, on=day(2))
    await projector.catch_up()
    await school.set_policy(2, CalculationPolicy(method="highest"))
    await projector.catch_up()

    timeline = await reader.timeline(TENANT, LISA, FRACTIONS)

    assert timeline.state is not None
    assert timeline.state.score == 4.0
    assert timeline.state.result.explanation.policy.version == 2


async def test_the_projector_runs_as_the_application_role_one_tenant_at_a_time(
    school: School, database_url: str, schema: str
) -> None:
    """Logged in as mastery_app, bound by row security, the projector
    still reads every tenant's log and moves its checkpoint; its rows are
    Lakeside's, and Riverside's transaction sees none of them."""
    await school.record(3, on=day(1))
    app_url = await enable_app_login(database_url, secrets.token_urlsafe(12))

    async with asyncpg.create_pool(app_url, min_size=1, max_size=2) as app_pool:
        app_store = EventStore(app_pool, schema, registry=CONTRACT)
        await TimelineProjector(app_store).catch_up()
        async with app_pool.acquire() as connection:
            async with tenant_transaction(connection, "riverside"):
                theirs = await connection.fetchval(
                    f'SELECT count(*) FROM "{schema}".timeline_points'
                )
            async with tenant_transaction(connection, TENANT):
                ours = await connection.fetchval(
                    f'SELECT count(*) FROM "{schema}".timeline_points'
                )

    assert (theirs, ours) == (0, 1)


async def test_a_section_matrix_holds_its_enrolled_students_on_its_sets(
    school: School,
    projector: TimelineProjector,
    reader: TimelineReader,
    pool: asyncpg.Pool,
    schema: str,
) -> None:
    """A student the roster enrolls in room 14, assessed in room 12 on an
    objective of a set linked to room 14, shows in room 14's matrix;
    one not enrolled there does not."""
    enrolled = str(uuid7())
    await school.record(3, on=day(1), student=enrolled)
    await school.record(2, on=day(1), student=BART)
    await projector.catch_up()
    async with pool.acquire() as connection, tenant_transaction(connection, TENANT):
        await connection.execute(
            f'INSERT INTO "{schema}".roster_enrollments '
            "(tenant_id, section_id, person_id, role) "
            "VALUES ($1, 'room-14', $2, 'student')",
            TENANT,
            UUID(enrolled),
        )
        await connection.execute(
            f'INSERT INTO "{schema}".section_objective_sets '
            "VALUES ($1, 'room-14', $2)",
            TENANT,
            SET_ID,
        )

    matrix = await reader.section(TENANT, "room-14")

    assert [(cell.student_id, cell.score) for cell in matrix] == [(enrolled, 3.0)]


async def test_a_recalculation_goes_through_its_timelines_over_several_steps(
    school: School, store: EventStore, reader: TimelineReader, schema: str
) -> None:
    """One timeline per step: after the step that announces the job and
    the first step of it, one of three timelines is done and the job runs;
    an assessment recorded meanwhile waits for the job, then all three are
    read on version 2 and the job is finished."""
    projector = TimelineProjector(
        store, settings=ProjectorSettings(recalculation_chunk=1)
    )
    for student in (LISA, BART, "student-milhouse"):
        await school.record(3, on=day(1), student=student)
    await projector.catch_up()

    await school.catalogue(four_levels(2, threshold=4.0))
    await projector.step()
    await projector.step()
    await school.record(4, on=day(2))
    async with store.pool.acquire() as connection:
        (job, *_) = await Recalculations(schema).jobs(connection, TENANT)
    assert (job.status, job.done) == ("running", 1)

    await projector.catch_up()

    async with store.pool.acquire() as connection:
        (job, *_) = await Recalculations(schema).jobs(connection, TENANT)
    assert (job.status, job.timelines, job.done, job.changed) == ("finished", 3, 3, 3)
    lisa = await reader.timeline(TENANT, LISA, FRACTIONS)
    assert [p.reason for p in lisa.points] == [
        "recalculated: scale version 2",
        "assessment recorded",
    ]
    assert lisa.state is not None
    assert lisa.state.mastered is True
