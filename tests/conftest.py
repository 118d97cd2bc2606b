"""Fixtures shared by every test: real engines and a clean schema per test."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from mastery_events.contract import CONTRACT
from mastery_events.keyring import (
    SCHEMA as KEYRING_SCHEMA,
)
from mastery_events.keyring import (
    Keyring,
    LocalKeyWrapper,
    decode_key_encryption_key,
    keyring_migrations,
)
from mastery_events.migrations import event_store_migrations, migrate
from mastery_events.settings import Settings
from mastery_events.store import EventStore
from tests.engines import TestEngines, test_engines
from tests.keys import KEY_ENCRYPTION_KEY


@pytest.fixture(scope="session")
def engines(
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
) -> Iterator[TestEngines]:
    """Real PostgreSQL and NATS JetStream servers for the whole session."""
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")

    def report(line: str) -> None:
        if reporter is not None:
            reporter.write_line(line)

    with test_engines(tmp_path_factory.mktemp("engines"), report=report) as found:
        yield found


@pytest.fixture
def database_url(engines: TestEngines) -> str:
    """The URL of the session's PostgreSQL server."""
    return engines.database_url


@pytest.fixture
def nats_url(engines: TestEngines) -> str:
    """The URL of the session's NATS server, with JetStream."""
    return engines.nats_url


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A connection pool to the session's PostgreSQL server."""
    async with asyncpg.create_pool(database_url, min_size=1, max_size=40) as created:
        yield created


@pytest.fixture
async def schema(pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A schema of its own for this test, with the event store migrated in."""
    name = f"test_{secrets.token_hex(6)}"
    async with pool.acquire() as connection:
        await migrate(connection, name, event_store_migrations())
    yield name
    async with pool.acquire() as connection:
        await connection.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def store(pool: asyncpg.Pool, schema: str) -> EventStore:
    """An event store on this test's own schema."""
    return EventStore(pool, schema, registry=CONTRACT)


@pytest.fixture
def subject_prefix() -> str:
    """A NATS subject prefix of this test's own, so tests sharing one
    server never see each other's messages."""
    return f"test{secrets.token_hex(4)}"


@pytest.fixture
def settings(database_url: str, nats_url: str, subject_prefix: str) -> Settings:
    """Settings that reach the session's engines, on this test's subjects,
    with the session's key-encryption key; a module that needs another
    setting overrides this fixture and replaces the field."""
    return Settings(
        database_url=database_url,
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        key_encryption_key=KEY_ENCRYPTION_KEY,
    )


@pytest.fixture
async def keyring(pool: asyncpg.Pool) -> Keyring:
    """The session's keyring, on the shared ``keyring`` schema, sealing with
    the session's key-encryption key."""
    made = Keyring(LocalKeyWrapper(decode_key_encryption_key(KEY_ENCRYPTION_KEY)))
    async with pool.acquire() as connection:
        await migrate(connection, KEYRING_SCHEMA, keyring_migrations())
        await made.check(connection)

    return made
