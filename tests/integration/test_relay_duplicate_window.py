"""A relay that republishes its whole store after the duplicate window has
no second effect on a consumer: its processed-events record absorbs it."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from mastery_events.consumer import ConsumerSettings, DurableConsumer
from mastery_events.contract.grading import AssessmentRecorded, Evidence
from mastery_events.database import Connection
from mastery_events.envelope import Envelope, Event, PendingEvent
from mastery_events.ids import uuid7
from mastery_events.jetstream import StreamSettings
from mastery_events.migrations import event_store_migrations, migrate
from mastery_events.relay import Relay, RelaySettings
from mastery_events.store import EventStore
from mastery_events.subjects import Subjects
from tests.waiting import eventually

MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
OBJECTIVE = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fa2")
SCALE = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fa3")
DUPLICATE_WINDOW = 1.0
STREAM = StreamSettings(storage="memory", duplicate_window=DUPLICATE_WINDOW)
RELAY = RelaySettings(poll_interval=0.1, retry_max=0.5, rejoin_delay=0.1, stream=STREAM)
CONSUMER = ConsumerSettings(
    batch_size=10, fetch_wait=0.2, max_deliver=3, ack_wait=2.0, backoff=(0.05,)
)
PROBE_ID = "duplicate-window-probe"
TENANTS = ("district-7", "district-9")


def assessment(student_id: str, day: int) -> PendingEvent:
    """Return a decided ``AssessmentRecorded`` for one student."""
    assessed_at = MONDAY + timedelta(days=day)
    return PendingEvent(
        payload=AssessmentRecorded(
            assessment_id=uuid7(),
            student_id=student_id,
            objective_id=OBJECTIVE,
            scale_id=SCALE,
            scale_version=1,
            level=float(day % 4 + 1),
            assessed_at=assessed_at,
            assessed_by="teacher-ada",
            evidence=Evidence(title=f"Exit ticket {day}", kind="formative"),
        ),
        occurred_at=assessed_at,
        actor="teacher-ada",
        correlation_id=uuid7(),
    )


@pytest.fixture
async def nats_client(nats_url: str, subject_prefix: str) -> AsyncIterator[Client]:
    """A NATS connection of this test's own, which removes the test's
    grading stream when the test ends."""
    client = await nats.connect(nats_url)
    yield client
    with contextlib.suppress(NotFoundError):
        stream = Subjects(prefix=subject_prefix).stream_name("grading")
        await client.jetstream().delete_stream(stream)
    await client.close()


@pytest.fixture
async def reports_schema(pool: asyncpg.Pool) -> AsyncIterator[str]:
    """The consuming service's own schema, with a table its handler fills
    once per call, so a second application shows as a second row."""
    name = f"test_reports_{secrets.token_hex(5)}"
    async with pool.acquire() as connection:
        await migrate(connection, name, event_store_migrations())
        await connection.execute(
            f"""
            CREATE TABLE "{name}".applied (
                id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                event_id    uuid NOT NULL,
                tenant_id   text NOT NULL,
                student_id  text NOT NULL
            )
            """
        )
    yield name
    async with pool.acquire() as connection:
        await connection.execute(f'DROP SCHEMA "{name}" CASCADE')


async def run_relay_until_caught_up(relay: Relay) -> None:
    """Run ``relay`` until every stored event is past its checkpoint, then
    stop it."""
    task = asyncio.create_task(relay.run())

    async def caught_up() -> bool:
        return relay.is_leader and (await relay.lag()).events == 0

    await eventually(caught_up, what="the relay to catch up")
    await relay.stop()
    await task


async def test_republished_store_after_duplicate_window_is_applied_once(
    store: EventStore,
    schema: str,
    pool: asyncpg.Pool,
    reports_schema: str,
    nats_client: Client,
    subject_prefix: str,
) -> None:
    """A relay whose checkpoint went back to the start republishes every
    event once the duplicate window has passed; JetStream then holds each
    event twice, and the consumer applies each exactly once."""
    subjects = Subjects(prefix=subject_prefix)
    js = nats_client.jetstream()
    stream = subjects.stream_name("grading")
    wanted = f"{subject_prefix}.grading.*.AssessmentRecorded"
    students = [(tenant, f"student-{n}") for tenant in TENANTS for n in range(1, 7)]
    for day, (tenant, student) in enumerate(students):
        pending = [assessment(student, day)]
        await store.append(tenant, f"assessment-{day}", 0, pending)
    stored = [envelope async for envelope in store.read_all()]
    calls: dict[UUID, int] = {}

    async def apply(connection: Connection, envelope: Envelope, event: Event) -> None:
        """Write one row per call, counting calls per event."""
        calls[envelope.event_id] = calls.get(envelope.event_id, 0) + 1
        assert isinstance(event, AssessmentRecorded)
        await connection.execute(
            f'INSERT INTO "{reports_schema}".applied '
            "(event_id, tenant_id, student_id) VALUES ($1, $2, $3)",
            envelope.event_id,
            envelope.tenant_id,
            event.student_id,
        )

    async def rows() -> list[asyncpg.Record]:
        async with pool.acquire() as connection:
            return await connection.fetch(
                f'SELECT * FROM "{reports_schema}".applied ORDER BY id'
            )

    async def copies_in_stream() -> int:
        info = await js.stream_info(stream, subjects_filter=wanted)
        return sum((info.state.subjects or {}).values())

    first = Relay(
        store, nats_client, service="grading", subjects=subjects, settings=RELAY
    )
    await run_relay_until_caught_up(first)
    consumer = DurableConsumer(
        js,
        pool,
        name="reports-evidence",
        stream=stream,
        filter_subjects=[wanted],
        schema=reports_schema,
        handler=apply,
        subjects=subjects,
        settings=CONSUMER,
    )
    await consumer.start()
    consuming = asyncio.create_task(consumer.run())

    async def all_applied_once() -> bool:
        return len(await rows()) == len(stored) and (await consumer.lag()).total == 0

    await eventually(all_applied_once, what="every event applied")
    assert await copies_in_stream() == len(stored)

    # Restore the relay's checkpoint to the start, as an old backup would.
    async with pool.acquire() as connection:
        status = await connection.execute(
            f"""
            UPDATE "{schema}".checkpoints
            SET transaction_id = '0'::xid8, position = 0
            WHERE name = $1
            """,
            RELAY.name,
        )
    assert status == "UPDATE 1"

    info = await js.stream_info(stream)
    assert info.config.duplicate_window == DUPLICATE_WINDOW

    # The probe is the newest message id the stream remembers: once it is
    # forgotten, so are the ids of every event the first relay published.
    probe_subject = f"{subject_prefix}.grading.probe.WindowProbe"
    await js.publish(probe_subject, b"", headers={"Nats-Msg-Id": PROBE_ID})

    async def window_passed() -> bool:
        ack = await js.publish(probe_subject, b"", headers={"Nats-Msg-Id": PROBE_ID})
        return not ack.duplicate

    await eventually(window_passed, within=DUPLICATE_WINDOW + 10, what="the window")

    second = Relay(
        store, nats_client, service="grading", subjects=subjects, settings=RELAY
    )
    await run_relay_until_caught_up(second)

    async def repeats_settled() -> bool:
        doubled = await copies_in_stream() == 2 * len(stored)
        return doubled and (await consumer.lag()).total == 0

    await eventually(repeats_settled, what="the republished events settled")
    await consumer.stop()
    await consuming

    assert second.published == len(stored)
    assert second.duplicates == 0
    applied = await rows()
    assert sorted(row["event_id"] for row in applied) == sorted(
        envelope.event_id for envelope in stored
    )
    assert set(calls.values()) == {1}
    assert len(calls) == len(stored)
