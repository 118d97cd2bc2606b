"""The reports bench, run small on the test engines: every grade it appends
is timed to its snapshot, and both read phases read real snapshots."""

from __future__ import annotations

import nats

from mastery_events.settings import Settings
from mastery_reports.benchmark import run_reports_benchmark


async def stream_names(nats_url: str) -> set[str]:
    """Return the names of the server's streams, key-value buckets' too."""
    bus = await nats.connect(nats_url)
    try:
        return {
            stream.config.name or "" for stream in await bus.jetstream().streams_info()
        }
    finally:
        await bus.close()


async def test_a_small_run_times_every_grade_and_every_paced_read(
    settings: Settings, nats_url: str
) -> None:
    """Twenty-five students graded at twenty a second for two seconds:
    every grade reaches its snapshot, the paced phase starts fifty reads
    in its second and answers each of them, and the run leaves no stream
    or bucket behind."""
    before = await stream_names(nats_url)
    result = await run_reports_benchmark(
        settings,
        students=25,
        rate=20,
        seconds=2,
        read_clients=2,
        read_seconds=1,
        paced_read_rate=50,
    )

    assert result.grades >= 20
    assert result.append_to_snapshot.count == result.grades
    assert result.read_latency.count > 0
    assert result.paced_read_latency.count == 50
    assert result.paced_read_latency.p50_ms > 0
    assert await stream_names(nats_url) == before
