"""Rebuilding timelines on real PostgreSQL gives exactly what the projector
built event by event, announces nothing again, and takes in what the
projector applied while it ran."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from mastery_events.contract.objectives import CalculationPolicy
from mastery_events.migrations import quote_schema
from mastery_events.store import EventStore
from mastery_grading.projector import ProjectorSettings, TimelineProjector
from mastery_grading.rebuild import Rebuild
from mastery_grading.timeline_store import REBUILT_TABLES
from tests.integration.grading.school import (
    BART,
    DECIMALS,
    School,
    day,
    four_levels,
)

ORDER = {
    "timeline_evidence": "tenant_id, event_id",
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
