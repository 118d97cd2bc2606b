"""Roster imports stored on real PostgreSQL: the events and the read model
commit together, a re-import records nothing, ``tobedeleted`` removes, an
erased person stays erased, and the tables rebuild from the log alone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from mastery_events.keyring import Keyring
from mastery_events.migrations import migrate
from mastery_events.store import EventStore
from mastery_events.tenancy import tenant_transaction
from mastery_grading.oneroster import read_bundle, read_bundle_directory
from mastery_grading.roster_store import ROSTER_TABLES
from mastery_grading.rostering import Actor, Rostering
from mastery_grading.service import SERVICE
from tests.unit.grading.test_oneroster import CLASSES, lakeside, with_row

LAKESIDE = Path(__file__).parents[2] / "fixtures" / "oneroster" / "lakeside"
TENANT = "lakeside-roster"
AUGUST = datetime(2026, 8, 24, 7, 0, tzinfo=UTC)
SEPTEMBER = datetime(2026, 9, 14, 7, 0, tzinfo=UTC)


@pytest.fixture
async def rostering(
    pool: asyncpg.Pool, schema: str, store: EventStore, keyring: Keyring
) -> Rostering:
    """Grading's roster on this test's own schema and the session keyring."""
    async with pool.acquire() as connection:
        await migrate(connection, schema, SERVICE.migrations)

    return Rostering(pool, store, keyring, schema=schema)


def admin(at: datetime) -> Actor:
    """The district admin who imports, at ``at``."""
    return Actor(subject="ada", at=at)


async def count_events(pool: asyncpg.Pool, schema: str) -> int:
    """Return how many events the test's log holds."""
    async with pool.acquire() as connection:
        found: int = await connection.fetchval(
            f'SELECT count(*) FROM "{schema}".events'
        )
    return found


async def tables(pool: asyncpg.Pool, schema: str) -> dict[str, list[dict[str, Any]]]:
    """Return every roster table's rows, in a stable order."""
    found = {}
    async with pool.acquire() as connection:
        for table in ROSTER_TABLES:
            rows = await connection.fetch(
                f'SELECT * FROM "{schema}".{table} ORDER BY 1, 2, 3'
            )
            found[table] = [dict(row) for row in rows]
    return found


async def test_a_bundle_imports_as_events_and_read_model_together(
    rostering: Rostering, pool: asyncpg.Pool, schema: str
) -> None:
    """Lakeside records 17 roster events and a summary, and the read model
    holds its sections, six people sealed, and Grace's guardian."""
    summary = await rostering.import_bundle(
        TENANT, read_bundle_directory(LAKESIDE), actor=admin(AUGUST)
    )

    assert summary.events == 18
    assert summary.import_id is not None
    assert summary.counts["people_added"] == 6
    assert await count_events(pool, schema) == 18
    found = await tables(pool, schema)
    assert [row["section_id"] for row in found["roster_sections"]] == [
        "alg-h",
        "alg-r",
    ]
    assert found["roster_sections"][0]["course_title"] == "Algebra I"
    assert len(found["roster_people"]) == 6
    assert all(row["personal"] is not None for row in found["roster_people"])
    assert len(found["roster_enrollments"]) == 5
    assert len(found["roster_guardians"]) == 1


async def test_names_are_sealed_in_the_log_and_open_through_the_keyring(
    rostering: Rostering, pool: asyncpg.Pool, schema: str
) -> None:
    """No table holds Hopper in the clear; the keyring opens Grace's seal
    to her fields."""
    await rostering.import_bundle(
        TENANT, read_bundle_directory(LAKESIDE), actor=admin(AUGUST)
    )

    async with pool.acquire() as connection:
        plain = await connection.fetchval(
            f'SELECT count(*) FROM "{schema}".events WHERE payload::text LIKE $1',
            "%Hopper%",
        )
        students = await rostering.reader.students(connection, TENANT, "alg-h")
    async with pool.acquire() as connection, tenant_transaction(connection, TENANT):
        opened = await rostering.keyring.open_many(
            connection,
            tenant_id=TENANT,
            sealed=[s.personal for s in students if s.personal is not None],
        )

    assert plain == 0
    names = sorted(
        f"{f['given_name']} {f['family_name']}" for f in opened.values() if f
    )
    assert names == ["Grace Hopper", "Katherine Johnson"]


async def test_reimporting_the_same_bundle_records_nothing(
    rostering: Rostering, pool: asyncpg.Pool, schema: str
) -> None:
    """The second import of Lakeside appends no event, not even a summary,
    and leaves every table as it was."""
    await rostering.import_bundle(
        TENANT, read_bundle_directory(LAKESIDE), actor=admin(AUGUST)
    )
    before = await tables(pool, schema)

    again = await rostering.import_bundle(
        TENANT, read_bundle_directory(LAKESIDE), actor=admin(SEPTEMBER)
    )

    assert again.import_id is None
    assert again.events == 0
    assert await count_events(pool, schema) == 18
    assert await tables(pool, schema) == before


async def test_tobedeleted_removes_a_section_and_ends_its_enrollments(
    rostering: Rostering, pool: asyncpg.Pool, schema: str
) -> None:
    """Riverside's class marked for deletion keeps its row, marked removed,
    and its teacher's and student's enrollments end."""
    await rostering.import_bundle(
        TENANT, read_bundle_directory(LAKESIDE), actor=admin(AUGUST)
    )
    classes = with_row(CLASSES, 2, "status", "tobedeleted")

    summary = await rostering.import_bundle(
        TENANT, read_bundle(lakeside(classes=classes)), actor=admin(SEPTEMBER)
    )

    assert summary.counts["sections_removed"] == 1
    assert summary.counts["enrollments_removed"] == 2
    found = await tables(pool, schema)
    removed = {row["section_id"]: row["removed"] for row in found["roster_sections"]}
    assert removed == {"alg-h": False, "alg-r": True}
    active = {(row["section_id"], row["active"]) for row in found["roster_enrollments"]}
    assert active == {("alg-h", True), ("alg-r", False)}


async def test_an_erased_person_stays_erased_through_a_reimport(
    rostering: Rostering, pool: asyncpg.Pool, schema: str
) -> None:
    """Grace erased: her row loses its seal, her key is gone, and the next
    import, which still lists her, records nothing about her."""
    await rostering.import_bundle(
        TENANT, read_bundle_directory(LAKESIDE), actor=admin(AUGUST)
    )
    async with pool.acquire() as connection:
        students = await rostering.reader.students(connection, TENANT, "alg-h")
    async with pool.acquire() as connection, tenant_transaction(connection, TENANT):
        opened = await rostering.keyring.open_many(
            connection,
            tenant_id=TENANT,
            sealed=[s.personal for s in students if s.personal is not None],
        )
    grace = next(key for key, f in opened.items() if f and f["given_name"] == "Grace")

    erased = await rostering.erase(
        TENANT, grace, reason="family request", actor=admin(SEPTEMBER)
    )
    again = await rostering.import_bundle(
        TENANT, read_bundle_directory(LAKESIDE), actor=admin(SEPTEMBER)
    )

    assert erased.recorded is True
    assert again.events == 0
    assert again.skipped_erased == 1
    async with pool.acquire() as connection:
        row = await connection.fetchrow(
            f'SELECT personal, erased FROM "{schema}".roster_people '
            "WHERE person_id = $1",
            grace,
        )
    assert row is not None
    assert (row["personal"], row["erased"]) == (None, True)
    repeated = await rostering.erase(
        TENANT, grace, reason="asked twice", actor=admin(SEPTEMBER)
    )
    assert repeated.recorded is False


async def test_the_read_model_rebuilds_from_the_log_alone(
    rostering: Rostering, pool: asyncpg.Pool, schema: str
) -> None:
    """After an import, a removal and an erasure, replaying the tenant's log
    into emptied tables gives the same rows."""
    await rostering.import_bundle(
        TENANT, read_bundle_directory(LAKESIDE), actor=admin(AUGUST)
    )
    classes = with_row(CLASSES, 2, "status", "tobedeleted")
    await rostering.import_bundle(
        TENANT, read_bundle(lakeside(classes=classes)), actor=admin(SEPTEMBER)
    )
    async with pool.acquire() as connection:
        students = await rostering.reader.students(connection, TENANT, "alg-h")
    await rostering.erase(
        TENANT, students[0].person_id, reason="left", actor=admin(SEPTEMBER)
    )
    incremental = await tables(pool, schema)

    async with pool.acquire() as connection, tenant_transaction(connection, TENANT):
        replayed = await rostering.projection.rebuild(connection, TENANT)

    assert replayed == await count_events(pool, schema)
    assert await tables(pool, schema) == incremental
