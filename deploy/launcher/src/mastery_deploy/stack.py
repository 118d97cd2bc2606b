"""Run the whole stack on one machine: engines, migrations, the services.

``mastery up`` starts PostgreSQL and nats-server from their wheels when no
URL is configured, migrates every service's schema, starts each service as
a child process and waits for each to be ready. It then watches: SIGINT or
SIGTERM stops the services and then the engines, in that order; a service
that dies on its own stops everything, and the command fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import msgspec
import structlog

from mastery_deploy.credentials import (
    KEY_ENCRYPTION_KEY_FILE,
    PASSWORD_FILE,
    TOKEN_SECRET_FILE,
    enable_app_login,
    local_secret,
)
from mastery_deploy.engines import (
    EmbeddedNats,
    EmbeddedPostgres,
    EngineError,
    free_port,
)
from mastery_deploy.schemas import migrate_services
from mastery_deploy.status import (
    NoStackError,
    ServiceEndpoint,
    StackStatus,
    read_status,
    remove_status,
    status_path,
    without_password,
    write_status,
)
from mastery_events.errors import EventsError
from mastery_events.runtime import Service
from mastery_events.settings import Settings

logger = structlog.get_logger(__name__)

READY_TIMEOUT = 90.0
READY_POLL = 0.2
STOP_TIMEOUT = 20.0
# The exit code of a command stopped by SIGINT, as shells report it.
INTERRUPTED = 130
OPENAPI_PATH = "/schema/openapi.json"
# Addresses that mean "every interface": clients reach them on loopback.
ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104


class StackError(Exception):
    """Raised when the stack cannot start: a stack already runs on the data
    folder, or a service failed before it was ready."""


class StackInterruptedError(StackError):
    """Raised when a stop signal arrives while the stack is starting."""


class ServiceProcess(msgspec.Struct, kw_only=True):
    """A service running as a child process of the launcher."""

    name: str
    url: str
    process: asyncio.subprocess.Process

    def endpoint(self) -> ServiceEndpoint:
        """Describe this service for the status file."""
        return ServiceEndpoint(
            name=self.name,
            url=self.url,
            openapi_url=f"{self.url}{OPENAPI_PATH}",
            pid=self.process.pid,
        )


class Stack:
    """The engines and services of one ``mastery up``, and their order."""

    def __init__(self, settings: Settings, services: Sequence[Service]) -> None:
        self.settings = settings
        self.services = services
        self.data_dir = settings.data_dir.resolve()
        self.status_file = status_path(self.data_dir)
        self.stopping = asyncio.Event()
        self.postgres: EmbeddedPostgres | None = None
        self.nats: EmbeddedNats | None = None
        self.children: list[ServiceProcess] = []
        self.recorded = False

    async def start(self) -> StackStatus:
        """Start everything and return the stack's status once every service
        is ready; raise ``StackInterruptedError`` if told to stop first."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(NoStackError):
            running = read_status(self.status_file)
            message = (
                f"a stack already runs on {self.data_dir} (launcher pid "
                f"{running.pid}); stop it before starting another"
            )
            raise StackError(message)

        database_url = self.settings.database_url or await self._start_postgres()
        self._check_stopping()
        nats_url = self.settings.nats_url or await self._start_nats()
        self._check_stopping()

        owner_url = self.settings.migration_database_url or database_url
        for migrated in await migrate_services(owner_url, self.services):
            logger.info(
                "stack.migrated", schema=migrated.schema, applied=migrated.applied
            )
        self._check_stopping()

        if self.settings.database_url is None:
            # The embedded database: services log in as the role that owns
            # nothing, so row-level security binds them.
            password = local_secret(self.data_dir, PASSWORD_FILE)
            database_url = await enable_app_login(owner_url, password)
        engines = msgspec.structs.replace(
            self.settings,
            database_url=database_url,
            migration_database_url=owner_url,
            nats_url=nats_url,
            data_dir=self.data_dir,
            jwt_secret=self._token_secret(),
            key_encryption_key=self._key_encryption_key(),
        )
        for service in self.services:
            self.children.append(await self._spawn(service, engines))
        waits = [asyncio.create_task(self._wait_ready(c)) for c in self.children]
        try:
            await asyncio.gather(*waits)
        finally:
            # The first failure is enough; stop asking the others.
            for wait in waits:
                wait.cancel()

        return StackStatus(
            pid=os.getpid(),
            data_dir=str(self.data_dir),
            database_url=without_password(database_url),
            nats_url=without_password(nats_url),
            services=[child.endpoint() for child in self.children],
            postgres_pid=None if self.postgres is None else self.postgres.pid,
            nats_pid=None if self.nats is None else self.nats.pid,
        )

    async def watch(self) -> int:
        """Wait for a stop signal (exit code 0) or for a service to die on
        its own (exit code 1)."""
        stop_requested = asyncio.create_task(self.stopping.wait())
        exits = {
            asyncio.create_task(child.process.wait()): child for child in self.children
        }
        done, _ = await asyncio.wait(
            [stop_requested, *exits], return_when=asyncio.FIRST_COMPLETED
        )
        stop_requested.cancel()
        for task in exits:
            task.cancel()

        failed = [exits[task] for task in done if task in exits]
        for child in failed:
            logger.error(
                "stack.service_died",
                service=child.name,
                returncode=child.process.returncode,
            )

        return 1 if failed else 0

    async def stop(self) -> None:
        """Stop the services, then NATS, then PostgreSQL, and remove the
        status file."""
        await asyncio.gather(*(self._stop_child(child) for child in self.children))
        if self.nats is not None:
            await asyncio.to_thread(self.nats.stop)
            logger.info("stack.engine_stopped", engine="nats")
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.stop)
            logger.info("stack.engine_stopped", engine="postgres")
        # Only our own record: a refused second stack leaves the first's.
        if self.recorded:
            remove_status(self.status_file)
        logger.info("stack.stopped", data_dir=str(self.data_dir))

    def record(self, status: StackStatus) -> None:
        """Write the status file, which ``stop()`` then removes."""
        write_status(self.status_file, status)
        self.recorded = True

    def request_stop(self, signum: int) -> None:
        """Begin an orderly stop; called from a signal handler."""
        # A terminal's Ctrl-C can arrive twice: directly, and forwarded by a
        # wrapper such as `uv run`. One stop is enough.
        if self.stopping.is_set():
            return
        logger.info("stack.stopping", signal=signal.Signals(signum).name)
        self.stopping.set()

    def _check_stopping(self) -> None:
        if self.stopping.is_set():
            message = "asked to stop while the stack was starting"
            raise StackInterruptedError(message)

    async def _start_postgres(self) -> str:
        self.postgres = EmbeddedPostgres(self.data_dir / "postgres", durable=True)
        # A thread keeps signals handled meanwhile; a stop asked for now
        # takes effect once the engine is up, so stop() finds it whole.
        url = await asyncio.to_thread(self.postgres.start)
        logger.info("stack.engine_started", engine="postgres", port=self.postgres.port)

        return url

    def _token_secret(self) -> str | None:
        """Return the HS256 secret the services trust: the configured one,
        none when a JWKS is configured, else the stack's own."""
        if self.settings.jwt_secret is not None or self.settings.jwt_jwks:
            return self.settings.jwt_secret
        return local_secret(self.data_dir, TOKEN_SECRET_FILE)

    def _key_encryption_key(self) -> str:
        """Return the key-encryption key the services seal personal data
        with: the configured one, else the stack's own, kept in its data
        folder beside the database it protects."""
        if self.settings.key_encryption_key is not None:
            return self.settings.key_encryption_key
        return local_secret(self.data_dir, KEY_ENCRYPTION_KEY_FILE)

    async def _start_nats(self) -> str:
        self.nats = EmbeddedNats(self.data_dir / "nats")
        url = await asyncio.to_thread(self.nats.start)
        logger.info("stack.engine_started", engine="nats", port=self.nats.port)

        return url

    async def _spawn(self, service: Service, engines: Settings) -> ServiceProcess:
        port = engines.port_of(service.name) or free_port()
        settings = msgspec.structs.replace(engines, **{f"{service.name}_port": port})
        environment = {
            **os.environ,
            **settings.to_environment(),
            "PYTHONUNBUFFERED": "1",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mastery_deploy",
            service.name,
            "serve",
            env=environment,
            stdin=asyncio.subprocess.DEVNULL,
            # Signals from the terminal reach the launcher alone, so that it
            # decides the order things stop in.
            start_new_session=True,
        )
        logger.info(
            "stack.service_started", service=service.name, pid=process.pid, port=port
        )

        return ServiceProcess(
            name=service.name,
            url=f"http://{client_host(settings.host)}:{port}",
            process=process,
        )

    async def _wait_ready(self, child: ServiceProcess) -> None:
        deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
        while not await asyncio.to_thread(answers_ready, child.url):
            if child.process.returncode is not None:
                message = (
                    f"service {child.name} exited with code "
                    f"{child.process.returncode} before it was ready"
                )
                raise StackError(message)
            self._check_stopping()
            if asyncio.get_running_loop().time() > deadline:
                message = (
                    f"service {child.name} was not ready at {child.url}/readyz "
                    f"after {READY_TIMEOUT:.0f}s"
                )
                raise StackError(message)
            await asyncio.sleep(READY_POLL)
        logger.info("stack.service_ready", service=child.name, url=child.url)

    async def _stop_child(self, child: ServiceProcess) -> None:
        process = child.process
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=STOP_TIMEOUT)
            except TimeoutError:
                logger.warning("stack.service_killed", service=child.name)
                process.kill()
                await process.wait()
        logger.info(
            "stack.service_stopped",
            service=child.name,
            returncode=process.returncode,
        )


def client_host(host: str) -> str:
    """Return the host a client on this machine uses to reach ``host``."""
    if host in ANY_ADDRESS:
        return "127.0.0.1"
    if ":" in host:
        return f"[{host}]"
    return host


def answers_ready(url: str) -> bool:
    """Tell whether the service at ``url`` answers its readiness probe."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def run_stack(
    settings: Settings,
    services: Sequence[Service],
    *,
    announce: Callable[[StackStatus], None],
    on_ready: Callable[[StackStatus], Coroutine[Any, Any, None]] | None = None,
) -> int:
    """Run the stack until a stop signal or a service failure, and return
    the exit code: 0 after a requested stop, non-zero otherwise.

    ``on_ready`` runs once every service answers, beside the watch, so a
    stop signal or a dying service ends it too.
    """
    stack = Stack(settings, services)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stack.request_stop, signum)
    try:
        status = await stack.start()
        stack.record(status)
        announce(status)
        logger.info("stack.ready", status_file=str(stack.status_file))
        if on_ready is None:
            return await stack.watch()

        extra = asyncio.create_task(on_ready(status), name="stack-on-ready")
        try:
            return await stack.watch()
        finally:
            extra.cancel()
            await asyncio.gather(extra, return_exceptions=True)
    except StackInterruptedError:
        return INTERRUPTED
    except (StackError, EngineError, EventsError) as error:
        logger.error("stack.failed", error=str(error))
        return 1
    finally:
        await stack.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
