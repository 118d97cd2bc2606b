"""Run service instances as child processes that can be killed and restarted.

``mastery up`` runs one process per service and stops them in order. The
fault suite and the scale-out test need more: several instances of one
service on the same schema and stream, each of which can be killed with
SIGKILL at any moment and started again on the same port, as a scheduler
would restart a crashed pod.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import msgspec
import structlog

from mastery_deploy.engines import free_port
from mastery_deploy.stack import answers_ready, client_host
from mastery_events.settings import Settings

logger = structlog.get_logger(__name__)

READY_TIMEOUT = 90.0
READY_POLL = 0.1
STOP_TIMEOUT = 20.0


class FleetError(Exception):
    """Raised when an instance does not become ready or exits on its own."""

    def __init__(self, instance: str, reason: str) -> None:
        self.instance = instance
        super().__init__(f"instance {instance} {reason}")


class Instance:
    """One service process, its port kept across restarts."""

    def __init__(
        self,
        service: str,
        settings: Settings,
        *,
        label: str,
        log_dir: Path,
    ) -> None:
        self.service = service
        self.label = label
        self.port = free_port()
        self.settings = msgspec.structs.replace(
            settings, **{f"{service}_port": self.port}
        )
        self.log_path = log_dir / f"{label}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.kills = 0

    @property
    def url(self) -> str:
        """Where the instance answers HTTP."""
        return f"http://{client_host(self.settings.host)}:{self.port}"

    @property
    def running(self) -> bool:
        """Tell whether the process is alive."""
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        """Start the process; ``ready()`` waits for it to answer."""
        environment = {
            **os.environ,
            **self.settings.to_environment(),
            "PYTHONUNBUFFERED": "1",
        }
        # Appending keeps the lines of every life of the instance.
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "mastery_deploy",
                self.service,
                "serve",
                env=environment,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.starts += 1
        logger.info(
            "fleet.started", instance=self.label, pid=self.process.pid, port=self.port
        )

    async def ready(self, *, within: float = READY_TIMEOUT) -> float:
        """Wait until ``/readyz`` answers 200 and return how long it took."""
        started = time.monotonic()
        while not await asyncio.to_thread(answers_ready, self.url):
            if self.process is None or self.process.returncode is not None:
                raise FleetError(self.label, "exited before it was ready")
            if time.monotonic() - started > within:
                raise FleetError(self.label, f"was not ready after {within:.0f}s")
            await asyncio.sleep(READY_POLL)

        return time.monotonic() - started

    async def kill(self) -> None:
        """Kill the process with SIGKILL, as an out-of-memory kill or a lost
        node would: nothing is flushed, acknowledged or unlocked."""
        if not self.running or self.process is None:
            return
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self.kills += 1
        logger.info("fleet.killed", instance=self.label)

    async def stop(self) -> None:
        """Stop the process with SIGTERM, killing it if it lingers."""
        if not self.running or self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout=STOP_TIMEOUT)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        logger.info("fleet.stopped", instance=self.label)


class Fleet:
    """The instances of a run, stopped together at the end."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.instances: list[Instance] = []

    def add(self, service: str, label: str) -> Instance:
        """Add an instance of ``service``, not yet started."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        instance = Instance(service, self.settings, label=label, log_dir=self.log_dir)
        self.instances.append(instance)

        return instance

    async def start(self) -> None:
        """Start every instance that is not running, and wait until each
        instance is ready."""
        for instance in self.instances:
            if not instance.running:
                await instance.start()
        await asyncio.gather(*(instance.ready() for instance in self.instances))

    async def stop(self) -> None:
        """Stop every instance that still runs."""
        await asyncio.gather(*(instance.stop() for instance in self.instances))
