"""Rate limits as a district runs them: counted once across replicas on a
real NATS, kept per process while NATS is away, and applied to the client
a trusted proxy names rather than to the proxy."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import msgspec
import nats
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from mastery_deploy.engines import EmbeddedNats, free_port
from mastery_events.rate_limits import bucket_name
from mastery_events.runtime import Service, ServiceRuntime
from mastery_events.service_app import service_app
from mastery_events.settings import Settings
from tests.integration.limited_service import notices
from tests.waiting import eventually

ROOT = Path(__file__).parents[2]
LIMIT = 4
DEADLINE = 30.0


@pytest.fixture
async def service(pool: asyncpg.Pool) -> AsyncIterator[Service]:
    """A service of this test's own, its schema dropped afterwards."""
    made = Service(name=f"limits_{secrets.token_hex(4)}")
    yield made
    async with pool.acquire() as connection:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{made.schema}" CASCADE')


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, with a small limit."""
    return msgspec.structs.replace(settings, rate_limit=LIMIT)


@contextlib.asynccontextmanager
async def replica(
    service: Service, settings: Settings
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """Run one replica of ``service`` and yield a client once it is ready."""
    app = service_app(
        ServiceRuntime(service, settings),
        distribution="mastery-events",
        route_handlers=[notices],
    )
    async with AsyncTestClient(app) as client:

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, within=DEADLINE, what="the replica's readiness")
        yield client


async def statuses(client: AsyncTestClient[Litestar], count: int) -> list[int]:
    """Ask the public route ``count`` times; return the statuses."""
    return [(await client.get("/notices")).status_code for _ in range(count)]


async def test_replicas_of_a_service_share_one_count(
    service: Service, settings: Settings
) -> None:
    """Two replicas, one client: half the limit on each uses it all up, and
    both then refuse, as one instance would."""
    async with (
        replica(service, settings) as first,
        replica(service, settings) as second,
    ):
        on_first = await statuses(first, LIMIT // 2)
        on_second = await statuses(second, LIMIT - LIMIT // 2)
        over_first = await first.get("/notices")
        over_second = await second.get("/notices")

    assert on_first + on_second == [200] * LIMIT
    assert over_first.status_code == 429
    assert over_second.status_code == 429
    assert over_second.headers["ratelimit-remaining"] == "0"


async def test_the_bus_holds_no_client_address(
    service: Service, settings: Settings, nats_url: str
) -> None:
    """The shared bucket keys a client by a digest: neither the address nor
    the limiter's key is written to NATS."""
    async with replica(service, settings) as client:
        await statuses(client, 2)

    bus = await nats.connect(nats_url)
    try:
        bucket = await bus.jetstream().key_value(
            bucket_name(settings.subject_prefix, service.name)
        )
        (key,) = await bucket.keys()
        entry = await bucket.get(key)
    finally:
        await bus.close()
    assert len(key) == 64
    assert "testclient" not in key
    assert entry.value is not None
    assert b"testclient" not in entry.value


async def test_while_nats_is_away_each_process_still_limits(
    service: Service, settings: Settings, tmp_path: Path
) -> None:
    """A replica whose NATS is stopped keeps counting in its own memory:
    the limit still holds, and no request waits on the bus."""
    stopped = EmbeddedNats(tmp_path / "nats")
    away = msgspec.structs.replace(settings, nats_url=stopped.url)
    app = service_app(
        ServiceRuntime(service, away),
        distribution="mastery-events",
        route_handlers=[notices],
    )

    async with AsyncTestClient(app) as client:
        within = await statuses(client, LIMIT)
        over = await client.get("/notices")

    assert within == [200] * LIMIT
    assert over.status_code == 429


@contextlib.contextmanager
def served(
    service: Service, settings: Settings, *, trusted_proxies: str
) -> Iterator[str]:
    """Serve the public route over a real socket in a process of its own,
    trusting ``trusted_proxies``; yield its URL."""
    port = free_port()
    environment = (
        os.environ
        | msgspec.structs.replace(
            settings, objectives_port=port, trusted_proxies=trusted_proxies
        ).to_environment()
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.limited_service", service.name],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=DEADLINE)


async def forwarded_statuses(url: str, client_address: str, count: int) -> list[int]:
    """Ask as if a proxy forwarded ``client_address``'s requests."""
    headers = {"x-forwarded-for": client_address}
    async with httpx.AsyncClient(base_url=url) as client:
        return [
            (await client.get("/notices", headers=headers)).status_code
            for _ in range(count)
        ]


async def wait_until_ready(url: str) -> None:
    """Wait until the served process is ready."""

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient(base_url=url) as client:
                return (await client.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(ready, within=DEADLINE, what="the served process")


async def test_a_trusted_proxy_names_the_client_and_another_does_not(
    service: Service, settings: Settings
) -> None:
    """Behind a trusted proxy each guardian gets a count of their own; when
    the proxy is not trusted, its forwarded addresses are ignored and every
    request counts against the one address it came from."""
    with served(service, settings, trusted_proxies="127.0.0.1") as url:
        await wait_until_ready(url)
        first_guardian = await forwarded_statuses(url, "203.0.113.7", LIMIT + 1)
        second_guardian = await forwarded_statuses(url, "203.0.113.8", LIMIT)

    assert first_guardian == [200] * LIMIT + [429]
    assert second_guardian == [200] * LIMIT

    elsewhere = msgspec.structs.replace(
        settings, subject_prefix=f"{settings.subject_prefix}b"
    )
    with served(service, elsewhere, trusted_proxies="192.0.2.1") as url:
        await wait_until_ready(url)
        first_guardian = await forwarded_statuses(url, "203.0.113.7", LIMIT)
        second_guardian = await forwarded_statuses(url, "203.0.113.8", 1)

    assert first_guardian == [200] * LIMIT
    assert second_guardian == [429]
