"""Migrate every installed service's schema in one database."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec

from mastery_events.migrations import migrate
from mastery_events.runtime import Service


class SchemaMigrated(msgspec.Struct, frozen=True, kw_only=True):
    """What one run applied to one service's schema."""

    schema: str
    applied: list[str]


async def migrate_services(
    database_url: str, services: Sequence[Service]
) -> list[SchemaMigrated]:
    """Apply each service's pending migrations to its own schema."""
    results = []
    connection = await asyncpg.connect(database_url)
    try:
        for service in services:
            applied = await migrate(
                connection, service.schema, service.all_migrations()
            )
            results.append(
                SchemaMigrated(
                    schema=service.schema,
                    applied=[f"{m.component}/{m.number:04d}_{m.name}" for m in applied],
                )
            )
    finally:
        await connection.close()

    return results
