"""A first look at the event store against real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from mastery_events.contract.objectives import ObjectiveSetCreated
from mastery_events.envelope import PendingEvent
from mastery_events.errors import ConcurrencyError
from mastery_events.store import EventStore

SET_ID = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fa2")
MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)


def created(title: str) -> PendingEvent:
    return PendingEvent(
        payload=ObjectiveSetCreated(
            objective_set_id=SET_ID,
            title=title,
            subject="Mathematics",
            owner_scope="teacher",
            owner_id="teacher-ada",
            created_by="teacher-ada",
            created_at=MONDAY,
        ),
        occurred_at=MONDAY,
        actor="teacher-ada",
        correlation_id=SET_ID,
    )


async def test_appended_events_read_back_in_stream_order(store: EventStore) -> None:
    """Events appended to a stream come back in order with their versions."""
    await store.append("district-7", "set-1", 0, [created("Ratios"), created("B")])

    events = await store.read_stream("district-7", "set-1")

    assert [event.stream_version for event in events] == [1, 2]
    decoded = store.registry.decode(events[0])
    assert isinstance(decoded, ObjectiveSetCreated)
    assert decoded.title == "Ratios"


async def test_stale_expected_version_is_refused(store: EventStore) -> None:
    """A writer that expected an older version gets a concurrency error."""
    await store.append("district-7", "set-1", 0, [created("Ratios")])

    with pytest.raises(ConcurrencyError) as raised:
        await store.append("district-7", "set-1", 0, [created("Again")])

    assert raised.value.actual == 1
    assert len(await store.read_stream("district-7", "set-1")) == 1
