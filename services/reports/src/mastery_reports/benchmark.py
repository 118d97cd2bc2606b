"""Measure how fast a grade reaches its snapshot, and how fast snapshots read.

``mastery reports bench`` runs on the configured PostgreSQL and NATS, in
schemas and streams of its own (``benchgrading``, ``benchreports`` under a
fresh subject prefix) that it drops afterwards, so a stack's data is never
touched. A stand-in for grading, with the real event store and relay,
publishes a district's roster and catalogue and then grades at a steady
rate, in a process of its own so that the consumer does not slow it down;
reports' real consumer and handler apply them in this one. For each
``MasteryChanged`` the latency is the time from its append's commit
(``recorded_at``) to the moment its snapshot was written, inside the
consumer's transaction. Reads go through ``Snapshots.json_of_student``, the
read a student's report route makes: first from concurrent clients as
fast as they answer, then started at a steady rate, as a school's evening
of guardians would, each timed from when it was due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import random
import secrets
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection as Channel
from uuid import UUID

import asyncpg
import msgspec
import nats
import structlog

from mastery_events.contract import CONTRACT
from mastery_events.contract.grading import AssessmentRecorded, Evidence, MasteryChanged
from mastery_events.contract.objectives import (
    ObjectiveAdded,
    ObjectiveSetCreated,
    ScaleDefined,
    ScaleLevel,
)
from mastery_events.contract.roster import (
    ObjectiveSetLinked,
    PersonEnrolled,
    SectionRostered,
)
from mastery_events.database import Connection
from mastery_events.envelope import Envelope, Event, PendingEvent
from mastery_events.ids import uuid7
from mastery_events.keyring import new_key_encryption_key
from mastery_events.migrations import quote_schema
from mastery_events.rate_limits import bucket_name
from mastery_events.runtime import Follower, Service, ServiceRuntime
from mastery_events.settings import Settings
from mastery_events.store import EventStore, StreamAppend
from mastery_events.subjects import Subjects
from mastery_reports.facts_store import FactsWriter
from mastery_reports.service import SERVICE as REPORTS
from mastery_reports.snapshot_store import Snapshots

SOURCE = "benchgrading"
SINK = "benchreports"
TENANT = "bench-district"
STUDENTS_PER_SECTION = 25
OBJECTIVES = 10
TICK = 0.1
POLL = 0.05
SEED_WAIT = 300.0
FIRST_DAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)

log = structlog.get_logger(__name__)


class Percentiles(msgspec.Struct, frozen=True, kw_only=True):
    """A distribution of durations, in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class BenchResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one run measured."""

    students: int
    grades_per_second: float
    seconds: float
    grades: int
    achieved_grades_per_second: float
    append_to_snapshot: Percentiles
    drained_after_seconds: float
    reads_per_second: float
    read_latency: Percentiles
    read_clients: int
    paced_reads_asked_per_second: float
    paced_reads_per_second: float
    paced_read_latency: Percentiles


def percentiles(durations: Sequence[float]) -> Percentiles:
    """Return the median, 99th percentile and maximum of ``durations``
    (seconds) in milliseconds."""
    if not durations:
        return Percentiles(count=0, p50_ms=0.0, p99_ms=0.0, max_ms=0.0)
    ordered = sorted(durations)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    return Percentiles(
        count=len(ordered),
        p50_ms=round(statistics.median(ordered) * 1000, 2),
        p99_ms=round(p99 * 1000, 2),
        max_ms=round(ordered[-1] * 1000, 2),
    )


class TimedWriter:
    """Reports' handler, noting how long each mastery change took from its
    append's commit to its snapshot."""

    def __init__(self, inner: FactsWriter) -> None:
        self.inner = inner
        self.latencies: list[float] = []

    async def __call__(
        self, connection: Connection, envelope: Envelope, event: Event
    ) -> None:
        """Apply the event, then note its latency when it is a grade's."""
        await self.apply_batch(connection, [(envelope, event)])

    async def apply_batch(
        self, connection: Connection, events: Sequence[tuple[Envelope, Event]]
    ) -> None:
        """Apply a batch as reports does, then note the latency of every
        grade in it: its snapshot is written once the batch's are."""
        await self.inner.apply_batch(connection, events)
        now = time.time()
        self.latencies += [
            now - envelope.recorded_at.timestamp()
            for envelope, event in events
            if isinstance(event, MasteryChanged)
        ]


def district_events(students: int) -> tuple[list[Event], list[str], list[UUID], UUID]:
    """Return the catalogue and roster of a district of ``students``, their
    ids, the objectives' ids and the scale's id."""
    scale_id, set_id = uuid7(), uuid7()
    objectives = [uuid7() for _ in range(OBJECTIVES)]
    people = [uuid7() for _ in range(students)]
    events: list[Event] = [
        ScaleDefined(
            scale_id=scale_id,
            name="Four levels",
            levels=tuple(
                ScaleLevel(
                    value=v, label=f"Level {v}", short_label=str(v), colour="#2e7d32"
                )
                for v in (1, 2, 3, 4)
            ),
            mastery_threshold=3.0,
            defined_by="bench",
            defined_at=FIRST_DAY,
        ),
        ObjectiveSetCreated(
            objective_set_id=set_id,
            title="Bench mathematics",
            subject="Mathematics",
            owner_scope="district",
            owner_id=TENANT,
            created_by="bench",
            created_at=FIRST_DAY,
        ),
        *(
            ObjectiveAdded(
                objective_set_id=set_id,
                objective_id=objective,
                code=f"B.{index + 1}",
                statement=f"Bench objective {index + 1}",
                order=index,
                added_by="bench",
                added_at=FIRST_DAY,
            )
            for index, objective in enumerate(objectives)
        ),
    ]
    sections = [f"bench-{n}" for n in range(-(-students // STUDENTS_PER_SECTION))]
    for section in sections:
        events += [
            SectionRostered(
                section_id=section,
                title=section,
                school_id="bench-school",
                course_id="bench-course",
                course_title="Bench course",
                rostered_at=FIRST_DAY,
            ),
            ObjectiveSetLinked(
                section_id=section,
                objective_set_id=set_id,
                linked_by="bench",
                linked_at=FIRST_DAY,
            ),
        ]
    events += [
        PersonEnrolled(
            person_id=person,
            section_id=sections[index // STUDENTS_PER_SECTION],
            role="student",
            enrolled_at=FIRST_DAY,
        )
        for index, person in enumerate(people)
    ]

    return events, [str(p) for p in people], objectives, scale_id


def grade(
    student_id: str, objective_id: UUID, scale_id: UUID, *, level: int, day: int
) -> list[Event]:
    """Return one grade: an assessment and the mastery change it brings."""
    assessment_id = uuid7()
    at = FIRST_DAY + timedelta(days=day)
    return [
        AssessmentRecorded(
            assessment_id=assessment_id,
            student_id=student_id,
            objective_id=objective_id,
            scale_id=scale_id,
            scale_version=1,
            level=level,
            assessed_at=at,
            assessed_by="bench",
            evidence=Evidence(title="Bench task"),
        ),
        MasteryChanged(
            student_id=student_id,
            objective_id=objective_id,
            valid_from=at,
            status="scored",
            level=level,
            level_label=f"Level {level}",
            mastered=level >= 3,
            method="most_recent",
            scale_id=scale_id,
            scale_version=1,
            cause_event_id=assessment_id,
            reason="bench",
        ),
    ]


def pending(events: Sequence[Event]) -> list[StreamAppend]:
    """Return ``events`` as appends, each starting a stream of its own."""
    correlation = uuid7()
    return [
        StreamAppend(
            tenant_id=TENANT,
            stream_id=f"bench-{uuid7()}",
            expected_version=0,
            events=[
                PendingEvent(
                    payload=event,
                    occurred_at=FIRST_DAY,
                    actor="bench",
                    correlation_id=correlation,
                )
            ],
        )
        for event in events
    ]


async def drained(count: int, latencies: list[float], *, within: float) -> float:
    """Wait until ``count`` grades were applied, or ``within`` seconds
    passed; return how long it took."""
    started = time.monotonic()
    for _ in range(int(within / POLL)):
        if len(latencies) >= count:
            break
        await asyncio.sleep(POLL)

    return time.monotonic() - started


async def read_load(
    snapshots: Snapshots, students: Sequence[str], *, clients: int, seconds: float
) -> tuple[float, list[float]]:
    """Read random students' snapshots from ``clients`` concurrent tasks
    for ``seconds``; return the rate and each read's duration."""
    durations: list[float] = []
    deadline = time.monotonic() + seconds
    chooser = random.Random(7)

    async def client() -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await snapshots.json_of_student(TENANT, chooser.choice(students))
            durations.append(time.perf_counter() - started)

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))

    return len(durations) / (time.monotonic() - started), durations


async def paced_reads(
    snapshots: Snapshots, students: Sequence[str], *, rate: float, seconds: float
) -> tuple[float, list[float]]:
    """Start a read of a random student's snapshot every ``1 / rate``
    seconds for ``seconds``, however long earlier reads take; return the
    rate kept and each read's time from when it was due to its answer.

    Timing from the read's due moment, not from when it got started,
    keeps a stall from hiding the reads queued up behind it.
    """
    durations: list[float] = []
    chooser = random.Random(11)
    reads: set[asyncio.Task[None]] = set()

    async def read(due: float) -> None:
        await snapshots.json_of_student(TENANT, chooser.choice(students))
        durations.append(time.perf_counter() - due)

    started = time.perf_counter()
    for index in range(int(rate * seconds)):
        due = started + index / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        task = asyncio.create_task(read(due))
        reads.add(task)
        task.add_done_callback(reads.discard)
    await asyncio.gather(*reads)

    return len(durations) / (time.perf_counter() - started), durations


class Graded(msgspec.Struct, frozen=True, kw_only=True):
    """What the load generator appended once its run ended."""

    grades: int
    seconds: float


def generate_load(
    settings: Settings,
    channel: Channel,
    *,
    students: int,
    rate: float,
    seconds: float,
) -> None:
    """Run grading's stand-in in a process of its own, so the rate it keeps
    does not depend on the CPU the consumer under test takes."""
    # Only warnings, to stderr: stdout carries the parent's result alone.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
    )
    asyncio.run(
        grading_stand_in(
            settings, channel, students=students, rate=rate, seconds=seconds
        )
    )


async def grading_stand_in(
    settings: Settings,
    channel: Channel,
    *,
    students: int,
    rate: float,
    seconds: float,
) -> None:
    """Append the district, grade at ``rate`` once the parent says go, and
    keep the relay running until it says stop."""
    seed, student_ids, objectives, scale_id = district_events(students)
    async with ServiceRuntime(
        Service(name=SOURCE), settings, registry=CONTRACT
    ).running() as grading:
        store = EventStore(grading.pool, SOURCE, registry=CONTRACT)
        for start in range(0, len(seed), 500):
            await store.append_many(pending(seed[start : start + 500]))
        channel.send(student_ids)
        await asyncio.to_thread(channel.recv)

        per_tick = rate * TICK
        owed = 0.0
        graded = 0
        chooser = random.Random(2026)
        started = time.monotonic()
        next_tick = started
        while time.monotonic() - started < seconds:
            owed += per_tick
            batch: list[Event] = []
            while owed >= 1:
                owed -= 1
                batch += grade(
                    student_ids[graded % len(student_ids)],
                    chooser.choice(objectives),
                    scale_id,
                    level=chooser.randint(1, 4),
                    day=graded // len(student_ids),
                )
                graded += 1
            if batch:
                await store.append_many(pending(batch))
            next_tick += TICK
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        elapsed = time.monotonic() - started
        channel.send(Graded(grades=graded, seconds=elapsed))

        # The relay must go on publishing what is still in the outbox.
        await asyncio.to_thread(channel.recv)


async def run_reports_benchmark(
    settings: Settings,
    *,
    students: int,
    rate: float,
    seconds: float,
    read_clients: int,
    read_seconds: float,
    paced_read_rate: float,
) -> BenchResult:
    """Run the grade load from a process of its own and the read load in
    this one, on ``settings``' engines."""
    database_url, nats_url = settings.require_engines()
    prefix = f"bench{secrets.token_hex(4)}"
    settings = msgspec.structs.replace(
        settings,
        subject_prefix=prefix,
        relay_poll_interval=0.05,
        key_encryption_key=settings.key_encryption_key or new_key_encryption_key(),
    )
    writer = TimedWriter(FactsWriter(SINK, source="grading"))
    sink = Service(
        name=SINK,
        migrations=REPORTS.migrations,
        followers=(
            Follower(
                name="bench-reports",
                source=SOURCE,
                handler=writer,
                # The service's own consumer settings, so the latency is its.
                settings=REPORTS.followers[0].settings,
            ),
        ),
    )
    # A fresh interpreter: a forked event loop and pools would be shared.
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    generator = context.Process(
        target=generate_load,
        args=(settings, theirs),
        kwargs={"students": students, "rate": rate, "seconds": seconds},
        name="bench-grading",
    )

    generator.start()
    # Held here only by the generator, so its end ends our waits on it.
    theirs.close()
    try:
        student_ids: list[str] = await asyncio.to_thread(ours.recv)
        async with ServiceRuntime(
            sink, settings, registry=CONTRACT
        ).running() as reports:
            snapshots = Snapshots(reports.pool, SINK, statements=reports.statement_pool)

            # The last student enrolled is the last seed event applied.
            for _ in range(int(SEED_WAIT / POLL)):
                if await snapshots.of_student(TENANT, student_ids[-1]) is not None:
                    break
                await asyncio.sleep(POLL)
            log.info("bench.seeded", students=students)

            ours.send("go")
            graded: Graded = await asyncio.to_thread(ours.recv)
            caught_up = await drained(graded.grades, writer.latencies, within=600)
            ours.send("stop")
            log.info("bench.graded", grades=graded.grades, seconds=graded.seconds)

            reads, durations = await read_load(
                snapshots, student_ids, clients=read_clients, seconds=read_seconds
            )
            paced, paced_durations = await paced_reads(
                snapshots, student_ids, rate=paced_read_rate, seconds=read_seconds
            )
    finally:
        # Closing our end stops a generator still waiting for a word.
        ours.close()
        await asyncio.to_thread(generator.join, 60)
        if generator.is_alive():
            generator.terminate()
        await drop(database_url, nats_url, Subjects(prefix=prefix))

    return BenchResult(
        students=students,
        grades_per_second=rate,
        seconds=seconds,
        grades=graded.grades,
        achieved_grades_per_second=round(graded.grades / graded.seconds, 1),
        append_to_snapshot=percentiles(writer.latencies),
        drained_after_seconds=round(caught_up, 2),
        reads_per_second=round(reads, 1),
        read_latency=percentiles(durations),
        read_clients=read_clients,
        paced_reads_asked_per_second=paced_read_rate,
        paced_reads_per_second=round(paced, 1),
        paced_read_latency=percentiles(paced_durations),
    )


async def drop(database_url: str, nats_url: str, subjects: Subjects) -> None:
    """Remove the benchmark's schemas and streams."""
    connection = await asyncpg.connect(database_url)
    try:
        for schema in (SOURCE, SINK):
            await connection.execute(
                f"DROP SCHEMA IF EXISTS {quote_schema(schema)} CASCADE"
            )
    finally:
        await connection.close()
    bus = await nats.connect(nats_url.split(","))
    try:
        js = bus.jetstream()
        # Every stream of the run is named after its own subject prefix,
        # and so is each service's bucket of rate-limit counts.
        ours = subjects.stream_name("")
        for stream in await js.streams_info():
            if stream.config.name and stream.config.name.startswith(ours):
                await js.delete_stream(stream.config.name)
        for service in (SOURCE, SINK):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_key_value(bucket_name(subjects.prefix, service))
    finally:
        await bus.close()
