"""Rebuild every snapshot by replaying the followed streams from the start.

The facts and snapshots are reports' own derived state: the streams of the
objectives and grading services hold everything they were built from. A
rebuild empties them and the consumers' ``processed_events``, deletes the
durable JetStream consumers, and replays each stream from its first
message through the same handlers the running service uses. Share links
are reports' own records and are left alone.

Run it with the reports service stopped: a running service's consumers
would lose their durable consumers under them.
"""

from __future__ import annotations

import contextlib
import time

import asyncpg
import msgspec
import nats
import structlog
from nats.js.errors import NotFoundError

from mastery_events.consumer import DurableConsumer
from mastery_events.migrations import migrate, quote_schema
from mastery_events.runtime import Service
from mastery_events.settings import Settings
from mastery_events.subjects import Subjects

# Reports' derived tables, emptied before a replay; never ``share_links``.
DERIVED_TABLES = (
    "objective_sets",
    "objectives",
    "scale_versions",
    "schools",
    "terms",
    "sections",
    "people",
    "enrollments",
    "section_objective_sets",
    "assessments",
    "mastery_points",
    "traditional_grades",
    "grade_bridges",
    "source_positions",
    "snapshots",
    "processed_events",
)

log = structlog.get_logger(__name__)


class RebuildResult(msgspec.Struct, frozen=True, kw_only=True):
    """How far each consumer replayed its stream (the last stream sequence
    it was given), and how long the rebuild took."""

    replayed: dict[str, int]
    seconds: float


async def rebuild(service: Service, settings: Settings) -> RebuildResult:
    """Empty ``service``'s derived tables and replay its followers' streams
    from the start until each consumer has caught up."""
    database_url, nats_url = settings.require_engines()
    started = time.monotonic()
    schema = quote_schema(service.schema)

    # TRUNCATE is the owner's, and row security does not filter it: one
    # statement empties every tenant's rows.
    owner = await asyncpg.connect(settings.migration_database_url or database_url)
    try:
        await migrate(owner, service.schema, service.all_migrations())
        tables = ", ".join(f"{schema}.{table}" for table in DERIVED_TABLES)
        await owner.execute(f"TRUNCATE {tables}")
    finally:
        await owner.close()
    log.info("rebuild.emptied", schema=service.schema, tables=len(DERIVED_TABLES))

    subjects = Subjects(prefix=settings.subject_prefix)
    bus = await nats.connect(
        nats_url.split(","), name=f"mastery-{service.name}-rebuild"
    )
    replayed: dict[str, int] = {}
    try:
        js = bus.jetstream()
        async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool:
            for follower in service.followers:
                stream = subjects.stream_name(follower.source)
                with contextlib.suppress(NotFoundError):
                    await js.delete_consumer(stream, follower.name)
                consumer = DurableConsumer(
                    js,
                    pool,
                    name=follower.name,
                    stream=stream,
                    filter_subjects=[subjects.service_events(follower.source)],
                    schema=service.schema,
                    handler=follower.handler,
                    subjects=subjects,
                    settings=msgspec.structs.replace(follower.settings, fetch_wait=0.5),
                )
                await consumer.start()
                while (await consumer.lag()).total:
                    await consumer.process_batch()
                info = await js.consumer_info(stream, follower.name)
                replayed[follower.name] = info.delivered.stream_seq
                log.info(
                    "rebuild.replayed",
                    consumer=follower.name,
                    stream=stream,
                    last_sequence=info.delivered.stream_seq,
                )
    finally:
        await bus.close()

    return RebuildResult(
        replayed=replayed,
        seconds=round(time.monotonic() - started, 3),
    )
