"""The outbox relay: publish a service's stored events to NATS JetStream.

The events table is the outbox. One relay per store leads, through a
session-level advisory lock held on a connection of its own, and publishes
every committed event in the store's global order to the service's stream.
Each publish names the stream sequence it has to follow, so no event lands
ahead of one lost on the way, and the checkpoint moves only past events
JetStream acknowledged. A relay that takes over after a crash asks the
stream which event it ends with and carries on after it, so events that
were acked but not yet checkpointed are not stored twice; ``Nats-Msg-Id``
and the stream's duplicate window guard any other republish.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import asyncpg
import msgspec
import nats.errors
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import Header
from nats.js.errors import NotFoundError
from opentelemetry.trace import Span, SpanKind

from mastery_events.checkpoints import Checkpoints, Lag
from mastery_events.cloudevents import to_nats_headers
from mastery_events.database import Connection
from mastery_events.envelope import Envelope
from mastery_events.errors import EventsError
from mastery_events.jetstream import StreamSettings, ensure_stream
from mastery_events.metrics import EVENTS_PUBLISHED
from mastery_events.publisher import (
    Ack,
    Message,
    OrderedPublisher,
    Outcome,
    confirmed_prefix,
)
from mastery_events.store import Checkpoint, EventStore, checkpoint_of, notify_channel
from mastery_events.subjects import Subjects
from mastery_events.tenancy import RELAY_ROLE, system_transaction
from mastery_events.tracing import links_to, traced

# A notified commit can stay invisible for a moment while an older
# transaction is still open; look again this soon, then less and less often.
HINT_RECHECK = 0.01

MESSAGE_ID = Header.MSG_ID.value

# asyncpg raises InternalClientError from a connection whose server went
# away in the middle of an operation (a PostgreSQL restart under load): it
# is as much a lost connection as the others, and must not end the relay.
DATABASE_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)
NATS_ERRORS = (nats.errors.Error, EventsError, TimeoutError)

logger = structlog.get_logger(__name__)


class RelaySettings(msgspec.Struct, frozen=True, kw_only=True):
    """How a relay batches, waits, retries and competes for leadership.

    Durations are in seconds. ``name`` names both the checkpoint row and
    the advisory lock, so two relays of one store with different names
    would both publish: keep one name per store.
    """

    name: str = "relay"
    batch_size: int = 500
    poll_interval: float = 1.0
    listen: bool = True
    ack_timeout: float = 5.0
    retry_initial: float = 0.1
    retry_max: float = 5.0
    lock_retry_interval: float = 1.0
    rejoin_delay: float = 5.0
    query_timeout: float = 30.0
    lag_log_interval: float = 10.0
    stream: StreamSettings = msgspec.field(default_factory=StreamSettings)


class LeadershipLostError(EventsError):
    """Raised when the relay's lock connection stops answering, so it can no
    longer be sure it is the only relay publishing."""


def lock_key(schema: str, name: str) -> str:
    """Return the text whose ``hashtextextended`` is the relay's lock."""
    return f"mastery.{name}.{schema}"


def backoff(attempt: int, *, initial: float, maximum: float) -> float:
    """Return the pause before retry ``attempt`` (1 for the first retry)."""
    return min(maximum, initial * 2.0 ** max(0, attempt - 1))


def is_closed(connection: Connection) -> bool:
    """Tell whether ``connection`` is gone, including a pooled connection
    that the pool took back when the server ended it."""
    try:
        return connection.is_closed()
    except asyncpg.InterfaceError:
        return True


class Relay:
    """Publish one service's stored events to its JetStream stream.

    ``Relay(store, connection, service="grading", subjects=Subjects(),
    settings=RelaySettings())`` takes the service's ``EventStore`` (its
    pool serves the lock connection and lag queries) and a connected NATS
    client that reconnects by itself. ``run()`` competes for leadership,
    publishes while it leads and returns once ``stop()`` is called; cancel
    it to end it at once. The relay creates or updates its stream with
    ``settings.stream`` whenever it has to find the stream's last sequence.
    It must be the only publisher on the service's subjects.
    """

    def __init__(
        self,
        store: EventStore,
        connection: Client,
        *,
        service: str,
        subjects: Subjects,
        settings: RelaySettings | None = None,
    ) -> None:
        self.store = store
        self.connection = connection
        self.service = service
        self.subjects = subjects
        self.settings = settings or RelaySettings()
        # Events this relay saw acked as stored, and events it found were
        # already on the stream (sent by a relay that stopped before its
        # checkpoint moved). Acks lost to a cancellation are not counted.
        self.published = 0
        self.duplicates = 0
        self._stream = subjects.stream_name(service)
        self._js: JetStreamContext = connection.jetstream(
            timeout=self.settings.ack_timeout
        )
        self._publisher = OrderedPublisher(
            connection, self._stream, ack_timeout=self.settings.ack_timeout
        )
        self._lock_key = lock_key(store.schema, self.settings.name)
        self._checkpoints = Checkpoints(store.schema, self.settings.name)
        self._leading = False
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._log: Any = logger.bind(
            service=service, schema=store.schema, relay=self.settings.name
        )

    @property
    def is_leader(self) -> bool:
        """Tell whether this relay holds the lock and is publishing."""
        return self._leading

    async def run(self) -> None:
        """Lead or stand by until ``stop()`` is called; a stopped relay
        stays stopped."""
        self._task = asyncio.current_task()
        self._log.info("relay.started")
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    await self._serve()
                    failures = 0
                except DATABASE_ERRORS as error:
                    failures += 1
                    pause = backoff(
                        failures,
                        initial=self.settings.retry_initial,
                        maximum=self.settings.retry_max,
                    )
                    self._log.warning(
                        "relay.database_unavailable",
                        error=type(error).__name__,
                        attempt=failures,
                        retry_in=pause,
                    )
                    await self._sleep(pause)
        finally:
            self._leading = False
            with contextlib.suppress(*NATS_ERRORS):
                await self._publisher.close()
            self._done.set()
            self._log.info("relay.stopped")

    async def stop(self, *, grace: float = 10.0) -> None:
        """Let the relay finish the batch in hand, release its lock and
        return; cancel it when it takes longer than ``grace`` seconds."""
        self._stopping.set()
        self._wake.set()
        task = self._task
        if task is None or task.done():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), grace)
        if not task.done():
            task.cancel()
            await asyncio.wait([task])

    async def lag(self) -> Lag:
        """Count the committed events past the relay's checkpoint and the
        age of the oldest, for dashboards and alerts; any process can ask."""
        async with (
            self.store.pool.acquire() as connection,
            system_transaction(connection),
        ):
            return await self._checkpoints.lag(connection)

    async def _serve(self) -> None:
        async with self.store.pool.acquire() as connection:
            # The lead reads every tenant's events on this one connection,
            # so it takes the relay's role for as long as it holds it.
            await connection.execute(f"SET ROLE {RELAY_ROLE}")
            try:
                if not await self._acquire_lock(connection):
                    return
                lost = await self._lead(connection)
            finally:
                self._leading = False
                if not is_closed(connection):
                    with contextlib.suppress(*DATABASE_ERRORS):
                        await connection.execute("RESET ROLE")
                    # Session locks outlive this block on a pooled connection.
                    with contextlib.suppress(*DATABASE_ERRORS):
                        await connection.execute(
                            "SELECT pg_advisory_unlock(hashtextextended($1, 0))",
                            self._lock_key,
                        )

        if lost:
            # Give a healthy standby the first chance at the lock.
            await self._sleep(self.settings.rejoin_delay)

    async def _acquire_lock(self, connection: Connection) -> bool:
        announced = False
        while not self._stopping.is_set():
            acquired = await connection.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                self._lock_key,
            )
            if acquired:
                return True
            if not announced:
                self._log.info("relay.standby")
                announced = True
            await self._sleep(self.settings.lock_retry_interval)

        return False

    async def _lead(self, connection: Connection) -> bool:
        """Publish while the lock connection lives; return whether the lead
        was lost rather than given up on ``stop()``."""
        lost = False
        channel = notify_channel(self.store.schema)
        # Listen before the first read, so no commit after it goes unheard.
        if self.settings.listen:
            await connection.add_listener(channel, self._on_notification)
        publishing = asyncio.create_task(self._publish_loop(connection))

        def on_terminated(_: object) -> None:
            # Another relay may hold the lock from now on: stop publishing.
            nonlocal lost
            lost = True
            publishing.cancel()

        connection.add_termination_listener(on_terminated)
        self._leading = True
        self._log.info("relay.leading", pid=connection.get_server_pid())

        try:
            await publishing
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not lost or (current is not None and current.cancelling()):
                raise
            self._log.warning("relay.leadership_lost", reason="connection_closed")
        except (*DATABASE_ERRORS, TimeoutError, LeadershipLostError) as error:
            self._log.warning("relay.leadership_lost", reason=type(error).__name__)
            # Make sure the lock is gone, so a standby can take over.
            if not is_closed(connection):
                connection.terminate()
        else:
            return False
        finally:
            self._leading = False
            if not publishing.done():
                publishing.cancel()
                await asyncio.wait([publishing])
            if not is_closed(connection):
                connection.remove_termination_listener(on_terminated)
                if self.settings.listen:
                    with contextlib.suppress(*DATABASE_ERRORS):
                        await connection.remove_listener(channel, self._on_notification)

        return True

    def _on_notification(self, *_: object) -> None:
        self._wake.set()

    async def _publish_loop(self, connection: Connection) -> None:
        async with self._bounded():
            checkpoint = await self._checkpoints.load(connection)
        stream_last: int | None = None
        notified = False
        recheck: float | None = None
        behind_since: float | None = time.monotonic()
        published_since = 0
        last_lag_log = 0.0

        while not self._stopping.is_set():
            self._wake.clear()
            async with self._bounded():
                batch = await self.store.read_batch(
                    checkpoint, limit=self.settings.batch_size, connection=connection
                )

            if not batch:
                if behind_since is not None:
                    self._log.info(
                        "relay.caught_up",
                        count=published_since,
                        position=checkpoint.position,
                        duration=round(time.monotonic() - behind_since, 4),
                    )
                    behind_since = None
                    published_since = 0
                if notified:
                    recheck = HINT_RECHECK
                elif recheck is not None:
                    recheck *= 2
                    if recheck >= self.settings.poll_interval:
                        recheck = None
                notified = await self._wait_for_news(
                    recheck or self.settings.poll_interval
                )
                continue

            notified = False
            recheck = None
            if behind_since is None:
                behind_since = time.monotonic()
            stream_last, delivered = await self._deliver(
                connection, batch, stream_last=stream_last
            )
            if not delivered:
                return
            checkpoint = checkpoint_of(batch[-1])
            published_since += len(batch)

            now = time.monotonic()
            full = len(batch) == self.settings.batch_size
            if full and now - last_lag_log >= self.settings.lag_log_interval:
                last_lag_log = now
                await self._log_lag(checkpoint)

    async def _log_lag(self, checkpoint: Checkpoint) -> None:
        # A failed measurement must not cost the relay its leadership.
        with contextlib.suppress(*DATABASE_ERRORS):
            lag = await self.lag()
            self._log.info(
                "relay.lagging",
                count=lag.events,
                oldest_age=lag.oldest_age,
                position=checkpoint.position,
            )

    async def _deliver(
        self,
        connection: Connection,
        batch: Sequence[Envelope],
        *,
        stream_last: int | None,
    ) -> tuple[int | None, bool]:
        """Publish ``batch`` until the stream holds every event, moving the
        checkpoint as acks come; return the stream's last sequence when
        known, and whether the batch is done (it is not when stopping)."""
        pending = list(batch)
        failures = 0
        while pending:
            if self._stopping.is_set():
                return stream_last, False
            await self._check_lock(connection)

            started = time.monotonic()
            error: BaseException | None = None
            outcomes: list[Outcome] = []
            try:
                if not self.connection.is_connected:
                    raise nats.errors.ConnectionClosedError
                if stream_last is None:
                    stream_last, there = await self._find_stream_end(
                        connection, pending
                    )
                    if there:
                        await self._record(connection, pending[:there], [], started)
                        pending = pending[there:]
                        continue
                with self._traced_send(pending):
                    outcomes = await self._publisher.publish(
                        [self._message(envelope) for envelope in pending],
                        stream_last=stream_last,
                    )
            except NATS_ERRORS as failure:
                error = failure

            confirmed = confirmed_prefix(outcomes)
            acks = [ack for ack in outcomes[:confirmed] if isinstance(ack, Ack)]
            # Only a run stored in full, ending in a new message, says where
            # the stream ends; otherwise ask the stream before sending again.
            complete = confirmed == len(pending) and not acks[-1].duplicate
            stream_last = acks[-1].seq if complete else None
            if confirmed:
                await self._record(connection, pending[:confirmed], acks, started)
                pending = pending[confirmed:]
                failures = 0
                continue

            failures += 1
            pause = backoff(
                failures,
                initial=self.settings.retry_initial,
                maximum=self.settings.retry_max,
            )
            reason = error or next(
                (o for o in outcomes if isinstance(o, BaseException)), None
            )
            self._log.warning(
                "relay.publish_failed",
                error=type(reason).__name__ if reason else "ack_timeout",
                attempt=failures,
                retry_in=pause,
                count=len(pending),
                position=pending[0].position,
            )
            await self._sleep(pause)

        return stream_last, True

    async def _find_stream_end(
        self, connection: Connection, pending: Sequence[Envelope]
    ) -> tuple[int, int]:
        """Return the stream's last sequence, and how many of ``pending``
        are on the stream already because its last message is one of them
        or comes after them in the store's order."""
        info = await ensure_stream(
            self._js,
            self.service,
            subjects=self.subjects,
            settings=self.settings.stream,
        )
        last_seq = info.state.last_seq
        if last_seq == 0:
            return 0, 0
        try:
            last = await self._js.get_msg(self._stream, seq=last_seq)
        except NotFoundError:
            return last_seq, 0
        event_id = (last.headers or {}).get(MESSAGE_ID)
        if event_id is None:
            return last_seq, 0
        async with self._bounded():
            tail = await self._checkpoints.locate(connection, event_id)
        if tail is None:
            return last_seq, 0

        return last_seq, sum(1 for event in pending if checkpoint_of(event) <= tail)

    def _traced_send(self, pending: Sequence[Envelope]) -> AbstractContextManager[Span]:
        # One send serves events of many requests: it links to their traces,
        # and each message carries its own request's context onwards.
        attributes: dict[str, str | int] = {
            "messaging.system": "nats",
            "messaging.operation.type": "send",
            "messaging.destination.name": self._stream,
            "messaging.batch.message_count": len(pending),
        }
        return traced(
            f"send {self._stream}",
            kind=SpanKind.PRODUCER,
            attributes=attributes,
            links=links_to([envelope.traceparent for envelope in pending]),
        )

    def _message(self, envelope: Envelope) -> Message:
        return Message(
            subject=self.subjects.event(
                self.service, envelope.tenant_id, envelope.event_type
            ),
            headers=to_nats_headers(envelope, service=self.service),
            body=bytes(envelope.payload),
        )

    async def _record(
        self,
        connection: Connection,
        events: Sequence[Envelope],
        acks: Sequence[Ack],
        started: float,
    ) -> None:
        """Checkpoint past ``events``, all on the stream now; those without
        an ack of a new message were there before this relay sent them."""
        stored = sum(1 for ack in acks if not ack.duplicate)
        self.published += stored
        EVENTS_PUBLISHED.labels(self.service).inc(stored)
        self.duplicates += len(events) - stored
        async with self._bounded():
            await self._checkpoints.save(connection, checkpoint_of(events[-1]))

        fields = {
            "count": len(events),
            "position": events[-1].position,
            "duration": round(time.monotonic() - started, 4),
        }
        if stored < len(events):
            self._log.info(
                "relay.already_published", skipped=len(events) - stored, **fields
            )
        else:
            self._log.debug("relay.published", **fields)

    async def _check_lock(self, connection: Connection) -> None:
        if is_closed(connection):
            message = f"the connection holding lock {self._lock_key!r} closed"
            raise LeadershipLostError(message)
        async with self._bounded():
            await connection.execute("SELECT 1")

    def _bounded(self) -> asyncio.Timeout:
        # A lock connection that hangs is as good as lost.
        return asyncio.timeout(self.settings.query_timeout)

    async def _wait_for_news(self, seconds: float) -> bool:
        """Wait for a notification (True) or ``seconds`` to pass (False)."""
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            return False
        return not self._stopping.is_set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
