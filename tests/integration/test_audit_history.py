"""``mastery audit export`` and ``import`` against real PostgreSQL: a
tenant's history taken to a fresh deployment comes back the same."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec
import pytest
from click.testing import CliRunner, Result

from mastery_deploy.benchmarks import recorded
from mastery_deploy.cli import main
from mastery_events.contract import CONTRACT
from mastery_events.envelope import Envelope
from mastery_events.store import EventStore, StreamAppend
from tests.integration.drafts import set_drafted

# The two attributes a new database hands out afresh.
FRESH = re.compile(rb'"(position|transactionid)":"[0-9]+"')


async def mastery(database_url: str, *arguments: str) -> Result:
    """Run ``mastery`` with ``MASTERY_DATABASE_URL`` set to ``database_url``,
    in a thread, as the command runs its own event loop."""
    runner = CliRunner()
    environment = {"MASTERY_DATABASE_URL": database_url}
    return await asyncio.to_thread(
        runner.invoke, main, list(arguments), env=environment
    )


def same_but_fresh(export: bytes) -> bytes:
    """Return ``export`` with what must differ in another database blanked."""
    return FRESH.sub(rb'"\1":"-"', export)


@contextlib.asynccontextmanager
async def new_deployment(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[str]:
    """Yield the URL of a new, migrated database on the session's server,
    dropped afterwards: the services' shared schemas are left alone, as
    their projections follow whatever is stored there."""
    name = f"audit_{secrets.token_hex(4)}"
    async with pool.acquire() as connection:
        await connection.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    migrated = await mastery(url, "migrate")
    assert migrated.exit_code == 0, migrated.output
    yield url
    async with pool.acquire() as connection:
        await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def fresh_database(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[str]:
    """An empty deployment to import into."""
    async with new_deployment(pool, database_url) as url:
        yield url


@pytest.fixture
async def source_url(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[str]:
    """The deployment a history is recorded in and exported from."""
    async with new_deployment(pool, database_url) as url:
        yield url


@pytest.fixture
async def source_pool(source_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A connection pool to the source deployment."""
    async with asyncpg.create_pool(source_url, min_size=1, max_size=4) as created:
        yield created


@pytest.fixture
def tenant() -> str:
    """A tenant of this test's own in the shared, migrated database."""
    return f"district-{secrets.token_hex(4)}"


@pytest.fixture
async def history(
    source_url: str, source_pool: asyncpg.Pool, tenant: str
) -> list[Envelope]:
    """A tenant's events in two services' stores over several transactions,
    one stream grown to three versions."""
    objectives = EventStore(source_pool, "objectives", registry=CONTRACT)
    grading = EventStore(source_pool, "grading", registry=CONTRACT)
    stored = []
    stored += await objectives.append(
        tenant, "set-a", 0, [set_drafted("Ratios", minute=1)]
    )
    stored += await grading.append_many(
        [
            StreamAppend(
                tenant_id=tenant,
                stream_id=f"assessment-{number}",
                expected_version=0,
                events=[recorded(number)],
            )
            for number in range(3)
        ]
    )
    stored += await objectives.append(
        tenant,
        "set-a",
        1,
        [set_drafted("Rates", minute=2), set_drafted("Unit rates", minute=3)],
    )

    return stored


async def test_an_export_imported_into_a_fresh_deployment_exports_the_same(
    source_url: str,
    fresh_database: str,
    tenant: str,
    history: list[Envelope],
    tmp_path: Path,
) -> None:
    """Export, import elsewhere, export again: the same bytes but for the
    positions and transaction ids the new database gave, and the copy's
    chains and seals verify."""
    first, second = tmp_path / "first.ndjson", tmp_path / "second.ndjson"

    exported = await mastery(
        source_url, "audit", "export", "--tenant", tenant, "--output", str(first)
    )
    imported = await mastery(fresh_database, "audit", "import", str(first))
    again = await mastery(
        fresh_database, "audit", "export", "--tenant", tenant, "--output", str(second)
    )
    # Every tenant of the copy, which holds only this one.
    sealed = await mastery(fresh_database, "audit", "seal")
    verified = await mastery(fresh_database, "audit", "verify", "--no-anchors")

    for result in (exported, imported, again, sealed, verified):
        assert result.exit_code == 0, result.output
    assert len(first.read_bytes().splitlines()) == len(history) == 6
    assert first.read_bytes() != second.read_bytes()
    assert same_but_fresh(first.read_bytes()) == same_but_fresh(second.read_bytes())
    assert "objectives " + tenant + ": 3 events imported" in imported.stdout
    assert "grading " + tenant + ": 3 events imported" in imported.stdout
    assert verified.stdout.splitlines() == [
        f"intact: objectives {tenant}: 3 events, 3 sealed",
        f"intact: grading {tenant}: 3 events, 3 sealed",
    ]


async def test_export_lines_are_cloudevents_in_each_store_s_global_order(
    source_url: str, tenant: str, history: list[Envelope]
) -> None:
    """Each line is a CloudEvent naming its service, its id and its chain
    hash; objectives' events come first, each store's in the order stored."""
    result = await mastery(source_url, "audit", "export", "--tenant", tenant)

    assert result.exit_code == 0, result.output
    lines = [msgspec.json.decode(line) for line in result.stdout_bytes.splitlines()]
    objectives = [e for e in history if e.stream_id == "set-a"]
    grading = [e for e in history if e.stream_id != "set-a"]
    assert [line["id"] for line in lines] == [
        str(e.event_id) for e in [*objectives, *grading]
    ]
    assert lines[0]["specversion"] == "1.0"
    assert lines[0]["type"] == "org.mastery.objectives.ObjectiveSetCreated.v1"
    assert lines[3]["source"] == f"/mastery/grading/tenants/{tenant}"
    assert all(len(bytes.fromhex(line["chainhash"])) == 32 for line in lines)


async def test_export_from_a_time_leaves_out_what_was_recorded_before(
    source_url: str, tenant: str, history: list[Envelope]
) -> None:
    """``--from`` the last append's recorded time keeps only its two events."""
    since = history[-1].recorded_at.isoformat(timespec="microseconds")

    result = await mastery(
        source_url, "audit", "export", "--tenant", tenant, "--from", since
    )

    assert result.exit_code == 0, result.output
    ids = [msgspec.json.decode(line)["id"] for line in result.stdout_bytes.splitlines()]
    assert ids == [str(history[-2].event_id), str(history[-1].event_id)]


async def test_import_into_a_deployment_with_the_tenant_s_events_is_refused(
    source_url: str, tenant: str, history: list[Envelope], tmp_path: Path
) -> None:
    """Importing an export back where it came from stores nothing and says
    which schema already holds the tenant's events."""
    export = tmp_path / "export.ndjson"
    await mastery(
        source_url, "audit", "export", "--tenant", tenant, "--output", str(export)
    )

    result = await mastery(source_url, "audit", "import", str(export))

    assert result.exit_code == 1
    assert f"schema 'objectives' already holds events of tenant {tenant!r}" in (
        result.output
    )


async def test_a_garbled_line_is_named_and_nothing_is_imported(
    source_url: str,
    fresh_database: str,
    tenant: str,
    history: list[Envelope],
    tmp_path: Path,
) -> None:
    """A broken fourth line is refused by file, line and column, and the
    three lines before it are not stored either."""
    export = tmp_path / "export.ndjson"
    await mastery(
        source_url, "audit", "export", "--tenant", tenant, "--output", str(export)
    )
    lines = export.read_bytes().splitlines()
    lines[3] = lines[3].replace(b'"specversion":"1.0",', b'"specversion":1.0,,', 1)
    export.write_bytes(b"\n".join(lines) + b"\n")

    result = await mastery(fresh_database, "audit", "import", str(export))

    assert result.exit_code == 1
    assert f"{export}:4:" in result.output
    connection = await asyncpg.connect(fresh_database)
    try:
        stored = await connection.fetchval("SELECT count(*) FROM objectives.events")
    finally:
        await connection.close()
    assert stored == 0


async def test_an_altered_payload_in_an_export_fails_its_chain_hash(
    source_url: str,
    fresh_database: str,
    tenant: str,
    history: list[Envelope],
    tmp_path: Path,
) -> None:
    """A title changed in the export no longer chains to the hash exported
    with it: the import names its line and stores nothing."""
    export = tmp_path / "export.ndjson"
    await mastery(
        source_url, "audit", "export", "--tenant", tenant, "--output", str(export)
    )
    text = export.read_bytes().replace(b'"title":"Rates"', b'"title":"Rats"')
    export.write_bytes(text)

    result = await mastery(fresh_database, "audit", "import", str(export))

    assert result.exit_code == 1
    assert f"{export}:2:1: event {history[-2].event_id} does not chain" in (
        result.output
    )


async def test_verify_names_a_tampered_event_and_exits_non_zero(
    source_url: str, tenant: str, history: list[Envelope], source_pool: asyncpg.Pool
) -> None:
    """After sealing, a grading event's level is changed in the database:
    ``mastery audit verify`` exits 1 and names that event and its stream."""
    target = history[2]
    sealed = await mastery(source_url, "audit", "seal", "--tenant", tenant)
    async with source_pool.acquire() as connection:
        await connection.execute(
            """UPDATE grading.events
            SET payload = replace(payload::text, '"level":2.0', '"level":4.0')::json
            WHERE event_id = $1""",
            target.event_id,
        )

    result = await mastery(
        source_url, "audit", "verify", "--no-anchors", "--tenant", tenant
    )

    assert sealed.exit_code == 0, sealed.output
    assert result.exit_code == 1, result.output
    assert f"TAMPERED: grading {tenant}: 3 events, 3 sealed" in result.stdout
    assert (
        f"changed: event {target.event_id} (stream {target.stream_id}, "
        f"version 1, position {target.position})"
    ) in result.stdout
    assert f"intact: objectives {tenant}: 3 events, 3 sealed" in result.stdout


async def test_an_export_missing_an_event_is_refused_at_the_one_after_it(
    source_url: str,
    fresh_database: str,
    tenant: str,
    history: list[Envelope],
    tmp_path: Path,
) -> None:
    """Without its second line, version 2 of set-a, the export's new second
    line, version 3, has nothing to chain to: that line is refused."""
    export = tmp_path / "export.ndjson"
    await mastery(
        source_url, "audit", "export", "--tenant", tenant, "--output", str(export)
    )
    lines = export.read_bytes().splitlines(keepends=True)
    export.write_bytes(b"".join([lines[0], *lines[2:]]))

    result = await mastery(fresh_database, "audit", "import", str(export))

    assert result.exit_code == 1
    assert f"{export}:2:1: " in result.output
    assert "stream set-a has no version 2 to chain version 3" in result.output
