"""Follow another service's events from JetStream, applying each one once.

A ``DurableConsumer`` pulls batches from a durable JetStream consumer and
hands each event to the caller's handler inside a transaction of the
consumer's own database. The same transaction records the event in the
schema's ``processed_events`` table, and the message is acked only after the
commit, so an event delivered or published twice has one effect.

A handler that is also a ``BatchHandler`` is given a fetched batch at once,
one transaction per tenant in it: the per-transaction costs (the commit's
flush, the tenant setting, whatever the handler does once per batch) are
then paid once for many events. When such a transaction fails for a reason
of its own, the tenant's messages are tried again one by one, so a single
bad event is retried and parked alone while the rest are applied.

Messages that can never be applied (not a CloudEvent of this contract, a
tenant that differs from the subject's, a payload that does not decode) are
parked on the consumer's dead-letter subject at once. A handler that raises
is retried after a growing delay and parked after ``max_deliver`` attempts;
an unreachable database is retried for as long as it takes. Events of a type
or version this code does not know are logged and acked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from uuid import UUID

import asyncpg
import msgspec
import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry.trace import Span, SpanKind

from mastery_events.cloudevents import from_nats
from mastery_events.contract import CONTRACT, Registry
from mastery_events.database import Connection
from mastery_events.dead_letters import dead_letter_headers
from mastery_events.envelope import Envelope, Event
from mastery_events.errors import EventsError, UnknownEventTypeError
from mastery_events.migrations import quote_schema
from mastery_events.subjects import Subjects
from mastery_events.tenancy import tenant_transaction
from mastery_events.tracing import context_of, links_to, traced

Handler = Callable[[Connection, Envelope, Event], Awaitable[None]]


@runtime_checkable
class BatchHandler(Protocol):
    """A handler that can also apply several events of one tenant in the
    same transaction, doing once what each event alone would repeat."""

    async def __call__(
        self, connection: Connection, envelope: Envelope, event: Event
    ) -> None:
        """Apply one event, as any handler does."""

    async def apply_batch(
        self, connection: Connection, events: Sequence[tuple[Envelope, Event]]
    ) -> None:
        """Apply ``events``, all of one tenant and in stream order, with the
        same effect as applying them one after another."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message read and decoded, waiting to be applied."""

    message: Msg
    envelope: Envelope
    event: Event
    log: structlog.typing.FilteringBoundLogger


logger = structlog.get_logger(__name__)


class ConnectionLostError(EventsError):
    """Raised when the database connection closed while an event was being
    applied, whatever error the driver reported for it."""

    def __init__(self, consumer: str, event_id: UUID) -> None:
        self.consumer = consumer
        self.event_id = event_id
        message = f"consumer {consumer!r} lost its connection applying {event_id}"
        super().__init__(message)


class TenantMismatchError(EventsError):
    """Raised when a message's subject names one tenant and its envelope
    another, which a consumer must never apply to either tenant."""

    def __init__(self, subject_tenant: str, envelope_tenant: str) -> None:
        self.subject_tenant = subject_tenant
        self.envelope_tenant = envelope_tenant
        message = (
            f"subject names tenant {subject_tenant!r} but the envelope "
            f"carries tenant {envelope_tenant!r}"
        )
        super().__init__(message)


# Failures that say nothing about the message: the database is away or busy,
# or two transactions collided. Retrying later succeeds, so they never park
# a message however often it was delivered.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionLostError,
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)


class ConsumerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How a consumer fetches, retries and gives up.

    ``max_deliver`` is how many times a handler is tried on one message
    before the message is parked. The consumer enforces it itself and the
    JetStream consumer redelivers without limit: a server-side limit would
    drop a message silently whenever the database was away for its last
    attempts. ``backoff`` holds the delays, in seconds, before the second,
    third, ... attempt; the last one repeats. ``ack_wait`` must outlast the
    longest batch, or JetStream hands a message out again while it is still
    being applied (harmless, but wasted work).
    """

    batch_size: int = 50
    fetch_wait: float = 2.0
    max_deliver: int = 5
    ack_wait: float = 30.0
    backoff: tuple[float, ...] = (1.0, 5.0, 15.0, 60.0)
    max_ack_pending: int = 1000


class ConsumerLag(msgspec.Struct, frozen=True, kw_only=True):
    """How far a consumer is behind its stream, from the server's view."""

    pending: int
    ack_pending: int
    redelivered: int

    @property
    def total(self) -> int:
        """Return the messages not yet settled: waiting or in flight."""
        return self.pending + self.ack_pending


def is_transient(error: BaseException) -> bool:
    """Tell whether ``error`` comes from the surroundings, not the message,
    so retrying later will do."""
    return isinstance(error, TRANSIENT_ERRORS)


def retry_delay(delivered: int, backoff: Sequence[float]) -> float:
    """Return the delay before the next delivery of a message that failed on
    its ``delivered``-th delivery."""
    if not backoff:
        return 0.0
    return backoff[min(delivered, len(backoff)) - 1]


def next_attempt(
    error: BaseException,
    delivered: int,
    *,
    settings: ConsumerSettings,
) -> float | None:
    """Return the delay before a failed message is tried again, or ``None``
    when it has used up its attempts and should be parked."""
    if not is_transient(error) and delivered >= settings.max_deliver:
        return None

    return retry_delay(delivered, settings.backoff)


def consumer_config(
    name: str,
    filter_subjects: Sequence[str],
    *,
    settings: ConsumerSettings,
) -> ConsumerConfig:
    """Return the JetStream configuration of a durable pull consumer."""
    config = ConsumerConfig(
        name=name,
        durable_name=name,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait,
        max_deliver=-1,
        max_ack_pending=settings.max_ack_pending,
    )
    if len(filter_subjects) == 1:
        config.filter_subject = filter_subjects[0]
    else:
        config.filter_subjects = list(filter_subjects)

    return config


class DurableConsumer:
    """Apply the events of one JetStream stream to this service's database,
    once each, through a handler the service supplies."""

    def __init__(
        self,
        js: JetStreamContext,
        pool: asyncpg.Pool,
        *,
        name: str,
        stream: str,
        filter_subjects: Sequence[str],
        schema: str,
        handler: Handler,
        subjects: Subjects | None = None,
        settings: ConsumerSettings | None = None,
        registry: Registry = CONTRACT,
    ) -> None:
        if not filter_subjects:
            message = f"consumer {name!r} needs at least one filter subject"
            raise ValueError(message)
        self.js = js
        self.pool = pool
        self.name = name
        self.stream = stream
        self.filter_subjects = tuple(filter_subjects)
        self.schema = schema
        self.handler = handler
        self.subjects = subjects or Subjects()
        self.settings = settings or ConsumerSettings()
        self.registry = registry
        self._record = f"""
            INSERT INTO {quote_schema(schema)}.processed_events
                (consumer, event_id, tenant_id)
            VALUES ($1, $2, $3)
            ON CONFLICT DO NOTHING
            RETURNING true
        """
        # Sorted, so two instances recording overlapping batches take the
        # rows' locks in one order and wait for each other, not deadlock.
        self._record_many = f"""
            INSERT INTO {quote_schema(schema)}.processed_events
                (consumer, event_id, tenant_id)
            SELECT $1, event_id, $3 FROM unnest($2::uuid[]) AS event_id
            ORDER BY event_id
            ON CONFLICT DO NOTHING
            RETURNING event_id
        """
        self._log = logger.bind(consumer=name, stream=stream)
        self._subscription: JetStreamContext.PullSubscription | None = None
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopped.set()

    async def start(self) -> None:
        """Create the durable consumer, or bring an existing one in line with
        the settings, and bind a pull subscription to it."""
        config = consumer_config(
            self.name, self.filter_subjects, settings=self.settings
        )
        await self.js.add_consumer(self.stream, config=config)
        if self._subscription is None:
            self._subscription = await self.js.pull_subscribe_bind(
                self.name, stream=self.stream
            )
        self._log.info(
            "consumer.started",
            filter_subjects=list(self.filter_subjects),
            max_deliver=self.settings.max_deliver,
            ack_wait=self.settings.ack_wait,
        )

    async def run(self) -> None:
        """Fetch and apply batches until ``stop`` is called or the task is
        cancelled."""
        self._stopping.clear()
        self._stopped.clear()
        ahead: asyncio.Future[list[Msg]] | None = None
        try:
            if self._subscription is None:
                await self.start()
            while not self._stopping.is_set():
                messages = await ahead if ahead is not None else await self._fetch()
                ahead = None
                if messages and not self._stopping.is_set():
                    # The next batch is fetched while this one is applied,
                    # so waiting on NATS and reading its messages overlap
                    # waiting on the database. One fetch at a time: the
                    # pull subscription hands out one batch per request.
                    ahead = asyncio.ensure_future(self._fetch())
                rest = await self._settle(messages)
                if rest:
                    # What was fetched ahead comes after what failed, so it
                    # waits as long, and the stream's order holds.
                    waiting, ahead = ahead, None
                    await self._put_back(waiting, delay=rest)
                    await self._rest(rest)
        except BaseException:
            # Cancelled or failed: whatever the fetch ahead pulls is left to
            # ack_wait, as any fetch cut short.
            fetched, ahead = ahead, None
            if fetched is not None:
                fetched.cancel()
                await asyncio.wait({fetched})
            raise
        finally:
            # Stopped: the fetch ahead ends at once, and another instance
            # gets what it pulled without waiting for ack_wait.
            await self._put_back(ahead, delay=0.0)
            await self._unsubscribe()
            self._stopped.set()
            self._log.info("consumer.stopped")

    async def stop(self) -> None:
        """Ask ``run`` to finish the message in hand and return, and wait
        until it has."""
        self._stopping.set()
        await self._stopped.wait()

    async def lag(self) -> ConsumerLag:
        """Return how many messages wait for this consumer and how many it
        holds unacked, as the server counts them."""
        info = await self.js.consumer_info(self.stream, self.name)

        return ConsumerLag(
            pending=info.num_pending or 0,
            ack_pending=info.num_ack_pending or 0,
            redelivered=info.num_redelivered or 0,
        )

    async def process_batch(self) -> float:
        """Fetch one batch and settle every message in it; return how long
        to rest before the next fetch (zero unless the surroundings failed)."""
        return await self._settle(await self._fetch())

    async def _settle(self, messages: Sequence[Msg]) -> float:
        """Settle fetched messages, together when the handler can; return
        how long to rest before the next fetch."""
        handler = self.handler
        if len(messages) > 1 and isinstance(handler, BatchHandler):
            return await self._process_together(handler, messages)

        return await self._process_each(messages)

    async def _put_back(
        self, fetching: asyncio.Future[list[Msg]] | None, *, delay: float
    ) -> None:
        """Hand the messages of a fetch not applied back to the server, to
        be delivered again after ``delay``: to this reader after a rest, or
        at once to another instance when this one stops."""
        if fetching is None:
            return
        await asyncio.wait({fetching})
        if fetching.cancelled() or fetching.exception() is not None:
            return
        for message in fetching.result():
            with contextlib.suppress(nats.errors.Error):
                await message.nak(delay=delay)

    async def process(self, message: Msg) -> float:
        """Settle one message: apply, skip, retry or park it; return a rest
        when it failed for reasons outside the message."""
        delivery = await self._read(message)
        if delivery is None:
            return 0.0

        try:
            with self._traced_apply([delivery.envelope]):
                applied = await self._apply(delivery.envelope, delivery.event)
        except Exception as error:
            return await self._retry_or_dead_letter(message, error, log=delivery.log)

        await message.ack()
        delivery.log.info(
            "consumer.applied" if applied else "consumer.skipped_duplicate"
        )

        return 0.0

    async def _process_each(self, messages: Sequence[Msg]) -> float:
        for index, message in enumerate(messages):
            rest = await self.process(message)
            if rest:
                # The database is away: the rest of the batch would fail too.
                for waiting in messages[index + 1 :]:
                    await waiting.nak(delay=rest)
                return rest

        return 0.0

    async def _process_together(
        self, handler: BatchHandler, messages: Sequence[Msg]
    ) -> float:
        """Settle a batch with one transaction per tenant in it."""
        by_tenant: dict[str, list[Delivery]] = {}
        for message in messages:
            delivery = await self._read(message)
            if delivery is not None:
                tenant = delivery.envelope.tenant_id
                by_tenant.setdefault(tenant, []).append(delivery)

        groups = list(by_tenant.values())
        for index, group in enumerate(groups):
            rest = await self._settle_together(handler, group)
            if rest:
                for later in groups[index + 1 :]:
                    for delivery in later:
                        await delivery.message.nak(delay=rest)
                return rest

        return 0.0

    async def _settle_together(
        self, handler: BatchHandler, group: Sequence[Delivery]
    ) -> float:
        """Apply one tenant's deliveries in one transaction and ack them
        after its commit; on a failure of the surroundings put them all
        back, on any other try each alone to find the one at fault."""
        try:
            with self._traced_apply([delivery.envelope for delivery in group]):
                applied = await self._apply_together(handler, group)
        except Exception as error:
            if not is_transient(error):
                self._log.warning(
                    "consumer.batch_failed",
                    error=type(error).__name__,
                    tenant=group[0].envelope.tenant_id,
                    events=len(group),
                )
                return await self._process_each([d.message for d in group])
            rests = [
                await self._retry_or_dead_letter(d.message, error, log=d.log)
                for d in group
            ]
            return max(rests)

        for delivery in group:
            await delivery.message.ack()
        self._log.info(
            "consumer.applied_batch",
            tenant=group[0].envelope.tenant_id,
            applied=applied,
            skipped_duplicates=len(group) - applied,
            first_sequence=group[0].message.metadata.sequence.stream,
            last_sequence=group[-1].message.metadata.sequence.stream,
        )

        return 0.0

    async def _apply_together(
        self, handler: BatchHandler, group: Sequence[Delivery]
    ) -> int:
        """Record and apply the deliveries not applied before, in one
        transaction; return how many were."""
        tenant = group[0].envelope.tenant_id
        ids = list(dict.fromkeys(d.envelope.event_id for d in group))
        async with self.pool.acquire() as connection:
            try:
                async with tenant_transaction(connection, tenant):
                    rows = await connection.fetch(
                        self._record_many, self.name, ids, tenant
                    )
                    first_time = {row["event_id"] for row in rows}
                    fresh = []
                    for delivery in group:
                        # An event twice in one batch is applied once.
                        if delivery.envelope.event_id in first_time:
                            first_time.discard(delivery.envelope.event_id)
                            fresh.append((delivery.envelope, delivery.event))
                    if fresh:
                        await handler.apply_batch(connection, fresh)
            except Exception as error:
                if connection.is_closed():
                    raise ConnectionLostError(self.name, ids[0]) from error
                raise

        return len(fresh)

    def _traced_apply(
        self, envelopes: Sequence[Envelope]
    ) -> AbstractContextManager[Span]:
        # One event's work is a child of the append that stored it, so it
        # joins the trace of the request behind it; a batch's work links to
        # every append it applies, as a span has one parent.
        attributes: dict[str, str | int] = {
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.destination.name": self.stream,
            "messaging.consumer.group.name": self.name,
        }
        if len(envelopes) == 1:
            [envelope] = envelopes
            attributes["mastery.event_type"] = envelope.event_type
            return traced(
                f"process {self.name}",
                kind=SpanKind.CONSUMER,
                attributes=attributes,
                parent=context_of(envelope.traceparent),
            )
        attributes["messaging.batch.message_count"] = len(envelopes)
        return traced(
            f"process {self.name}",
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links_to([envelope.traceparent for envelope in envelopes]),
        )

    async def _read(self, message: Msg) -> Delivery | None:
        """Decode a message; settle it at once and return ``None`` when it
        can never be applied or this reader has nothing to do with it."""
        metadata = message.metadata
        log = self._log.bind(
            subject=message.subject,
            stream_sequence=metadata.sequence.stream,
            delivered=metadata.num_delivered,
        )

        try:
            envelope = self._envelope_of(message)
            log = log.bind(
                tenant=envelope.tenant_id,
                event_id=str(envelope.event_id),
                event_type=envelope.event_type,
                event_version=envelope.event_version,
            )
            event = self.registry.decode(envelope)
        except UnknownEventTypeError:
            # Newer publishers may add types; this reader has nothing to do.
            await message.ack()
            log.warning("consumer.unknown_event_type")
            return None
        except Exception as error:
            # Reading a message is pure: what fails here fails every time.
            await self._dead_letter(message, error, log=log)
            return None

        return Delivery(message=message, envelope=envelope, event=event, log=log)

    def _envelope_of(self, message: Msg) -> Envelope:
        envelope = from_nats(message.headers, message.data)
        subject_tenant = self.subjects.tenant_of(message.subject)
        if subject_tenant != envelope.tenant_id:
            raise TenantMismatchError(subject_tenant, envelope.tenant_id)

        return envelope

    async def _apply(self, envelope: Envelope, event: Event) -> bool:
        async with self.pool.acquire() as connection:
            try:
                async with tenant_transaction(connection, envelope.tenant_id):
                    # The row lock on this key also makes a second, concurrent
                    # delivery wait here and then find the event applied.
                    first_time = await connection.fetchval(
                        self._record, self.name, envelope.event_id, envelope.tenant_id
                    )
                    if first_time is None:
                        return False
                    await self.handler(connection, envelope, event)
            except Exception as error:
                # The driver names a dropped connection in several ways.
                if connection.is_closed():
                    raise ConnectionLostError(self.name, envelope.event_id) from error
                raise

        return True

    async def _retry_or_dead_letter(
        self,
        message: Msg,
        error: Exception,
        *,
        log: structlog.typing.FilteringBoundLogger,
    ) -> float:
        delivered = message.metadata.num_delivered
        delay = next_attempt(error, delivered, settings=self.settings)
        if delay is None:
            await self._dead_letter(message, error, log=log)
            return 0.0

        await message.nak(delay=delay)
        transient = is_transient(error)
        log.warning(
            "consumer.retrying",
            error=type(error).__name__,
            transient=transient,
            delay=delay,
        )

        return delay if transient else 0.0

    async def _dead_letter(
        self,
        message: Msg,
        error: BaseException,
        *,
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        metadata = message.metadata
        headers = dead_letter_headers(
            message.headers,
            consumer=self.name,
            error=type(error).__name__,
            deliveries=metadata.num_delivered,
            subject=message.subject,
            stream=metadata.stream,
            stream_sequence=metadata.sequence.stream,
        )

        try:
            await self.js.publish(
                self.subjects.dead_letter(self.name), message.data, headers=headers
            )
        except nats.errors.Error as failure:
            # Without a place to park it the message must stay in the stream.
            delay = retry_delay(metadata.num_delivered, self.settings.backoff)
            await message.nak(delay=delay)
            log.error(
                "consumer.dead_letter_failed",
                error=type(error).__name__,
                failure=type(failure).__name__,
            )
            return

        log.error("consumer.dead_lettered", error=type(error).__name__)
        await message.term()

    async def _fetch(self) -> list[Msg]:
        if self._subscription is None:
            message = f"consumer {self.name!r} was not started"
            raise EventsError(message)
        fetching = asyncio.ensure_future(
            self._subscription.fetch(
                self.settings.batch_size, timeout=self.settings.fetch_wait
            )
        )
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait(
                {fetching, stopping}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stopping.cancel()
            if not fetching.done():
                # Messages the cancelled fetch already pulled are redelivered
                # after ack_wait.
                fetching.cancel()
                await asyncio.wait({fetching})
        if fetching.cancelled():
            return []

        try:
            return fetching.result()
        except TimeoutError:
            # An empty fetch ends in a timeout; nats-py raises its own
            # subclass or, from a batch cut short, asyncio's plain one.
            return []
        except nats.errors.Error as error:
            if isinstance(error, nats.errors.ConnectionClosedError):
                raise
            self._log.warning("consumer.fetch_failed", error=type(error).__name__)
            await self._rest(self.settings.fetch_wait)
            return []

    async def _rest(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _unsubscribe(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await subscription.unsubscribe()
