"""Fixtures of the grading integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from mastery_grading.app import create_app
from tests.integration.grading.classroom import (
    SCHEMA,
    School,
    fill_catalogue,
    new_tenant,
    record_roster,
)
from tests.tokens import TestKeys


@pytest.fixture
async def school(
    tmp_path: Path,
    database_url: str,
    nats_url: str,
    subject_prefix: str,
    pool: asyncpg.Pool,
) -> AsyncIterator[School]:
    """Grading running on the session's engines, with a tenant of this
    test's own whose catalogue and roster are filled."""
    keys = TestKeys(tmp_path)
    settings = keys.settings(
        database_url=database_url, nats_url=nats_url, subject_prefix=subject_prefix
    )
    tenant = new_tenant()
    async with AsyncTestClient(app=create_app(settings)) as client:
        await fill_catalogue(pool, SCHEMA, tenant)
        await record_roster(pool, SCHEMA, tenant)
        yield School(client, keys, pool, tenant)
