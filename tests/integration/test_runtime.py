"""The shared service runtime against real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import msgspec
import nats
import pytest
import structlog
from nats.js.errors import NotFoundError

from mastery_deploy.engines import EmbeddedNats
from mastery_events.relay import Relay
from mastery_events.runtime import RuntimeNotStartedError, Service, ServiceRuntime
from mastery_events.settings import Settings
from mastery_events.subjects import Subjects
from mastery_events.verification import Verifier
from tests.integration.drafts import set_drafted
from tests.waiting import eventually

DEADLINE = 15.0


@pytest.fixture
async def service(pool: asyncpg.Pool) -> AsyncIterator[Service]:
    """A service of this test's own, so its schema, stream and relay lock
    are nobody else's; its schema is dropped afterwards."""
    found = Service(name=f"runtime_{secrets.token_hex(4)}")
    yield found
    async with pool.acquire() as connection:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{found.schema}" CASCADE')


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, with a relay that polls five times a second."""
    return msgspec.structs.replace(settings, relay_poll_interval=0.2)


async def test_an_event_a_service_stores_reaches_its_stream(
    service: Service, settings: Settings, nats_url: str
) -> None:
    """The runtime migrates the schema, sets up the stream and runs the
    relay: an appended event is published on the service's subject."""
    runtime = ServiceRuntime(service, settings)
    subjects = Subjects(prefix=settings.subject_prefix)
    bus = await nats.connect(nats_url)
    try:
        async with runtime.running():
            await runtime.store.append("district-7", "set-1", 0, [set_drafted()])
            js = bus.jetstream()
            stream = subjects.stream_name(service.name)
            deadline = time.monotonic() + DEADLINE
            while True:
                try:
                    message = await js.get_msg(stream, seq=1)
                    break
                except NotFoundError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"nothing reached {stream} in {DEADLINE:.0f}s")
                    await asyncio.sleep(0.05)
    finally:
        await bus.close()

    assert message.subject == subjects.event(
        service.name, "district-7", "ObjectiveSetCreated"
    )


async def test_a_stopped_runtime_has_closed_its_engines(
    service: Service, settings: Settings
) -> None:
    """After the ``with`` block the NATS connection is closed and the pool is
    gone, so nothing keeps a stopped service's resources."""
    runtime = ServiceRuntime(service, settings)

    async with runtime.running():
        deadline = time.monotonic() + DEADLINE
        while not (await runtime.readiness()).ready:
            assert time.monotonic() < deadline, "the runtime never became ready"
            await asyncio.sleep(0.05)

    assert runtime.nats.is_closed
    with pytest.raises(RuntimeNotStartedError):
        runtime.pool  # noqa: B018
    assert not (await runtime.readiness()).database


@pytest.mark.parametrize("stop_after", [0.0, 0.3, 1.1])
async def test_a_runtime_whose_nats_is_away_stops_promptly(
    service: Service, settings: Settings, stop_after: float, tmp_path: Path
) -> None:
    """Stopping while the bus link still tries to reach NATS ends it within
    seconds, whichever step of a connection attempt it is in."""
    nowhere = EmbeddedNats(tmp_path / "nats")
    runtime = ServiceRuntime(
        service, msgspec.structs.replace(settings, nats_url=nowhere.url)
    )

    async with asyncio.timeout(DEADLINE):
        async with runtime.running():
            await asyncio.sleep(stop_after)
            assert not (await runtime.readiness()).nats

    assert runtime.nats.is_closed


async def test_a_running_service_seals_the_events_it_stores(
    service: Service, settings: Settings, pool: asyncpg.Pool
) -> None:
    """With a short seal interval, two tenants' events are sealed without
    anyone running a command, and the log verifies."""
    runtime = ServiceRuntime(
        service, msgspec.structs.replace(settings, seal_interval=0.1)
    )
    sealed_rows = f'SELECT count(*) FROM "{service.schema}".event_seals'

    async with runtime.running():
        for tenant in ("district-7", "district-8"):
            await runtime.store.append(
                tenant, "set-1", 0, [set_drafted(), set_drafted()]
            )

        async def all_sealed() -> bool:
            async with pool.acquire() as connection:
                return bool(await connection.fetchval(sealed_rows) == 4)

        await eventually(all_sealed, within=DEADLINE, what="sealing of 4 events")

    async with pool.acquire() as connection:
        verdict = await Verifier(service.schema).verify(connection, "district-8")
    assert (verdict.events, verdict.sealed, verdict.findings) == (2, 2, [])


async def test_a_relay_that_dies_of_a_fault_says_so(
    service: Service, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relay ended by an error it does not retry (a fault in the code, as
    simulated here) is logged by the runtime, naming the task and the
    error's type, so stored events that stop reaching the bus show."""

    async def faulty(relay: Relay) -> None:
        message = "a fault in the relay's own code"
        raise LookupError(message)

    monkeypatch.setattr(Relay, "_serve", faulty)

    with structlog.testing.capture_logs() as logged:
        async with ServiceRuntime(service, settings).running():

            async def reported() -> bool:
                return any(
                    entry["event"] == "service.worker_failed" for entry in logged
                )

            await eventually(reported, within=DEADLINE, what="the relay's failure")

    [failure] = [e for e in logged if e["event"] == "service.worker_failed"]
    assert failure["task"] == f"{service.name}-relay"
    assert failure["error"] == "LookupError"
