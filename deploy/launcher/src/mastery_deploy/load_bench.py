"""``mastery bench load``: an end-of-term surge through the whole system.

Objectives, grading and reports run as child processes on embedded
engines; the demo district is loaded through their routes. Then teachers'
batches of 25 to 30 grades are posted to ``POST /assessments/batch`` at a
target rate for a while, a sample of the grades is timed until reports
holds them (the fact and the student's snapshot are written in one
transaction), and student reports are read over HTTP. Two reference
points run in the same process on the same PostgreSQL: batches of rows
inserted with asyncpg into a plain table, and the ``eventsourcing``
library's PostgreSQL application recorder inserting stored events; each
is read back by key afterwards.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import asyncpg
import click
import httpx
import msgspec
import structlog

from mastery_deploy.credentials import KEY_ENCRYPTION_KEY_FILE, local_secret
from mastery_deploy.demo_district import DemoRoster, demo_roster
from mastery_deploy.demo_loader import (
    TENANT,
    DemoClients,
    import_objectives,
    import_roster,
    wait_for_catalogue,
)
from mastery_deploy.engines import EmbeddedNats, EmbeddedPostgres
from mastery_deploy.fleet import Fleet
from mastery_events.identity import mint_token
from mastery_events.settings import Settings

logger = structlog.get_logger(__name__)

BATCH_SIZES = (25, 30)
IN_FLIGHT = 24
SAMPLE_EVERY = 10
REPORT_POLL = 0.05
REPORT_DEADLINE = 300.0
READERS = 8
# Bulk routes allow each client address 120 requests a minute, about 55
# grades a second; a surge comes from many teachers' machines, so each
# simulated teacher posts from an address of its own on the loopback net.
TEACHER_ADDRESSES = tuple(f"127.0.1.{n}" for n in range(1, 101))
TERM_END = datetime(2026, 12, 14, 9, 0, tzinfo=UTC)


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    """One system's figures: writes, the way to a report, reads. The
    reference points have no projection, so no way to a report."""

    system: str
    grades: int
    grades_per_second: float
    batch_p50_ms: float
    batch_p99_ms: float
    reads_per_second: float
    read_p99_ms: float
    to_report_p50_ms: float | None = None
    to_report_p99_ms: float | None = None
    reached: str = "n/a"
    refused: int = 0


def percentile(values: Sequence[float], share: float) -> float:
    """Return the ``share`` percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))
    return ordered[index]


class District(msgspec.Struct, frozen=True, kw_only=True):
    """What the surge needs to know of the loaded demo district."""

    roster: DemoRoster
    scale_id: UUID
    objective_ids: list[UUID]
    people: dict[str, str]


async def load_district(clients: DemoClients, admin: str) -> District:
    """Import the demo's standards, scale and roster through the routes."""
    roster = demo_roster()
    scale_id, objective_ids, set_id = await import_objectives(clients, admin)
    await wait_for_catalogue(clients, admin, scale_id)
    people = await import_roster(clients, admin, roster, set_id)

    return District(
        roster=roster,
        scale_id=scale_id,
        objective_ids=list(objective_ids.values()),
        people=dict(people),
    )


def surge_batch(district: District, number: int, rng: random.Random) -> dict[str, Any]:
    """Return the body of teacher batch ``number``: one objective, 25 to 30
    students of one section."""
    section = district.roster.sections[number % len(district.roster.sections)]
    size = min(len(section.student_ids), rng.randint(*BATCH_SIZES))
    students = rng.sample(list(section.student_ids), size)
    objective = district.objective_ids[number % len(district.objective_ids)]
    return {
        "section_id": section.sourced_id,
        "scale_id": str(district.scale_id),
        "scale_version": 1,
        "assessed_at": (TERM_END + timedelta(seconds=number)).isoformat(),
        "evidence": {"title": f"Final task {number}", "kind": "summative"},
        "rows": [
            {
                "student_id": district.people[student],
                "objective_id": str(objective),
                "level": float(rng.randint(1, 4)),
            }
            for student in students
        ],
    }


async def paced(
    seconds: float,
    per_second: float,
    work: Callable[[int], Awaitable[None]],
) -> int:
    """Start ``work(n)`` ``per_second`` times a second for ``seconds``,
    never more than ``IN_FLIGHT`` at once; return how many were started."""
    gate = asyncio.Semaphore(IN_FLIGHT)
    tasks: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    number = 0

    async def guarded(n: int) -> None:
        try:
            await work(n)
        finally:
            gate.release()

    while time.monotonic() - started < seconds:
        due = started + number / per_second
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        await gate.acquire()
        task = asyncio.create_task(guarded(number))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        number += 1
    await asyncio.gather(*tasks)

    return number


async def reads(
    seconds: float, read: Callable[[], Awaitable[None]]
) -> tuple[float, float]:
    """Read with ``READERS`` readers for ``seconds``; return reads per
    second and the 99th percentile in milliseconds."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def reader() -> None:
        while time.monotonic() < deadline:
            began = time.monotonic()
            await read()
            latencies.append(time.monotonic() - began)

    started = time.monotonic()
    await asyncio.gather(*(reader() for _ in range(READERS)))
    elapsed = time.monotonic() - started

    return len(latencies) / elapsed, percentile(latencies, 0.99) * 1000


async def measure_system(
    urls: dict[str, str],
    database_url: str,
    mint: Callable[..., str],
    *,
    seconds: float,
    target: float,
    read_seconds: float,
) -> Figures:
    """Run the surge through the services' routes and read reports."""
    admin = mint(tenant_id=TENANT, roles=["district_admin"], subject="bench-admin")
    clients = DemoClients(urls)
    rng = random.Random(2026)
    batch_latencies: list[float] = []
    to_report: list[float] = []
    sampled: list[asyncio.Task[None]] = []
    grades = 0
    refused: dict[int, int] = {}
    teachers: list[httpx.AsyncClient] = []
    try:
        district = await load_district(clients, admin)
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        teachers = [
            httpx.AsyncClient(
                base_url=urls["grading"],
                timeout=60.0,
                transport=httpx.AsyncHTTPTransport(local_address=address),
            )
            for address in TEACHER_ADDRESSES
        ]
        headers = {"Authorization": f"Bearer {admin}"}

        async def reaches_reports(ids: list[str], began: float) -> None:
            wanted = [UUID(i) for i in ids]
            while time.monotonic() - began < REPORT_DEADLINE:
                found = await pool.fetchval(
                    "SELECT count(*) FROM reports.assessments "
                    "WHERE tenant_id = $1 AND assessment_id = ANY($2)",
                    TENANT,
                    wanted,
                )
                if found == len(wanted):
                    to_report.append(time.monotonic() - began)
                    return
                await asyncio.sleep(REPORT_POLL)

        async def post(number: int) -> None:
            nonlocal grades
            body = surge_batch(district, number, rng)
            began = time.monotonic()
            teacher = teachers[number % len(teachers)]
            answer = await teacher.post(
                "/assessments/batch",
                json=body,
                headers={**headers, "Idempotency-Key": f"surge-{number}"},
            )
            if answer.status_code != 201:
                refused[answer.status_code] = refused.get(answer.status_code, 0) + 1
                return
            batch_latencies.append(time.monotonic() - began)
            grades += len(body["rows"])
            if number % SAMPLE_EVERY == 0:
                ids = [row["assessment_id"] for row in answer.json()["rows"]]
                sampled.append(asyncio.create_task(reaches_reports(ids, began)))

        started = time.monotonic()
        await paced(seconds, target / statistics.mean(BATCH_SIZES), post)
        elapsed = time.monotonic() - started
        await asyncio.gather(*sampled)
        await pool.close()

        reports = clients.clients["reports"]
        students = list(district.people.values())

        async def read_report() -> None:
            student = rng.choice(students)
            answer = await reports.get(f"/students/{student}/report", headers=headers)
            answer.raise_for_status()

        per_second, read_p99 = await reads(read_seconds, read_report)
    finally:
        await clients.close()
        await asyncio.gather(*(teacher.aclose() for teacher in teachers))

    logger.info("bench.surge_refused", statuses=refused)
    return Figures(
        system="mastery (HTTP, store, relay, NATS, reports)",
        grades=grades,
        grades_per_second=grades / elapsed,
        batch_p50_ms=percentile(batch_latencies, 0.5) * 1000,
        batch_p99_ms=percentile(batch_latencies, 0.99) * 1000,
        to_report_p50_ms=percentile(to_report, 0.5) * 1000 if to_report else None,
        to_report_p99_ms=percentile(to_report, 0.99) * 1000 if to_report else None,
        reached=f"{len(to_report)}/{len(sampled)}",
        reads_per_second=per_second,
        read_p99_ms=read_p99,
        refused=sum(refused.values()),
    )


async def measure_raw(
    database_url: str, *, grades: int, read_seconds: float
) -> Figures:
    """Insert the same number of grades in batches of the surge's sizes
    into a plain table with asyncpg, then read rows back by student."""
    rng = random.Random(2026)
    students = [str(uuid4()) for _ in range(150)]
    table = f"bench_raw_{secrets.token_hex(4)}"
    latencies: list[float] = []
    async with asyncpg.create_pool(
        database_url, min_size=1, max_size=IN_FLIGHT
    ) as pool:
        await pool.execute(
            f"CREATE TABLE {table} (id uuid PRIMARY KEY, student_id text NOT NULL, "
            "level double precision NOT NULL, body jsonb NOT NULL)"
        )
        await pool.execute(f"CREATE INDEX ON {table} (student_id)")
        batches: list[list[tuple[UUID, str, float, str]]] = []
        left = grades
        while left > 0:
            size = min(left, rng.randint(*BATCH_SIZES))
            batches.append(
                [
                    (uuid4(), rng.choice(students), 3.0, '{"title": "Final task"}')
                    for _ in range(size)
                ]
            )
            left -= size

        async def insert(number: int) -> None:
            began = time.monotonic()
            async with pool.acquire() as connection, connection.transaction():
                await connection.executemany(
                    f"INSERT INTO {table} VALUES ($1, $2, $3, $4::jsonb)",
                    batches[number],
                )
            latencies.append(time.monotonic() - began)

        started = time.monotonic()
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def guarded(number: int) -> None:
            async with gate:
                await insert(number)

        await asyncio.gather(*(guarded(n) for n in range(len(batches))))
        elapsed = time.monotonic() - started

        async def read() -> None:
            await pool.fetch(
                f"SELECT * FROM {table} WHERE student_id = $1", rng.choice(students)
            )

        per_second, read_p99 = await reads(read_seconds, read)
        await pool.execute(f"DROP TABLE {table}")

    return Figures(
        system="raw asyncpg inserts",
        grades=grades,
        grades_per_second=grades / elapsed,
        batch_p50_ms=percentile(latencies, 0.5) * 1000,
        batch_p99_ms=percentile(latencies, 0.99) * 1000,
        reads_per_second=per_second,
        read_p99_ms=read_p99,
    )


def measure_eventsourcing(
    database_url: str, *, grades: int, read_seconds: float
) -> Figures:
    """Insert the same grades as stored events, one aggregate per batch,
    through the ``eventsourcing`` PostgreSQL application recorder, from
    threads; then select a batch's events back by aggregate id."""
    from concurrent.futures import ThreadPoolExecutor

    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    parts = urlsplit(database_url)
    datastore = PostgresDatastore(
        dbname=parts.path.lstrip("/") or "postgres",
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password or "",
        pool_size=IN_FLIGHT,
    )
    table = f"bench_es_{secrets.token_hex(4)}"
    recorder = PostgresApplicationRecorder(datastore, events_table_name=table)
    recorder.create_table()
    rng = random.Random(2026)
    batches: list[list[StoredEvent]] = []
    left = grades
    while left > 0:
        size = min(left, rng.randint(*BATCH_SIZES))
        aggregate = uuid4()
        batches.append(
            [
                StoredEvent(
                    originator_id=aggregate,
                    originator_version=version,
                    topic="bench:AssessmentRecorded",
                    state=b'{"title": "Final task", "level": 3.0}',
                )
                for version in range(1, size + 1)
            ]
        )
        left -= size
    latencies: list[float] = []

    def insert(batch: list[StoredEvent]) -> None:
        began = time.monotonic()
        recorder.insert_events(batch)
        latencies.append(time.monotonic() - began)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as workers:
        list(workers.map(insert, batches))
    elapsed = time.monotonic() - started

    read_latencies: list[float] = []
    deadline = time.monotonic() + read_seconds

    def reader() -> None:
        while time.monotonic() < deadline:
            began = time.monotonic()
            recorder.select_events(rng.choice(batches)[0].originator_id)
            read_latencies.append(time.monotonic() - began)

    read_started = time.monotonic()
    with ThreadPoolExecutor(max_workers=READERS) as workers:
        for future in [workers.submit(reader) for _ in range(READERS)]:
            future.result()
    read_elapsed = time.monotonic() - read_started
    with datastore.get_connection() as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {table}")
    datastore.close()

    return Figures(
        system="eventsourcing PostgresApplicationRecorder",
        grades=grades,
        grades_per_second=grades / elapsed,
        batch_p50_ms=percentile(latencies, 0.5) * 1000,
        batch_p99_ms=percentile(latencies, 0.99) * 1000,
        reads_per_second=len(read_latencies) / read_elapsed,
        read_p99_ms=percentile(read_latencies, 0.99) * 1000,
    )


def figures_table(rows: list[Figures], *, target: float) -> str:
    """Return the figures as a Markdown table."""

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:,.0f}"

    lines = [
        f"Target: {target:,.0f} grades/s in batches of "
        f"{BATCH_SIZES[0]}-{BATCH_SIZES[1]}.",
        "",
        "| system | grades (refused batches) | grades/s | batch p50 ms | batch p99 ms "
        "| to report p50 ms | to report p99 ms | sampled batches in reports "
        "| reads/s | read p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.system} | {r.grades:,} ({r.refused}) "
            f"| {r.grades_per_second:,.0f} "
            f"| {r.batch_p50_ms:,.0f} | {r.batch_p99_ms:,.0f} "
            f"| {ms(r.to_report_p50_ms)} | {ms(r.to_report_p99_ms)} | {r.reached} "
            f"| {r.reads_per_second:,.0f} | {r.read_p99_ms:,.1f} |"
        )

    return "\n".join(lines)


async def run_load(
    folder: Path, *, seconds: float, target: float, read_seconds: float
) -> str:
    """Start the engines and services, run the three measurements, and
    return the table."""
    postgres = EmbeddedPostgres(folder / "postgres", durable=True)
    engines = EmbeddedNats(folder / "nats")
    database_url = await asyncio.to_thread(postgres.start)
    nats_url = await asyncio.to_thread(engines.start)
    settings = Settings(
        database_url=database_url,
        nats_url=nats_url,
        jwt_secret=secrets.token_urlsafe(32),
        key_encryption_key=local_key(folder),
        data_dir=folder,
    )
    fleet = Fleet(settings, folder / "logs")
    for service in ("objectives", "grading", "reports"):
        fleet.add(service, service)

    def mint(**claims: Any) -> str:
        return mint_token(
            settings.jwt_secret or "",
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            now=datetime.now(UTC),
            ttl=timedelta(hours=2),
            **claims,
        )

    try:
        await fleet.start()
        urls = {i.service: i.url for i in fleet.instances}
        system = await measure_system(
            urls,
            database_url,
            mint,
            seconds=seconds,
            target=target,
            read_seconds=read_seconds,
        )
        raw = await measure_raw(
            database_url, grades=system.grades, read_seconds=read_seconds
        )
        library = await asyncio.to_thread(
            measure_eventsourcing,
            database_url,
            grades=system.grades,
            read_seconds=read_seconds,
        )
    finally:
        await fleet.stop()
        await asyncio.to_thread(engines.stop)
        await asyncio.to_thread(postgres.stop)

    return figures_table([system, raw, library], target=target)


def local_key(folder: Path) -> str:
    """Return a key-encryption key kept in ``folder``."""
    return local_secret(folder, KEY_ENCRYPTION_KEY_FILE)


@click.command(name="load")
@click.option("--seconds", default=30.0, show_default=True, help="Surge length.")
@click.option("--target", default=1500.0, show_default=True, help="Grades/s.")
@click.option("--read-seconds", default=10.0, show_default=True)
def load_command(seconds: float, target: float, read_seconds: float) -> None:
    """Run an end-of-term surge through the whole system beside raw asyncpg
    and the eventsourcing library's recorder, and print the figures."""
    # Imported here: the command module imports this one lazily.
    from mastery_deploy.cli import configure_logging, load_settings

    configure_logging(load_settings())
    folder = Path(tempfile.mkdtemp(prefix="mastery-load-"))
    click.echo(
        asyncio.run(
            run_load(folder, seconds=seconds, target=target, read_seconds=read_seconds)
        )
    )
    click.echo(f"Logs: {folder / 'logs'}")
