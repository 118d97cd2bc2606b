"""Measure the event store against raw asyncpg on the same PostgreSQL server.

``mastery bench store`` runs each workload through the store and through
plain asyncpg statements on a table made by the very same migration, so the
ratio store / raw shows what the store's checks, its envelope and its
conversions cost, with the server and the disk held equal. Each workload is
repeated and the median rate is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from uuid import UUID

import asyncpg
import click
import msgspec

from mastery_deploy.engines import EmbeddedPostgres
from mastery_events.contract import CONTRACT
from mastery_events.contract.grading import AssessmentRecorded, Evidence
from mastery_events.envelope import PendingEvent
from mastery_events.ids import uuid7
from mastery_events.migrations import event_store_migrations, migrate
from mastery_events.store import EventStore, StreamAppend

TENANT = "bench-district"
TEACHER = "teacher-bench"
FIRST_DAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
OBJECTIVE = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fa2")
SCALE = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fa3")

RAW_INSERT = """
    INSERT INTO {table} (
        event_id, tenant_id, stream_id, stream_version, event_type,
        event_version, occurred_at, actor, correlation_id, causation_id,
        payload
    )
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""

RawRow = tuple[UUID, str, str, int, str, int, datetime, str, UUID, UUID | None, str]


class BenchmarkError(Exception):
    """Raised when one side of a workload did not handle every event, so its
    rate would mean nothing."""


def check_count(side: str, *, seen: int, expected: int) -> None:
    """Raise unless ``side`` saw the ``expected`` number of events."""
    if seen != expected:
        message = f"the {side} read {seen} events, not {expected}"
        raise BenchmarkError(message)


class Measurement(msgspec.Struct, frozen=True, kw_only=True):
    """The median rates of one workload through the store and through raw
    asyncpg, with the share of raw the store must reach, if any."""

    workload: str
    store_rate: float
    raw_rate: float
    target: float | None = None

    @property
    def ratio(self) -> float:
        return self.store_rate / self.raw_rate

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "-"
        return "met" if self.ratio >= self.target else "missed"


def recorded(number: int) -> PendingEvent:
    """Return the assessment a teacher records for student ``number``."""
    assessed_at = FIRST_DAY + timedelta(minutes=number % 600)
    return PendingEvent(
        payload=AssessmentRecorded(
            assessment_id=uuid7(),
            student_id=f"student-{number:06d}",
            objective_id=OBJECTIVE,
            scale_id=SCALE,
            scale_version=1,
            level=float(number % 4 + 1),
            assessed_at=assessed_at,
            assessed_by=TEACHER,
            evidence=Evidence(title="Exit ticket", kind="formative"),
            comment="Explains the ratio with a drawing.",
        ),
        occurred_at=assessed_at,
        actor=TEACHER,
        correlation_id=uuid7(),
    )


def new_stream(event: PendingEvent) -> StreamAppend:
    """Return the append that starts one assessment's stream with ``event``."""
    assert isinstance(event.payload, AssessmentRecorded)
    return StreamAppend(
        tenant_id=TENANT,
        stream_id=f"assessment-{event.payload.assessment_id}",
        expected_version=0,
        events=[event],
    )


def raw_row(
    event: PendingEvent, *, stream_id: str | None = None, stream_version: int = 1
) -> RawRow:
    """Return the row raw asyncpg inserts for ``event``, fully prepared so the
    raw side pays for nothing but the database round trips."""
    assert isinstance(event.payload, AssessmentRecorded)
    return (
        event.event_id,
        TENANT,
        stream_id or f"assessment-{event.payload.assessment_id}",
        stream_version,
        "AssessmentRecorded",
        AssessmentRecorded.version,
        event.occurred_at,
        event.actor,
        event.correlation_id,
        event.causation_id,
        msgspec.json.encode(event.payload).decode(),
    )


@contextlib.contextmanager
def benchmark_server() -> Iterator[str]:
    """Yield the URL of the server to measure on: ``MASTERY_DATABASE_URL``
    when set, else a durable embedded PostgreSQL in a temporary folder."""
    configured = os.environ.get("MASTERY_DATABASE_URL")
    if configured:
        click.echo("server: MASTERY_DATABASE_URL", err=True)
        yield configured
        return

    with tempfile.TemporaryDirectory(prefix="mastery-bench-") as folder:
        server = EmbeddedPostgres(Path(folder) / "postgres", durable=True)
        click.echo("server: embedded PostgreSQL, fsync on", err=True)
        try:
            yield server.start()
        finally:
            server.stop(mode="immediate")


class Trial(msgspec.Struct, frozen=True, kw_only=True):
    """One repeat of a workload, prepared: the same ``count`` events to go
    through the store and through raw asyncpg."""

    count: int
    through_store: Callable[[], Awaitable[object]]
    through_raw: Callable[[], Awaitable[object]]


Prepare = Callable[[EventStore, str], Awaitable[Trial]]


async def rate_of(work: Callable[[], Awaitable[object]], count: int) -> float:
    """Run ``work`` and return ``count`` divided by the seconds it took."""
    started = time.perf_counter()
    await work()
    return count / (time.perf_counter() - started)


class Bench:
    """One benchmark run on one server: each workload is prepared afresh,
    then run through both sides, in turns, ``repeats`` times."""

    def __init__(self, pool: asyncpg.Pool, *, repeats: int) -> None:
        self.pool = pool
        self.repeats = repeats

    @contextlib.asynccontextmanager
    async def schemas(self) -> AsyncIterator[tuple[EventStore, str]]:
        """Yield a store on a new schema and the raw table of another new
        schema made by the same migration; drop both afterwards."""
        suffix = secrets.token_hex(4)
        store_schema = f"bench_store_{suffix}"
        raw_schema = f"bench_raw_{suffix}"
        async with self.pool.acquire() as connection:
            for schema in (store_schema, raw_schema):
                await migrate(connection, schema, event_store_migrations())
        try:
            yield (
                EventStore(self.pool, store_schema, registry=CONTRACT),
                f'"{raw_schema}".events',
            )
        finally:
            async with self.pool.acquire() as connection:
                for schema in (store_schema, raw_schema):
                    await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')

    async def compare(
        self,
        workload: str,
        prepare: Prepare,
        *,
        target: float | None = None,
        fresh: bool = True,
    ) -> Measurement:
        """Measure ``workload`` ``repeats`` times and keep the median rates.

        Each repeat runs on new, empty schemas unless ``fresh`` is false,
        when all repeats share the schemas the first one filled. The side
        that goes first alternates, so neither always meets a warmer cache.
        """
        store_rates: list[float] = []
        raw_rates: list[float] = []
        async with contextlib.AsyncExitStack() as shared:
            for repeat in range(self.repeats):
                async with contextlib.AsyncExitStack() as this_repeat:
                    if fresh or repeat == 0:
                        owner = this_repeat if fresh else shared
                        store, raw_table = await owner.enter_async_context(
                            self.schemas()
                        )
                    trial = await prepare(store, raw_table)
                    if repeat % 2 == 0:
                        raw_rates.append(await rate_of(trial.through_raw, trial.count))
                    store_rates.append(await rate_of(trial.through_store, trial.count))
                    if repeat % 2 == 1:
                        raw_rates.append(await rate_of(trial.through_raw, trial.count))

        measurement = Measurement(
            workload=workload,
            store_rate=statistics.median(store_rates),
            raw_rate=statistics.median(raw_rates),
            target=target,
        )
        click.echo(
            f"measured: {workload}: store {measurement.store_rate:,.0f}/s, "
            f"raw {measurement.raw_rate:,.0f}/s",
            err=True,
        )

        return measurement


def batched_append(events_per_transaction: int, *, transactions: int) -> Prepare:
    """Prepare transactions that each start ``events_per_transaction``
    assessment streams, as a teacher saving a whole class's marks does."""

    async def prepare(store: EventStore, raw_table: str) -> Trial:
        count = events_per_transaction * transactions
        firsts = range(0, count, events_per_transaction)
        store_batches = [
            [
                new_stream(recorded(n))
                for n in range(first, first + events_per_transaction)
            ]
            for first in firsts
        ]
        raw_batches = [
            [raw_row(recorded(n)) for n in range(first, first + events_per_transaction)]
            for first in firsts
        ]
        insert = RAW_INSERT.format(table=raw_table)

        async def through_store() -> None:
            for batch in store_batches:
                await store.append_many(batch)

        async def through_raw() -> None:
            async with store.pool.acquire() as connection:
                for rows in raw_batches:
                    async with connection.transaction():
                        await connection.executemany(insert, rows)

        return Trial(count=count, through_store=through_store, through_raw=through_raw)

    return prepare


def continued_streams(events_per_transaction: int, *, transactions: int) -> Prepare:
    """Prepare transactions that each add a second event to
    ``events_per_transaction`` streams, as a teacher revising a class's
    marks does; the first events are stored before the clock starts."""

    async def prepare(store: EventStore, raw_table: str) -> Trial:
        count = events_per_transaction * transactions
        firsts = [recorded(n) for n in range(count)]
        streams = [new_stream(event).stream_id for event in firsts]
        # The chain benchmark gives the store's own table as the raw one.
        tables = dict.fromkeys((f'"{store.schema}".events', raw_table))
        async with store.pool.acquire() as connection, connection.transaction():
            for table in tables:
                rows = [raw_row(event) for event in firsts]
                await connection.executemany(RAW_INSERT.format(table=table), rows)
        seconds = [recorded(count + n) for n in range(count)]
        batches = range(0, count, events_per_transaction)
        store_batches = [
            [
                StreamAppend(
                    tenant_id=TENANT,
                    stream_id=streams[n],
                    expected_version=1,
                    events=[seconds[n]],
                )
                for n in range(first, first + events_per_transaction)
            ]
            for first in batches
        ]
        raw_batches = [
            [
                raw_row(seconds[n], stream_id=streams[n], stream_version=2)
                for n in range(first, first + events_per_transaction)
            ]
            for first in batches
        ]
        insert = RAW_INSERT.format(table=raw_table)

        async def through_store() -> None:
            for batch in store_batches:
                await store.append_many(batch)

        async def through_raw() -> None:
            async with store.pool.acquire() as connection:
                for rows in raw_batches:
                    async with connection.transaction():
                        await connection.executemany(insert, rows)

        return Trial(count=count, through_store=through_store, through_raw=through_raw)

    return prepare


def concurrent_appends(clients: int, *, appends_per_client: int) -> Prepare:
    """Prepare ``clients`` writers that each append one event at a time."""

    async def prepare(store: EventStore, raw_table: str) -> Trial:
        numbers = [
            range(client * appends_per_client, (client + 1) * appends_per_client)
            for client in range(clients)
        ]
        store_work = [[new_stream(recorded(n)) for n in share] for share in numbers]
        raw_work = [[raw_row(recorded(n)) for n in share] for share in numbers]
        insert = RAW_INSERT.format(table=raw_table)

        async def store_client(appends: list[StreamAppend]) -> None:
            for append in appends:
                await store.append(append.tenant_id, append.stream_id, 0, append.events)

        async def raw_client(rows: list[RawRow]) -> None:
            async with store.pool.acquire() as connection:
                for row in rows:
                    await connection.execute(insert, *row)

        async def through_store() -> None:
            await asyncio.gather(*(store_client(work) for work in store_work))

        async def through_raw() -> None:
            await asyncio.gather(*(raw_client(work) for work in raw_work))

        return Trial(
            count=clients * appends_per_client,
            through_store=through_store,
            through_raw=through_raw,
        )

    return prepare


def full_read(events: int, *, batch_size: int) -> Prepare:
    """Prepare reading a log of ``events`` from its start to its end."""

    async def prepare(store: EventStore, raw_table: str) -> Trial:
        # Both sides read the very same rows: the store's own table, filled
        # once, 1,000 events per transaction.
        table = f'"{store.schema}".events'
        insert = RAW_INSERT.format(table=table)
        async with store.pool.acquire() as connection:
            filled = await connection.fetchval(f"SELECT EXISTS (SELECT FROM {table})")
            for first in range(0, 0 if filled else events, 1_000):
                last = min(first + 1_000, events)
                rows = [raw_row(recorded(n)) for n in range(first, last)]
                async with connection.transaction():
                    await connection.executemany(insert, rows)
            await connection.execute(f"VACUUM ANALYZE {table}")

        async def through_store() -> None:
            seen = 0
            async for _ in store.read_all(batch_size=batch_size):
                seen += 1
            check_count("store", seen=seen, expected=events)

        async def through_raw() -> None:
            seen = 0
            async with store.pool.acquire() as connection, connection.transaction():
                query = f"SELECT * FROM {table}"
                async for _ in connection.cursor(query, prefetch=batch_size):
                    seen += 1
            check_count("raw cursor", seen=seen, expected=events)

        return Trial(count=events, through_store=through_store, through_raw=through_raw)

    return prepare


async def run_store_benchmark(
    database_url: str,
    *,
    repeats: int,
    clients: int,
    read_events: int,
) -> list[Measurement]:
    """Measure every store workload against raw asyncpg on ``database_url``."""
    async with asyncpg.create_pool(
        database_url, min_size=clients, max_size=clients + 2
    ) as pool:
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
                "append, 30 events per transaction",
                batched_append(30, transactions=100),
                target=0.50,
            ),
            await bench.compare(
                "append to existing streams, 30 events per transaction",
                continued_streams(30, transactions=100),
            ),
            await bench.compare(
                "append, 500 events per transaction",
                batched_append(500, transactions=12),
                target=0.50,
            ),
            await bench.compare(
                f"append, 1 event per transaction, {clients} clients",
                concurrent_appends(clients, appends_per_client=100),
            ),
            await bench.compare(
                f"read the whole log of {read_events:,} events",
                full_read(read_events, batch_size=500),
                target=0.35,
                fresh=False,
            ),
        ]


def results_table(measurements: list[Measurement], *, side: str = "store") -> str:
    """Render the measurements as a Markdown table, the measured ``side``
    beside raw asyncpg."""
    lines = [
        f"| workload | {side} events/s | raw events/s | {side} / raw | target |",
        "|---|---:|---:|---:|---|",
    ]
    for measurement in measurements:
        target = (
            "-"
            if measurement.target is None
            else f">= {measurement.target:.2f} ({measurement.verdict})"
        )
        lines.append(
            f"| {measurement.workload} | {measurement.store_rate:,.0f} "
            f"| {measurement.raw_rate:,.0f} | {measurement.ratio:.2f} | {target} |"
        )
    return "\n".join(lines)


BENCHMARKS_GROUP = "mastery.benchmarks"


class BenchGroup(click.Group):
    """The benchmarks: the store's, here, and each installed service's,
    registered under the ``mastery.benchmarks`` entry-point group and
    imported only when run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return the built-in and the installed benchmarks' names."""
        installed = {entry.name for entry in entry_points(group=BENCHMARKS_GROUP)}
        return sorted({*super().list_commands(ctx), *installed})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return a built-in benchmark, or load an installed one by name."""
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        for entry in entry_points(group=BENCHMARKS_GROUP, name=cmd_name):
            loaded: click.Command = entry.load()
            return loaded

        return None


@click.group(cls=BenchGroup)
def bench() -> None:
    """Measure the backend's building blocks on a real server."""


@bench.command("store")
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Runs per workload.",
)
@click.option(
    "--clients",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Concurrent single writers.",
)
@click.option(
    "--read-events",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Size of the log read from start to end.",
)
def store_command(repeats: int, clients: int, read_events: int) -> None:
    """Compare the event store's appends and reads with raw asyncpg."""
    started = time.perf_counter()
    with benchmark_server() as database_url:
        measurements = asyncio.run(
            run_store_benchmark(
                database_url,
                repeats=repeats,
                clients=clients,
                read_events=read_events,
            )
        )
    click.echo(results_table(measurements))
    click.echo(
        f"\n{repeats} repeats each, medians; {time.perf_counter() - started:.0f}s"
    )


# The event store's migration that brings in the hash chain; the store
# without it has every other one, as the store code expects their columns.
HASH_CHAIN_MIGRATION = 3


@contextlib.asynccontextmanager
async def chain_schemas(
    pool: asyncpg.Pool,
) -> AsyncIterator[tuple[EventStore, EventStore]]:
    """Yield a store on a new schema with the hash chain and one on a new
    schema without it; drop both afterwards."""
    suffix = secrets.token_hex(4)
    migrations = event_store_migrations()
    schemas = {
        f"bench_chained_{suffix}": migrations,
        f"bench_unchained_{suffix}": [
            migration
            for migration in migrations
            if migration.number != HASH_CHAIN_MIGRATION
        ],
    }
    async with pool.acquire() as connection:
        for schema, applied in schemas.items():
            await migrate(connection, schema, applied)
    try:
        chained, unchained = (
            EventStore(pool, schema, registry=CONTRACT) for schema in schemas
        )
        yield chained, unchained
    finally:
        async with pool.acquire() as connection:
            for schema in schemas:
                await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def run_chain_benchmark(
    database_url: str, *, repeats: int, clients: int
) -> list[Measurement]:
    """Measure each append workload through the store with the hash chain
    and without it, in turns on one server, so that load on the machine
    weighs on both alike."""
    workloads = [
        ("append, 30 events per transaction", batched_append(30, transactions=100)),
        (
            "append to existing streams, 30 events per transaction",
            continued_streams(30, transactions=100),
        ),
        ("append, 500 events per transaction", batched_append(500, transactions=12)),
        (
            f"append, 1 event per transaction, {clients} clients",
            concurrent_appends(clients, appends_per_client=100),
        ),
    ]
    measurements = []
    async with asyncpg.create_pool(
        database_url, min_size=clients, max_size=clients + 2
    ) as pool:
        for workload, prepare in workloads:
            chained_rates: list[float] = []
            unchained_rates: list[float] = []
            for repeat in range(repeats):
                async with chain_schemas(pool) as (chained, unchained):
                    # The raw side of each trial is not run: the two stores
                    # are the sides here.
                    with_chain = await prepare(chained, f'"{chained.schema}".events')
                    without = await prepare(unchained, f'"{unchained.schema}".events')
                    sides = [
                        (with_chain, chained_rates),
                        (without, unchained_rates),
                    ]
                    for trial, rates in sides if repeat % 2 == 0 else sides[::-1]:
                        rates.append(await rate_of(trial.through_store, trial.count))
            measurements.append(
                Measurement(
                    workload=workload,
                    store_rate=statistics.median(chained_rates),
                    raw_rate=statistics.median(unchained_rates),
                )
            )
            click.echo(f"measured: {workload}", err=True)

    return measurements


@bench.command("chain")
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Runs per workload.",
)
@click.option(
    "--clients",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Concurrent single writers.",
)
def chain_command(repeats: int, clients: int) -> None:
    """Compare the store's appends with the hash chain and without it."""
    started = time.perf_counter()
    with benchmark_server() as database_url:
        measurements = asyncio.run(
            run_chain_benchmark(database_url, repeats=repeats, clients=clients)
        )
    table = results_table(measurements)
    table = table.replace(
        "| store events/s | raw events/s | store / raw | target |",
        "| chained events/s | unchained events/s | chained / unchained | target |",
    )
    click.echo(table)
    click.echo(
        f"\n{repeats} repeats each, medians; {time.perf_counter() - started:.0f}s"
    )


if __name__ == "__main__":
    bench()
