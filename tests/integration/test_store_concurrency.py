"""The event store under concurrent writers, against real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from uuid import UUID

import asyncpg
import pytest

from mastery_events.database import Connection
from mastery_events.envelope import Envelope
from mastery_events.errors import ConcurrencyError
from mastery_events.store import (
    Checkpoint,
    EventStore,
    StreamAppend,
    checkpoint_of,
)
from mastery_events.subjects import InvalidTenantError
from tests.integration.gradebook import (
    TENANT,
    class_of,
    recorded,
    student_stream,
)

WRITERS = 20
TRANSACTIONS_PER_WRITER = 4
RACE_ROUNDS = 50


class WriterGaveUpError(Exception):
    """Raised inside a writer's transaction so that it rolls back."""


async def wait_until(
    condition: Callable[[], Awaitable[bool]], *, what: str, seconds: float = 10
) -> None:
    """Poll ``condition`` until it holds, failing the test after ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                if await condition():
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"{what} did not happen within {seconds}s")


async def stored_count(connection: Connection, schema: str) -> int:
    """Count the events ``connection`` can see in ``schema``."""
    count: int = await connection.fetchval(f'SELECT count(*) FROM "{schema}".events')
    return count


async def test_follower_sees_each_committed_event_once_as_commits_land_out_of_order(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    """While writers hold their transactions open for random times, so that
    lower positions commit after higher ones, a follower reading the global
    order batch by batch gets every committed event exactly once, in order,
    never an event before its commit and never a rolled-back one."""
    delays = random.Random(7)
    committing: set[UUID] = set()
    committed: set[UUID] = set()
    rolled_back: set[UUID] = set()
    commit_order: list[int] = []
    writers_done = asyncio.Event()
    seen_too_early: list[Envelope] = []

    async def write(writer: int) -> None:
        for turn in range(TRANSACTIONS_PER_WRITER):
            student = writer * 100 + turn
            events = [recorded(student) for _ in range(delays.randint(1, 3))]
            event_ids = {event.event_id for event in events}
            gives_up = (writer + turn) % 5 == 0
            try:
                async with pool.acquire() as connection, connection.transaction():
                    stored = await store.append_within(
                        connection,
                        [
                            StreamAppend(
                                tenant_id=TENANT,
                                stream_id=student_stream(student),
                                expected_version=0,
                                events=events,
                            )
                        ],
                    )
                    await asyncio.sleep(delays.uniform(0, 0.03))
                    if gives_up:
                        raise WriterGaveUpError
                    committing.update(event_ids)
            except WriterGaveUpError:
                rolled_back.update(event_ids)
                continue
            committed.update(event_ids)
            commit_order.append(stored[0].transaction_id)

    async def follow() -> list[Envelope]:
        seen: list[Envelope] = []
        checkpoint = Checkpoint()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            finished = writers_done.is_set()
            batch = await store.read_batch(checkpoint, limit=7)
            seen_too_early.extend(
                envelope for envelope in batch if envelope.event_id not in committing
            )
            seen.extend(batch)
            if batch:
                checkpoint = checkpoint_of(batch[-1])
            elif finished and len(seen) >= len(committed):
                return seen
            else:
                await asyncio.sleep(0.002)
        pytest.fail("the follower did not catch up within 30s")

    async def write_all() -> None:
        await asyncio.gather(*(write(writer) for writer in range(WRITERS)))
        writers_done.set()

    seen, _ = await asyncio.gather(follow(), write_all())

    seen_ids = [envelope.event_id for envelope in seen]
    assert seen_too_early == []
    assert len(seen_ids) == len(committed)
    assert set(seen_ids) == committed
    assert rolled_back
    assert rolled_back.isdisjoint(seen_ids)
    order = [(envelope.transaction_id, envelope.position) for envelope in seen]
    assert order == sorted(order)
    assert commit_order != sorted(commit_order), "no commit landed out of order"


async def test_two_writers_racing_from_one_version_never_fork_the_stream(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    """Round after round, two writers append to one stream from the same
    version: one wins, the other gets a concurrency error, and the stream's
    versions stay 1..n with one event each; some rounds collide after both
    writers passed the version check."""
    delays = random.Random(11)
    stream = student_stream(1)
    winners: list[Envelope] = []
    collisions = 0

    for version in range(RACE_ROUNDS):
        both_began = asyncio.Barrier(2)

        async def race(
            version: int = version, both_began: asyncio.Barrier = both_began
        ) -> Envelope:
            async with pool.acquire() as connection, connection.transaction():
                await both_began.wait()
                [stored] = await store.append_within(
                    connection,
                    [
                        StreamAppend(
                            tenant_id=TENANT,
                            stream_id=stream,
                            expected_version=version,
                            events=[recorded(1)],
                        )
                    ],
                )
                await asyncio.sleep(delays.uniform(0.001, 0.005))
            return stored

        outcomes = await asyncio.gather(race(), race(), return_exceptions=True)

        won = [outcome for outcome in outcomes if isinstance(outcome, Envelope)]
        lost = [o for o in outcomes if isinstance(o, ConcurrencyError)]
        assert len(won) == 1, outcomes
        assert len(lost) == 1, outcomes
        assert lost[0].expected == version
        winners.extend(won)
        if isinstance(lost[0].__cause__, asyncpg.UniqueViolationError):
            collisions += 1

    events = await store.read_stream(TENANT, stream)
    assert [event.stream_version for event in events] == list(range(1, RACE_ROUNDS + 1))
    assert [event.event_id for event in events] == [w.event_id for w in winners]
    assert collisions > 0, "no round raced past the version check"


@pytest.mark.parametrize("loser_holds_a_transaction", [False, True])
async def test_a_writer_colliding_after_the_version_check_gets_a_concurrency_error(
    pool: asyncpg.Pool,
    store: EventStore,
    schema: str,
    loser_holds_a_transaction: bool,
) -> None:
    """A writer whose insert waits on another's uncommitted event for the same
    stream version gets a concurrency error, not a database error, once that
    other commits; it learns the stream's version when its connection is
    still usable."""
    stream = student_stream(1)

    async def blocked_on_a_lock() -> bool:
        async with pool.acquire() as connection:
            waiting: int = await connection.fetchval(
                """
                SELECT count(*) FROM pg_stat_activity
                WHERE wait_event_type = 'Lock' AND position($1 IN query) > 0
                """,
                schema,
            )
        return waiting > 0

    async def lose() -> None:
        if not loser_holds_a_transaction:
            await store.append(TENANT, stream, 0, [recorded(2)])
            return
        async with pool.acquire() as connection, connection.transaction():
            await store.append_within(
                connection,
                [
                    StreamAppend(
                        tenant_id=TENANT,
                        stream_id=stream,
                        expected_version=0,
                        events=[recorded(2)],
                    )
                ],
            )

    async with pool.acquire() as first, first.transaction():
        [winner] = await store.append_within(
            first,
            [
                StreamAppend(
                    tenant_id=TENANT,
                    stream_id=stream,
                    expected_version=0,
                    events=[recorded(1)],
                )
            ],
        )
        loser = asyncio.create_task(lose())
        await wait_until(blocked_on_a_lock, what="the second writer blocking")

    with pytest.raises(ConcurrencyError) as raised:
        await loser

    assert isinstance(raised.value.__cause__, asyncpg.UniqueViolationError)
    assert raised.value.stream_id == stream
    assert raised.value.expected == 0
    assert raised.value.actual == (None if loser_holds_a_transaction else 1)
    events = await store.read_stream(TENANT, stream)
    assert [event.event_id for event in events] == [winner.event_id]


async def test_a_writer_expecting_a_version_not_yet_reached_is_refused(
    store: EventStore,
) -> None:
    """A writer that believes the stream further on than it is gets a
    concurrency error rather than leaving a gap in the versions."""
    await store.append(TENANT, student_stream(1), 0, [recorded(1)])

    with pytest.raises(ConcurrencyError) as raised:
        await store.append(TENANT, student_stream(1), 3, [recorded(1)])

    assert (raised.value.expected, raised.value.actual) == (3, 1)
    assert await store.stream_version(TENANT, student_stream(1)) == 1


async def test_grading_a_whole_class_is_stored_in_one_transaction(
    store: EventStore,
) -> None:
    """A teacher's 30 assessments, each starting a student's stream, are
    stored together: one transaction, version 1 of every stream."""
    stored = await store.append_many(class_of(30))

    assert len(stored) == 30
    assert len({envelope.transaction_id for envelope in stored}) == 1
    for student in (1, 17, 30):
        [event] = await store.read_stream(TENANT, student_stream(student))
        assert event.stream_version == 1


async def test_one_stale_stream_in_a_class_fails_the_whole_batch(
    pool: asyncpg.Pool, store: EventStore, schema: str
) -> None:
    """When one of 30 streams has moved on since the teacher loaded it, the
    whole batch is refused, the error names that stream, and nothing of the
    batch is stored."""
    [earlier] = await store.append(TENANT, student_stream(17), 0, [recorded(17)])

    with pytest.raises(ConcurrencyError) as raised:
        await store.append_many(class_of(30))

    assert raised.value.stream_id == student_stream(17)
    assert (raised.value.expected, raised.value.actual) == (0, 1)
    stored = [envelope async for envelope in store.read_all()]
    assert [envelope.event_id for envelope in stored] == [earlier.event_id]
    async with pool.acquire() as connection:
        assert await stored_count(connection, schema) == 1


async def test_a_stale_stream_leaves_the_callers_transaction_without_the_batch(
    pool: asyncpg.Pool, store: EventStore, schema: str
) -> None:
    """Inside a service's own transaction, a refused batch writes nothing, so
    the transaction holds only what came before it."""
    await store.append(TENANT, student_stream(30), 0, [recorded(30)])

    async with pool.acquire() as connection, connection.transaction():
        await store.append_within(connection, class_of(3))
        with pytest.raises(ConcurrencyError):
            await store.append_within(connection, class_of(30)[3:])
        assert await stored_count(connection, schema) == 4


async def test_batches_that_follow_on_in_one_stream_are_appended_together(
    store: EventStore,
) -> None:
    """Two batches for one stream in one call, the second expecting the
    version the first leaves, are stored as versions 1 to 3."""
    stream = student_stream(5)
    first = StreamAppend(
        tenant_id=TENANT,
        stream_id=stream,
        expected_version=0,
        events=[recorded(5), recorded(5)],
    )
    second = StreamAppend(
        tenant_id=TENANT, stream_id=stream, expected_version=2, events=[recorded(5)]
    )

    stored = await store.append_many([first, second])

    events = await store.read_stream(TENANT, stream)
    assert [event.stream_version for event in events] == [1, 2, 3]
    assert [event.event_id for event in events] == [e.event_id for e in stored]


async def test_batches_for_one_stream_that_do_not_follow_on_are_refused(
    store: EventStore,
) -> None:
    """A second batch for a stream that skips a version is refused with the
    first, as the stream cannot be at both expected versions."""
    stream = student_stream(5)
    first = StreamAppend(
        tenant_id=TENANT, stream_id=stream, expected_version=0, events=[recorded(5)]
    )
    gap = StreamAppend(
        tenant_id=TENANT, stream_id=stream, expected_version=4, events=[recorded(5)]
    )

    with pytest.raises(ConcurrencyError) as raised:
        await store.append_many([first, gap])

    assert (raised.value.expected, raised.value.actual) == (4, 0)
    assert await store.read_stream(TENANT, stream) == []


@pytest.mark.parametrize("tenant_id", ["District 7", "district_7", "", "-district"])
async def test_a_tenant_id_that_is_not_a_slug_is_refused_before_anything_is_written(
    pool: asyncpg.Pool, store: EventStore, schema: str, tenant_id: str
) -> None:
    """A batch naming a malformed tenant, even behind valid ones, is refused
    before a single row is inserted, inside the caller's transaction too."""
    batches = [*class_of(2), *class_of(1, tenant_id=tenant_id)]

    async with pool.acquire() as connection, connection.transaction():
        with pytest.raises(InvalidTenantError):
            await store.append_within(connection, batches)
        assert await stored_count(connection, schema) == 0

    with pytest.raises(InvalidTenantError):
        await store.append_many(batches)
    assert [envelope async for envelope in store.read_all()] == []
