"""Traces across the services against real PostgreSQL and NATS: a request
that appends an event, the store's append, the relay's send and the
consumer that applies the event in another service, all in one trace, and
none of it naming a tenant, a person or a record."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind

from mastery_grading.app import create_app as create_grading
from mastery_objectives.app import create_app as create_objectives
from tests.tokens import TestKeys, bearer
from tests.waiting import eventually

CATALOGUE = "grading-catalogue"


@pytest.fixture(scope="session")
def tracer_provider() -> TracerProvider:
    """The SDK's tracer provider, installed once: OpenTelemetry lets a
    process set its global provider only once."""
    provider = TracerProvider()
    trace.set_tracer_provider(provider)
    return provider


@pytest.fixture
def spans(tracer_provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    """Every span that ends during this test, kept in memory."""
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    tracer_provider.add_span_processor(processor)
    yield exporter
    # A stopped exporter keeps nothing, so later tests do not pile up spans.
    processor.shutdown()


@pytest.fixture
def keys(tmp_path: Path) -> TestKeys:
    """Fresh signing keys for this test."""
    return TestKeys(tmp_path)


@pytest.fixture
def tenant() -> str:
    """A district of this test's own."""
    return f"district-{secrets.token_hex(4)}"


@pytest.fixture
async def objectives(
    keys: TestKeys,
    database_url: str,
    nats_url: str,
    subject_prefix: str,
    spans: InMemorySpanExporter,
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The objectives service, traced, started with its engines and relay."""
    settings = keys.settings(
        database_url=database_url, nats_url=nats_url, subject_prefix=subject_prefix
    )
    async with AsyncTestClient(create_objectives(settings)) as started:
        yield started


def one(found: Sequence[ReadableSpan], what: str) -> ReadableSpan:
    """Return the single span in ``found``, or fail naming ``what``."""
    assert len(found) == 1, f"expected one {what}, found {[s.name for s in found]}"
    return found[0]


async def test_a_consumer_in_another_service_continues_the_requests_trace(
    objectives: AsyncTestClient[Litestar],
    spans: InMemorySpanExporter,
    keys: TestKeys,
    tenant: str,
    database_url: str,
    nats_url: str,
    subject_prefix: str,
) -> None:
    """Creating an objective set over HTTP appends its event inside the
    request's span; grading's catalogue consumer applies the event under a
    span of the same trace whose parent is that append, and the relay's
    send links to it."""
    token = keys.token(tenant, ["district_admin"], subject="admin-skinner")
    created = await objectives.post(
        "/objective-sets",
        headers=bearer(token),
        json={"title": "Grade 6 ratios", "subject": "mathematics"},
    )
    assert created.status_code == 201, created.text
    set_id = created.json()["objective_set_id"]

    settings = keys.settings(
        database_url=database_url, nats_url=nats_url, subject_prefix=subject_prefix
    )
    async with AsyncTestClient(create_grading(settings)):

        async def applied() -> bool:
            return any(
                span.name == f"process {CATALOGUE}"
                for span in spans.get_finished_spans()
            )

        await eventually(applied, what="the catalogue consumer's span")
    finished = spans.get_finished_spans()

    request = one(
        [s for s in finished if s.kind is SpanKind.SERVER and "POST" in s.name],
        "request span",
    )
    assert request.name == "POST /objective-sets"
    trace_id = request.context.trace_id
    append = one(
        [
            s
            for s in finished
            if s.name == "append objectives.events" and s.context.trace_id == trace_id
        ],
        "append span in the request's trace",
    )
    assert append.parent is not None
    assert append.parent.span_id == request.context.span_id
    assert append.attributes is not None
    assert append.attributes["db.operation.batch.size"] == 1
    assert append.attributes["db.namespace"] == "objectives"

    process = one(
        [s for s in finished if s.name == f"process {CATALOGUE}"],
        "consumer span",
    )
    assert process.kind is SpanKind.CONSUMER
    assert process.context.trace_id == trace_id
    assert process.parent is not None
    assert process.parent.span_id == append.context.span_id

    sends = [s for s in finished if s.kind is SpanKind.PRODUCER]
    linked = {link.context.span_id for send in sends for link in send.links}
    assert append.context.span_id in linked

    for span in finished:
        said = f"{span.name} {dict(span.attributes or {})}"
        assert tenant not in said
        assert set_id not in said
        assert "admin-skinner" not in said


async def test_a_request_path_with_ids_is_traced_by_its_route_template(
    objectives: AsyncTestClient[Litestar],
    spans: InMemorySpanExporter,
    keys: TestKeys,
    tenant: str,
) -> None:
    """Reading one set names the span after the route template, and the
    path the caller sent, with the set's id in it, is on no attribute."""
    token = keys.token(tenant, ["district_admin"], subject="admin-skinner")
    created = await objectives.post(
        "/objective-sets",
        headers=bearer(token),
        json={"title": "Grade 7 geometry", "subject": "mathematics"},
    )
    set_id = created.json()["objective_set_id"]

    read = await objectives.get(f"/objective-sets/{set_id}", headers=bearer(token))

    assert read.status_code == 200, read.text
    request = one(
        [
            s
            for s in spans.get_finished_spans()
            if s.kind is SpanKind.SERVER and s.name.startswith("GET")
        ],
        "GET request span",
    )
    assert request.attributes is not None
    route = request.attributes["http.route"]
    assert isinstance(route, str)
    assert request.name == f"GET {route}"
    assert "{" in request.name
    assert set_id not in f"{request.name} {dict(request.attributes)}"
