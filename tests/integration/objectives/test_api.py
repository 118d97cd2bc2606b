"""The objectives API on a running service with real PostgreSQL and NATS:
sets and versions, scales and versions, access, and events on the bus."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from nats.aio.msg import Msg

from mastery_objectives.app import create_app
from tests.integration.objectives.conftest import FIXTURES
from tests.tokens import TestKeys, bearer

DEADLINE = 20.0


class Caller:
    """A test client speaking as one person of one district."""

    def __init__(
        self, client: AsyncTestClient[Litestar], headers: dict[str, str]
    ) -> None:
        self.client = client
        self.headers = headers

    async def get(self, path: str, **options: Any) -> Any:
        return await self.client.get(path, headers=self.headers, **options)

    async def post(self, path: str, **options: Any) -> Any:
        return await self.client.post(path, headers=self.headers, **options)

    async def put(self, path: str, **options: Any) -> Any:
        return await self.client.put(path, headers=self.headers, **options)

    async def patch(self, path: str, **options: Any) -> Any:
        return await self.client.patch(path, headers=self.headers, **options)


@pytest.fixture
def keys(tmp_path: Path) -> TestKeys:
    """Fresh signing keys for this test."""
    return TestKeys(tmp_path)


@pytest.fixture
def tenant() -> str:
    """A district of this test's own, in the shared objectives schema."""
    return f"district-{secrets.token_hex(4)}"


@pytest.fixture
async def client(
    keys: TestKeys, database_url: str, nats_url: str, subject_prefix: str
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The objectives service, started with its engines and relay."""
    settings = keys.settings(
        database_url=database_url, nats_url=nats_url, subject_prefix=subject_prefix
    )
    async with AsyncTestClient(create_app(settings)) as started:
        yield started


@pytest.fixture
def admin(client: AsyncTestClient[Litestar], keys: TestKeys, tenant: str) -> Caller:
    """The district's administrator."""
    token = keys.token(tenant, ["district_admin"], subject="admin-skinner")
    return Caller(client, bearer(token))


async def events_of(pool: asyncpg.Pool, tenant: str) -> int:
    """Count a tenant's events in the objectives store."""
    count: int = await pool.fetchval(
        "SELECT count(*) FROM objectives.events WHERE tenant_id = $1", tenant
    )
    return count


async def test_a_set_is_edited_published_and_read_at_each_version(
    admin: Caller,
) -> None:
    """Version 1 keeps its wording after version 2 rewrites it; search finds
    the objective by code."""
    created = await admin.post(
        "/objective-sets",
        json={
            "title": "Grade 6 ratios",
            "subject": "mathematics",
            "grade_bands": ["6", "7"],
        },
    )
    assert created.status_code == 201, created.text
    set_id = created.json()["objective_set_id"]
    added = await admin.post(
        f"/objective-sets/{set_id}/objectives",
        json={
            "code": "CCSS.Math.Content.6.RP.A",
            "statement": "Understand ratio concepts.",
        },
    )
    assert added.status_code == 201, added.text
    objective_id = next(iter(added.json()["objectives"]))
    assert (await admin.post(f"/objective-sets/{set_id}/publish")).status_code == 201
    changed = await admin.patch(
        f"/objective-sets/{set_id}/objectives/{objective_id}",
        json={
            "code": "CCSS.Math.Content.6.RP.A",
            "statement": "Understand ratio concepts and use ratio reasoning.",
        },
    )
    assert changed.status_code == 200, changed.text
    assert (await admin.post(f"/objective-sets/{set_id}/publish")).status_code == 201

    first = await admin.get(f"/objective-sets/{set_id}/versions/1")
    second = await admin.get(f"/objective-sets/{set_id}/versions/2")
    found = await admin.get("/objectives", params={"q": "ccss.math.content.6"})

    assert first.json()["objectives"][objective_id]["statement"] == (
        "Understand ratio concepts."
    )
    assert second.json()["objectives"][objective_id]["statement"] == (
        "Understand ratio concepts and use ratio reasoning."
    )
    assert second.json()["published_version"] == 2
    assert [o["objective_id"] for o in found.json()] == [objective_id]


async def test_a_revised_published_scale_keeps_version_1_readable(
    admin: Caller,
) -> None:
    """Assessments made with version 1 still read its threshold of 3."""
    created = await admin.post("/scales/starter/four-levels")
    assert created.status_code == 201, created.text
    scale_id = created.json()["scale_id"]
    assert (await admin.post(f"/scales/{scale_id}/publish")).status_code == 201
    stricter = created.json()["versions"]["1"] | {"mastery_threshold": 3.5}

    revised = await admin.put(f"/scales/{scale_id}", json=stricter)
    first = await admin.get(f"/scales/{scale_id}/versions/1")

    assert revised.status_code == 200, revised.text
    assert revised.json()["latest_version"] == 2
    assert revised.json()["published_version"] == 1
    assert first.json()["scale"]["mastery_threshold"] == 3
    assert first.json()["scale"]["levels"][2]["label"] == "Proficient"


async def test_an_auditor_reads_but_may_not_write(
    client: AsyncTestClient[Litestar], keys: TestKeys, tenant: str
) -> None:
    """Auditors pass read routes and get 403 on writes."""
    auditor = Caller(client, bearer(keys.token(tenant, ["auditor"])))

    listed = await auditor.get("/objective-sets")
    refused = await auditor.post(
        "/objective-sets", json={"title": "Art", "subject": "art"}
    )

    assert listed.status_code == 200
    assert refused.status_code == 403


async def test_a_set_of_another_district_is_not_found(
    admin: Caller, client: AsyncTestClient[Litestar], keys: TestKeys
) -> None:
    """Reads are scoped to the caller's tenant: another district's set is
    answered 404, like one that does not exist."""
    created = await admin.post(
        "/objective-sets", json={"title": "Reading", "subject": "english"}
    )
    stranger = Caller(client, bearer(keys.token("shelbyville-usd", ["district_admin"])))

    response = await stranger.get(
        f"/objective-sets/{created.json()['objective_set_id']}"
    )

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_teacher_may_not_edit_a_district_set(
    admin: Caller, client: AsyncTestClient[Litestar], keys: TestKeys, tenant: str
) -> None:
    """A teacher edits only sets owned by the teacher."""
    created = await admin.post(
        "/objective-sets", json={"title": "Science", "subject": "science"}
    )
    teacher = Caller(client, bearer(keys.token(tenant, ["teacher"])))

    response = await teacher.patch(
        f"/objective-sets/{created.json()['objective_set_id']}",
        json={"title": "My science", "subject": "science"},
    )

    assert response.status_code == 404


async def test_imported_events_reach_nats_with_their_subjects_and_headers(
    admin: Caller, nats_url: str, subject_prefix: str, tenant: str
) -> None:
    """Importing SmartLevel publishes one creation and 14 additions on
    ``<prefix>.objectives.<tenant>.<EventType>`` as binary CloudEvents."""
    received: list[Msg] = []
    all_in = asyncio.Event()

    async def collect(message: Msg) -> None:
        received.append(message)
        if len(received) == 15:
            all_in.set()

    bus = await nats.connect(nats_url)
    try:
        await bus.subscribe(f"{subject_prefix}.objectives.{tenant}.>", cb=collect)
        # The server must hold the subscription before the relay publishes.
        await bus.flush()
        data = (FIXTURES / "smart-level.case.json").read_bytes()
        response = await admin.post(
            "/imports", files={"file": ("smart-level.case.json", data)}
        )
        assert response.status_code == 201, response.text

        await asyncio.wait_for(all_in.wait(), timeout=DEADLINE)
    finally:
        await bus.close()

    subjects = [message.subject for message in received]
    assert (
        subjects
        == [f"{subject_prefix}.objectives.{tenant}.ObjectiveSetCreated"]
        + [f"{subject_prefix}.objectives.{tenant}.ObjectiveAdded"] * 14
    )
    headers = received[1].headers or {}
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-type"] == "org.mastery.objectives.ObjectiveAdded.v1"
    assert headers["ce-source"] == f"/mastery/objectives/tenants/{tenant}"
    assert headers["ce-tenantid"] == tenant
    assert headers["ce-actor"] == "admin-skinner"
    assert headers["ce-subject"].startswith("objective-set-")


async def test_the_openapi_document_describes_every_objectives_route(
    client: AsyncTestClient[Litestar],
) -> None:
    """Sets, objectives, policies, scales and imports are all documented,
    the import as a multipart upload."""
    response = await client.get("/schema/openapi.json")

    paths = response.json()["paths"]
    assert response.status_code == 200
    assert {
        "/objective-sets",
        "/objective-sets/{objective_set_id}/versions/{set_version}",
        "/objective-sets/{objective_set_id}/objectives/{objective_id}/policy",
        "/objectives",
        "/scales/starter",
        "/scales/{scale_id}/versions/{scale_version}",
        "/imports",
    } <= set(paths)
    upload = paths["/imports"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
