"""Fixtures of the objectives integration tests: the service's schema on
the session's PostgreSQL, and a tenant of each test's own."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from mastery_events.contract import CONTRACT
from mastery_events.ids import uuid7
from mastery_events.migrations import migrate
from mastery_events.store import EventStore
from mastery_objectives.repository import Actor, ObjectivesRepository
from mastery_objectives.service import SERVICE

FIXTURES = Path(__file__).parents[2] / "fixtures" / "case"
MONDAY = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
async def repository(pool: asyncpg.Pool, schema: str) -> ObjectivesRepository:
    """The objectives streams and read models in this test's own schema."""
    async with pool.acquire() as connection:
        await migrate(connection, schema, SERVICE.migrations)

    return ObjectivesRepository(EventStore(pool, schema, registry=CONTRACT))


@pytest.fixture
def tenant() -> str:
    """A district of this test's own."""
    return f"district-{secrets.token_hex(4)}"


@pytest.fixture
def coordinator() -> Actor:
    """The district's curriculum coordinator, on Monday morning."""
    return Actor(actor="coordinator-hoover", at=MONDAY, correlation_id=uuid7())
