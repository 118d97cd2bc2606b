"""Each service's application against real PostgreSQL and NATS: probes,
OpenAPI, and readiness that follows its engines both ways."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import msgspec
import nats
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from mastery_deploy.engines import EmbeddedNats, EmbeddedPostgres
from mastery_events.relay import Relay
from mastery_events.settings import Settings
from mastery_events.subjects import Subjects
from mastery_grading.app import create_app as create_grading
from mastery_objectives.app import create_app as create_objectives
from mastery_reports.app import create_app as create_reports

APPS: dict[str, Callable[[Settings], Litestar]] = {
    "objectives": create_objectives,
    "grading": create_grading,
    "reports": create_reports,
}
DEADLINE = 20.0
PROBLEM_JSON = "application/problem+json"


async def answer_with(
    client: AsyncTestClient[Litestar], path: str, status: int
) -> httpx.Response:
    """Ask ``path`` until it answers ``status``; fail at the deadline."""
    deadline = time.monotonic() + DEADLINE
    while True:
        response = await client.get(path)
        if response.status_code == status:
            return response
        if time.monotonic() > deadline:
            message = (
                f"{path} still answers {response.status_code} {response.text!r} "
                f"after {DEADLINE:.0f}s, not {status}"
            )
            raise AssertionError(message)
        await asyncio.sleep(0.05)


@pytest.fixture
def own_nats(tmp_path: Path) -> EmbeddedNats:
    """A nats-server of this test's own, which the test may stop and start."""
    return EmbeddedNats(tmp_path / "nats")


@pytest.fixture
async def running_nats(own_nats: EmbeddedNats) -> AsyncIterator[EmbeddedNats]:
    """The test's own nats-server, started, and stopped afterwards."""
    await asyncio.to_thread(own_nats.start)
    yield own_nats
    await asyncio.to_thread(own_nats.stop)


@pytest.mark.parametrize("service", list(APPS))
async def test_a_service_with_its_engines_is_live_ready_and_documented(
    service: str, settings: Settings, nats_url: str
) -> None:
    """With PostgreSQL and NATS answering, the probes answer 200, the OpenAPI
    document lists them, and the service's stream exists on JetStream."""
    app = APPS[service](settings)

    async with AsyncTestClient(app=app) as client:
        ready = await answer_with(client, "/readyz", 200)
        live = await client.get("/healthz")
        schema = await client.get("/schema/openapi.json")

    assert ready.json() == {"database": True, "nats": True}
    assert live.status_code == 200
    assert live.json() == {"status": "alive"}
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == f"Mastery {service}"
    assert {"/healthz", "/readyz"} <= set(schema.json()["paths"])
    bus = await nats.connect(nats_url)
    try:
        stream = Subjects(prefix=settings.subject_prefix).stream_name(service)
        info = await bus.jetstream().stream_info(stream)
    finally:
        await bus.close()
    assert info.config.subjects == [f"{settings.subject_prefix}.{service}.>"]


async def test_a_relay_ended_by_a_fault_makes_the_service_not_alive(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relay that dies of an error in its own code will publish nothing
    more: /healthz answers 503 naming it, so the orchestrator restarts the
    process, while /readyz still says the engines answer."""

    async def faulty(relay: Relay) -> None:
        message = "a fault in the relay's own code"
        raise LookupError(message)

    monkeypatch.setattr(Relay, "_serve", faulty)
    app = create_grading(settings)

    async with AsyncTestClient(app=app) as client:
        dead = await answer_with(client, "/healthz", 503)
        ready = await client.get("/readyz")

    assert dead.headers["content-type"] == PROBLEM_JSON
    assert dead.json() == {
        "status": 503,
        "title": "Service not alive",
        "detail": "grading has background tasks that failed: "
        "grading-relay (LookupError)",
        "failed": {"grading-relay": "LookupError"},
    }
    assert ready.status_code == 200


async def test_a_service_whose_nats_is_down_starts_but_is_not_ready(
    settings: Settings, own_nats: EmbeddedNats
) -> None:
    """NATS pointed at a stopped server: the service still starts, stays
    alive, and explains on /readyz with a problem-details body."""
    app = create_objectives(msgspec.structs.replace(settings, nats_url=own_nats.url))

    async with AsyncTestClient(app=app) as client:
        live = await client.get("/healthz")
        not_ready = await client.get("/readyz")

    assert live.status_code == 200
    assert not_ready.status_code == 503
    assert not_ready.headers["content-type"] == PROBLEM_JSON
    assert not_ready.json() == {
        "status": 503,
        "title": "Service not ready",
        "detail": "objectives is not ready: NATS is not connected, "
        "or the streams are not set up",
        "checks": {"database": True, "nats": False},
    }


async def test_readiness_follows_nats_going_away_and_coming_back(
    settings: Settings, running_nats: EmbeddedNats
) -> None:
    """Stopping NATS turns /readyz to 503 naming NATS; starting it again on
    the same port turns it back to 200 without restarting the service."""
    app = create_grading(msgspec.structs.replace(settings, nats_url=running_nats.url))

    async with AsyncTestClient(app=app) as client:
        await answer_with(client, "/readyz", 200)
        await asyncio.to_thread(running_nats.stop)
        gone = await answer_with(client, "/readyz", 503)
        await asyncio.to_thread(running_nats.start)
        back = await answer_with(client, "/readyz", 200)

    assert gone.headers["content-type"] == PROBLEM_JSON
    assert gone.json()["checks"] == {"database": True, "nats": False}
    assert back.json() == {"database": True, "nats": True}


async def test_readiness_reports_a_database_that_stopped_answering(
    settings: Settings, tmp_path: Path
) -> None:
    """Stopping PostgreSQL under a running service turns /readyz to 503 with
    the database named, while /healthz still answers."""
    postgres = EmbeddedPostgres(tmp_path / "postgres", durable=False)
    database_url = await asyncio.to_thread(postgres.start)
    try:
        app = create_reports(
            msgspec.structs.replace(settings, database_url=database_url)
        )
        async with AsyncTestClient(app=app) as client:
            await answer_with(client, "/readyz", 200)
            await asyncio.to_thread(postgres.stop, mode="immediate")
            gone = await answer_with(client, "/readyz", 503)
            live = await client.get("/healthz")
    finally:
        await asyncio.to_thread(postgres.stop, mode="immediate")

    assert live.status_code == 200
    assert gone.headers["content-type"] == PROBLEM_JSON
    assert gone.json()["status"] == 503
    assert gone.json()["checks"] == {"database": False, "nats": True}
    assert "the database does not answer" in gone.json()["detail"]
