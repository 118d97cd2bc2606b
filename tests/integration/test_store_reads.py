"""Reading the event store, one stream or the whole log, from real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import msgspec
import pytest

from mastery_events.contract import CONTRACT
from mastery_events.contract.grading import AssessmentRecorded
from mastery_events.database import Connection
from mastery_events.envelope import Envelope
from mastery_events.errors import ConcurrencyError
from mastery_events.store import (
    Checkpoint,
    EventStore,
    StreamAppend,
    checkpoint_of,
    notify_channel,
)
from tests.integration.gradebook import (
    OTHER_TENANT,
    TENANT,
    class_of,
    recorded,
    student_stream,
)


class BatchRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One batch a reader of the whole log asked for, and how many events
    its consumer had taken when it asked."""

    limit: int
    returned: int
    taken_before: int


class ObservedStore(EventStore):
    """An event store on the real database that notes each batch asked of
    it, so a test can see how ``read_all`` pages through the log."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        super().__init__(pool, schema, registry=CONTRACT)
        self.requests: list[BatchRequest] = []
        self.taken = 0

    async def read_batch(
        self,
        after: Checkpoint,
        *,
        limit: int = 500,
        connection: Connection | None = None,
    ) -> list[Envelope]:
        batch = await super().read_batch(after, limit=limit, connection=connection)
        self.requests.append(
            BatchRequest(limit=limit, returned=len(batch), taken_before=self.taken)
        )
        return batch


async def write_log(store: EventStore, *, classes: int, size: int) -> list[Envelope]:
    """Append ``classes`` rounds of grading for a class of ``size``, each
    round one transaction, and return the events in the order written."""
    written: list[Envelope] = []
    for round_number in range(classes):
        batches = [
            StreamAppend(
                tenant_id=TENANT,
                stream_id=student_stream(student),
                expected_version=round_number,
                events=[recorded(student)],
            )
            for student in range(1, size + 1)
        ]
        written.extend(await store.append_many(batches))
    return written


async def test_reading_a_stream_after_a_version_returns_only_the_later_events(
    store: EventStore,
) -> None:
    """A reader that already holds versions 1 and 2 gets 3 to 5, in order,
    and nothing once it holds them all."""
    stream = student_stream(4)
    written = await store.append(TENANT, stream, 0, [recorded(4) for _ in range(5)])

    later = await store.read_stream(TENANT, stream, after_version=2)

    assert [event.stream_version for event in later] == [3, 4, 5]
    assert [event.event_id for event in later] == [e.event_id for e in written[2:]]
    assert await store.read_stream(TENANT, stream, after_version=5) == []


async def test_a_stream_reads_back_as_it_was_appended(store: EventStore) -> None:
    """What ``append`` returns is what ``read_stream`` later gives, field for
    field, and the payload decodes to the recorded assessment."""
    event = recorded(9)

    appended = await store.append(TENANT, student_stream(9), 0, [event])
    [read] = await store.read_stream(TENANT, student_stream(9))

    assert read == appended[0]
    decoded = CONTRACT.decode(read)
    assert isinstance(decoded, AssessmentRecorded)
    assert decoded == event.payload


async def test_one_stream_id_in_two_tenants_is_two_streams(store: EventStore) -> None:
    """The same stream id under two tenants starts at version 1 in each, and
    each tenant reads only its own events."""
    stream = student_stream(1)
    ours = await store.append(TENANT, stream, 0, [recorded(1), recorded(1)])
    theirs = await store.append(OTHER_TENANT, stream, 0, [recorded(1)])

    read_ours = await store.read_stream(TENANT, stream)
    read_theirs = await store.read_stream(OTHER_TENANT, stream)

    assert [e.event_id for e in read_ours] == [e.event_id for e in ours]
    assert [e.event_id for e in read_theirs] == [e.event_id for e in theirs]
    assert {e.tenant_id for e in read_theirs} == {OTHER_TENANT}
    assert await store.stream_version(TENANT, stream) == 2
    assert await store.stream_version(OTHER_TENANT, stream) == 1


async def test_an_empty_store_reads_as_nothing(store: EventStore) -> None:
    """A store with no events has no streams, no batch and no log."""
    assert await store.read_stream(TENANT, student_stream(1)) == []
    assert await store.stream_version(TENANT, student_stream(1)) == 0
    assert await store.read_batch(Checkpoint()) == []
    assert [envelope async for envelope in store.read_all()] == []


@pytest.mark.parametrize("batch_size", [1, 7, 60, 64, 500])
async def test_reading_the_whole_log_gives_every_event_in_global_order(
    store: EventStore, batch_size: int
) -> None:
    """Whatever the batch size, including one that divides the log exactly,
    ``read_all`` yields every event once, in the order it was written."""
    written = await write_log(store, classes=6, size=30)
    written.extend(await store.append(TENANT, student_stream(99), 0, [recorded(99)]))

    read = [envelope async for envelope in store.read_all(batch_size=batch_size)]

    assert len(written) == 181
    assert [e.event_id for e in read] == [e.event_id for e in written]
    order = [(e.transaction_id, e.position) for e in read]
    assert order == sorted(order)
    assert len(set(order)) == len(order)


async def test_reading_the_log_from_a_checkpoint_resumes_after_it(
    store: EventStore,
) -> None:
    """A follower that stopped at the 100th event resumes at the 101st."""
    written = await write_log(store, classes=5, size=30)

    resumed = [
        envelope
        async for envelope in store.read_all(
            after=checkpoint_of(written[99]), batch_size=40
        )
    ]

    assert [e.event_id for e in resumed] == [e.event_id for e in written[100:]]


async def test_reading_a_large_log_holds_one_batch_at_a_time(
    pool: asyncpg.Pool, schema: str
) -> None:
    """Reading 5,000 events 100 at a time asks for the next batch only when
    its consumer has taken every event of the one before, and asks no more
    than it needs when the consumer stops early."""
    store = ObservedStore(pool, schema)
    for first in range(0, 5_000, 500):
        await store.append_many(
            [
                StreamAppend(
                    tenant_id=TENANT,
                    stream_id=student_stream(student),
                    expected_version=0,
                    events=[recorded(student)],
                )
                for student in range(first, first + 500)
            ]
        )

    async for _ in store.read_all(batch_size=100):
        store.taken += 1

    assert store.taken == 5_000
    assert len(store.requests) == 51
    assert {request.limit for request in store.requests} == {100}
    assert [request.returned for request in store.requests] == [100] * 50 + [0]
    assert [request.taken_before for request in store.requests] == [
        100 * number for number in range(51)
    ]

    store.requests.clear()
    reader = store.read_all(batch_size=100)
    taken = [await anext(reader) for _ in range(150)]
    await reader.aclose()

    assert len(taken) == 150
    assert [request.returned for request in store.requests] == [100, 100]


async def test_a_listener_hears_of_each_stored_append_and_not_of_a_refused_one(
    pool: asyncpg.Pool, store: EventStore, schema: str
) -> None:
    """Followers that LISTEN on the store's channel are woken once by each
    stored append and never by one that was refused."""
    channel = notify_channel(schema)
    heard: list[object] = []
    marker_heard = asyncio.Event()

    def on_notification(
        connection: object, pid: int, channel: str, payload: object
    ) -> None:
        heard.append(payload)
        if payload == "marker":
            marker_heard.set()

    async with pool.acquire() as listener:
        await listener.add_listener(channel, on_notification)
        try:
            await store.append_many(class_of(3))
            with pytest.raises(ConcurrencyError):
                await store.append_many(class_of(3))
            await store.append(TENANT, student_stream(1), 1, [recorded(1)])
            # Notifications arrive in commit order: once the marker is here,
            # every notification of the appends above has arrived too.
            async with pool.acquire() as connection:
                await connection.execute("SELECT pg_notify($1, 'marker')", channel)
            async with asyncio.timeout(10):
                await marker_heard.wait()
        finally:
            await listener.remove_listener(channel, on_notification)

    assert heard == ["", "", "marker"]
