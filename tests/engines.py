"""Find real PostgreSQL and NATS JetStream servers for the test session.

In order: the URLs in ``MASTERY_TEST_DATABASE_URL`` and
``MASTERY_TEST_NATS_URL``; containers through testcontainers when a Docker
engine answers; otherwise the embedded engines from the project's own wheels.
The choice is printed, never hidden, and no test is skipped for want of an
engine.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from mastery_deploy.engines import EmbeddedNats, EmbeddedPostgres

POSTGRES_IMAGE = "postgres:18.1-alpine"
NATS_IMAGE = "nats:2.12.2-alpine"


class TestEngines(msgspec.Struct, kw_only=True):
    """Where the session's engines are, and where they came from."""

    __test__ = False

    database_url: str
    nats_url: str
    source: str


def docker_answers() -> bool:
    """Tell whether a Docker engine answers on this machine."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def containers() -> Iterator[TestEngines]:
    """Run pinned PostgreSQL and NATS images for the session."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.postgres import PostgresContainer

    with (
        PostgresContainer(POSTGRES_IMAGE, driver=None) as postgres,
        DockerContainer(NATS_IMAGE)
        .with_command("-js")
        .with_exposed_ports(4222) as nats_container,
    ):
        wait_for_logs(nats_container, "Server is ready")
        host = nats_container.get_container_host_ip()
        port = nats_container.get_exposed_port(4222)
        yield TestEngines(
            database_url=postgres.get_connection_url(),
            nats_url=f"nats://{host}:{port}",
            source="testcontainers",
        )


@contextlib.contextmanager
def embedded(folder: Path) -> Iterator[TestEngines]:
    """Run the embedded engines in ``folder`` for the session."""
    postgres = EmbeddedPostgres(folder / "postgres", durable=False)
    nats = EmbeddedNats(folder / "nats")
    try:
        database_url = postgres.start()
        nats_url = nats.start()
        yield TestEngines(
            database_url=database_url, nats_url=nats_url, source="embedded"
        )
    finally:
        nats.stop()
        postgres.stop(mode="immediate")


@contextlib.contextmanager
def test_engines(
    folder: Path, *, report: Callable[[str], None]
) -> Iterator[TestEngines]:
    """Yield the session's engines, starting them when none are configured."""
    database_url = os.environ.get("MASTERY_TEST_DATABASE_URL")
    nats_url = os.environ.get("MASTERY_TEST_NATS_URL")
    if database_url and nats_url:
        report("engines: from MASTERY_TEST_DATABASE_URL and MASTERY_TEST_NATS_URL")
        yield TestEngines(
            database_url=database_url, nats_url=nats_url, source="environment"
        )
        return

    if docker_answers():
        report(f"engines: testcontainers ({POSTGRES_IMAGE}, {NATS_IMAGE} -js)")
        factory = containers()
    else:
        report("engines: embedded PostgreSQL and nats-server (no Docker engine)")
        factory = embedded(folder)
    with factory as engines:
        yield TestEngines(
            database_url=database_url or engines.database_url,
            nats_url=nats_url or engines.nats_url,
            source=engines.source,
        )
