"""The rebuild bench's reading of the server's CPU time, on the real
embedded PostgreSQL the tests start on this machine."""

from __future__ import annotations

import asyncpg

from mastery_grading.rebuild_bench import cpu_seconds, server_cpu

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
