"""Snapshots after downtime and after a rebuild: reports stopped while
grades are recorded catches up when it starts again, and `mastery reports
rebuild`, replaying the streams from the start, arrives at the very same
snapshots and log positions."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from litestar.testing import AsyncTestClient

from mastery_events.keyring import Keyring
from mastery_events.runtime import ServiceRuntime
from mastery_objectives.service import SERVICE as OBJECTIVES
from mastery_reports.app import create_app
from mastery_reports.facts_store import CONSUMERS
from mastery_reports.rebuild import rebuild
from mastery_reports.service import SERVICE as REPORTS
from mastery_reports.snapshot_store import Snapshots
from tests.integration.reports.district import (
    GRADING,
    Stack,
    assessed,
    new_district,
    publishing,
    seeded,
)
from tests.tokens import TestKeys
from tests.waiting import eventually

# Assessments recorded while reports is down, alternating objectives.
GRADES_WHILE_DOWN = 40


async def test_catching_up_after_downtime_equals_a_full_rebuild(
    tmp_path: Path,
    database_url: str,
    nats_url: str,
    subject_prefix: str,
    pool: asyncpg.Pool,
    keyring: Keyring,
) -> None:
    """Forty grades recorded while reports is stopped all reach the
    student's snapshot when it starts again, up to the last one's log
    position; a rebuild from the streams then gives the same document and
    positions, and replays every message of both streams."""
    keys = TestKeys(tmp_path)
    settings = keys.settings(
        database_url=database_url,
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        relay_poll_interval=0.1,
    )
    district = new_district()
    snapshots = Snapshots(pool, REPORTS.schema)

    async with (
        ServiceRuntime(publishing(OBJECTIVES), settings).running(),
        ServiceRuntime(publishing(GRADING), settings).running(),
    ):
        async with AsyncTestClient(app=create_app(settings)) as client:
            await seeded(Stack(client, keys, pool, keyring), district)

        stack = Stack(client, keys, pool, keyring)
        stored = []
        for index in range(GRADES_WHILE_DOWN):
            objective = district.fractions if index % 2 else district.decimals
            level = 1 + index % 4
            stored += await stack.append(
                stack.grading,
                district.tenant,
                assessed(
                    district,
                    objective,
                    level,
                    days=4 + index,
                    label=f"level {level}",
                    mastered=level >= 3,
                    title=f"Task {index + 1}",
                ),
            )
        last = stored[-1].position

        async with AsyncTestClient(app=create_app(settings)):

            async def caught_up() -> bool:
                found = await snapshots.of_student(district.tenant, district.student_id)
                return found is not None and found.positions.get("grading") == last

            await eventually(caught_up, within=60.0, what="reports catching up")
        caught = await snapshots.of_student(district.tenant, district.student_id)

        result = await rebuild(REPORTS, settings)
        rebuilt = await snapshots.of_student(district.tenant, district.student_id)

    assert caught is not None
    assert rebuilt is not None
    evidence = [
        len(o.evidence)
        for s in caught.snapshot.sections
        for objective_set in s.objective_sets
        for o in objective_set.objectives
    ]
    assert sum(evidence) == GRADES_WHILE_DOWN + 1
    assert rebuilt.snapshot == caught.snapshot
    assert set(caught.positions) == {"grading", "objectives"}
    assert rebuilt.positions == caught.positions
    assert set(result.replayed) == set(CONSUMERS)
    assert all(sequence > 0 for sequence in result.replayed.values())
