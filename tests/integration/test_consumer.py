"""The durable consumer against real NATS JetStream and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import asyncpg
import msgspec
import nats
import pytest
from nats.js import JetStreamContext

from mastery_deploy.engines import EmbeddedPostgres
from mastery_events.cloudevents import cloudevent_type, to_nats_headers
from mastery_events.consumer import BatchHandler, ConsumerSettings, DurableConsumer
from mastery_events.contract.grading import AssessmentRecorded, Evidence
from mastery_events.database import Connection
from mastery_events.dead_letters import (
    DeadLetter,
    list_dead_letters,
    replay_dead_letter,
)
from mastery_events.envelope import Envelope, Event
from mastery_events.ids import uuid7
from mastery_events.jetstream import (
    StreamSettings,
    dead_letter_stream_name,
    ensure_dead_letter_stream,
    ensure_stream,
)
from mastery_events.migrations import event_store_migrations, migrate
from mastery_events.subjects import Subjects
from mastery_events.tenancy import tenant_transaction
from tests.waiting import eventually

TENANT = "district-7"
OTHER_TENANT = "district-9"
MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
OBJECTIVE = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fa2")
SCALE = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fa3")
FAST = ConsumerSettings(
    batch_size=10, fetch_wait=0.2, max_deliver=3, ack_wait=2.0, backoff=(0.05,)
)


class ProjectionBrokenError(Exception):
    """Raised by test handlers that fail on purpose."""


def recorded(student_id: str, *, tenant_id: str = TENANT) -> Envelope:
    """Return a stored ``AssessmentRecorded`` for one student, at version 2."""
    payload = AssessmentRecorded(
        assessment_id=uuid7(),
        student_id=student_id,
        objective_id=OBJECTIVE,
        scale_id=SCALE,
        scale_version=1,
        level=3.0,
        assessed_at=MONDAY,
        assessed_by="teacher-ada",
        evidence=Evidence(title="Unit 3 quiz", kind="summative"),
    )
    return envelope_of(
        "AssessmentRecorded", 2, msgspec.json.encode(payload), tenant_id=tenant_id
    )


def envelope_of(
    event_type: str,
    event_version: int,
    payload: bytes,
    *,
    tenant_id: str = TENANT,
) -> Envelope:
    """Return an envelope as the grading service's store would give it."""
    event_id = uuid7()
    return Envelope(
        event_id=event_id,
        event_type=event_type,
        event_version=event_version,
        tenant_id=tenant_id,
        stream_id=f"assessment-{event_id}",
        stream_version=1,
        position=1,
        transaction_id=1,
        occurred_at=MONDAY,
        recorded_at=MONDAY,
        actor="teacher-ada",
        correlation_id=event_id,
        payload=msgspec.Raw(payload),
    )


@dataclass
class Bus:
    """The grading stream and dead-letter stream of one test, on their own
    subject prefix."""

    js: JetStreamContext
    subjects: Subjects
    stream: str

    async def publish(
        self,
        envelope: Envelope,
        *,
        subject_tenant: str | None = None,
        message_id: str | None = None,
    ) -> None:
        """Publish ``envelope`` as the relay does, optionally under another
        tenant's subject or another message id."""
        headers = to_nats_headers(envelope, service="grading")
        if message_id is not None:
            headers["Nats-Msg-Id"] = message_id
        subject = self.subjects.event(
            "grading", subject_tenant or envelope.tenant_id, envelope.event_type
        )
        ack = await self.js.publish(subject, bytes(envelope.payload), headers=headers)
        assert not ack.duplicate

    async def dead_letters(self, consumer: str) -> list[DeadLetter]:
        """Return what ``consumer`` parked."""
        return await list_dead_letters(self.js, self.subjects, consumer=consumer)

    async def messages_in_stream(self) -> int:
        """Return how many messages the grading stream holds."""
        info = await self.js.stream_info(self.stream)
        return info.state.messages


@dataclass
class Applied:
    """A handler that writes one row per call into the test's own table, and
    counts its calls per event, failing where a test tells it to."""

    pool: asyncpg.Pool
    schema: str
    calls: dict[UUID, int] = field(default_factory=dict)
    failures: dict[UUID, int] = field(default_factory=dict)

    async def __call__(
        self, connection: Connection, envelope: Envelope, event: Event
    ) -> None:
        """Apply one event: count the call, maybe fail, else write its row."""
        self.calls[envelope.event_id] = self.calls.get(envelope.event_id, 0) + 1
        if self.failures.get(envelope.event_id, 0) > 0:
            self.failures[envelope.event_id] -= 1
            raise ProjectionBrokenError(envelope.event_type)
        assert isinstance(event, AssessmentRecorded)
        await connection.execute(
            f"""
            INSERT INTO "{self.schema}".applied
                (event_id, tenant_id, student_id, evidence_title, evidence_kind)
            VALUES ($1, $2, $3, $4, $5)
            """,
            envelope.event_id,
            envelope.tenant_id,
            event.student_id,
            event.evidence.title,
            event.evidence.kind,
        )

    async def rows(self) -> list[asyncpg.Record]:
        """Return every row the handler wrote, oldest first."""
        async with self.pool.acquire() as connection:
            return await connection.fetch(
                f'SELECT * FROM "{self.schema}".applied ORDER BY id'
            )

    async def processed(self) -> list[UUID]:
        """Return the events the consumer recorded as processed."""
        async with self.pool.acquire() as connection:
            rows = await connection.fetch(
                f'SELECT event_id FROM "{self.schema}".processed_events'
            )
        return [row["event_id"] for row in rows]


async def create_applied_table(connection: Connection, schema: str) -> None:
    """Create the table the test handler writes to, without any uniqueness,
    so an event applied twice shows as two rows."""
    await connection.execute(
        f"""
        CREATE TABLE "{schema}".applied (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id        uuid NOT NULL,
            tenant_id       text NOT NULL,
            student_id      text NOT NULL,
            evidence_title  text NOT NULL,
            evidence_kind   text NOT NULL
        )
        """
    )


@pytest.fixture
async def bus(nats_url: str, subject_prefix: str) -> AsyncIterator[Bus]:
    """The grading and dead-letter streams, in memory, removed afterwards."""
    connection = await nats.connect(nats_url)
    js = connection.jetstream()
    subjects = Subjects(prefix=subject_prefix)
    settings = StreamSettings(storage="memory", duplicate_window=60.0)
    await ensure_stream(js, "grading", subjects=subjects, settings=settings)
    await ensure_dead_letter_stream(js, subjects=subjects, settings=settings)
    yield Bus(js=js, subjects=subjects, stream=subjects.stream_name("grading"))
    await js.delete_stream(subjects.stream_name("grading"))
    await js.delete_stream(dead_letter_stream_name(subjects))
    await connection.close()


@pytest.fixture
async def applied(pool: asyncpg.Pool, schema: str) -> Applied:
    """The test handler, on its own table in the test's schema."""
    async with pool.acquire() as connection:
        await create_applied_table(connection, schema)
    return Applied(pool=pool, schema=schema)


@pytest.fixture
async def running(
    bus: Bus, pool: asyncpg.Pool, schema: str, applied: Applied
) -> AsyncIterator[DurableConsumer]:
    """A consumer of every grading event, running until the test ends."""
    consumer = DurableConsumer(
        bus.js,
        pool,
        name="reports-mastery",
        stream=bus.stream,
        filter_subjects=[bus.subjects.service_events("grading")],
        schema=schema,
        handler=applied,
        subjects=bus.subjects,
        settings=FAST,
    )
    task = asyncio.create_task(consumer.run())
    yield consumer
    await consumer.stop()
    await task


async def settled(consumer: DurableConsumer) -> bool:
    """Tell whether every message was delivered and acked or parked."""
    return (await consumer.lag()).total == 0


async def test_event_published_twice_under_new_message_ids_is_applied_once(
    bus: Bus, running: DurableConsumer, applied: Applied
) -> None:
    """An event that reaches the stream twice, as after the duplicate window,
    writes its row once, and the next event still writes its own."""
    twice = recorded("student-1")
    after = recorded("student-2")

    await bus.publish(twice, message_id="first-publish")
    await bus.publish(twice, message_id="republished-later")
    await bus.publish(after)

    async def both_applied() -> bool:
        return len(await applied.rows()) == 2 and await settled(running)

    await eventually(both_applied, what="both events applied")
    rows = await applied.rows()
    assert [row["event_id"] for row in rows] == [twice.event_id, after.event_id]
    assert applied.calls == {twice.event_id: 1, after.event_id: 1}
    assert await bus.messages_in_stream() == 3
    assert sorted(await applied.processed()) == sorted([twice.event_id, after.event_id])


async def test_failing_handler_parks_message_after_max_deliver_and_moves_on(
    bus: Bus, running: DurableConsumer, applied: Applied
) -> None:
    """A handler that always fails is tried ``max_deliver`` times, the
    message lands in the dead-letter stream with its original body and
    headers, and the event after it is still applied."""
    broken = recorded("student-broken")
    fine = recorded("student-fine")
    applied.failures[broken.event_id] = 1_000

    await bus.publish(broken)
    await bus.publish(fine)

    async def parked_and_applied() -> bool:
        letters = await bus.dead_letters("reports-mastery")
        rows = await applied.rows()
        return len(letters) == 1 and len(rows) == 1 and await settled(running)

    await eventually(parked_and_applied, what="one parked and one applied")
    assert applied.calls[broken.event_id] == FAST.max_deliver
    assert [row["event_id"] for row in await applied.rows()] == [fine.event_id]
    assert await applied.processed() == [fine.event_id]

    [letter] = await bus.dead_letters("reports-mastery")
    assert letter.consumer == "reports-mastery"
    assert letter.error == "ProjectionBrokenError"
    assert letter.deliveries == FAST.max_deliver
    assert letter.subject == bus.subjects.event("grading", TENANT, "AssessmentRecorded")
    assert letter.stream == bus.stream
    assert letter.event_id == str(broken.event_id)
    assert letter.tenant_id == TENANT

    stored = await bus.js.get_msg(
        dead_letter_stream_name(bus.subjects), letter.sequence
    )
    assert stored.data == bytes(broken.payload)
    assert stored.headers is not None
    assert stored.headers["ce-type"] == cloudevent_type(
        "grading", "AssessmentRecorded", 2
    )
    assert stored.headers["Mastery-Dead-Letter-Consumer"] == "reports-mastery"
    assert stored.headers["Mastery-Dead-Letter-Error"] == "ProjectionBrokenError"
    assert stored.headers["Mastery-Dead-Letter-Deliveries"] == "3"


async def test_replayed_dead_letter_is_applied_once_the_handler_is_fixed(
    bus: Bus, running: DurableConsumer, applied: Applied
) -> None:
    """A parked message replayed to its subject after the fault is gone is
    applied once, and a second replay inside the duplicate window is
    dropped by JetStream."""
    broken = recorded("student-broken")
    applied.failures[broken.event_id] = FAST.max_deliver
    await bus.publish(broken)

    async def parked() -> bool:
        return len(await bus.dead_letters("reports-mastery")) == 1

    await eventually(parked, what="the message parked")
    [letter] = await bus.dead_letters("reports-mastery")

    replayed = await replay_dead_letter(bus.js, bus.subjects, sequence=letter.sequence)
    again = await replay_dead_letter(bus.js, bus.subjects, sequence=letter.sequence)
    assert replayed.subject == letter.subject
    assert replayed.stream == bus.stream
    assert not replayed.duplicate
    assert again.duplicate

    async def applied_after_replays() -> bool:
        return len(await applied.rows()) == 1 and await settled(running)

    await eventually(applied_after_replays, what="the replay applied")
    assert await bus.messages_in_stream() == 2
    assert [row["event_id"] for row in await applied.rows()] == [broken.event_id]
    assert applied.calls[broken.event_id] == FAST.max_deliver + 1
    assert len(await bus.dead_letters("reports-mastery")) == 1


async def test_unknown_event_type_or_version_is_acked_and_the_next_applied(
    bus: Bus, running: DurableConsumer, applied: Applied
) -> None:
    """Events of a type, or a version, this code does not know are skipped
    without parking them, and the consumer carries on."""
    teleported = envelope_of("AssessmentTeleported", 1, b'{"to": "mars"}')
    from_the_future = envelope_of("AssessmentRecorded", 9, b'{"hologram": true}')
    known = recorded("student-1")

    await bus.publish(teleported)
    await bus.publish(from_the_future)
    await bus.publish(known)

    async def known_applied() -> bool:
        return len(await applied.rows()) == 1 and await settled(running)

    await eventually(known_applied, what="the known event applied")
    assert [row["event_id"] for row in await applied.rows()] == [known.event_id]
    assert set(applied.calls) == {known.event_id}
    assert await bus.dead_letters("reports-mastery") == []


async def test_tenant_mismatch_between_subject_and_envelope_is_parked(
    bus: Bus, running: DurableConsumer, applied: Applied
) -> None:
    """A message whose subject names another tenant than its envelope is
    parked at its first delivery and applied to neither tenant."""
    misrouted = recorded("student-1", tenant_id=OTHER_TENANT)
    await bus.publish(misrouted, subject_tenant=TENANT)

    async def parked() -> bool:
        letters = await bus.dead_letters("reports-mastery")
        return len(letters) == 1 and await settled(running)

    await eventually(parked, what="the misrouted message parked")
    [letter] = await bus.dead_letters("reports-mastery")
    assert letter.error == "TenantMismatchError"
    assert letter.deliveries == 1
    assert letter.tenant_id == OTHER_TENANT
    assert applied.calls == {}
    assert await applied.rows() == []
    assert await applied.processed() == []


async def test_message_that_is_no_cloudevent_is_parked_as_poison(
    bus: Bus, running: DurableConsumer, applied: Applied
) -> None:
    """A message without CloudEvents headers is parked at its first delivery
    and the event after it is applied."""
    subject = bus.subjects.event("grading", TENANT, "AssessmentRecorded")
    await bus.js.publish(subject, b"not an event")
    known = recorded("student-1")
    await bus.publish(known)

    async def parked_and_applied() -> bool:
        letters = await bus.dead_letters("reports-mastery")
        rows = await applied.rows()
        return len(letters) == 1 and len(rows) == 1 and await settled(running)

    await eventually(parked_and_applied, what="poison parked, event applied")
    [letter] = await bus.dead_letters("reports-mastery")
    assert letter.error == "CloudEventError"
    assert letter.event_id is None
    assert [row["event_id"] for row in await applied.rows()] == [known.event_id]


async def test_version_1_assessment_reaches_the_handler_upcast_to_version_2(
    bus: Bus, running: DurableConsumer, applied: Applied
) -> None:
    """A version 1 ``AssessmentRecorded``, which had only an evidence title,
    reaches the handler as version 2 with the title inside ``evidence``."""
    old = envelope_of(
        "AssessmentRecorded",
        1,
        msgspec.json.encode(
            {
                "type": "AssessmentRecorded",
                "assessment_id": str(uuid7()),
                "student_id": "student-1",
                "objective_id": str(OBJECTIVE),
                "scale_id": str(SCALE),
                "scale_version": 1,
                "level": 2.0,
                "assessed_at": MONDAY.isoformat(),
                "assessed_by": "teacher-ada",
                "evidence_title": "Fractions exit ticket",
            }
        ),
    )
    await bus.publish(old)

    async def upcast_applied() -> bool:
        return len(await applied.rows()) == 1

    await eventually(upcast_applied, what="the old event applied")
    [row] = await applied.rows()
    assert row["evidence_title"] == "Fractions exit ticket"
    assert row["evidence_kind"] == "unspecified"


async def test_handler_failing_once_then_succeeding_applies_the_event_once(
    bus: Bus, running: DurableConsumer, applied: Applied
) -> None:
    """A handler that fails on the first delivery and succeeds on the second
    leaves one row, nothing parked, and its failed attempt rolled back."""
    flaky = recorded("student-1")
    applied.failures[flaky.event_id] = 1
    await bus.publish(flaky)

    async def applied_and_settled() -> bool:
        return len(await applied.rows()) == 1 and await settled(running)

    await eventually(applied_and_settled, what="the flaky event applied")
    assert applied.calls == {flaky.event_id: 2}
    assert [row["event_id"] for row in await applied.rows()] == [flaky.event_id]
    assert await applied.processed() == [flaky.event_id]
    assert await bus.dead_letters("reports-mastery") == []


async def test_restarted_consumer_resumes_with_updated_settings(
    bus: Bus, pool: asyncpg.Pool, schema: str, applied: Applied
) -> None:
    """A consumer started again under the same name picks up where the last
    one stopped, and its new settings replace the old ones on the server."""

    def consumer(settings: ConsumerSettings) -> DurableConsumer:
        return DurableConsumer(
            bus.js,
            pool,
            name="reports-roster",
            stream=bus.stream,
            filter_subjects=[bus.subjects.service_events("grading")],
            schema=schema,
            handler=applied,
            subjects=bus.subjects,
            settings=settings,
        )

    first, second, third = (recorded(f"student-{n}") for n in (1, 2, 3))
    for envelope in (first, second):
        await bus.publish(envelope)
    before = consumer(FAST)
    await before.start()
    assert (await before.lag()).pending == 2

    task = asyncio.create_task(before.run())
    await eventually(lambda: settled(before), what="the first two applied")
    await before.stop()
    await task
    await bus.publish(third)

    after = consumer(msgspec.structs.replace(FAST, ack_wait=3.0, max_ack_pending=7))
    await after.start()
    info = await bus.js.consumer_info(bus.stream, "reports-roster")
    assert info.config.ack_wait == 3.0
    assert info.config.max_ack_pending == 7
    assert (await after.lag()).pending == 1

    task = asyncio.create_task(after.run())
    await eventually(lambda: settled(after), what="the third applied")
    await after.stop()
    await task
    rows = await applied.rows()
    assert [row["event_id"] for row in rows] == [
        e.event_id for e in (first, second, third)
    ]
    assert set(applied.calls.values()) == {1}


@pytest.mark.slow
async def test_database_outage_delays_events_without_parking_them(
    bus: Bus, tmp_path: Path
) -> None:
    """While the consumer's database is down its events are retried past
    ``max_deliver`` and never parked; once it is back each is applied once."""
    postgres = EmbeddedPostgres(tmp_path / "postgres", durable=False)
    url = postgres.start()
    try:
        async with asyncpg.create_pool(url, min_size=0, max_size=4) as own_pool:
            async with own_pool.acquire() as connection:
                await migrate(connection, "reports", event_store_migrations())
                await create_applied_table(connection, "reports")
            handler = Applied(pool=own_pool, schema="reports")
            consumer = DurableConsumer(
                bus.js,
                own_pool,
                name="reports-outage",
                stream=bus.stream,
                filter_subjects=[bus.subjects.service_events("grading")],
                schema="reports",
                handler=handler,
                subjects=bus.subjects,
                settings=FAST,
            )
            postgres.stop()
            events = [recorded(f"student-{n}") for n in (1, 2)]
            for envelope in events:
                await bus.publish(envelope)
            await consumer.start()
            task = asyncio.create_task(consumer.run())

            async def delivered_beyond_max() -> bool:
                # More deliveries than the events could have had within
                # max_deliver each: at least one was retried past it.
                info = await bus.js.consumer_info(bus.stream, consumer.name)
                assert info.delivered is not None
                deliveries: int = info.delivered.consumer_seq
                return deliveries > len(events) * FAST.max_deliver

            await eventually(delivered_beyond_max, what="retries past max_deliver")
            postgres.start()

            async def applied_after_outage() -> bool:
                return len(await handler.rows()) == 2 and await settled(consumer)

            await eventually(applied_after_outage, what="both applied after outage")
            await consumer.stop()
            await task
            assert [row["event_id"] for row in await handler.rows()] == [
                envelope.event_id for envelope in events
            ]
            assert await bus.dead_letters("reports-outage") == []
    finally:
        postgres.stop()


@dataclass
class Batches(Applied):
    """The test handler able to take a batch: it notes, for every event,
    the transaction and the tenant setting it was applied under."""

    transactions: dict[UUID, tuple[int, str]] = field(default_factory=dict)
    batches: list[list[UUID]] = field(default_factory=list)

    async def apply_batch(
        self, connection: Connection, events: Sequence[tuple[Envelope, Event]]
    ) -> None:
        """Apply each event as ``Applied`` does, noting where it was."""
        self.batches.append([envelope.event_id for envelope, _ in events])
        where = await connection.fetchrow(
            "SELECT txid_current() AS txid, "
            "current_setting('mastery.tenant_id') AS tenant"
        )
        assert where is not None
        for envelope, event in events:
            self.transactions[envelope.event_id] = (where["txid"], where["tenant"])
            await self(connection, envelope, event)


@dataclass
class Slowed(Applied):
    """The test handler, taking a few milliseconds per event as a real
    projection's queries would, so a batch is still in hand when its
    process dies."""

    async def __call__(
        self, connection: Connection, envelope: Envelope, event: Event
    ) -> None:
        """Wait a little, then apply the event as ``Applied`` does."""
        await asyncio.sleep(0.005)
        await super().__call__(connection, envelope, event)


@dataclass
class SlowedBatches(Batches):
    """The batch handler, taking a few milliseconds per event as ``Slowed``
    does."""

    async def apply_batch(
        self, connection: Connection, events: Sequence[tuple[Envelope, Event]]
    ) -> None:
        """Wait a little per event, then apply them as ``Batches`` does."""
        await asyncio.sleep(0.005 * len(events))
        await super().apply_batch(connection, events)


@pytest.mark.parametrize("handler_kind", [Slowed, SlowedBatches])
async def test_two_instances_share_one_durable_and_one_dying_doubles_nothing(
    bus: Bus,
    pool: asyncpg.Pool,
    schema: str,
    nats_url: str,
    applied: Applied,
    handler_kind: type[Applied],
) -> None:
    """Two service instances bind one durable consumer, each over its own
    NATS connection. One is killed mid-load, connection first, with a batch
    in hand: the other receives what the dead one never acked, and every
    event ends up applied exactly once, one event or one batch at a time."""
    events = [recorded(f"student-{n}") for n in range(200)]
    survivor_handler = handler_kind(pool=pool, schema=schema)
    doomed_handler = handler_kind(pool=pool, schema=schema)
    connections = [await nats.connect(nats_url) for _ in range(2)]
    survivor, doomed = (
        DurableConsumer(
            connection.jetstream(),
            pool,
            name="reports-mastery",
            stream=bus.stream,
            filter_subjects=[bus.subjects.service_events("grading")],
            schema=schema,
            handler=handler,
            subjects=bus.subjects,
            settings=FAST,
        )
        for connection, handler in zip(
            connections, [survivor_handler, doomed_handler], strict=True
        )
    )
    survivor_task = asyncio.create_task(survivor.run())
    doomed_task = asyncio.create_task(doomed.run())
    for envelope in events:
        await bus.publish(envelope)

    async def doomed_is_working() -> bool:
        return len(doomed_handler.calls) >= 10

    await eventually(doomed_is_working, what="the second instance applying")
    await connections[1].close()
    doomed_task.cancel()
    await asyncio.wait([doomed_task])

    async def all_applied() -> bool:
        return len(await applied.rows()) == len(events) and await settled(survivor)

    try:
        await eventually(all_applied, within=30, what="every event applied")
    finally:
        await survivor.stop()
        await survivor_task
        await connections[0].close()
    rows = await applied.rows()
    assert sorted(row["event_id"] for row in rows) == sorted(
        envelope.event_id for envelope in events
    )
    assert len(set(await applied.processed())) == len(events) == 200
    assert survivor_handler.calls
    assert await bus.dead_letters("reports-mastery") == []


def batch_consumer(
    bus: Bus, pool: asyncpg.Pool, schema: str, handler: Batches
) -> DurableConsumer:
    """Return a consumer of every grading event through ``handler``."""
    return DurableConsumer(
        bus.js,
        pool,
        name="reports-mastery",
        stream=bus.stream,
        filter_subjects=[bus.subjects.service_events("grading")],
        schema=schema,
        handler=handler,
        subjects=bus.subjects,
        settings=FAST,
    )


async def run_until(
    consumer: DurableConsumer, done: Callable[[], Awaitable[bool]], what: str
) -> None:
    """Run ``consumer`` until ``done`` and every message is settled."""
    task = asyncio.create_task(consumer.run())

    async def finished() -> bool:
        return await done() and await settled(consumer)

    try:
        await eventually(finished, what=what)
    finally:
        await consumer.stop()
        await task


async def test_backlog_is_applied_a_batch_per_transaction_each_event_once(
    bus: Bus, pool: asyncpg.Pool, schema: str
) -> None:
    """A backlog reaches a batch handler as one batch in one transaction;
    an event twice in the batch and one an earlier instance applied but
    never acked (its ``processed_events`` row is there) have no second
    effect, and every message is acked."""
    handler = Batches(pool=pool, schema=schema)
    async with pool.acquire() as connection:
        await create_applied_table(connection, schema)
    events = [recorded(f"student-{n}") for n in range(8)]
    already = events[2]
    async with pool.acquire() as connection, tenant_transaction(connection, TENANT):
        await connection.execute(
            f'INSERT INTO "{schema}".processed_events (consumer, event_id, '
            "tenant_id) VALUES ($1, $2, $3)",
            "reports-mastery",
            already.event_id,
            TENANT,
        )
    for envelope in events:
        await bus.publish(envelope)
    await bus.publish(events[5], message_id="republished")
    assert isinstance(handler, BatchHandler)

    async def applied_all() -> bool:
        return len(await handler.rows()) == len(events) - 1

    await run_until(
        batch_consumer(bus, pool, schema, handler), applied_all, "backlog applied"
    )
    fresh = [e.event_id for e in events if e is not already]
    assert [row["event_id"] for row in await handler.rows()] == fresh
    assert handler.calls == dict.fromkeys(fresh, 1)
    assert handler.batches == [fresh]
    assert len({handler.transactions[event_id] for event_id in fresh}) == 1
    assert sorted(await handler.processed()) == sorted(e.event_id for e in events)
    assert await bus.messages_in_stream() == len(events) + 1


async def test_a_batch_of_two_tenants_is_applied_in_each_tenant_transaction(
    bus: Bus, pool: asyncpg.Pool, schema: str
) -> None:
    """Interleaved events of two tenants in one fetched batch are applied
    in two transactions, each bound to its own tenant, in stream order."""
    handler = Batches(pool=pool, schema=schema)
    async with pool.acquire() as connection:
        await create_applied_table(connection, schema)
    events = [
        recorded(f"student-{n}", tenant_id=TENANT if n % 2 else OTHER_TENANT)
        for n in range(6)
    ]
    for envelope in events:
        await bus.publish(envelope)

    async def applied_all() -> bool:
        return len(await handler.rows()) == len(events)

    await run_until(
        batch_consumer(bus, pool, schema, handler), applied_all, "both tenants"
    )
    for envelope in events:
        _, tenant = handler.transactions[envelope.event_id]
        assert tenant == envelope.tenant_id
    by_tenant = {
        tenant: [e.event_id for e in events if e.tenant_id == tenant]
        for tenant in (OTHER_TENANT, TENANT)
    }
    assert handler.batches == list(by_tenant.values())
    transactions = {
        tenant: {handler.transactions[event_id][0] for event_id in ids}
        for tenant, ids in by_tenant.items()
    }
    assert all(len(found) == 1 for found in transactions.values())
    assert transactions[TENANT] != transactions[OTHER_TENANT]


async def test_an_event_failing_in_a_batch_is_parked_alone(
    bus: Bus, pool: asyncpg.Pool, schema: str
) -> None:
    """A batch with an event its handler always fails on is rolled back and
    tried one event at a time: the others are applied once, and the bad one
    alone is parked after ``max_deliver`` attempts."""
    handler = Batches(pool=pool, schema=schema)
    async with pool.acquire() as connection:
        await create_applied_table(connection, schema)
    events = [recorded(f"student-{n}") for n in range(5)]
    broken = events[2]
    handler.failures[broken.event_id] = 1_000
    for envelope in events:
        await bus.publish(envelope)

    async def parked_and_applied() -> bool:
        letters = await bus.dead_letters("reports-mastery")
        return len(letters) == 1 and len(await handler.rows()) == len(events) - 1

    await run_until(
        batch_consumer(bus, pool, schema, handler), parked_and_applied, "one parked"
    )
    fine = [e.event_id for e in events if e is not broken]
    assert sorted(row["event_id"] for row in await handler.rows()) == sorted(fine)
    assert sorted(await handler.processed()) == sorted(fine)
    [letter] = await bus.dead_letters("reports-mastery")
    assert letter.event_id == str(broken.event_id)
    assert letter.deliveries == FAST.max_deliver
