"""A first look at the event store against real PostgreSQL."""

from __future__ import annotations

import pytest

from mastery_events.contract.objectives import ObjectiveSetCreated
from mastery_events.errors import ConcurrencyError
from mastery_events.store import EventStore
from tests.integration.drafts import set_drafted


async def test_appended_events_read_back_in_stream_order(store: EventStore) -> None:
    """Events appended to a stream come back in order with their versions."""
    await store.append(
        "district-7", "set-1", 0, [set_drafted("Ratios"), set_drafted("B")]
    )

    events = await store.read_stream("district-7", "set-1")

    assert [event.stream_version for event in events] == [1, 2]
    decoded = store.registry.decode(events[0])
    assert isinstance(decoded, ObjectiveSetCreated)
    assert decoded.title == "Ratios"


async def test_stale_expected_version_is_refused(store: EventStore) -> None:
    """A writer that expected an older version gets a concurrency error."""
    await store.append("district-7", "set-1", 0, [set_drafted("Ratios")])

    with pytest.raises(ConcurrencyError) as raised:
        await store.append("district-7", "set-1", 0, [set_drafted("Again")])

    assert raised.value.actual == 1
    assert len(await store.read_stream("district-7", "set-1")) == 1
