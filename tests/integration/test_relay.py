"""The outbox relay against real PostgreSQL and NATS JetStream servers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import msgspec
import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from structlog.testing import capture_logs

from mastery_deploy.engines import EmbeddedNats
from mastery_events.envelope import Envelope
from mastery_events.jetstream import ensure_stream
from mastery_events.relay import Relay, RelaySettings, lock_key
from mastery_events.store import EventStore, StreamAppend
from mastery_events.subjects import Subjects
from tests.integration.drafts import set_drafted
from tests.waiting import eventually

SERVICE = "objectives"
TENANT = "district-7"

# Quick to retry and to hand over, so each test takes a second or two.
BRISK = RelaySettings(
    poll_interval=0.2,
    ack_timeout=1.0,
    retry_initial=0.05,
    retry_max=0.3,
    lock_retry_interval=0.05,
    rejoin_delay=1.0,
)


async def append_events(store: EventStore, count: int, *, transactions: int) -> None:
    """Append ``count`` events, one stream each, in ``transactions`` commits."""
    per_transaction = count // transactions
    for number in range(transactions):
        first = number * per_transaction
        await store.append_many(
            [
                StreamAppend(
                    tenant_id=TENANT,
                    stream_id=f"objective-set-{uuid4()}",
                    expected_version=0,
                    events=[
                        set_drafted(f"Fractions, unit {first + offset}", set_id=uuid4())
                    ],
                )
                for offset in range(per_transaction)
            ]
        )


async def stream_count(js: JetStreamContext, subjects: Subjects) -> int:
    """Return how many messages the service's stream holds; 0 when none."""
    try:
        info = await js.stream_info(subjects.stream_name(SERVICE))
    except nats.js.errors.NotFoundError:
        return 0
    return info.state.messages


async def stream_event_ids(js: JetStreamContext, subjects: Subjects) -> list[str]:
    """Return the ``Nats-Msg-Id`` of every message on the stream, in stream
    order, after checking each agrees with its ``ce-id``."""
    expected = await stream_count(js, subjects)
    subscription = await js.subscribe(
        subjects.service_events(SERVICE),
        stream=subjects.stream_name(SERVICE),
        ordered_consumer=True,
    )
    ids = []
    for _ in range(expected):
        message = await subscription.next_msg(timeout=5)
        assert message.headers is not None
        assert message.headers["ce-id"] == message.headers["Nats-Msg-Id"]
        ids.append(message.headers["Nats-Msg-Id"])
    await subscription.unsubscribe()

    return ids


async def store_event_ids(store: EventStore) -> list[str]:
    """Return every event id of the store, in its global order."""
    return [str(envelope.event_id) async for envelope in store.read_all()]


async def lock_holder(pool: asyncpg.Pool, schema: str) -> int | None:
    """Return the backend pid that holds the relay lock of ``schema``."""
    async with pool.acquire() as connection:
        pid: int | None = await connection.fetchval(
            """
            SELECT pid FROM pg_locks
            WHERE locktype = 'advisory' AND granted AND objsubid = 1
              AND ((classid::bigint << 32) | objid::bigint)
                  = hashtextextended($1, 0)
            """,
            lock_key(schema, "relay"),
        )
    return pid


def holds(
    js: JetStreamContext, subjects: Subjects, count: int
) -> Callable[[], Awaitable[bool]]:
    """Return a check that the service's stream holds ``count`` messages."""

    async def check() -> bool:
        return await stream_count(js, subjects) == count

    return check


def leading(relay: Relay) -> Callable[[], Awaitable[bool]]:
    """Return a check that ``relay`` holds the lock."""

    async def check() -> bool:
        return relay.is_leader

    return check


def caught_up(relay: Relay) -> Callable[[], Awaitable[bool]]:
    """Return a check that ``relay``'s checkpoint covers every event."""

    async def check() -> bool:
        return (await relay.lag()).events == 0

    return check


@contextlib.asynccontextmanager
async def running(relay: Relay) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``relay`` in a task for the block, and stop it afterwards."""
    task = asyncio.create_task(relay.run())
    try:
        yield task
    finally:
        await relay.stop(grace=5)


async def connect(url: str) -> Client:
    """Connect to NATS the way a service does: reconnecting forever."""
    return await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)


@pytest.fixture
def subjects(subject_prefix: str) -> Subjects:
    """Subjects under this test's own prefix."""
    return Subjects(prefix=subject_prefix)


@pytest.fixture
async def bus(nats_url: str, subjects: Subjects) -> AsyncIterator[Client]:
    """A connection to the session's NATS server; the test's stream is
    deleted afterwards."""
    client = await connect(nats_url)
    yield client
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await client.jetstream().delete_stream(subjects.stream_name(SERVICE))
    await client.close()


async def test_events_appended_while_nats_is_down_arrive_once_each_in_order(
    store: EventStore, subjects: Subjects, tmp_path: Path
) -> None:
    """With NATS stopped, 1,000 events are appended in four commits and the
    relay retries; once NATS is back on the same port and data, each event
    is on the stream exactly once, in the store's global order."""
    server = EmbeddedNats(tmp_path / "nats")
    client = await connect(server.start())
    js = client.jetstream()
    await ensure_stream(js, SERVICE, subjects=subjects)
    try:
        with capture_logs() as logs:
            relay = Relay(
                store, client, service=SERVICE, subjects=subjects, settings=BRISK
            )

            async def failed_publishes() -> bool:
                return any(log["event"] == "relay.publish_failed" for log in logs)

            async def all_published() -> bool:
                return await stream_count(js, subjects) == 1000 and (
                    (await relay.lag()).events == 0
                )

            async with running(relay):
                await eventually(leading(relay), within=10, what="leading")
                server.stop()
                await append_events(store, 1000, transactions=4)
                await eventually(failed_publishes, within=10, what="failed publish")
                assert (await relay.lag()).events == 1000

                server.start()
                await eventually(all_published, within=30, what="catching up")

        ids = await stream_event_ids(js, subjects)
        assert len(ids) == 1000
        assert len(set(ids)) == 1000
        assert ids == await store_event_ids(store)
    finally:
        await client.close()
        server.stop()


async def test_nats_killed_while_the_relay_publishes_loses_and_doubles_nothing(
    store: EventStore, subjects: Subjects, tmp_path: Path
) -> None:
    """NATS is killed (SIGKILL) while batches are in flight and started
    again on the same port and data; the relay resends what got no ack and
    the stream ends up with each event once, in the store's order."""
    server = EmbeddedNats(tmp_path / "nats")
    client = await connect(server.start())
    js = client.jetstream()
    settings = msgspec.structs.replace(BRISK, batch_size=100)
    await append_events(store, 2000, transactions=4)
    try:
        relay = Relay(
            store, client, service=SERVICE, subjects=subjects, settings=settings
        )

        async def some_published() -> bool:
            return await stream_count(js, subjects) >= 200

        async with running(relay):
            await eventually(some_published, within=10, what="the first 200")
            server.kill()
            server.start()
            await eventually(caught_up(relay), within=30, what="catching up")

        ids = await stream_event_ids(js, subjects)
        assert len(ids) == 2000
        assert len(set(ids)) == 2000
        assert ids == await store_event_ids(store)
    finally:
        await client.close()
        server.stop()


async def test_relay_killed_between_acks_and_checkpoint_stores_nothing_twice(
    store: EventStore, pool: asyncpg.Pool, schema: str, bus: Client, subjects: Subjects
) -> None:
    """A relay dies after JetStream acked its first batch but before its
    checkpoint moved; the next relay finds that batch already on the stream,
    stores none of it again and publishes the rest.

    The crash is made real on both sides: the test holds the checkpoint row
    locked so the relay's checkpoint write waits after the acks, then ends
    the relay's database session with pg_terminate_backend (its transaction
    and lock die with it, as when a process dies) and cancels its task (the
    process is gone, nothing more runs). Nothing is left to finish cleanly.
    """
    settings = msgspec.structs.replace(BRISK, batch_size=250)
    js = bus.jetstream()
    await append_events(store, 1000, transactions=4)
    async with pool.acquire() as blocker:
        await blocker.execute(
            f"""INSERT INTO "{schema}".checkpoints (name, transaction_id, position)
            VALUES ('relay', '0', 0)"""
        )
        blocking = blocker.transaction()
        await blocking.start()
        await blocker.execute(
            f"""SELECT 1 FROM "{schema}".checkpoints WHERE name = 'relay'
            FOR UPDATE"""
        )

        crashed = Relay(
            store, bus, service=SERVICE, subjects=subjects, settings=settings
        )
        task = asyncio.create_task(crashed.run())

        async def first_batch_acked_and_checkpoint_waiting() -> bool:
            pid = await lock_holder(pool, schema)
            waiting = await blocker.fetchval(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1",
                pid,
            )
            return await stream_count(js, subjects) == 250 and bool(waiting)

        await eventually(
            first_batch_acked_and_checkpoint_waiting, within=10, what="the stall"
        )
        await blocker.execute(
            "SELECT pg_terminate_backend($1)", await lock_holder(pool, schema)
        )
        task.cancel()
        await asyncio.wait([task])
        await blocking.rollback()

    assert crashed.published == 250
    assert await stream_count(js, subjects) == 250
    assert (await crashed.lag()).events == 1000
    successor = Relay(store, bus, service=SERVICE, subjects=subjects, settings=settings)

    async with running(successor):
        await eventually(caught_up(successor), within=20, what="catching up")

    assert successor.duplicates == 250
    assert successor.published == 750
    ids = await stream_event_ids(js, subjects)
    assert len(ids) == 1000
    assert ids == await store_event_ids(store)


async def test_relay_cancelled_while_publishing_loses_and_doubles_nothing(
    store: EventStore, bus: Client, subjects: Subjects
) -> None:
    """A relay cancelled at an arbitrary point while publishing 1,000
    events, in batches of 100, leaves no gap and no double once a new relay
    has caught up: whatever it had sent but not checkpointed is dropped as a
    duplicate."""
    settings = msgspec.structs.replace(BRISK, batch_size=100)
    js = bus.jetstream()
    await append_events(store, 1000, transactions=4)
    first = Relay(store, bus, service=SERVICE, subjects=subjects, settings=settings)
    task = asyncio.create_task(first.run())

    async def some_published() -> bool:
        return await stream_count(js, subjects) >= 300

    await eventually(some_published, within=10, what="the first 300")
    task.cancel()
    await asyncio.wait([task])
    left = (await first.lag()).events

    second = Relay(store, bus, service=SERVICE, subjects=subjects, settings=settings)

    async with running(second):
        await eventually(caught_up(second), within=20, what="catching up")

    # The second relay took on exactly what the first had not checkpointed,
    # and found on the stream whatever the first had sent of it.
    assert second.published + second.duplicates == left
    ids = await stream_event_ids(js, subjects)
    assert len(ids) == 1000
    assert len(set(ids)) == 1000
    assert ids == await store_event_ids(store)


async def test_only_the_leader_publishes_and_a_standby_takes_over(
    store: EventStore, pool: asyncpg.Pool, schema: str, bus: Client, subjects: Subjects
) -> None:
    """Of two relays on one store only the lock holder publishes; when its
    lock connection is terminated mid-flow the standby takes over, and every
    event is on the stream once, in order."""
    js = bus.jetstream()
    first = Relay(store, bus, service=SERVICE, subjects=subjects, settings=BRISK)
    second = Relay(store, bus, service=SERVICE, subjects=subjects, settings=BRISK)

    async with running(first):
        await eventually(leading(first), within=10, what="first leading")
        async with running(second):
            await append_events(store, 200, transactions=4)
            await eventually(holds(js, subjects, 200), within=10, what="first 200")
            assert (first.published, second.published) == (200, 0)
            assert not second.is_leader

            appending = asyncio.create_task(append_events(store, 200, transactions=20))
            async with pool.acquire() as connection:
                await connection.execute(
                    "SELECT pg_terminate_backend($1)", await lock_holder(pool, schema)
                )
            await appending
            await eventually(leading(second), within=10, what="second leading")
            await eventually(holds(js, subjects, 400), within=10, what="all 400")
            assert not first.is_leader

    assert second.published > 0
    assert first.published + second.published <= 400
    ids = await stream_event_ids(js, subjects)
    assert len(set(ids)) == 400
    assert ids == await store_event_ids(store)


async def test_notification_wakes_the_relay_long_before_its_poll(
    store: EventStore, bus: Client, subjects: Subjects
) -> None:
    """An idle relay that polls every 30 seconds publishes a new event
    within moments, woken by the append's NOTIFY."""
    js = bus.jetstream()
    settings = msgspec.structs.replace(BRISK, poll_interval=30.0)
    relay = Relay(store, bus, service=SERVICE, subjects=subjects, settings=settings)

    async with running(relay):
        await eventually(leading(relay), within=10, what="leading")
        await append_events(store, 1, transactions=1)
        await eventually(holds(js, subjects, 1), within=5, what="the first event")

        await store.append(
            "district-7",
            "fresh-set",
            0,
            [set_drafted("Fractions, unit 2", set_id=uuid4())],
        )
        took = await eventually(holds(js, subjects, 2), within=5, what="the second")

    assert took < 2.0


async def test_polling_delivers_when_no_notification_arrives(
    store: EventStore, bus: Client, subjects: Subjects
) -> None:
    """A relay that does not listen for notifications still publishes new
    events, found by its poll."""
    js = bus.jetstream()
    settings = msgspec.structs.replace(BRISK, listen=False, poll_interval=0.2)
    relay = Relay(store, bus, service=SERVICE, subjects=subjects, settings=settings)

    async with running(relay):
        await eventually(leading(relay), within=10, what="leading")
        await append_events(store, 1, transactions=1)
        await eventually(holds(js, subjects, 1), within=5, what="the first event")

        await store.append(
            "district-7",
            "fresh-set",
            0,
            [set_drafted("Fractions, unit 2", set_id=uuid4())],
        )
        await eventually(holds(js, subjects, 2), within=5, what="the polled event")


async def test_lag_counts_unpublished_events_and_the_oldest_age(
    store: EventStore, bus: Client, subjects: Subjects
) -> None:
    """Before the relay runs, lag shows every committed event and a
    positive age; once it has caught up, lag is zero with no age."""
    relay = Relay(store, bus, service=SERVICE, subjects=subjects, settings=BRISK)
    await append_events(store, 30, transactions=3)

    before = await relay.lag()

    assert before.events == 30
    assert before.oldest_age is not None
    assert before.oldest_age > 0

    async with running(relay):
        await eventually(caught_up(relay), within=10, what="catching up")

    after = await relay.lag()
    assert after.oldest_age is None


class StoreOnADroppedConnection(EventStore):
    """The real store, whose first batch read fails the way asyncpg fails
    on a connection the server dropped in the middle of an operation."""

    failures_left = 1

    async def read_batch(self, *args: Any, **kwargs: Any) -> list[Envelope]:
        """Fail once with asyncpg's InternalClientError, then read."""
        if self.failures_left:
            self.failures_left -= 1
            raise asyncpg.InternalClientError(
                "cannot switch to state 12; another operation (2) is in progress"
            )
        return await super().read_batch(*args, **kwargs)


async def test_relay_leads_again_after_a_connection_broken_mid_operation(
    pool: asyncpg.Pool, store: EventStore, bus: Client, subjects: Subjects
) -> None:
    """A PostgreSQL restart under load can leave the lock connection in a
    state asyncpg reports as an internal client error: the relay gives up
    that connection, leads again on a fresh one and publishes everything,
    rather than ending."""
    flaky = StoreOnADroppedConnection(pool, store.schema, registry=store.registry)
    relay = Relay(flaky, bus, service=SERVICE, subjects=subjects, settings=BRISK)
    await append_events(store, 3, transactions=1)

    async with running(relay) as task:
        await eventually(
            holds(bus.jetstream(), subjects, 3), within=10, what="every event"
        )

        assert flaky.failures_left == 0
        assert not task.done()
