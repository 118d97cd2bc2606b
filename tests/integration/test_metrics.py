"""Each service's ``/metrics`` against real PostgreSQL and NATS: the counters
move with the work, the lag gauges follow the relay and the consumers, and
nothing in the answer names a tenant, a person or a record."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from mastery_grading.app import create_app as create_grading
from mastery_objectives.app import create_app as create_objectives
from tests.tokens import TestKeys, bearer
from tests.waiting import eventually

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: AsyncTestClient[Litestar]) -> tuple[str, Samples]:
    """Return the text of ``/metrics`` and every sample in it, keyed by
    name and labels."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """Return one sample's value, or ``None`` when the answer lacks it."""
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def keys(tmp_path: Path) -> TestKeys:
    """Fresh signing keys for this test."""
    return TestKeys(tmp_path)


@pytest.fixture
def tenant() -> str:
    """A district of this test's own, in the shared objectives schema."""
    return f"district-{secrets.token_hex(4)}"


@pytest.fixture
async def objectives(
    keys: TestKeys, database_url: str, nats_url: str, subject_prefix: str
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The objectives service, started with its engines and relay."""
    settings = keys.settings(
        database_url=database_url, nats_url=nats_url, subject_prefix=subject_prefix
    )
    async with AsyncTestClient(create_objectives(settings)) as started:
        yield started


async def create_set(
    client: AsyncTestClient[Litestar], keys: TestKeys, tenant: str
) -> str:
    """Create an objective set as the district's administrator; return its
    id."""
    token = keys.token(tenant, ["district_admin"], subject="admin-skinner")
    created = await client.post(
        "/objective-sets",
        headers=bearer(token),
        json={"title": "Grade 6 ratios", "subject": "mathematics"},
    )
    assert created.status_code == 201, created.text
    set_id: str = created.json()["objective_set_id"]

    return set_id


async def test_an_append_moves_the_counter_and_the_request_is_timed(
    objectives: AsyncTestClient[Litestar], keys: TestKeys, tenant: str
) -> None:
    """Creating a set appends its event: the scrape after it counts one more
    event in the objectives schema and one more timed POST of the route's
    template, and names neither the tenant nor the set."""
    _, before = await scrape(objectives)
    appended = value(before, "mastery_events_appended_total", schema="objectives")
    route = {
        "app_name": "objectives",
        "method": "POST",
        "path": "/objective-sets",
        "status_code": "201",
    }
    timed = value(before, "mastery_http_request_duration_seconds_count", **route)

    set_id = await create_set(objectives, keys, tenant)
    text, after = await scrape(objectives)

    assert (
        value(after, "mastery_events_appended_total", schema="objectives")
        == (appended or 0) + 1
    )
    assert (
        value(after, "mastery_http_request_duration_seconds_count", **route)
        == (timed or 0) + 1
    )
    assert tenant not in text
    assert set_id not in text
    assert "admin-skinner" not in text


async def test_relay_lag_drops_to_zero_once_the_leader_has_published(
    objectives: AsyncTestClient[Litestar], keys: TestKeys, tenant: str
) -> None:
    """After an append the relay leads, publishes it, and the lag gauges say
    nothing is left behind; the published counter has moved."""
    _, before = await scrape(objectives)
    published = value(
        before, "mastery_relay_published_events_total", service="objectives"
    )

    await create_set(objectives, keys, tenant)

    async def caught_up() -> bool:
        _, samples = await scrape(objectives)
        return (
            value(samples, "mastery_relay_leader", service="objectives") == 1
            and value(samples, "mastery_relay_lag_events", service="objectives") == 0
            and value(samples, "mastery_relay_lag_oldest_seconds", service="objectives")
            == 0
        )

    await eventually(caught_up, what="the relay catching up")
    _, after = await scrape(objectives)
    moved = value(after, "mastery_relay_published_events_total", service="objectives")
    assert moved is not None
    assert moved >= (published or 0) + 1


async def test_consumer_lag_of_a_follower_settles_at_zero(
    objectives: AsyncTestClient[Litestar],
    keys: TestKeys,
    tenant: str,
    database_url: str,
    nats_url: str,
    subject_prefix: str,
) -> None:
    """Grading follows the objectives stream: its scrape shows its durable
    consumer's pending and unacked messages, which reach zero once the new
    set's event is applied."""
    settings = keys.settings(
        database_url=database_url, nats_url=nats_url, subject_prefix=subject_prefix
    )
    await create_set(objectives, keys, tenant)
    labels = {
        "consumer": "grading-catalogue",
        "stream": f"{subject_prefix.upper()}_OBJECTIVES",
    }

    async with AsyncTestClient(create_grading(settings)) as grading:

        async def settled() -> bool:
            _, samples = await scrape(grading)
            return (
                value(samples, "mastery_consumer_pending_messages", **labels) == 0
                and value(samples, "mastery_consumer_ack_pending_messages", **labels)
                == 0
            )

        await eventually(settled, what="the catalogue consumer settling")


async def test_metrics_are_open_and_left_out_of_the_api_document(
    objectives: AsyncTestClient[Litestar],
) -> None:
    """Prometheus scrapes without a token, and the OpenAPI document, which
    lists the tenant routes, does not list ``/metrics``."""
    response = await objectives.get("/metrics")
    document = await objectives.get("/schema/openapi.json")

    assert response.status_code == 200
    assert "/metrics" not in document.json()["paths"]
