"""Timelines keep evidence events and item versions as JSON text, and each
point only names the items its explanation lists: a school whose
timelines were stored in an older shape (explanations and events as
``jsonb``, or each point's whole explanation) reads the same once
migrated, and its projector and a rebuild carry on from there to the same
rows."""

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
from mastery_grading.timeline_store import (
    REBUILT_TABLES,
    STORED_RESULT,
    Pair,
    result_of,
    stored_parts,
)
from tests.integration.grading.school import (
    BART,
    DECIMALS,
    FRACTIONS,
    LISA,
    TENANT,
    School,
    day,
)

# The migration that turns the two columns from jsonb into json, and the
# one that keeps each evidence item once instead of in every explanation.
JSON_TEXT = 7
ITEMS = 8
PAIRS = ((LISA, FRACTIONS), (LISA, DECIMALS), (BART, FRACTIONS))
JSON_COLUMNS = {
    "timeline_points": "summary",
    "timeline_evidence": "event",
    "timeline_items": "item",
    "timeline_rules": "header",
}
SHAPE_COLUMNS = (
    ("timeline_points", "result"),
    ("timeline_evidence", "event"),
    ("timeline_points", "summary"),
)
NOW = {"result": None, "event": "json", "summary": "json"}
POINT_KEY = ("tenant_id", "student_id", "objective_id", "revision", "valid_from")
ORDER = {
    "timeline_evidence": "tenant_id, event_id",
    "timeline_items": "tenant_id, student_id, objective_id, assessment_id, revision",
    "timeline_rules": "tenant_id, student_id, objective_id, revision",
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


async def into_older_shape(pool: asyncpg.Pool, schema: str, number: int) -> None:
    """Rewrite the timelines the projector wrote into the shape they had
    before migration ``number`` (7: explanations and evidence as ``jsonb``;
    8: each point's whole explanation in ``result``), and forget that
    migration and the later ones were applied, as a school still on that
    shape would have it.

    Each point's ``result`` is its whole result encoded as the projector
    encoded it then, so the migrations start from what they would find.
    """
    quoted = quote_schema(schema)
    again = [m for m in SERVICE.migrations if m.number >= number]
    async with pool.acquire() as connection, connection.transaction():
        points = await connection.fetch(
            "SELECT tenant_id, student_id, objective_id, revision, valid_from, "
            f"{STORED_RESULT} FROM {quoted}.timeline_points"
        )
        parts = {
            pair: await stored_parts(
                connection,
                f"{quoted}.timeline_items",
                f"{quoted}.timeline_rules",
                Pair(tenant_id=pair[0], student_id=pair[1], objective_id=pair[2]),
            )
            for pair in {(row[0], row[1], row[2]) for row in points}
        }
        results = [
            (
                *(row[key] for key in POINT_KEY),
                msgspec.json.encode(
                    result_of(row, parts[row[0], row[1], row[2]])
                ).decode(),
            )
            for row in points
        ]
        await connection.execute(
            f"ALTER TABLE {quoted}.timeline_points ADD COLUMN result json"
        )
        await connection.executemany(
            f"UPDATE {quoted}.timeline_points SET result = $6::json "
            "WHERE tenant_id = $1 AND student_id = $2 AND objective_id = $3 "
            "AND revision = $4 AND valid_from = $5",
            results,
        )
        await connection.execute(
            f"ALTER TABLE {quoted}.timeline_points "
            "ALTER COLUMN result SET NOT NULL, DROP COLUMN rules_revision, "
            "DROP COLUMN counted_revisions, DROP COLUMN left_out, "
            "DROP COLUMN left_out_revisions, DROP COLUMN summary; "
            f"DROP TABLE {quoted}.timeline_items, {quoted}.timeline_rules"
        )
        if number <= JSON_TEXT:
            await connection.execute(
                f"ALTER TABLE {quoted}.timeline_points "
                "ALTER COLUMN result TYPE jsonb; "
                f"ALTER TABLE {quoted}.timeline_evidence "
                "ALTER COLUMN event TYPE jsonb"
            )
        await connection.executemany(
            f"DELETE FROM {quoted}.schema_migrations "
            "WHERE component = $1 AND number = $2",
            [(m.component, m.number) for m in again],
        )


async def shape_of(pool: asyncpg.Pool, schema: str) -> dict[str, str | None]:
    """Return the types of the explanation and evidence columns, ``None``
    for a column the tables no longer have."""
    async with pool.acquire() as connection:
        return {
            column: await connection.fetchval(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = $1::regclass AND attname = $2 "
                "AND NOT attisdropped",
                f"{quote_schema(schema)}.{table}",
                column,
            )
            for table, column in SHAPE_COLUMNS
        }


@pytest.mark.parametrize(
    ("number", "older"),
    [
        (JSON_TEXT, {"result": "jsonb", "event": "jsonb", "summary": None}),
        (ITEMS, {"result": "json", "event": "json", "summary": None}),
    ],
    ids=["jsonb explanations", "whole explanations"],
)
async def test_timelines_in_an_older_shape_read_the_same_once_migrated(
    pool: asyncpg.Pool,
    schema: str,
    store: EventStore,
    number: int,
    older: dict[str, str | None],
) -> None:
    """Timelines stored in an older shape answer the same after the
    migrations; a correction projected afterwards revises them as a
    rebuild does."""
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
    await into_older_shape(pool, schema, number)
    assert await shape_of(pool, schema) == older

    async with pool.acquire() as connection:
        await migrate(connection, schema, SERVICE.migrations)
    # Services migrate as they start, so their connections are new; one
    # that prepared its reads on the older columns would fail one of them.
    await pool.expire_connections()

    assert await shape_of(pool, schema) == NOW
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


async def test_item_migration_keeps_each_item_version_once_and_runs_twice(
    pool: asyncpg.Pool, schema: str, store: EventStore
) -> None:
    """Migrating whole explanations keeps each item version and each set
    of rules once, named as the projector names them, and running it again
    changes nothing."""
    school = await School(pool, schema, store).open()
    projector = TimelineProjector(store, settings=ProjectorSettings(batch_size=5))
    first, _ = await school.record(2, on=day(3))
    await school.record(3, on=day(4))
    await school.record(1, on=day(5))
    await projector.catch_up()
    await school.amend(first, level=4, reason="retook the quiz")
    await projector.catch_up()
    projected = await decoded_tables(pool, schema)
    await into_older_shape(pool, schema, ITEMS)

    (parts,) = [m for m in SERVICE.migrations if m.number == ITEMS]
    async with pool.acquire() as connection:
        await migrate(connection, schema, SERVICE.migrations)
        async with connection.transaction():
            await connection.execute(f"SET LOCAL search_path TO {quote_schema(schema)}")
            await connection.execute(parts.sql)

    # Three recordings, then an amend of the first: four item versions in
    # all, where the explanations listed nine items over six points, and
    # one set of rules they all name.
    assert len(projected["timeline_items"]) == 4
    assert len(projected["timeline_rules"]) == 1
    assert len(projected["timeline_points"]) == 6
    assert await decoded_tables(pool, schema) == projected
