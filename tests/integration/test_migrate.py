"""Migrations against real PostgreSQL: idempotent, race-safe, tamper-evident."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest
from click.testing import CliRunner

from mastery_deploy.cli import main
from mastery_deploy.services import installed_services
from mastery_events.migrations import Migration, MigrationError, migrate
from mastery_events.runtime import Service

RUNNERS = 6

# A service migration of the test's own, so that more than the event store's
# single migration is applied in order.
ROSTER = Migration(
    component="roster",
    number=1,
    name="classes",
    sql="CREATE TABLE classes (class_id text PRIMARY KEY, title text NOT NULL);",
)


@pytest.fixture
async def fresh_schema(pool: asyncpg.Pool) -> AsyncIterator[str]:
    """The name of a schema that does not exist yet, dropped afterwards."""
    name = f"test_migrate_{secrets.token_hex(4)}"
    yield name
    async with pool.acquire() as connection:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def service_with_roster(schema: str) -> Service:
    """A service named after the schema, with the event store and one table."""
    return Service(name=schema, migrations=(ROSTER,))


async def run_migrations(
    pool: asyncpg.Pool, schema: str, migrations: list[Migration]
) -> list[Migration]:
    """Run the migrations on a connection of their own."""
    async with pool.acquire() as connection:
        return await migrate(connection, schema, migrations)


async def test_migrations_run_twice_apply_nothing_the_second_time(
    pool: asyncpg.Pool, fresh_schema: str
) -> None:
    """A second run finds every migration applied and changes nothing."""
    migrations = service_with_roster(fresh_schema).all_migrations()

    first = await run_migrations(pool, fresh_schema, migrations)
    second = await run_migrations(pool, fresh_schema, migrations)

    assert [m.component for m in first] == [
        "event_store",
        "event_store",
        "event_store",
        "event_store",
        "roster",
    ]
    assert second == []


async def test_concurrent_runners_on_a_fresh_schema_apply_each_migration_once(
    pool: asyncpg.Pool, fresh_schema: str
) -> None:
    """Several runners racing on one new schema all succeed, and between them
    apply each migration exactly once."""
    migrations = service_with_roster(fresh_schema).all_migrations()

    results = await asyncio.gather(
        *(run_migrations(pool, fresh_schema, migrations) for _ in range(RUNNERS))
    )

    applied = sorted((m.component, m.number) for result in results for m in result)
    assert applied == [
        ("event_store", 1),
        ("event_store", 2),
        ("event_store", 3),
        ("event_store", 4),
        ("roster", 1),
    ]
    async with pool.acquire() as connection:
        recorded = await connection.fetchval(
            f'SELECT count(*) FROM "{fresh_schema}".schema_migrations'
        )
        tables = await connection.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            fresh_schema,
        )
    assert recorded == 5
    # events, checkpoints, processed_events, event_seals, schema_migrations
    # and classes.
    assert tables == 6


async def test_a_migration_changed_after_it_was_applied_is_reported(
    pool: asyncpg.Pool, fresh_schema: str
) -> None:
    """Editing an applied migration is refused, naming it and the schema,
    rather than being silently skipped."""
    migrations = service_with_roster(fresh_schema).all_migrations()
    await run_migrations(pool, fresh_schema, migrations)
    edited = msgspec.structs.replace(
        ROSTER, sql=ROSTER.sql.replace("title text", "name text")
    )

    with pytest.raises(MigrationError) as raised:
        await run_migrations(pool, fresh_schema, [*migrations[:-1], edited])

    assert str(raised.value) == (
        f"migration roster 0001 in schema {fresh_schema!r} "
        "was changed after it was applied"
    )


def test_mastery_migrate_leaves_every_service_schema_up_to_date(
    database_url: str,
) -> None:
    """`mastery migrate` twice: the second run reports every installed
    service's schema as already up to date."""
    runner = CliRunner()
    environment = {"MASTERY_DATABASE_URL": database_url}

    first = runner.invoke(main, ["migrate"], env=environment)
    second = runner.invoke(main, ["migrate"], env=environment)

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    schemas = [service.schema for service in installed_services()]
    assert schemas == ["objectives", "grading", "reports"]
    assert second.output.splitlines() == [
        f"{schema}: already up to date" for schema in schemas
    ]


def test_mastery_migrate_without_a_database_url_says_so() -> None:
    """With no database configured the command fails and names the variable."""
    result = CliRunner().invoke(main, ["migrate"], env={"MASTERY_DATABASE_URL": ""})

    assert result.exit_code == 1
    assert "MASTERY_DATABASE_URL is not set" in result.output
