"""Imports stored on real PostgreSQL: the fixtures' items and parent links
in the read models, re-imports that record only changes, and read models
that a rebuild from the events gives back unchanged."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from mastery_objectives.importing import ImportRequest, import_file
from mastery_objectives.repository import Actor, ObjectivesRepository
from tests.integration.objectives.conftest import FIXTURES


async def stored_counts(
    pool: asyncpg.Pool, schema: str, tenant: str
) -> tuple[int, int]:
    """Return how many objectives, and how many with a parent, a tenant has."""
    row = await pool.fetchrow(
        f'SELECT count(*), count(parent_id) FROM "{schema}".objectives '
        "WHERE tenant_id = $1",
        tenant,
    )
    assert row is not None

    return row[0], row[1]


async def event_count(pool: asyncpg.Pool, schema: str, tenant: str) -> int:
    """Return how many events a tenant has in the store."""
    count: int = await pool.fetchval(
        f'SELECT count(*) FROM "{schema}".events WHERE tenant_id = $1', tenant
    )
    return count


@pytest.mark.parametrize(
    ("name", "items", "parents"),
    [
        ("smart-level.case.json", 14, 12),
        ("what-standards-could-be.case.json", 16, 14),
        ("utf8.case.json", 1, 0),
        ("opensalt-sample.csv", 10, 7),
    ],
)
async def test_each_fixture_is_stored_with_its_items_and_parent_links(
    repository: ObjectivesRepository,
    pool: asyncpg.Pool,
    schema: str,
    tenant: str,
    coordinator: Actor,
    name: str,
    items: int,
    parents: int,
) -> None:
    """Counts come from the fixture files: items, and items under an item."""
    data = (FIXTURES / name).read_bytes()

    result = await import_file(
        repository,
        tenant,
        request=ImportRequest(data=data, file_name=name),
        actor=coordinator,
    )

    assert result.created
    assert await stored_counts(pool, schema, tenant) == (items, parents)
    assert result.event_types["ObjectiveAdded"] == items


async def test_the_utf8_fixture_keeps_its_astral_characters(
    repository: ObjectivesRepository, tenant: str, coordinator: Actor
) -> None:
    """The mathematical italic d outside the Basic Multilingual Plane
    survives the store and the read model."""
    data = (FIXTURES / "utf8.case.json").read_bytes()

    result = await import_file(
        repository,
        tenant,
        request=ImportRequest(data=data, file_name="utf8.json"),
        actor=coordinator,
    )
    state = await repository.get_set(tenant, result.objective_set_id)

    assert state.title == "UTF8 \U0001d451 Test"
    assert [o.statement for o in state.objectives.values()] == ["Item \U0001d451 1"]


async def test_reimporting_an_edited_copy_records_only_the_changes(
    repository: ObjectivesRepository,
    pool: asyncpg.Pool,
    schema: str,
    tenant: str,
    coordinator: Actor,
) -> None:
    """The same CASE document again finds its set; one reworded item and
    one dropped link make exactly two events."""
    name = "what-standards-could-be.case.json"
    original: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    first = await import_file(
        repository,
        tenant,
        request=ImportRequest(data=json.dumps(original).encode(), file_name=name),
        actor=coordinator,
    )
    before = await event_count(pool, schema, tenant)

    edited = json.loads(json.dumps(original))
    edited["CFItems"][4]["fullStatement"] = "Reworded by the district"
    dropped = next(
        index
        for index, association in enumerate(edited["CFAssociations"])
        if association["associationType"] == "exactMatchOf"
    )
    del edited["CFAssociations"][dropped]
    second = await import_file(
        repository,
        tenant,
        request=ImportRequest(data=json.dumps(edited).encode(), file_name=name),
        actor=coordinator,
    )

    assert second.objective_set_id == first.objective_set_id
    assert not second.created
    assert second.event_types == {"ObjectiveChanged": 1, "ObjectiveUnlinked": 1}
    assert await event_count(pool, schema, tenant) == before + 2
    state = await repository.get_set(tenant, first.objective_set_id)
    statements = {o.statement for o in state.objectives.values()}
    assert "Reworded by the district" in statements


async def test_a_rebuild_from_the_events_gives_the_same_read_models(
    repository: ObjectivesRepository, tenant: str, coordinator: Actor
) -> None:
    """Dropping the read models and replaying the log restores the set."""
    data = (FIXTURES / "smart-level.case.json").read_bytes()
    result = await import_file(
        repository,
        tenant,
        request=ImportRequest(data=data, file_name="smart.json"),
        actor=coordinator,
    )
    before = await repository.get_set(tenant, result.objective_set_id)

    replayed = await repository.rebuild(tenant)

    assert replayed == result.events
    assert await repository.get_set(tenant, result.objective_set_id) == before
