"""The log partitioned by tenant: a log stored before the partitioning
migration comes through it whole, keeps being appended to and verified, and
reading a stream touches only its tenant's partition."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from mastery_events.contract import CONTRACT
from mastery_events.migrations import event_store_migrations, migrate
from mastery_events.seals import Sealer
from mastery_events.store import EventStore
from tests.integration.drafts import set_drafted
from tests.integration.test_audit_verify import TENANT, verify

PARTITIONING = 5
ROW = (
    "SELECT event_id, position, transaction_id::text, stream_id, "
    "stream_version, chain_hash, payload::text FROM {schema}.events "
    "ORDER BY position"
)


@pytest.fixture
async def unpartitioned(pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A schema migrated up to, and not through, the partitioning."""
    name = f"test_partition_{secrets.token_hex(4)}"
    before = [m for m in event_store_migrations() if m.number < PARTITIONING]
    async with pool.acquire() as connection:
        await migrate(connection, name, before)
    yield name
    async with pool.acquire() as connection:
        await connection.execute(f'DROP SCHEMA "{name}" CASCADE')


async def stored_rows(pool: asyncpg.Pool, schema: str) -> list[tuple[Any, ...]]:
    """Every event as stored, as the schema's owner reads it."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "SELECT set_config('mastery.tenant_id', $1, true)", TENANT
        )
        rows = await connection.fetch(ROW.format(schema=f'"{schema}"'))
    return [tuple(row) for row in rows]


async def test_a_log_from_before_comes_through_whole_and_goes_on(
    pool: asyncpg.Pool, unpartitioned: str
) -> None:
    """Events stored in the single table keep their ids, positions,
    transaction ids and chain hashes in the partitioned one; the next
    append continues their stream and takes a later position; the whole
    log verifies against seals taken before the move."""
    store = EventStore(pool, unpartitioned, registry=CONTRACT)
    await store.append(
        TENANT, "set-a", 0, [set_drafted("a1", minute=1), set_drafted("a2", minute=2)]
    )
    await store.append(TENANT, "set-b", 0, [set_drafted("b1", minute=3)])
    async with pool.acquire() as connection:
        await Sealer(unpartitioned).seal(connection, TENANT)
    before = await stored_rows(pool, unpartitioned)

    async with pool.acquire() as connection:
        applied = await migrate(connection, unpartitioned, event_store_migrations())
        kind = await connection.fetchval(
            "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'events'",
            unpartitioned,
        )
    [continued] = await store.append(TENANT, "set-a", 2, [set_drafted("a3", minute=4)])
    after = await stored_rows(pool, unpartitioned)
    verdict = await verify(pool, unpartitioned)

    assert [m.number for m in applied] == [PARTITIONING]
    assert kind == "p"
    assert len(before) == 3
    assert after[:3] == before
    assert continued.position > max(row[1] for row in before)
    assert (verdict.events, verdict.findings) == (4, [])


async def test_reading_a_stream_scans_one_partition(
    pool: asyncpg.Pool, store: EventStore, schema: str
) -> None:
    """The planner prunes a stream's read to the partition of its tenant,
    whatever other tenants hold."""
    for tenant in ("district-1", "district-2", "district-3", TENANT):
        await store.append(tenant, "set-a", 0, [set_drafted("a1", minute=1)])

    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "SELECT set_config('mastery.tenant_id', $1, true)", TENANT
        )
        [plan] = json.loads(
            await connection.fetchval(
                f'EXPLAIN (FORMAT JSON) SELECT * FROM "{schema}".events '
                f"WHERE tenant_id = '{TENANT}' AND stream_id = 'set-a' "
                "ORDER BY stream_version"
            )
        )
        read = await store.read_stream(TENANT, "set-a")

    scanned = set(relations(plan["Plan"]))
    assert len(scanned) == 1
    assert scanned.pop().startswith("events_p")
    assert [event.stream_version for event in read] == [1]


def relations(node: dict[str, Any]) -> list[str]:
    """Return every relation a plan node and those under it read."""
    found = [node["Relation Name"]] if "Relation Name" in node else []
    for child in node.get("Plans", []):
        found.extend(relations(child))
    return found
