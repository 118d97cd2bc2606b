"""What every service process does to start, to report readiness and to stop.

A service brings its name (which is also its PostgreSQL schema and names its
JetStream stream) and its own migrations. The runtime opens the database
pool, migrates the service's schema, and links to the bus in the background:
it connects, sets up the streams, then runs the relay that publishes the
service's stored events and the consumers that follow other services'
events into its own tables. A service whose NATS is away still starts, answers
"not ready", and catches up once NATS answers, rather than crashing in a
loop. Shutdown runs in the opposite order of start-up.

A background task that ends by a fault in its own code (the relay, a
consumer, a worker, the bus link) is logged, and from then on the process
no longer counts as alive, so an orchestrator's liveness probe restarts it
rather than leaving stored events unpublished or unapplied.

Nothing here knows about HTTP: each service's web layer asks for liveness
and readiness and turns a ``NotAliveError`` or ``NotReadyError`` into its
own response.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

import asyncpg
import msgspec
import structlog
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.kv import KeyValue

from mastery_events import metrics
from mastery_events.anchors import SealAnchors
from mastery_events.checkpoints import Checkpoints, Lag
from mastery_events.consumer import ConsumerSettings, DurableConsumer, Handler
from mastery_events.contract import CONTRACT, Registry
from mastery_events.database import StatementConnection
from mastery_events.errors import EventsError
from mastery_events.jetstream import (
    StreamSettings,
    StreamSetupError,
    ensure_anchor_stream,
    ensure_dead_letter_stream,
    ensure_stream,
)
from mastery_events.keyring import (
    SCHEMA as KEYRING_SCHEMA,
)
from mastery_events.keyring import (
    KeyEncryptionKeyMissingError,
    Keyring,
    LocalKeyWrapper,
    decode_key_encryption_key,
    keyring_migrations,
)
from mastery_events.migrations import Migration, event_store_migrations, migrate
from mastery_events.rate_limits import bucket_name, open_counts_bucket
from mastery_events.relay import Relay, RelaySettings
from mastery_events.seals import SealingWorker
from mastery_events.settings import Settings, variable
from mastery_events.store import EventStore
from mastery_events.subjects import Subjects
from mastery_events.tenancy import system_transaction

# A readiness probe must answer quickly, even when an engine hangs.
CHECK_TIMEOUT = 2.0
# Seconds between attempts to set up streams while NATS is unsettled.
STREAM_RETRY_DELAY = 1.0
POOL_SIZE = 10
# How long a stop waits for the bus link to end, retrying the cancel.
BUS_STOP_TIMEOUT = 10.0
BUS_CANCEL_RETRY = 0.2
# What a database that is away, slow or restarting raises.
DATABASE_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


class Follower(msgspec.Struct, frozen=True, kw_only=True):
    """A durable consumer a service runs on another service's events.

    ``source`` names the service followed: the consumer reads its stream,
    filtered to its events, and ``handler`` applies each one once inside a
    transaction of the following service's database. ``name`` is the
    JetStream durable name and the key of its ``processed_events`` rows, so
    it must stay the same from one release to the next.
    """

    name: str
    source: str
    handler: Handler
    settings: ConsumerSettings = ConsumerSettings()
    # A handler that records events of its own needs the service's store,
    # which exists only once the runtime starts: when given, the runtime
    # runs ``bind(store)`` in place of ``handler``.
    bind: Callable[[EventStore], Handler] | None = None


class Worker(Protocol):
    """A task a service runs for as long as it runs: ``run`` until
    ``stop`` is called."""

    async def run(self) -> None:
        """Work until stopped."""

    async def stop(self) -> None:
        """Ask ``run`` to finish the work in hand and return."""


class Projection(msgspec.Struct, frozen=True, kw_only=True):
    """A follower of the service's own log, run in its process.

    ``start`` builds the worker from the service's event store. It needs
    only the database, so it runs from start-up whether NATS answers or
    not; read models that must commit with their checkpoint follow the
    log this way rather than through the bus.
    """

    name: str
    start: Callable[[EventStore], Worker]


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """A job a service runs at start-up and then every
    ``schedule_interval`` seconds, in one of its processes at a time.

    ``run`` is given the started runtime. A session advisory lock named
    after the service and ``name`` picks the process: a replica that finds
    it held skips that turn, so the job never runs twice at once.
    """

    name: str
    run: Callable[[ServiceRuntime], Awaitable[object]]


class Service(msgspec.Struct, frozen=True, kw_only=True):
    """A service as the runtime sees it: a name, its own migrations, the
    consumers it runs on other services' events, the projections it runs
    on its own, and its scheduled jobs."""

    name: str
    migrations: tuple[Migration, ...] = ()
    followers: tuple[Follower, ...] = ()
    # A service that seals or shows people's names needs the keyring, and
    # refuses to start without the key-encryption key.
    personal_data: bool = False
    projections: tuple[Projection, ...] = ()
    schedules: tuple[Schedule, ...] = ()

    @property
    def schema(self) -> str:
        """The PostgreSQL schema this service owns, and no other reads."""
        return self.name

    def all_migrations(self) -> list[Migration]:
        """Return the event store's migrations followed by the service's."""
        return [*event_store_migrations(), *self.migrations]


class Liveness(msgspec.Struct, frozen=True, kw_only=True):
    """The answer of a process whose background tasks all still run,
    whatever its engines do."""

    status: str = "alive"


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    """Whether each engine a service depends on answers right now."""

    database: bool
    nats: bool

    @property
    def ready(self) -> bool:
        """Tell whether the service can do its work."""
        return self.database and self.nats

    def problems(self) -> list[str]:
        """Describe each engine that does not answer, for an operator."""
        found = []
        if not self.database:
            found.append("the database does not answer")
        if not self.nats:
            found.append("NATS is not connected, or the streams are not set up")

        return found


class RuntimeNotStartedError(EventsError):
    """Raised when a service's engines are asked for before it started."""


class NotAliveError(EventsError):
    """Raised when a service is asked whether it lives after one of its
    background tasks ended by a fault; ``failed`` maps each such task to
    the type of its error."""

    def __init__(self, service: str, failed: dict[str, str]) -> None:
        self.service = service
        self.failed = dict(failed)
        tasks = ", ".join(f"{task} ({error})" for task, error in failed.items())
        super().__init__(f"{service} has background tasks that failed: {tasks}")


class NotReadyError(EventsError):
    """Raised when a service is asked to be ready while an engine it depends
    on does not answer; ``readiness`` says which."""

    def __init__(self, service: str, readiness: Readiness) -> None:
        self.service = service
        self.readiness = readiness
        message = f"{service} is not ready: {'; '.join(readiness.problems())}"
        super().__init__(message)


def stream_settings(settings: Settings) -> StreamSettings:
    """Return how the service's stream should keep messages, per settings."""
    return StreamSettings(
        duplicate_window=settings.nats_duplicate_window,
        replicas=settings.nats_replicas,
    )


class ServiceRuntime:
    """The engines of one service process, from start-up to shutdown."""

    def __init__(
        self,
        service: Service,
        settings: Settings,
        *,
        registry: Registry = CONTRACT,
    ) -> None:
        self.service = service
        self.settings = settings
        self.registry = registry
        self.subjects = Subjects(prefix=settings.subject_prefix)
        # A lazy logger: the application configures structlog after this.
        self._log = structlog.get_logger(__name__, service=service.name)
        self._pool: asyncpg.Pool | None = None
        self._statement_pool: asyncpg.Pool | None = None
        self._nats = NatsClient()
        self._bus_task: asyncio.Task[None] | None = None
        self._streams_ready = False
        self._closing = False
        self._relay: Relay | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self._consumers: list[tuple[DurableConsumer, asyncio.Task[None]]] = []
        self._keyring: Keyring | None = None
        self._workers: list[tuple[Worker, asyncio.Task[None]]] = []
        self._failed: dict[str, str] = {}
        self._rate_counts: KeyValue | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """The service's database pool, once started."""
        return self._started(self._pool)

    @property
    def statement_pool(self) -> asyncpg.Pool:
        """A pool for reads that are each one statement binding its own
        tenant, handed back without a session reset (``StatementConnection``)."""
        return self._started(self._statement_pool)

    def _started(self, pool: asyncpg.Pool | None) -> asyncpg.Pool:
        if pool is None:
            message = f"the runtime of {self.service.name} has not started"
            raise RuntimeNotStartedError(message)
        return pool

    @property
    def keyring(self) -> Keyring:
        """The keyring that seals and opens people's personal fields."""
        if self._keyring is None:
            message = f"{self.service.name} has no keyring: it keeps no personal data"
            raise RuntimeNotStartedError(message)
        return self._keyring

    @property
    def store(self) -> EventStore:
        """The service's event store, in its own schema."""
        return EventStore(self.pool, self.service.schema, registry=self.registry)

    @property
    def nats(self) -> NatsClient:
        """The service's NATS connection (it may still be connecting)."""
        return self._nats

    def seal_anchors(self) -> SealAnchors | None:
        """Return where this service anchors its seals, or ``None`` while
        NATS is not connected or the anchors' stream not set up."""
        if not self._streams_ready or not self._nats.is_connected:
            return None

        return SealAnchors(self._nats.jetstream(), self.subjects)

    def rate_counts(self) -> KeyValue | None:
        """Return the bucket of rate-limit counts the service's replicas
        share, or ``None`` while NATS is not connected."""
        if self._rate_counts is None or not self._nats.is_connected:
            return None

        return self._rate_counts

    async def start(self) -> None:
        """Open the pool, migrate the schema, and begin linking to the bus."""
        database_url, nats_url = self.settings.require_engines()
        keyring = self._configured_keyring()
        self._closing = False

        # No floor of idle connections: asyncpg would log a traceback on
        # every attempt to restore it while the database is away.
        self._pool = await asyncpg.create_pool(
            database_url, min_size=0, max_size=POOL_SIZE
        )
        # Opened only where a service reads through it.
        self._statement_pool = await asyncpg.create_pool(
            database_url,
            min_size=0,
            max_size=POOL_SIZE,
            connection_class=StatementConnection,
        )
        # The application role owns no table, so migrations run as the
        # owner when one is configured; the pool keeps the application role.
        migrator = await asyncpg.connect(
            self.settings.migration_database_url or database_url
        )
        try:
            applied = await migrate(
                migrator, self.service.schema, self.service.all_migrations()
            )
            if keyring is not None:
                applied += await migrate(migrator, KEYRING_SCHEMA, keyring_migrations())
        finally:
            await migrator.close()
        if keyring is not None:
            async with self.pool.acquire() as connection:
                await keyring.check(connection)
            self._keyring = keyring
        self._log.info(
            "service.migrated",
            schema=self.service.schema,
            applied=[f"{m.component}/{m.number:04d}" for m in applied],
        )

        for projection in self.service.projections:
            worker = projection.start(self.store)
            task = asyncio.create_task(
                worker.run(), name=f"{self.service.name}-{projection.name}"
            )
            task.add_done_callback(self._report_worker)
            self._workers.append((worker, task))
        for schedule in self.service.schedules:
            scheduled = ScheduledJob(self, schedule)
            task = asyncio.create_task(
                scheduled.run(), name=f"{self.service.name}-{schedule.name}"
            )
            task.add_done_callback(self._report_worker)
            self._workers.append((scheduled, task))

        # Sealing needs only the database, like the projections; it anchors
        # its seals on NATS once the bus is linked.
        sealing = SealingWorker(
            self.pool,
            self.service.schema,
            interval=self.settings.seal_interval,
            anchors=self.seal_anchors,
        )
        task = asyncio.create_task(sealing.run(), name=f"{self.service.name}-sealing")
        task.add_done_callback(self._report_worker)
        self._workers.append((sealing, task))

        self._bus_task = asyncio.create_task(
            self._link_bus(nats_url.split(",")), name=f"{self.service.name}-bus"
        )
        self._bus_task.add_done_callback(self._report_bus_link)
        self._log.info("service.started")

    def _configured_keyring(self) -> Keyring | None:
        """Return the keyring a service with personal data needs, or raise
        before anything starts when no key-encryption key is configured."""
        if not self.service.personal_data:
            return None
        encoded = self.settings.key_encryption_key
        if encoded is None:
            raise KeyEncryptionKeyMissingError(variable("key_encryption_key"))

        return Keyring(LocalKeyWrapper(decode_key_encryption_key(encoded)))

    async def stop(self) -> None:
        """Stop the bus link, the consumers and the relay, close NATS, then
        the pool."""
        self._closing = True
        await self._stop_bus_link()
        await self._stop_consumers()
        if self._relay is not None and self._relay_task is not None:
            # The relay finishes the batch in hand, so its checkpoint and the
            # stream agree when the next process takes over.
            await self._relay.stop()
            await asyncio.wait([self._relay_task])
            self._relay = self._relay_task = None
        if not self._nats.is_closed:
            await self._nats.close()
        self._streams_ready = False
        await self._stop_workers()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._statement_pool is not None:
            await self._statement_pool.close()
            self._statement_pool = None
        self._keyring = None
        self._log.info("service.stopped")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ServiceRuntime]:
        """Run the engines for the duration of a ``with`` block; a start that
        fails half-way still closes what it opened."""
        try:
            await self.start()
            yield self
        finally:
            await self.stop()

    async def readiness(self) -> Readiness:
        """Ask each engine whether it answers now."""
        return Readiness(
            database=await self._database_answers(),
            nats=self._nats.is_connected and self._streams_ready,
        )

    def require_alive(self) -> Liveness:
        """Return the liveness while every background task runs or ended
        cleanly, else raise ``NotAliveError``."""
        if self._failed:
            raise NotAliveError(self.service.name, self._failed)

        return Liveness()

    async def require_ready(self) -> Readiness:
        """Return the readiness when every engine answers, else raise
        ``NotReadyError``."""
        readiness = await self.readiness()
        if not readiness.ready:
            raise NotReadyError(self.service.name, readiness)

        return readiness

    async def sample_metrics(self) -> None:
        """Set the relay and consumer gauges from what the database and
        JetStream say now; a gauge whose source does not answer is dropped
        rather than left showing an old value."""
        name = self.service.name
        relay = self._relay
        metrics.RELAY_LEADER.labels(name).set(relay is not None and relay.is_leader)
        lag = await self._relay_lag()
        if lag is None:
            metrics.RELAY_LAG_EVENTS.remove(name)
            metrics.RELAY_LAG_SECONDS.remove(name)
        else:
            metrics.RELAY_LAG_EVENTS.labels(name).set(lag.events)
            metrics.RELAY_LAG_SECONDS.labels(name).set(lag.oldest_age or 0.0)

        for consumer, _ in self._consumers:
            labels = (consumer.name, consumer.stream)
            try:
                async with asyncio.timeout(CHECK_TIMEOUT):
                    found = await consumer.lag()
            except (NatsError, TimeoutError) as error:
                metrics.CONSUMER_PENDING.remove(*labels)
                metrics.CONSUMER_ACK_PENDING.remove(*labels)
                self._log.warning(
                    "metrics.consumer_lag_unavailable",
                    consumer=consumer.name,
                    error=type(error).__name__,
                )
                continue
            metrics.CONSUMER_PENDING.labels(*labels).set(found.pending)
            metrics.CONSUMER_ACK_PENDING.labels(*labels).set(found.ack_pending)

    async def _relay_lag(self) -> Lag | None:
        """Measure the relay's lag, or return ``None`` when the database
        does not answer in time."""
        if self._pool is None:
            return None
        # Any process can measure it, leader or standby: it is a question
        # about the shared checkpoint, not about this process's relay.
        checkpoints = Checkpoints(self.service.schema, RelaySettings().name)
        try:
            async with (
                asyncio.timeout(CHECK_TIMEOUT),
                self._pool.acquire() as connection,
                system_transaction(connection),
            ):
                return await checkpoints.lag(connection)
        except DATABASE_ERRORS as error:
            self._log.warning(
                "metrics.relay_lag_unavailable", error=type(error).__name__
            )
            return None

    async def _database_answers(self) -> bool:
        if self._pool is None:
            return False
        try:
            async with self._pool.acquire(timeout=CHECK_TIMEOUT) as connection:
                await connection.fetchval("SELECT 1", timeout=CHECK_TIMEOUT)
        except DATABASE_ERRORS:
            return False

        return True

    async def _link_bus(self, servers: Sequence[str]) -> None:
        # With unlimited reconnects the client keeps trying the first
        # connection too, so this returns only once NATS has answered.
        await self._nats.connect(
            list(servers),
            name=f"mastery-{self.service.name}",
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=2,
            error_cb=self._on_nats_error,
            disconnected_cb=self._on_nats_disconnected,
            reconnected_cb=self._on_nats_reconnected,
        )
        self._log.info("bus.connected")

        # A stop may have begun while this task could not be cancelled.
        if await self._ensure_streams() and not self._closing:
            self._start_relay()
            await self._start_consumers()

    async def _stop_bus_link(self) -> None:
        task, self._bus_task = self._bus_task, None
        if task is None:
            return
        deadline = asyncio.get_running_loop().time() + BUS_STOP_TIMEOUT
        while not task.done():
            # The NATS client swallows a cancel that lands while it tidies up
            # a failed connection attempt, so cancel until one is heard.
            task.cancel()
            await asyncio.wait([task], timeout=BUS_CANCEL_RETRY)
            if asyncio.get_running_loop().time() > deadline:
                self._log.warning("bus.link_not_stopped")
                return

    async def _ensure_streams(self) -> bool:
        js = self._nats.jetstream()
        wanted = stream_settings(self.settings)
        # A followed service may not have started yet. Its stream is set up
        # by the same code from the same settings, so creating it here is
        # what that service would do, and its consumers can bind at once.
        services = dict.fromkeys(
            [self.service.name, *(f.source for f in self.service.followers)]
        )
        while True:
            try:
                for service in services:
                    await ensure_stream(
                        js, service, subjects=self.subjects, settings=wanted
                    )
                await ensure_dead_letter_stream(
                    js, subjects=self.subjects, settings=wanted
                )
                await ensure_anchor_stream(
                    js, subjects=self.subjects, replicas=wanted.replicas
                )
                self._rate_counts = await open_counts_bucket(
                    js,
                    bucket_name(self.subjects.prefix, self.service.name),
                    replicas=self.settings.nats_replicas,
                )
            except StreamSetupError as error:
                # Only an operator can fix this; stay not ready and say why.
                self._log.error(
                    "bus.stream_misconfigured",
                    stream=error.stream,
                    setting=error.setting,
                    found=error.found,
                    wanted=error.wanted,
                )
                return False
            except (NatsError, TimeoutError) as error:
                self._log.warning("bus.streams_retry", error=type(error).__name__)
                await asyncio.sleep(STREAM_RETRY_DELAY)
                continue
            break
        self._streams_ready = True
        self._log.info(
            "bus.streams_ready", stream=self.subjects.stream_name(self.service.name)
        )

        return True

    def _start_relay(self) -> None:
        self._relay = Relay(
            self.store,
            self._nats,
            service=self.service.name,
            subjects=self.subjects,
            settings=RelaySettings(
                poll_interval=self.settings.relay_poll_interval,
                stream=stream_settings(self.settings),
            ),
        )
        self._relay_task = asyncio.create_task(
            self._relay.run(), name=f"{self.service.name}-relay"
        )
        # The relay retries whatever the engines throw at it; what ends it
        # otherwise is a fault in the code, and stored events would stop
        # reaching the bus without a word.
        self._relay_task.add_done_callback(self._report_worker)

    async def _start_consumers(self) -> None:
        js = self._nats.jetstream()
        for follower in self.service.followers:
            consumer = DurableConsumer(
                js,
                self.pool,
                name=follower.name,
                stream=self.subjects.stream_name(follower.source),
                filter_subjects=[self.subjects.service_events(follower.source)],
                schema=self.service.schema,
                handler=(
                    follower.handler
                    if follower.bind is None
                    else follower.bind(self.store)
                ),
                subjects=self.subjects,
                settings=follower.settings,
                registry=self.registry,
            )
            while not self._closing:
                try:
                    await consumer.start()
                except (NatsError, TimeoutError) as error:
                    self._log.warning(
                        "bus.consumer_retry",
                        consumer=follower.name,
                        error=type(error).__name__,
                    )
                    await asyncio.sleep(STREAM_RETRY_DELAY)
                    continue
                break
            if self._closing:
                return
            task = asyncio.create_task(
                consumer.run(), name=f"{self.service.name}-{follower.name}"
            )
            task.add_done_callback(self._report_consumer)
            self._consumers.append((consumer, task))

    async def _stop_consumers(self) -> None:
        # Each finishes the message in hand, so its commit and ack agree.
        while self._consumers:
            consumer, task = self._consumers.pop()
            await consumer.stop()
            if not task.done():
                # The stop came before the task first ran, which would clear it.
                task.cancel()
            await asyncio.wait([task])

    async def _stop_workers(self) -> None:
        # Each commits or rolls back the batch in hand before the pool goes.
        while self._workers:
            worker, task = self._workers.pop()
            await worker.stop()
            if not task.done():
                task.cancel()
            await asyncio.wait([task])

    def _report_worker(self, task: asyncio.Task[None]) -> None:
        if (error := self._fault_of(task)) is not None:
            self._log.error("service.worker_failed", task=task.get_name(), error=error)

    def _report_consumer(self, task: asyncio.Task[None]) -> None:
        if (error := self._fault_of(task)) is not None:
            self._log.error("bus.consumer_failed", task=task.get_name(), error=error)

    def _report_bus_link(self, task: asyncio.Task[None]) -> None:
        if (error := self._fault_of(task)) is not None:
            self._log.error("bus.link_failed", error=error)

    def _fault_of(self, task: asyncio.Task[None]) -> str | None:
        # A task that ends by an error while the service runs will not come
        # back; remembering it makes the process answer "not alive".
        if task.cancelled() or (error := task.exception()) is None:
            return None
        self._failed[task.get_name()] = type(error).__name__

        return type(error).__name__

    async def _on_nats_error(self, error: Exception) -> None:
        self._log.warning("bus.error", error=type(error).__name__)

    async def _on_nats_disconnected(self) -> None:
        self._log.warning("bus.disconnected")

    async def _on_nats_reconnected(self) -> None:
        self._log.info("bus.reconnected")


class ScheduledJob:
    """Run one ``Schedule`` of a started runtime until stopped."""

    def __init__(self, runtime: ServiceRuntime, schedule: Schedule) -> None:
        self.runtime = runtime
        self.schedule = schedule
        self.lock = f"mastery.schedule.{runtime.service.name}.{schedule.name}"
        self._stopping = asyncio.Event()
        self._log = structlog.get_logger(
            __name__, service=runtime.service.name, job=schedule.name
        )

    async def run(self) -> None:
        """Take a turn now and after every interval, until stopped."""
        while not self._stopping.is_set():
            await self.turn()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(),
                    timeout=self.runtime.settings.schedule_interval,
                )

    async def stop(self) -> None:
        """Let the turn in hand finish, then end ``run``."""
        self._stopping.set()

    async def turn(self) -> bool:
        """Run the job once if no other process holds its lock; return
        whether this process ran it."""
        try:
            async with self.runtime.pool.acquire() as connection:
                leader = await connection.fetchval(
                    "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                    self.lock,
                )
                if not leader:
                    self._log.debug("schedule.skipped")
                    return False
                try:
                    await self.schedule.run(self.runtime)
                finally:
                    await connection.execute(
                        "SELECT pg_advisory_unlock(hashtextextended($1, 0))",
                        self.lock,
                    )
        except Exception:
            # A failed turn must not end the schedule: the next turn may
            # find the database back, and the failure is in the log.
            self._log.exception("schedule.failed")
            return False

        self._log.info("schedule.ran")
        return True
