"""Replaying a service's stream from JetStream with an ordered consumer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from mastery_events.cloudevents import to_nats_headers
from mastery_events.envelope import Envelope
from mastery_events.jetstream import ensure_stream
from mastery_events.replay import Replayed, replay
from mastery_events.subjects import Subjects
from tests.unit.event_samples import sample_envelope

TENANTS = ("springfield-usd", "shelbyville-usd")


@pytest.fixture
async def js(nats_url: str, subject_prefix: str) -> AsyncIterator[JetStreamContext]:
    """JetStream, with the grading stream under this test's own prefix."""
    client: Client = await nats.connect(nats_url)
    context = client.jetstream()
    await ensure_stream(context, "grading", subjects=Subjects(prefix=subject_prefix))
    yield context
    await context.delete_stream(Subjects(prefix=subject_prefix).stream_name("grading"))
    await client.close()


@pytest.fixture
async def published(js: JetStreamContext, subject_prefix: str) -> list[Envelope]:
    """Six events published as the relay publishes them, the two tenants'
    in turn."""
    subjects = Subjects(prefix=subject_prefix)
    envelopes = [
        sample_envelope(
            event_id=UUID(int=number + 1),
            tenant_id=TENANTS[number % 2],
            position=number + 1,
        )
        for number in range(6)
    ]
    for envelope in envelopes:
        subject = subjects.event("grading", envelope.tenant_id, envelope.event_type)
        await js.publish(
            subject,
            bytes(envelope.payload),
            headers=to_nats_headers(envelope, service="grading"),
        )

    return envelopes


async def replayed(
    js: JetStreamContext,
    prefix: str,
    *,
    from_sequence: int,
    tenant_id: str | None = None,
) -> list[Replayed]:
    """Collect what a replay of the grading stream yields."""
    events = replay(
        js,
        "grading",
        subjects=Subjects(prefix=prefix),
        from_sequence=from_sequence,
        tenant_id=tenant_id,
    )
    return [event async for event in events]


async def test_a_replay_from_a_sequence_yields_the_rest_in_order(
    js: JetStreamContext, subject_prefix: str, published: list[Envelope]
) -> None:
    """From sequence 3 on: the last four events, in the order published,
    each with its sequence and the very envelope published."""
    found = await replayed(js, subject_prefix, from_sequence=3)

    assert [event.sequence for event in found] == [3, 4, 5, 6]
    assert [event.envelope for event in found] == published[2:]


async def test_a_replay_of_one_tenant_skips_the_others(
    js: JetStreamContext, subject_prefix: str, published: list[Envelope]
) -> None:
    """Shelbyville's events from sequence 3 on are those at 4 and 6."""
    found = await replayed(
        js, subject_prefix, from_sequence=3, tenant_id="shelbyville-usd"
    )

    assert [event.sequence for event in found] == [4, 6]
    assert {event.envelope.tenant_id for event in found} == {"shelbyville-usd"}


async def test_a_replay_past_the_end_yields_nothing_at_once(
    js: JetStreamContext, subject_prefix: str, published: list[Envelope]
) -> None:
    """Resuming after the last event finds nothing and does not wait."""
    assert await replayed(js, subject_prefix, from_sequence=7) == []
