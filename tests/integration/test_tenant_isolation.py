"""Row-level security in real PostgreSQL: the database itself keeps each
tenant's rows apart when the application connects as ``mastery_app``, even
where the application's own query forgets to filter."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest

from mastery_deploy.credentials import enable_app_login
from mastery_deploy.services import installed_services
from mastery_events.contract import CONTRACT
from mastery_events.envelope import PendingEvent
from mastery_events.ids import uuid7
from mastery_events.migrations import migrate
from mastery_events.store import EventStore, StreamAppend
from mastery_events.subjects import InvalidTenantError
from mastery_events.tenancy import (
    OpenTransactionError,
    set_tenant,
    system_transaction,
    tenant_read,
    tenant_transaction,
)
from tests.integration.gradebook import recorded

# Rows of the log's followers and of the migration runner, not of a tenant.
SYSTEM_TABLES = frozenset({"checkpoints", "schema_migrations"})


@pytest.fixture
async def app_pool(database_url: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool that logs in as the application role, as services do, once
    the test's schema is migrated (which creates the role)."""
    app_url = await enable_app_login(database_url, secrets.token_urlsafe(12))
    async with asyncpg.create_pool(app_url, min_size=1, max_size=4) as created:
        yield created


def pending(actor: str) -> PendingEvent:
    """Return one assessment to append, recorded by ``actor``."""
    return msgspec.structs.replace(recorded(7), actor=actor, event_id=uuid7())


@pytest.fixture
async def two_tenants(store: EventStore) -> EventStore:
    """A store holding two events of tenant ``lakeside`` and one of
    ``riverside``, written by the owner."""
    await store.append("lakeside", "class-7a", 0, [pending("ms-frizzle")])
    await store.append("lakeside", "class-7b", 0, [pending("ms-frizzle")])
    await store.append("riverside", "class-3c", 0, [pending("mr-ratburn")])
    return store


async def test_without_a_tenant_the_application_role_sees_no_event(
    app_pool: asyncpg.Pool, schema: str, two_tenants: EventStore
) -> None:
    """A query that forgets its tenant filter, in a transaction that never
    set a tenant, returns nothing rather than every tenant's rows."""
    async with app_pool.acquire() as connection, connection.transaction():
        count = await connection.fetchval(f'SELECT count(*) FROM "{schema}".events')

    assert count == 0


async def test_with_a_tenant_set_only_its_rows_are_visible(
    app_pool: asyncpg.Pool, schema: str, two_tenants: EventStore
) -> None:
    """The same unfiltered query sees lakeside's two events and none of
    riverside's, and the setting is gone once the transaction ends."""
    async with app_pool.acquire() as connection:
        async with tenant_transaction(connection, "lakeside"):
            tenants = await connection.fetch(f'SELECT tenant_id FROM "{schema}".events')
        afterwards = await connection.fetchval(
            f'SELECT count(*) FROM "{schema}".events'
        )

    assert [row["tenant_id"] for row in tenants] == ["lakeside", "lakeside"]
    assert afterwards == 0


async def test_a_read_in_one_round_trip_sees_only_its_tenant_and_writes_nothing(
    app_pool: asyncpg.Pool, schema: str, two_tenants: EventStore
) -> None:
    """``tenant_read`` sees riverside's one event and none of lakeside's,
    refuses to write, leaves no setting behind, and turns away a tenant id
    that would break out of its statement before anything is sent."""
    async with app_pool.acquire() as connection:
        async with tenant_read(connection, "riverside"):
            tenants = await connection.fetch(f'SELECT tenant_id FROM "{schema}".events')
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            async with tenant_read(connection, "riverside"):
                await connection.execute(f'DELETE FROM "{schema}".events')
        rolled_back = not connection.is_in_transaction()
        afterwards = await connection.fetchval(
            f'SELECT count(*) FROM "{schema}".events'
        )
        with pytest.raises(InvalidTenantError):
            async with tenant_read(connection, "x', false); SELECT ('"):
                pass
        async with tenant_transaction(connection, "lakeside"):
            with pytest.raises(OpenTransactionError):
                async with tenant_read(connection, "riverside"):
                    pass
            inside = await connection.fetchval(
                f'SELECT count(*) FROM "{schema}".events'
            )

    assert [row["tenant_id"] for row in tenants] == ["riverside"]
    assert afterwards == 0
    assert inside == 2
    assert rolled_back


async def test_writing_a_row_for_another_tenant_is_refused(
    app_pool: asyncpg.Pool, schema: str, two_tenants: EventStore
) -> None:
    """With lakeside set, an insert of a riverside row breaks the policy."""
    store = EventStore(app_pool, schema, registry=CONTRACT)
    async with app_pool.acquire() as connection:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with tenant_transaction(connection, "lakeside"):
                await store.append_within(
                    connection,
                    [_batch("riverside", "class-4d", 0)],
                )


async def test_the_application_role_may_not_change_the_log(
    app_pool: asyncpg.Pool, schema: str, two_tenants: EventStore
) -> None:
    """The log is append-only for the application, even within its tenant."""
    async with app_pool.acquire() as connection:
        for statement in (
            f"UPDATE \"{schema}\".events SET actor = 'mallory'",
            f'DELETE FROM "{schema}".events',
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with tenant_transaction(connection, "lakeside"):
                    await connection.execute(statement)


async def test_the_store_works_for_the_application_role_one_tenant_at_a_time(
    app_pool: asyncpg.Pool, schema: str, two_tenants: EventStore
) -> None:
    """Appends and reads through the store set their own tenant, and the
    relay's path reads every tenant in order."""
    store = EventStore(app_pool, schema, registry=CONTRACT)

    await store.append("riverside", "class-3c", 1, [pending("mr-ratburn")])
    lakeside = await store.read_stream("lakeside", "class-7a")
    riverside = await store.read_stream("riverside", "class-3c")
    everything = [envelope async for envelope in store.read_all()]

    assert [e.actor for e in lakeside] == ["ms-frizzle"]
    assert [e.actor for e in riverside] == ["mr-ratburn", "mr-ratburn"]
    assert [e.tenant_id for e in everything] == [
        "lakeside",
        "lakeside",
        "riverside",
        "riverside",
    ]


async def test_the_relay_role_is_not_inherited_by_the_application(
    app_pool: asyncpg.Pool, schema: str, two_tenants: EventStore
) -> None:
    """Only an explicit switch to the relay's role reads across tenants; it
    still may not write a tenant's events."""
    async with app_pool.acquire() as connection:
        async with system_transaction(connection):
            seen = await connection.fetchval(f'SELECT count(*) FROM "{schema}".events')
        store = EventStore(app_pool, schema, registry=CONTRACT)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # noqa: PT012
            async with system_transaction(connection):
                await set_tenant(connection, "lakeside")
                await store.append_within(
                    connection, [_batch("lakeside", "class-9z", 0)]
                )
        async with connection.transaction():
            unswitched = await connection.fetchval(
                f'SELECT count(*) FROM "{schema}".events'
            )

    assert seen == 3
    assert unswitched == 0


async def test_every_service_table_has_a_tenant_and_forced_row_security(
    pool: asyncpg.Pool,
) -> None:
    """Each installed service's schema, migrated, holds no table outside the
    system tables that lacks ``tenant_id`` or enabled and forced row-level
    security, so a table added without ``isolate_by_tenant`` fails here."""
    services = installed_services()
    async with pool.acquire() as connection:
        for service in services:
            await migrate(connection, service.schema, service.all_migrations())
        rows = await connection.fetch(
            """
            SELECT n.nspname AS schema, c.relname AS table,
                   c.relrowsecurity AND c.relforcerowsecurity AS forced,
                   EXISTS (
                       SELECT FROM pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                         AND NOT a.attisdropped
                   ) AS has_tenant
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[])
            """,
            [service.schema for service in services],
        )

    checked = {(row["schema"], row["table"]) for row in rows}
    unprotected = {
        (row["schema"], row["table"])
        for row in rows
        if row["table"] not in SYSTEM_TABLES
        and not (row["forced"] and row["has_tenant"])
    }
    assert {service.schema for service in services} == {
        "objectives",
        "grading",
        "reports",
    }
    assert ("grading", "events") in checked
    assert unprotected == set()


def _batch(tenant_id: str, stream_id: str, expected: int) -> StreamAppend:
    """Return a one-event append for ``stream_id`` of ``tenant_id``."""
    return StreamAppend(
        tenant_id=tenant_id,
        stream_id=stream_id,
        expected_version=expected,
        events=[pending("mallory")],
    )
