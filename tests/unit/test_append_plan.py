"""How the event store lays out an append before it writes anything."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from mastery_events.contract import CONTRACT
from mastery_events.contract.objectives import ObjectiveSetPublished
from mastery_events.envelope import PendingEvent
from mastery_events.store import StreamAppend, plan_append
from mastery_events.subjects import InvalidTenantError

SET_ID = UUID("0190a5c4-1e00-7000-8000-000000000005")
MONDAY = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def published(set_version: int) -> PendingEvent:
    """Return the publication of version ``set_version`` of one set."""
    return PendingEvent(
        payload=ObjectiveSetPublished(
            objective_set_id=SET_ID,
            set_version=set_version,
            published_by="coordinator-hoover",
            published_at=MONDAY,
        ),
        occurred_at=MONDAY,
        actor="coordinator-hoover",
        correlation_id=SET_ID,
    )


def append(tenant_id: str, stream_id: str, expected: int, count: int) -> StreamAppend:
    """Return ``count`` publications for one stream, expecting ``expected``."""
    return StreamAppend(
        tenant_id=tenant_id,
        stream_id=stream_id,
        expected_version=expected,
        events=[published(number) for number in range(count)],
    )


def test_each_stream_is_checked_once_and_numbered_from_its_expected_version() -> None:
    """Rows carry consecutive versions after each stream's expected one."""
    plan = plan_append(
        [append("district-7", "set-a", 3, 2), append("district-7", "set-b", 0, 1)],
        CONTRACT.of,
    )

    assert [(c.stream_id, c.expected_version) for c in plan.checks] == [
        ("set-a", 3),
        ("set-b", 0),
    ]
    assert plan.stream_ids == ["set-a", "set-a", "set-b"]
    assert plan.stream_versions == [4, 5, 1]
    assert [t.name for t in plan.event_types] == ["ObjectiveSetPublished"] * 3


def test_batches_that_follow_on_in_one_stream_share_one_check() -> None:
    """A second batch expecting the version the first leaves is checked with
    the first, so the stream need only be at the first's version."""
    plan = plan_append(
        [append("district-7", "set-a", 0, 2), append("district-7", "set-a", 2, 1)],
        CONTRACT.of,
    )

    assert [c.expected_version for c in plan.checks] == [0]
    assert plan.stream_versions == [1, 2, 3]


def test_a_repeat_that_does_not_follow_on_keeps_its_own_check() -> None:
    """A repeat expecting any other version is checked on its own, which the
    stream cannot pass together with the first."""
    plan = plan_append(
        [append("district-7", "set-a", 0, 1), append("district-7", "set-a", 5, 1)],
        CONTRACT.of,
    )

    assert [c.expected_version for c in plan.checks] == [0, 5]


def test_one_stream_id_in_two_tenants_is_checked_twice() -> None:
    """The same stream id under two tenants is two streams."""
    plan = plan_append(
        [append("district-7", "set-a", 0, 1), append("district-9", "set-a", 1, 1)],
        CONTRACT.of,
    )

    assert [(c.tenant_id, c.expected_version) for c in plan.checks] == [
        ("district-7", 0),
        ("district-9", 1),
    ]
    assert plan.stream_versions == [1, 2]


def test_an_empty_batch_writes_nothing_but_its_tenant_is_still_checked() -> None:
    """A batch without events adds no rows and no check, yet a malformed
    tenant in it refuses the whole append."""
    plan = plan_append([append("district-7", "set-a", 0, 0)], CONTRACT.of)

    assert plan.checks == []
    assert plan.pending == []
    with pytest.raises(InvalidTenantError):
        plan_append(
            [append("district-7", "set-a", 0, 1), append("District 7", "x", 0, 0)],
            CONTRACT.of,
        )
