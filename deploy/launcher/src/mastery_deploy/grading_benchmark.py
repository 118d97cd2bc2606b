"""Measure batched grading through the grading service's own path against
raw inserts of the same events, on the same PostgreSQL server, in one run.

``mastery bench grading`` gives each repeat a fresh schema migrated as the
grading service migrates its own, fills its catalogue (through the
catalogue consumer's handler) and its roster tables, then records batches
with ``AssessmentStore.record_batch``: the idempotency key claimed, the
catalogue and roster read, the pure decision, one append of every event
and the read table written, in one transaction per batch. The raw side
inserts the same events, fully prepared, with ``executemany`` on an
events table made by the same migration, one transaction per batch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import click
import msgspec
import structlog

from mastery_deploy.benchmarks import (
    RAW_INSERT,
    TENANT,
    Bench,
    Measurement,
    Prepare,
    RawRow,
    Trial,
    benchmark_server,
    results_table,
)
from mastery_events.contract.grading import AssessmentRecorded, Evidence
from mastery_events.contract.objectives import ObjectiveAdded, ScaleDefined, ScaleLevel
from mastery_events.envelope import Envelope, Event
from mastery_events.identity import Identity
from mastery_events.ids import uuid7
from mastery_events.migrations import migrate
from mastery_events.store import EventStore
from mastery_events.tenancy import tenant_transaction
from mastery_grading.assessment_store import AssessmentStore, Request
from mastery_grading.assessments import AssessmentRow, RecordBatch, row_command
from mastery_grading.catalogue_store import CatalogueWriter
from mastery_grading.idempotency import claim_of
from mastery_grading.service import SERVICE

SECTION = "bench-room"
TEACHER = Identity(
    subject="teacher-bench",
    tenant_id=TENANT,
    roles=frozenset({"teacher"}),
    sections=frozenset({SECTION}),
)
OBJECTIVE_SET = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd7a00")
SCALE = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd7a01")
FIRST_DAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)


def objective_ids(count: int) -> list[UUID]:
    """Return the ids of the set's first ``count`` objectives."""
    return [UUID(int=OBJECTIVE_SET.int + 1 + number) for number in range(count)]


def student_ids(count: int) -> list[UUID]:
    """Return the ids of the section's ``count`` students."""
    return [UUID(int=SCALE.int + 1_000 + number) for number in range(count)]


def seed_event(tenant: str, event: Event) -> Envelope:
    """Wrap a catalogue event for the catalogue's handler."""
    return Envelope(
        event_id=uuid7(),
        event_type=type(event).__name__,
        event_version=1,
        tenant_id=tenant,
        stream_id="bench-catalogue",
        stream_version=1,
        position=1,
        transaction_id=1,
        occurred_at=FIRST_DAY,
        recorded_at=FIRST_DAY,
        actor="bench",
        correlation_id=uuid7(),
        payload=msgspec.Raw(b"{}"),
    )


async def fill_school(
    pool: asyncpg.Pool, schema: str, *, students: int, objectives: int
) -> None:
    """Migrate grading's tables into ``schema`` and fill its catalogue with
    a four-level scale and the objectives, and its roster with one section
    of ``students`` teaching the set."""
    async with pool.acquire() as connection:
        await migrate(connection, schema, SERVICE.migrations)
    writer = CatalogueWriter(schema)
    scale = ScaleDefined(
        scale_id=SCALE,
        name="Bench four",
        levels=tuple(
            ScaleLevel(value=value, label=f"L{value}", short_label="L", colour="#000")
            for value in (1, 2, 3, 4)
        ),
        mastery_threshold=3,
        defined_by="bench",
        defined_at=FIRST_DAY,
    )
    events: list[Event] = [scale]
    events += [
        ObjectiveAdded(
            objective_set_id=OBJECTIVE_SET,
            objective_id=objective_id,
            statement="Bench objective",
            added_by="bench",
            added_at=FIRST_DAY,
        )
        for objective_id in objective_ids(objectives)
    ]
    quoted = f'"{schema}"'
    async with pool.acquire() as connection, tenant_transaction(connection, TENANT):
        for event in events:
            await writer(connection, seed_event(TENANT, event), event)
        await connection.execute(
            f"INSERT INTO {quoted}.roster_sections (tenant_id, section_id, title, "
            "school_id, course_id, course_title) "
            "VALUES ($1, $2, 'Bench', 'bench-school', 'bench', 'Bench')",
            TENANT,
            SECTION,
        )
        await connection.execute(
            f"INSERT INTO {quoted}.section_objective_sets VALUES ($1, $2, $3)",
            TENANT,
            SECTION,
            OBJECTIVE_SET,
        )
        await connection.executemany(
            f"INSERT INTO {quoted}.roster_enrollments "
            "(tenant_id, section_id, person_id, role) VALUES ($1, $2, $3, 'student')",
            [(TENANT, SECTION, student) for student in student_ids(students)],
        )


def batch_of(number: int, *, students: int, objectives: int) -> RecordBatch:
    """Return assignment ``number``: every student on every objective."""
    rows = tuple(
        AssessmentRow(
            assessment_id=uuid7(),
            student_id=str(student),
            objective_id=objective_id,
            level=float((index + number) % 4 + 1),
        )
        for index, (student, objective_id) in enumerate(
            (student, objective_id)
            for student in student_ids(students)
            for objective_id in objective_ids(objectives)
        )
    )
    return RecordBatch(
        section_id=SECTION,
        scale_id=SCALE,
        scale_version=1,
        assessed_at=FIRST_DAY + timedelta(days=number),
        evidence=Evidence(title=f"Assignment {number}", kind="summative"),
        rows=rows,
        assessed_by=TEACHER.subject,
        at=FIRST_DAY + timedelta(days=number, hours=8),
    )


def raw_rows(batch: RecordBatch) -> list[RawRow]:
    """Return the event rows raw asyncpg inserts for ``batch``, payloads
    encoded before the clock starts."""
    rows: list[RawRow] = []
    for row in batch.rows:
        command = row_command(batch, row)
        event = AssessmentRecorded(
            assessment_id=command.assessment_id,
            student_id=command.student_id,
            section_id=command.section_id,
            objective_id=command.objective_id,
            scale_id=command.scale_id,
            scale_version=command.scale_version,
            level=command.level,
            assessed_at=command.assessed_at,
            assessed_by=command.assessed_by,
            evidence=command.evidence,
        )
        rows.append(
            (
                uuid7(),
                TENANT,
                f"assessment-{command.assessment_id}",
                1,
                "AssessmentRecorded",
                AssessmentRecorded.version,
                batch.at,
                batch.assessed_by,
                uuid7(),
                None,
                msgspec.json.encode(event).decode(),
            )
        )
    return rows


def batched_grading(students: int, objectives: int, *, batches: int) -> Prepare:
    """Prepare ``batches`` requests, each grading ``students`` on
    ``objectives``, through the service's path and as raw inserts."""

    async def prepare(store: EventStore, raw_table: str) -> Trial:
        await fill_school(
            store.pool, store.schema, students=students, objectives=objectives
        )
        assessments = AssessmentStore(store)
        requests = [
            batch_of(number, students=students, objectives=objectives)
            for number in range(batches)
        ]
        raw = [
            raw_rows(batch_of(number, students=students, objectives=objectives))
            for number in range(batches)
        ]
        insert = RAW_INSERT.format(table=raw_table)

        async def through_service() -> None:
            for number, batch in enumerate(requests):
                request = Request(
                    caller=TEACHER,
                    correlation_id=uuid7(),
                    claim=claim_of(
                        f"bench-{number}",
                        "POST /assessments/batch",
                        batch,
                        caller=TEACHER.subject,
                    ),
                )
                await assessments.record_batch(batch, request)

        async def through_raw() -> None:
            async with store.pool.acquire() as connection:
                for rows in raw:
                    async with connection.transaction():
                        await connection.executemany(insert, rows)

        return Trial(
            count=students * objectives * batches,
            through_store=through_service,
            through_raw=through_raw,
        )

    return prepare


async def run_grading_benchmark(
    database_url: str, *, repeats: int
) -> list[Measurement]:
    """Measure batched grading against raw inserts on ``database_url``."""
    async with asyncpg.create_pool(database_url, min_size=2, max_size=4) as pool:
        async with pool.acquire() as connection:
            version = await connection.fetchval("SHOW server_version")
            fsync = await connection.fetchval("SHOW fsync")
        click.echo(
            f"measuring on PostgreSQL {version}, fsync {fsync}; "
            f"client: {os.cpu_count()} CPUs",
            err=True,
        )
        bench = Bench(pool, repeats=repeats)
        return [
            await bench.compare(
                "grade a class of 30 on 5 objectives, 20 batches",
                batched_grading(30, 5, batches=20),
            ),
            await bench.compare(
                "grade 250 students on 10 objectives, 3 batches of 2,500",
                batched_grading(250, 10, batches=3),
            ),
        ]


@click.command("grading")
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Runs per workload.",
)
def grading_command(repeats: int) -> None:
    """Compare batched grading through the grading service's own path with
    raw inserts of the same events."""
    # The service logs a line per batch and per catalogue event; the
    # table on stdout is what a reader of this command wants.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING)
    )
    started = time.perf_counter()
    with benchmark_server() as database_url:
        measurements = asyncio.run(run_grading_benchmark(database_url, repeats=repeats))
    click.echo(results_table(measurements, side="service"))
    click.echo(
        f"\n{repeats} repeats each, medians; {time.perf_counter() - started:.0f}s"
    )
