"""Rebuilding timelines on real PostgreSQL gives exactly what the projector
built event by event, announces nothing again, and takes in what the
projector applied while it ran."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from mastery_events.checkpoints import Checkpoints
from mastery_events.contract.grading import AssessmentRecorded, Evidence
from mastery_events.contract.objectives import CalculationPolicy
from mastery_events.envelope import PendingEvent
from mastery_events.ids import uuid7
from mastery_events.migrations import quote_schema
from mastery_events.store import EventStore, checkpoint_of
from mastery_events.tenancy import RELAY_ROLE
from mastery_grading import replay
from mastery_grading.errors import ScaleVersionNotFoundError
from mastery_grading.projector import NAME, ProjectorSettings, TimelineProjector
from mastery_grading.rebuild import Rebuild
from mastery_grading.timeline_store import REBUILT_TABLES
from tests.integration.grading.school import (
    BART,
    DECIMALS,
    LISA,
    SCALE_ID,
    TEACHER,
    TENANT,
    School,
    day,
    four_levels,
)

ORDER = {
    "timeline_evidence": "tenant_id, event_id",
    "timeline_items": "tenant_id, student_id, objective_id, assessment_id, revision",
    "timeline_rules": "tenant_id, student_id, objective_id, revision",
    "timeline_points": "tenant_id, student_id, objective_id, revision, valid_from",
    "timeline_states": "tenant_id, student_id, objective_id",
    "timeline_policies": "tenant_id, objective_set_id, objective_id",
    "timeline_scales": "tenant_id, scale_id",
}


@pytest.fixture
async def school(pool: asyncpg.Pool, schema: str, store: EventStore) -> School:
    """Grading's tables, catalogue and a policy in this test's schema."""
    return await School(pool, schema, store).open()


@pytest.fixture
def projector(store: EventStore) -> TimelineProjector:
    """The projector on this test's store, going through one timeline per
    step of a recalculation."""
    settings = ProjectorSettings(batch_size=5, recalculation_chunk=1)
    return TimelineProjector(store, settings=settings)


async def a_term(school: School, projector: TimelineProjector) -> None:
    """Grade two students on two objectives out of order, amend and void,
    then change the policy and revise the scale, projecting as it goes."""
    first, _ = await school.record(2, on=day(3))
    await school.record(3, on=day(1), objective=DECIMALS)
    await projector.catch_up()
    second, _ = await school.record(4, on=day(2))
    await school.record(1, on=day(5), student=BART)
    await school.amend(first, level=3, on=day(6), reason="retook the quiz")
    await projector.catch_up()
    await school.void(second, reason="wrong student")
    await school.set_policy(2, CalculationPolicy(method="mean"))
    await projector.catch_up()
    await school.record(4, on=day(7), student=BART)
    await school.catalogue(four_levels(2, threshold=2.5))
    await projector.catch_up()


async def tables(pool: asyncpg.Pool, schema: str) -> dict[str, list[dict[str, Any]]]:
    """Return every row of the rebuilt tables, in key order."""
    quoted = quote_schema(schema)
    found = {}
    async with pool.acquire() as connection:
        for table in REBUILT_TABLES:
            rows = await connection.fetch(
                f"SELECT * FROM {quoted}.{table} ORDER BY {ORDER[table]}"
            )
            found[table] = [dict(row) for row in rows]
    return found


async def announcements(store: EventStore) -> int:
    """Count the MasteryChanged events in the log."""
    types = [envelope.event_type async for envelope in store.read_all()]
    return types.count("MasteryChanged")


async def test_a_rebuild_equals_the_incremental_timelines(
    school: School,
    projector: TimelineProjector,
    pool: asyncpg.Pool,
    schema: str,
    store: EventStore,
) -> None:
    """After a term of recordings, corrections, a new policy and a new
    scale version, the rebuilt tables hold the same rows as the projector
    built, and the log holds not one MasteryChanged more."""
    await a_term(school, projector)
    built = await tables(pool, schema)
    announced = await announcements(store)

    async with pool.acquire() as connection:
        report = await Rebuild(pool, connection, schema).run()

    assert report.events > 0
    assert sum(len(rows) for rows in built.values()) > 20
    assert await tables(pool, schema) == built
    assert await announcements(store) == announced


async def test_a_rebuild_takes_in_what_the_projector_applied_meanwhile(
    school: School,
    projector: TimelineProjector,
    pool: asyncpg.Pool,
    schema: str,
    store: EventStore,
) -> None:
    """Events recorded and projected between the replay and the swap are
    replayed under the projector's lock, so the swapped-in tables still
    equal the live ones and the projector carries on from its place."""
    await a_term(school, projector)

    async with pool.acquire() as connection:
        rebuild = Rebuild(pool, connection, schema)
        target, _ = await rebuild.prepare()
        await rebuild.replay(target)
        late, _ = await school.record(2, on=day(8), student=BART)
        await projector.catch_up()
        built = await tables(pool, schema)
        caught_up = await rebuild.swap(target)

    assert caught_up > 0
    assert await tables(pool, schema) == built
    await school.amend(late, level=4, reason="rubric misread")
    await projector.catch_up()
    states = (await tables(pool, schema))["timeline_states"]
    assert max(row["revision"] for row in states if row["student_id"] == BART) >= 3


async def a_long_timeline(school: School, projector: TimelineProjector) -> None:
    """Grade one timeline a dozen times under a decaying average, mostly
    in date order, with evidence dated before all the rest, a date moved
    later, a void, and a scale revised in the middle."""
    await school.set_policy(2, CalculationPolicy(method="decaying_average", decay=0.65))
    recorded = [(await school.record(1 + n % 4, on=day(2 + n)))[0] for n in range(6)]
    await projector.catch_up()
    await school.record(4, on=day(1))
    await school.amend(recorded[1], on=day(12), reason="dated the retake")
    await school.catalogue(four_levels(2, threshold=2.5))
    await projector.catch_up()
    await school.void(recorded[4], reason="another student's paper")
    for n in range(4):
        await school.record(4 - n % 3, on=day(13 + n))
    await projector.catch_up()


async def test_a_long_revised_timeline_rebuilds_as_it_was_built(
    school: School,
    projector: TimelineProjector,
    pool: asyncpg.Pool,
    schema: str,
    store: EventStore,
) -> None:
    """The replay keeps one timeline's evidence folded from event to event;
    across early evidence, a moved date, a void and a new scale version it
    still gives the projector's rows, revision for revision."""
    await a_long_timeline(school, projector)
    built = await tables(pool, schema)

    async with pool.acquire() as connection:
        report = await Rebuild(pool, connection, schema).run()

    assert report.events == 13
    assert max(row["revision"] for row in built["timeline_points"]) >= 12
    assert await tables(pool, schema) == built


async def test_a_failed_rebuild_keeps_the_live_timelines_and_fills_no_copy(
    school: School,
    projector: TimelineProjector,
    pool: asyncpg.Pool,
    schema: str,
    store: EventStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An assessment on a scale version the catalogue lacks stops the
    replay at Lisa's last timeline, after it copied Bart's (a buffer per
    timeline): those rows are rolled back with it, and the live tables
    stay as the projector built them."""
    monkeypatch.setattr(replay, "FLUSH_ROWS", 1)
    await a_term(school, projector)
    built = await tables(pool, schema)
    assessment_id = uuid7()
    unknown_scale = AssessmentRecorded(
        assessment_id=assessment_id,
        student_id=LISA,
        objective_id=DECIMALS,
        scale_id=SCALE_ID,
        scale_version=9,
        level=3.0,
        assessed_at=day(9),
        assessed_by=TEACHER,
        evidence=Evidence(title="Exit ticket", kind="formative"),
    )
    (stored,) = await store.append(
        TENANT,
        f"assessment-{assessment_id}",
        0,
        [
            PendingEvent(
                payload=unknown_scale,
                occurred_at=day(9),
                actor=TEACHER,
                correlation_id=assessment_id,
            )
        ],
    )
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(f"SET LOCAL ROLE {RELAY_ROLE}")
        await Checkpoints(schema, NAME).save(connection, checkpoint_of(stored))

    async with pool.acquire() as connection:
        with pytest.raises(ScaleVersionNotFoundError):
            await Rebuild(pool, connection, schema).run()
        copied = await connection.fetchval(
            f"SELECT count(*) FROM {quote_schema(schema)}.timeline_points_rebuild"
        )

    assert copied == 0
    assert await tables(pool, schema) == built
