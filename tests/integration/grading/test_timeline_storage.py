"""Timelines keep explanations and evidence events as JSON text: a school
whose timelines were projected into ``jsonb`` columns reads the same once
they are ``json``, and its projector and a rebuild carry on from there to
the same rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import pytest

from mastery_events.migrations import migrate, quote_schema
from mastery_events.store import EventStore
from mastery_grading.projector import ProjectorSettings, TimelineProjector
from mastery_grading.rebuild import Rebuild
from mastery_grading.service import SERVICE
from mastery_grading.timeline_reads import MasteryCell, Timeline, TimelineReader
from mastery_grading.timeline_store import REBUILT_TABLES
from tests.integration.grading import school as school_module
from tests.integration.grading.school import (
    BART,
    DECIMALS,
    FRACTIONS,
    LISA,
    TENANT,
    School,
    day,
)

# The migration that turns the two columns from jsonb into json.
JSON_TEXT = 7
PAIRS = ((LISA, FRACTIONS), (LISA, DECIMALS), (BART, FRACTIONS))
JSON_COLUMNS = {"timeline_points": "result", "timeline_evidence": "event"}
ORDER = {
    "timeline_evidence": "tenant_id, event_id",
    "timeline_points": "tenant_id, student_id, objective_id, revision, valid_from",
    "timeline_states": "tenant_id, student_id, objective_id",
    "timeline_policies": "tenant_id, objective_set_id, objective_id",
    "timeline_scales": "tenant_id, scale_id",
}


async def readings(
    reader: TimelineReader, known_at: datetime
) -> tuple[list[Timeline], list[list[MasteryCell]]]:
    """What the timeline routes answer: each timeline now, then as of an
    earlier day as known at ``known_at``; and each student's summary."""
    timelines = [
        await reader.timeline(TENANT, student, objective)
        for student, objective in PAIRS
    ]
    timelines += [
        await reader.timeline(
            TENANT, student, objective, as_of=day(4), known_at=known_at
        )
        for student, objective in PAIRS
    ]
    summaries = [
        await reader.summary(TENANT, student, as_of=day(4)) for student in (LISA, BART)
    ]

    return timelines, summaries


async def column_types(pool: asyncpg.Pool, schema: str) -> set[str]:
    """Return the types of the explanation and evidence columns."""
    async with pool.acquire() as connection:
        return {
            await connection.fetchval(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = $1::regclass AND attname = $2",
                f"{quote_schema(schema)}.{table}",
                column,
            )
            for table, column in JSON_COLUMNS.items()
        }


async def decoded_tables(
    pool: asyncpg.Pool, schema: str
) -> dict[str, list[dict[str, Any]]]:
    """Return every row of the rebuilt tables in key order, their JSON
    decoded, as jsonb's text and the projector's differ in key order."""
    quoted = quote_schema(schema)
    found = {}
    async with pool.acquire() as connection:
        for table in REBUILT_TABLES:
            rows = [
                dict(row)
                for row in await connection.fetch(
                    f"SELECT * FROM {quoted}.{table} ORDER BY {ORDER[table]}"
                )
            ]
            column = JSON_COLUMNS.get(table)
            for row in rows:
                if column is not None:
                    row[column] = msgspec.json.decode(row[column])
            found[table] = rows

    return found


async def test_timelines_projected_into_jsonb_read_the_same_as_json(
    pool: asyncpg.Pool,
    schema: str,
    store: EventStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Timelines projected before the migration answer the same after it;
    a correction projected afterwards revises them as a rebuild does."""
    older = tuple(m for m in SERVICE.migrations if m.number < JSON_TEXT)
    monkeypatch.setattr(
        school_module,
        "SERVICE",
        msgspec.structs.replace(SERVICE, migrations=older),
    )
    school = await School(pool, schema, store).open()
    projector = TimelineProjector(store, settings=ProjectorSettings(batch_size=5))
    first, _ = await school.record(2, on=day(3))
    await school.record(3, on=day(1), objective=DECIMALS)
    _, known = await school.record(1, on=day(5), student=BART)
    await projector.catch_up()
    await school.amend(first, level=4, on=day(2), reason="retook the quiz")
    await projector.catch_up()
    reader = TimelineReader(pool, schema)
    before = await readings(reader, known.recorded_at)
    assert all(timeline.points for timeline in before[0][: len(PAIRS)])
    assert await column_types(pool, schema) == {"jsonb"}

    async with pool.acquire() as connection:
        await migrate(connection, schema, SERVICE.migrations)
    # Services migrate as they start, so their connections are new; one
    # that prepared its reads on the jsonb columns would fail one of them.
    await pool.expire_connections()

    assert await column_types(pool, schema) == {"json"}
    assert await readings(reader, known.recorded_at) == before

    await school.amend(first, level=1, reason="marked the wrong row", version=2)
    await school.record(4, on=day(6))
    await projector.catch_up()
    projected = await decoded_tables(pool, schema)
    answered = await readings(reader, known.recorded_at)
    async with pool.acquire() as connection:
        await Rebuild(pool, connection, schema).run()

    assert max(row["revision"] for row in projected["timeline_points"]) >= 4
    assert await decoded_tables(pool, schema) == projected
    assert await readings(reader, known.recorded_at) == answered
