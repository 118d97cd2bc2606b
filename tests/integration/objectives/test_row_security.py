"""The objectives service as the application role: row-level security on
its read models lets every change and read through for the bound tenant
and shows nothing to a transaction that bound none."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from mastery_deploy.credentials import enable_app_login
from mastery_events.contract import CONTRACT
from mastery_events.migrations import migrate
from mastery_events.store import EventStore
from mastery_objectives.importing import ImportRequest, import_file
from mastery_objectives.repository import Actor, ObjectivesRepository
from mastery_objectives.service import SERVICE
from tests.integration.objectives.conftest import FIXTURES

READ_MODELS = (
    "objective_sets",
    "objectives",
    "objective_set_versions",
    "scales",
    "scale_versions",
)


@pytest.fixture
async def app_repository(
    pool: asyncpg.Pool, database_url: str, schema: str
) -> AsyncIterator[ObjectivesRepository]:
    """The repository on a pool logged in as ``mastery_app``, after the
    owner migrated the test's schema."""
    async with pool.acquire() as connection:
        await migrate(connection, schema, SERVICE.migrations)
    app_url = await enable_app_login(database_url, secrets.token_urlsafe(12))
    async with asyncpg.create_pool(app_url, min_size=1, max_size=4) as app_pool:
        yield ObjectivesRepository(EventStore(app_pool, schema, registry=CONTRACT))


async def test_the_application_role_imports_and_reads_within_its_tenant(
    app_repository: ObjectivesRepository, tenant: str, coordinator: Actor
) -> None:
    """An import and a read back both pass the tenant policy."""
    data = (FIXTURES / "smart-level.case.json").read_bytes()

    result = await import_file(
        app_repository,
        tenant,
        request=ImportRequest(data=data, file_name="smart.json"),
        actor=coordinator,
    )
    state = await app_repository.get_set(tenant, result.objective_set_id)
    rebuilt = await app_repository.rebuild(tenant)

    assert len(state.objectives) == 14
    assert rebuilt == 15


async def test_without_a_tenant_no_read_model_row_is_visible(
    app_repository: ObjectivesRepository, schema: str, tenant: str, coordinator: Actor
) -> None:
    """A query that forgets to bind a tenant sees none of the rows an
    import wrote."""
    data = (FIXTURES / "opensalt-sample.csv").read_bytes()
    await import_file(
        app_repository,
        tenant,
        request=ImportRequest(data=data, file_name="opensalt.csv"),
        actor=coordinator,
    )

    async with app_repository.pool.acquire() as connection:
        counts = [
            await connection.fetchval(f'SELECT count(*) FROM "{schema}".{table}')
            for table in READ_MODELS
        ]

    assert counts == [0, 0, 0, 0, 0]
