"""``mastery bench rebuild``: how fast timelines rebuild, and whether the
memory a rebuild needs stays flat as the log grows.

Each size gets a schema of its own with grading's tables, a scale and a
policy in its catalogue, and a log of assessments (a tenth of them
amended, a twentieth voided) over many students and objectives. By
default the timeline projector then follows the log as a running service
would, appending its ``MasteryChanged`` announcements, which a rebuild
reads past; with ``--log assessments`` the log holds the assessment
events alone and the projector's checkpoint is set to its end. Either
way the rebuild replays all of it, and its speed is given over the whole
log and over the assessment events it replays.

Each log is rebuilt three times, each rebuild followed at once by the
baseline, and the pair with the median ratio is reported. The baseline,
measured in the same run on the same server, is PostgreSQL taking in the
rows the rebuild wrote, already encoded (binary ``COPY`` into empty
copies of the tables, indexes and all): what any rebuild that writes
those rows must spend. The ratio says how much the replay adds to that,
however busy the machine is. Beside the wall clock, the reported rebuild's
CPU time is given apart for Python and, when the server runs on this
machine, for PostgreSQL's processes: CPU time does not stretch when other
work shares the cores, so it compares runs of different moments. Peak
Python memory (tracemalloc) comes from one more rebuild, as tracing slows
the run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import asyncpg
import click
import msgspec

from mastery_events.checkpoints import Checkpoints
from mastery_events.contract import CONTRACT
from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentRecorded,
    AssessmentVoided,
    Evidence,
)
from mastery_events.contract.objectives import (
    CalculationPolicy,
    CalculationPolicySet,
    ObjectiveAdded,
    ScaleDefined,
    ScaleLevel,
)
from mastery_events.database import Connection
from mastery_events.envelope import Envelope, Event, PendingEvent
from mastery_events.ids import uuid7
from mastery_events.migrations import migrate
from mastery_events.store import EventStore, StreamAppend, checkpoint_of
from mastery_events.tenancy import RELAY_ROLE, tenant_transaction
from mastery_grading.catalogue_store import CatalogueWriter
from mastery_grading.projector import NAME, TimelineProjector
from mastery_grading.rebuild import Rebuild
from mastery_grading.replay import ASSESSMENT_TYPES
from mastery_grading.service import SERVICE
from mastery_grading.timeline_store import REBUILT_TABLES

TENANT = "bench-district"
TEACHER = "teacher-bench"
SCALE = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fa3")
OBJECTIVE_SET = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fa4")
FIRST_DAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
OBJECTIVES = 20
EVIDENCE_PER_TIMELINE = 6
APPEND_BATCH = 1000
REPEATS = 3
LOGS = ("projected", "assessments")


ROW_TABLES = (
    "timeline_evidence",
    "timeline_items",
    "timeline_rules",
    "timeline_points",
    "timeline_states",
)
# Every process of the server: backends and the background writers, as
# a COPY's cost lands on the WAL writer and checkpointer too.
PIDS = "SELECT pid FROM pg_stat_activity"


class Timed(msgspec.Struct, frozen=True, kw_only=True):
    """One rebuild and the baseline right after it: wall-clock seconds,
    and the rebuild's CPU seconds in Python and in the server (``None``
    when the server's processes are not on this machine)."""

    seconds: float
    copy_seconds: float
    python_cpu: float
    server_cpu: float | None


class Seeded(msgspec.Struct, frozen=True, kw_only=True):
    """A log made ready for rebuilding: its events, the assessment events
    among them, and the seconds the projector took to follow it (``None``
    when it did not)."""

    events: int
    assessments: int
    projected_seconds: float | None


class Result(msgspec.Struct, frozen=True, kw_only=True):
    """One log size: its events and assessment events, the rebuild's
    speed and CPU time, the baseline's speed and the rebuild's peak
    memory."""

    events: int
    assessments: int
    projected_seconds: float | None
    seconds: float
    copy_seconds: float
    python_cpu: float
    server_cpu: float | None
    peak_mib: float
    same_as_projector: bool | None

    @property
    def rate(self) -> float:
        """Log events rebuilt per second, those read past included."""
        return self.events / self.seconds

    @property
    def assessment_rate(self) -> float:
        """Assessment events replayed per second."""
        return self.assessments / self.seconds

    @property
    def over_copy(self) -> float:
        """How many times the baseline's time the rebuild took."""
        return self.seconds / self.copy_seconds


def objective(number: int) -> UUID:
    """Return the ``number``-th objective's id, the same in every run."""
    return UUID(int=(OBJECTIVE_SET.int & ~0xFFFF) | number)


def catalogue_events() -> list[Event]:
    """The scale, the objectives and a decaying-average policy."""
    levels = tuple(
        ScaleLevel(
            value=value,
            label=f"Level {value}",
            short_label=str(value),
            colour="#336699",
        )
        for value in (1, 2, 3, 4)
    )
    events: list[Event] = [
        ScaleDefined(
            scale_id=SCALE,
            name="Four levels",
            levels=levels,
            mastery_threshold=3.0,
            defined_by=TEACHER,
            defined_at=FIRST_DAY,
        )
    ]
    events += [
        ObjectiveAdded(
            objective_set_id=OBJECTIVE_SET,
            objective_id=objective(number),
            statement=f"Objective {number}",
            added_by=TEACHER,
            added_at=FIRST_DAY,
        )
        for number in range(OBJECTIVES)
    ]
    events.append(
        CalculationPolicySet(
            objective_set_id=OBJECTIVE_SET,
            policy_version=1,
            policy=CalculationPolicy(method="decaying_average", decay=0.65),
            set_by=TEACHER,
            set_at=FIRST_DAY,
        )
    )
    return events


def term(events: int) -> list[StreamAppend]:
    """Return about ``events`` assessment events, one stream each."""
    appends = []
    timelines = max(1, events // EVIDENCE_PER_TIMELINE)
    for number in range(events):
        timeline = number % timelines
        assessment_id = uuid7()
        recorded = AssessmentRecorded(
            assessment_id=assessment_id,
            student_id=f"student-{timeline // OBJECTIVES}",
            objective_id=objective(timeline % OBJECTIVES),
            scale_id=SCALE,
            scale_version=1,
            level=float(1 + number % 4),
            assessed_at=FIRST_DAY + timedelta(days=number // timelines),
            assessed_by=TEACHER,
            evidence=Evidence(title="Exit ticket", kind="formative"),
        )
        stream: list[Event] = [recorded]
        if number % 10 == 3:
            stream.append(
                AssessmentAmended(
                    assessment_id=assessment_id,
                    level=4.0,
                    reason="regraded",
                    amended_by=TEACHER,
                    amended_at=FIRST_DAY,
                )
            )
        elif number % 20 == 7:
            stream.append(
                AssessmentVoided(
                    assessment_id=assessment_id,
                    reason="duplicate",
                    voided_by=TEACHER,
                    voided_at=FIRST_DAY,
                )
            )
        appends.append(
            StreamAppend(
                tenant_id=TENANT,
                stream_id=f"assessment-{assessment_id}",
                expected_version=0,
                events=[
                    PendingEvent(
                        payload=event,
                        occurred_at=FIRST_DAY,
                        actor=TEACHER,
                        correlation_id=assessment_id,
                    )
                    for event in stream
                ],
            )
        )
    return appends


async def seed(
    pool: asyncpg.Pool, schema: str, events: int, *, project: bool = True
) -> Seeded:
    """Fill ``schema`` with grading's tables and a log, followed by the
    projector when ``project`` is set, else marked as followed."""
    async with pool.acquire() as connection:
        await migrate(connection, schema, SERVICE.all_migrations())
    writer = CatalogueWriter(schema)
    for version, event in enumerate(catalogue_events(), start=1):
        envelope = Envelope(
            event_id=uuid7(),
            event_type=type(event).__name__,
            event_version=1,
            tenant_id=TENANT,
            stream_id="catalogue",
            stream_version=version,
            position=version,
            transaction_id=version,
            occurred_at=FIRST_DAY,
            recorded_at=FIRST_DAY,
            actor=TEACHER,
            correlation_id=uuid7(),
            payload=msgspec.Raw(b"{}"),
        )
        async with (
            pool.acquire() as connection,
            tenant_transaction(connection, TENANT),
        ):
            await writer(connection, envelope, event)

    store = EventStore(pool, schema, registry=CONTRACT)
    appends = term(events)
    stored: list[Envelope] = []
    for start in range(0, len(appends), APPEND_BATCH):
        stored = await store.append_many(appends[start : start + APPEND_BATCH])
    projected_seconds = None
    if project:
        started = time.perf_counter()
        await TimelineProjector(store).catch_up()
        projected_seconds = time.perf_counter() - started
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(f"SET LOCAL ROLE {RELAY_ROLE}")
        if not project:
            # A caught-up projector's checkpoint, so the rebuild replays
            # it all.
            checkpoint = checkpoint_of(stored[-1])
            await Checkpoints(schema, NAME).save(connection, checkpoint)
        total: int = await connection.fetchval(
            f'SELECT count(*) FROM "{schema}".events'
        )
        assessments: int = await connection.fetchval(
            f'SELECT count(*) FROM "{schema}".events '
            "WHERE event_type = ANY($1::text[])",
            ASSESSMENT_TYPES,
        )

    return Seeded(
        events=total, assessments=assessments, projected_seconds=projected_seconds
    )


async def server_cpu(connection: Connection) -> float | None:
    """Return the CPU seconds the server's processes have used so far, or
    ``None`` when the server is not on this machine to be read.

    Processes that ended are not counted, so only a difference between
    two readings with the same processes alive means anything; a
    rebuild's connections all come from one pool that outlives it.
    """
    host = await connection.fetchval("SELECT host(inet_server_addr())")
    if host not in (None, "127.0.0.1", "::1"):
        return None
    pids = [row["pid"] for row in await connection.fetch(PIDS)]
    return cpu_seconds(pids)


def cpu_seconds(pids: list[int]) -> float:
    """Return the CPU seconds, user and system, the processes ``pids``
    have used; one that has ended counts nothing."""
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        # The fields after the command name, which may hold spaces: user
        # and system time are the 12th and 13th of them.
        fields = stat.rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])

    return ticks / os.sysconf("SC_CLK_TCK")


async def digest(connection: Connection, schema: str) -> str:
    """Return a digest of every row of the rebuilt tables, whatever order
    they were written in."""
    parts = []
    for table in REBUILT_TABLES:
        rows = f'"{schema}".{table}'
        parts.append(
            await connection.fetchval(
                "SELECT md5(coalesce(string_agg(t::text, ';' ORDER BY t::text), ''))"
                f" FROM {rows} t"
            )
        )

    return ",".join(parts)


async def copy_alone(connection: Connection, schema: str) -> float:
    """Time PostgreSQL taking in the rebuilt rows, read out in its binary
    format first, into empty copies of their tables in one transaction."""
    with tempfile.TemporaryDirectory(prefix="mastery-rebuild-") as folder:
        files = {table: Path(folder) / f"{table}.bin" for table in ROW_TABLES}
        for table, path in files.items():
            await connection.copy_from_table(
                table, schema_name=schema, output=path, format="binary"
            )

        started = time.perf_counter()
        async with connection.transaction():
            for table, path in files.items():
                await connection.execute(
                    f'DROP TABLE IF EXISTS "{schema}".{table}_alone; '
                    f'CREATE TABLE "{schema}".{table}_alone '
                    f'(LIKE "{schema}".{table} INCLUDING ALL)'
                )
                await connection.copy_to_table(
                    f"{table}_alone", schema_name=schema, source=path, format="binary"
                )

        return time.perf_counter() - started


async def measure(pool: asyncpg.Pool, events: int, *, project: bool) -> Result:
    """Rebuild one log, timed and each time followed by the baseline, then
    once more traced; drop the log."""
    schema = f"bench_rebuild_{secrets.token_hex(4)}"
    timed: list[Timed] = []
    try:
        seeded = await seed(pool, schema, events, project=project)
        async with pool.acquire() as connection:
            built = await digest(connection, schema) if project else None
            for _ in range(REPEATS):
                server_before = await server_cpu(connection)
                python_before = time.process_time()
                started = time.perf_counter()
                await Rebuild(pool, connection, schema).run()
                seconds = time.perf_counter() - started
                python_cpu = time.process_time() - python_before
                server_after = await server_cpu(connection)
                timed.append(
                    Timed(
                        seconds=seconds,
                        copy_seconds=await copy_alone(connection, schema),
                        python_cpu=python_cpu,
                        server_cpu=(
                            None
                            if server_before is None or server_after is None
                            else server_after - server_before
                        ),
                    )
                )
            rebuilt = await digest(connection, schema)

            tracemalloc.start()
            try:
                await Rebuild(pool, connection, schema).run()
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        async with pool.acquire() as connection:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    # The pair with the median ratio: a rebuild and its baseline ran one
    # after the other, under the same load.
    median = sorted(timed, key=lambda pair: pair.seconds / pair.copy_seconds)[
        len(timed) // 2
    ]
    return Result(
        events=seeded.events,
        assessments=seeded.assessments,
        projected_seconds=seeded.projected_seconds,
        seconds=median.seconds,
        copy_seconds=median.copy_seconds,
        python_cpu=median.python_cpu,
        server_cpu=median.server_cpu,
        peak_mib=peak / 2**20,
        same_as_projector=None if built is None else built == rebuilt,
    )


async def run(
    database_url: str, sizes: list[int], *, project: bool = True
) -> list[Result]:
    """Measure each log size on ``database_url``."""
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool:
        return [await measure(pool, size, project=project) for size in sizes]


def table(results: list[Result]) -> str:
    """Render the results as a Markdown table."""
    lines = [
        "| log events | assessment events | rebuild s | log events/s "
        "| assessment events/s | rows copied alone s | rebuild / copy alone "
        "| Python CPU s | PostgreSQL CPU s | peak Python memory MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.events:,} | {r.assessments:,} | {r.seconds:.2f} | {r.rate:,.0f} "
        f"| {r.assessment_rate:,.0f} | {r.copy_seconds:.2f} "
        f"| {r.over_copy:.1f} | {r.python_cpu:.2f} "
        f"| {'n/a' if r.server_cpu is None else f'{r.server_cpu:.2f}'} "
        f"| {r.peak_mib:.1f} |"
        for r in results
    ]
    lines += [
        f"\nthe projector followed the log of {r.events:,} events in "
        f"{r.projected_seconds:.1f} s; the rebuilt rows "
        f"{'equal' if r.same_as_projector else 'DIFFER FROM'} the projector's"
        for r in results
        if r.projected_seconds is not None
    ]
    return "\n".join(lines)


@click.command("rebuild")
@click.option(
    "--events",
    type=click.IntRange(min=100),
    default=5_000,
    show_default=True,
    help="Assessments in the smaller log; the larger has four times as many.",
)
@click.option(
    "--log",
    "log_kind",
    type=click.Choice(LOGS),
    default="projected",
    show_default=True,
    help="Follow the log with the projector, announcements and all, or "
    "keep the assessment events alone.",
)
def command(events: int, log_kind: str) -> None:
    """Measure the timeline rebuild's speed and memory on two log sizes."""
    from mastery_deploy.benchmarks import benchmark_server

    project = log_kind == "projected"
    with benchmark_server() as database_url:
        results = asyncio.run(run(database_url, [events, events * 4], project=project))
    click.echo(table(results))
    small, large = results
    click.echo(
        f"\nmemory, larger log / smaller: {large.peak_mib / small.peak_mib:.2f}; "
        f"client: {os.cpu_count()} CPUs; target >= 100,000 events/s"
    )
    if any(result.same_as_projector is False for result in results):
        message = "the rebuilt rows differ from the projector's"
        raise click.ClickException(message)
