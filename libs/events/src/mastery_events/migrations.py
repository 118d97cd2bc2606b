"""Versioned SQL migrations, one schema per service.

Each service owns one PostgreSQL schema. Its migrations are the event store's
(shipped here) followed by its own. Running them is safe twice and safe
concurrently: an advisory lock serialises runners, and applied versions are
recorded in the schema's ``schema_migrations`` table.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from importlib.resources.abc import Traversable

import msgspec

from mastery_events.database import Connection
from mastery_events.errors import EventsError

SCHEMA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MIGRATION_FILE = re.compile(r"^(?P<number>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


class MigrationError(EventsError):
    """Raised when migrations are malformed, or when an applied migration's
    text no longer matches the file that claims its version."""


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    """One SQL file: applied once, in order, inside a transaction."""

    component: str
    number: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(component: str, folder: Traversable) -> list[Migration]:
    """Read ``NNNN_name.sql`` files from a package folder, in number order."""
    found = []
    for entry in folder.iterdir():
        match = MIGRATION_FILE.match(entry.name)
        if match is None:
            continue
        found.append(
            Migration(
                component=component,
                number=int(match["number"]),
                name=match["name"],
                sql=entry.read_text(encoding="utf-8"),
            )
        )

    numbers = Counter(migration.number for migration in found)
    shared = sorted(number for number, count in numbers.items() if count > 1)
    if shared:
        # Two branches that each took the next number: only one could
        # ever be recorded as applied.
        names = ", ".join(f"{number:04d}" for number in shared)
        message = f"{component} has more than one migration numbered {names}"
        raise MigrationError(message)

    return sorted(found, key=lambda migration: migration.number)


def event_store_migrations() -> list[Migration]:
    """Return the migrations that create an event store in a schema."""
    return load_migrations("event_store", resources.files("mastery_events") / "sql")


def quote_schema(schema: str) -> str:
    """Return ``schema`` quoted for SQL, after checking it is a plain name."""
    if SCHEMA_NAME.match(schema) is None:
        message = f"{schema!r} is not a valid schema name (lower-case, a-z0-9_)"
        raise MigrationError(message)
    return f'"{schema}"'


async def migrate(
    connection: Connection,
    schema: str,
    migrations: Sequence[Migration],
) -> list[Migration]:
    """Apply the ``migrations`` not yet applied in ``schema``; return them."""
    quoted = quote_schema(schema)
    applied_now: list[Migration] = []
    async with connection.transaction():
        # One lock per schema: concurrent runners wait, then find nothing to do.
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"mastery.migrate.{schema}",
        )
        await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        await connection.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations (
                component   text NOT NULL,
                number      integer NOT NULL,
                name        text NOT NULL,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, number)
            )
            """
        )
        rows = await connection.fetch(
            f"SELECT component, number, checksum FROM {quoted}.schema_migrations"
        )
        applied = {(row["component"], row["number"]): row["checksum"] for row in rows}

        await connection.execute(f"SET LOCAL search_path TO {quoted}")
        for migration in migrations:
            key = (migration.component, migration.number)
            if key in applied:
                if applied[key] != migration.checksum:
                    message = (
                        f"migration {migration.component} {migration.number:04d} "
                        f"in schema {schema!r} was changed after it was applied"
                    )
                    raise MigrationError(message)
                continue
            await connection.execute(migration.sql)
            await connection.execute(
                f"""
                INSERT INTO {quoted}.schema_migrations
                    (component, number, name, checksum)
                VALUES ($1, $2, $3, $4)
                """,
                migration.component,
                migration.number,
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration)

    return applied_now
