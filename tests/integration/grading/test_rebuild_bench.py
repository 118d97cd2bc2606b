"""The rebuild bench's reading of the server's CPU time and its log, on
the real embedded PostgreSQL the tests start on this machine."""

from __future__ import annotations

import asyncpg

from mastery_grading.rebuild import Rebuild
from mastery_grading.rebuild_bench import cpu_seconds, digest, seed, server_cpu

# No process has this id: Linux caps them far below it.
NO_SUCH_PROCESS = 2**31 - 1


async def test_the_servers_cpu_time_grows_with_the_work_it_does(
    pool: asyncpg.Pool,
) -> None:
    """Summing three million numbers costs the server CPU time, and the
    reading after it is larger than the one before."""
    async with pool.acquire() as connection:
        before = await server_cpu(connection)
        await connection.fetchval("SELECT sum(n) FROM generate_series(1, 3000000) n")
        after = await server_cpu(connection)

    assert before is not None
    assert after is not None
    assert after > before


def test_a_process_that_has_ended_counts_no_cpu_time() -> None:
    """A process gone between two readings adds nothing, rather than
    failing the whole reading."""
    assert cpu_seconds([NO_SUCH_PROCESS]) == 0.0


async def test_the_bench_log_followed_by_the_projector_rebuilds_to_its_rows(
    pool: asyncpg.Pool,
) -> None:
    """The bench's realistic log holds the projector's announcements
    beside the assessments, the rebuild reads past them, and the rows it
    writes are the very rows the projector built."""
    schema = "bench_rebuild_test"
    try:
        seeded = await seed(pool, schema, 120)
        async with pool.acquire() as connection:
            built = await digest(connection, schema)
            report = await Rebuild(pool, connection, schema).run()
            rebuilt = await digest(connection, schema)
            announced = await connection.fetchval(
                f"SELECT count(*) FROM {schema}.events "
                "WHERE event_type = 'MasteryChanged'"
            )
    finally:
        async with pool.acquire() as connection:
            await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    assert seeded.assessments == 138
    assert announced >= seeded.assessments
    assert seeded.events >= seeded.assessments + announced
    assert report.events == seeded.assessments
    assert rebuilt == built
