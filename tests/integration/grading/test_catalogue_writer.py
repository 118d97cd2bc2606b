"""The catalogue's handler on real PostgreSQL, called directly: an event
applied twice, or an older event applied after a newer one of its stream,
leaves the catalogue as the newest event left it."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import msgspec
import pytest

from mastery_events.contract.objectives import (
    CalculationPolicy,
    CalculationPolicyCleared,
    CalculationPolicySet,
    ScaleDefined,
    ScaleLevel,
    ScalePublished,
)
from mastery_events.envelope import Envelope, Event
from mastery_events.ids import uuid7
from mastery_events.migrations import migrate
from mastery_events.tenancy import tenant_transaction
from mastery_grading.catalogue_store import Catalogue, CatalogueWriter
from mastery_grading.service import SERVICE

TENANT = "lakeside"
SCALE_ID = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fb1")
SET_ID = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fc2")
OBJECTIVE_ID = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fd3")
MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)


@pytest.fixture
async def catalogue(pool: asyncpg.Pool, schema: str) -> Catalogue:
    """Grading's catalogue tables in this test's own schema."""
    async with pool.acquire() as connection:
        await migrate(connection, schema, SERVICE.migrations)

    return Catalogue(pool, schema)


def envelope(event: Event, stream_version: int) -> Envelope:
    """Wrap ``event`` as the ``stream_version``-th event of its stream."""
    return Envelope(
        event_id=uuid7(),
        event_type=type(event).__name__,
        event_version=1,
        tenant_id=TENANT,
        stream_id="scale-or-set",
        stream_version=stream_version,
        position=stream_version,
        transaction_id=stream_version,
        occurred_at=MONDAY,
        recorded_at=MONDAY,
        actor="coordinator-hoover",
        correlation_id=uuid7(),
        payload=msgspec.Raw(b"{}"),
    )


async def apply(pool: asyncpg.Pool, schema: str, *events: tuple[Event, int]) -> None:
    """Apply each ``(event, stream_version)`` in its own transaction, as
    the consumer does."""
    writer = CatalogueWriter(schema)
    for event, stream_version in events:
        async with (
            pool.acquire() as connection,
            tenant_transaction(connection, TENANT),
        ):
            await writer(connection, envelope(event, stream_version), event)


def scale_defined() -> ScaleDefined:
    """A two-level pass/not-yet scale with mastery at the pass."""
    return ScaleDefined(
        scale_id=SCALE_ID,
        name="Pass or not yet",
        levels=(
            ScaleLevel(value=0, label="Not yet", short_label="N", colour="#aa3322"),
            ScaleLevel(value=1, label="Pass", short_label="P", colour="#22aa33"),
        ),
        mastery_threshold=1.0,
        defined_by="coordinator-hoover",
        defined_at=MONDAY,
    )


def published(version: int) -> ScalePublished:
    """Version ``version`` of the scale published."""
    return ScalePublished(
        scale_id=SCALE_ID,
        scale_version=version,
        published_by="coordinator-hoover",
        published_at=MONDAY,
    )


async def test_a_scale_version_applied_twice_is_kept_once(
    pool: asyncpg.Pool, schema: str, catalogue: Catalogue
) -> None:
    """The second ScaleDefined changes nothing: one row, the same view."""
    await apply(pool, schema, (scale_defined(), 1), (scale_defined(), 1))

    view = await catalogue.scale_version(TENANT, SCALE_ID, 1)
    async with pool.acquire() as connection, tenant_transaction(connection, TENANT):
        rows = await connection.fetchval(
            f'SELECT count(*) FROM "{schema}".catalogue_scale_versions'
        )

    assert rows == 1
    assert [level.cut for level in view.levels] == [0.0, 0.5]


async def test_an_older_publication_applied_late_does_not_win(
    pool: asyncpg.Pool, schema: str, catalogue: Catalogue
) -> None:
    """Version 2 published at stream version 4 stays published when the
    publication of version 1, stream version 3, arrives after it."""
    await apply(
        pool, schema, (scale_defined(), 1), (published(2), 4), (published(1), 3)
    )

    async with pool.acquire() as connection, tenant_transaction(connection, TENANT):
        found = await connection.fetchval(
            f'SELECT published_version FROM "{schema}".catalogue_scales'
        )

    assert found == 2


async def test_a_cleared_override_stays_cleared_when_its_setting_comes_late(
    pool: asyncpg.Pool, schema: str, catalogue: Catalogue
) -> None:
    """The clearing at stream version 6 is not undone by the override set
    at stream version 5 arriving after it: the set's policy applies, and
    the override's version is still kept."""
    set_policy = CalculationPolicySet(
        objective_set_id=SET_ID,
        policy_version=1,
        policy=CalculationPolicy(method="highest"),
        set_by="coordinator-hoover",
        set_at=MONDAY,
    )
    override = msgspec.structs.replace(
        set_policy,
        objective_id=OBJECTIVE_ID,
        policy=CalculationPolicy(method="n_times", n=2),
    )
    cleared = CalculationPolicyCleared(
        objective_set_id=SET_ID,
        objective_id=OBJECTIVE_ID,
        cleared_by="coordinator-hoover",
        cleared_at=MONDAY,
    )

    await apply(pool, schema, (set_policy, 2), (cleared, 6), (override, 5))

    in_force = await catalogue.policy_in_force(TENANT, SET_ID, OBJECTIVE_ID)
    kept = await catalogue.policy_version(TENANT, SET_ID, 1, objective_id=OBJECTIVE_ID)
    assert in_force is not None
    assert in_force.method == "highest"
    assert (kept.method, kept.n) == ("n_times", 2)
