"""Search everywhere a deployment keeps data for strings that must be gone:
every text, JSON and byte column of every table in the database, and every
message of every JetStream stream on the server.

The table search is driven by the catalog, so a table or column added
later is searched without anyone listing it here. It reads live rows only:
PostgreSQL keeps the old versions of an updated row until vacuum, which no
query can see (see docs/privacy.md).
"""

from __future__ import annotations

import asyncpg
import msgspec
import nats
from nats.js.api import StreamInfo

from mastery_events.database import Connection

# Every column whose type can hold a person's name: character types, JSON,
# bytes, and arrays of them.
SEARCHED_TYPES = ("text", "varchar", "bpchar", "name", "json", "jsonb", "bytea")
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


class Column(msgspec.Struct, frozen=True, kw_only=True):
    """A column of a table that the search reads."""

    schema: str
    table: str
    column: str
    type_name: str
    is_array: bool

    def qualified(self) -> str:
        """Return the table's quoted name."""
        return f'"{self.schema}"."{self.table}"'

    def condition(self) -> str:
        """Return a condition true when this column holds ``$1``, given as
        ``argument`` makes it."""
        quoted = f'"{self.column}"'
        if self.type_name == "bytea" and not self.is_array:
            return f"position($1::bytea in {quoted}) > 0"
        if self.type_name == "bytea":
            return (
                f"EXISTS (SELECT 1 FROM unnest({quoted}) AS item "
                "WHERE position($1::bytea in item) > 0)"
            )
        return f"strpos({quoted}::text, $1) > 0"

    def argument(self, secret: str) -> str | bytes:
        """Return ``secret`` as this column's condition compares it: its
        UTF-8 bytes for a byte column, else the text."""
        return secret.encode() if self.type_name == "bytea" else secret


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """A column where a searched string was found, and in how many rows."""

    where: str
    secret: str
    rows: int


async def searched_columns(connection: Connection) -> list[Column]:
    """Return every column of an ordinary or partitioned table, outside the
    system schemas, whose type can hold text or bytes."""
    rows = await connection.fetch(
        "SELECT n.nspname AS schema, c.relname AS table, a.attname AS column, "
        "coalesce(element.typname, t.typname) AS type_name, "
        "element.oid IS NOT NULL AS is_array "
        "FROM pg_attribute AS a "
        "JOIN pg_class AS c ON c.oid = a.attrelid "
        "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
        "JOIN pg_type AS t ON t.oid = a.atttypid "
        "LEFT JOIN pg_type AS element "
        "ON element.oid = t.typelem AND t.typcategory = 'A' "
        "WHERE c.relkind IN ('r', 'p', 'm') AND a.attnum > 0 "
        "AND NOT a.attisdropped "
        "AND n.nspname <> ALL($1::text[]) AND n.nspname NOT LIKE 'pg_temp%' "
        "AND coalesce(element.typname, t.typname) = ANY($2::text[]) "
        "ORDER BY 1, 2, 3",
        list(SYSTEM_SCHEMAS),
        list(SEARCHED_TYPES),
    )
    return [Column(**dict(row)) for row in rows]


async def search_database(
    pool: asyncpg.Pool, secrets: tuple[str, ...]
) -> tuple[list[Finding], int]:
    """Return where in the database each of ``secrets`` is found, and how
    many columns were searched. The pool's role must see every tenant's
    rows (the session's superuser does: row-level policies do not bind it)."""
    findings: list[Finding] = []
    async with pool.acquire() as connection:
        columns = await searched_columns(connection)
        for column in columns:
            for secret in secrets:
                found: int = await connection.fetchval(
                    f"SELECT count(*) FROM {column.qualified()} "
                    f"WHERE {column.condition()}",
                    column.argument(secret),
                )
                if found:
                    where = f"{column.qualified()}.{column.column}"
                    findings.append(Finding(where=where, secret=secret, rows=found))
    return findings, len(columns)


async def every_stream_message(nats_url: str) -> dict[str, list[bytes]]:
    """Return the data and headers of every message of every stream on the
    server, by stream."""
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        found: dict[str, list[bytes]] = {}
        streams: list[StreamInfo] = []
        # The server lists streams a page at a time.
        while page := await js.streams_info(offset=len(streams)):
            streams.extend(page)
        for stream in streams:
            name = stream.config.name
            assert name is not None
            messages = found.setdefault(name, [])
            state = stream.state
            if state.messages == 0:
                continue
            for sequence in range(state.first_seq, state.last_seq + 1):
                try:
                    message = await js.get_msg(name, sequence)
                except nats.js.errors.NotFoundError:
                    # A gap left by a message the stream deleted.
                    continue
                headers = b"".join(
                    f"{key}:{value}".encode()
                    for key, value in (message.headers or {}).items()
                )
                messages.append(headers + (message.data or b""))
    finally:
        await client.close()
    return found
