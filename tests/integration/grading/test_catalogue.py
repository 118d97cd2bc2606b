"""Grading's catalogue fed by the objectives service over NATS: a scale
defined and revised through the objectives API reaches grading's own
tables through its durable consumer, once, and only for its tenant."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import nats
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from nats.js.errors import NotFoundError

from mastery_events.subjects import Subjects
from mastery_events.tenancy import tenant_transaction
from mastery_grading.app import create_app as create_grading
from mastery_grading.catalogue_store import CONSUMER, Catalogue
from mastery_grading.errors import PolicyVersionNotFoundError
from mastery_objectives.app import create_app as create_objectives
from tests.tokens import TestKeys, bearer
from tests.waiting import eventually

DEADLINE = 20.0
LAKESIDE = "lakeside-catalogue"
RIVERSIDE = "riverside-catalogue"


def level(value: float, label: str) -> dict[str, Any]:
    """A level as the objectives API takes it."""
    return {
        "value": value,
        "label": label,
        "short_label": label[0],
        "colour": "#2a6f97",
    }


LEVELS = [
    level(1, "Beginning"),
    level(2, "Developing"),
    level(3, "Proficient"),
    level(4, "Exemplary"),
]


class Services:
    """The objectives and grading services running side by side."""

    def __init__(
        self,
        objectives: AsyncTestClient[Litestar],
        grading: AsyncTestClient[Litestar],
        keys: TestKeys,
        subjects: Subjects,
    ) -> None:
        self.objectives = objectives
        self.grading = grading
        self.keys = keys
        self.subjects = subjects

    def admin(self, tenant: str) -> dict[str, str]:
        """Headers of ``tenant``'s district admin."""
        return bearer(self.keys.token(tenant, ["district_admin"], subject="ada"))

    async def grading_scale(
        self, tenant: str, scale_id: str, version: int
    ) -> tuple[int, Any]:
        """Ask grading for a scale version as ``tenant``'s teacher."""
        token = self.keys.token(tenant, ["teacher"], subject="ms-frizzle")
        answer = await self.grading.get(
            f"/scales/{scale_id}/versions/{version}", headers=bearer(token)
        )
        return answer.status_code, answer.json()

    async def wait_for_scale(self, tenant: str, scale_id: str, version: int) -> Any:
        """Return grading's view of the version once it has arrived."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            status, body = await self.grading_scale(tenant, scale_id, version)
            if status == 200:
                return body
            await asyncio.sleep(0.1)
        pytest.fail(f"version {version} of scale {scale_id} never reached grading")


@pytest.fixture
async def services(
    tmp_path: Path, database_url: str, nats_url: str, subject_prefix: str
) -> AsyncIterator[Services]:
    """Both services on this test's subjects, trusting this test's keys."""
    keys = TestKeys(tmp_path)
    settings = keys.settings(
        database_url=database_url,
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        relay_poll_interval=0.2,
    )
    async with (
        AsyncTestClient(app=create_grading(settings)) as grading,
        AsyncTestClient(app=create_objectives(settings)) as objectives,
    ):
        yield Services(objectives, grading, keys, Subjects(prefix=subject_prefix))


async def define_and_revise(services: Services, tenant: str) -> str:
    """Define a four-level scale cut halfway, then revise it with cut
    points 1.8, 2.7, 3.6 and mastery at 2.7; return its id."""
    created = await services.objectives.post(
        "/scales",
        json={"name": "Lakeside four", "levels": LEVELS, "mastery_threshold": 3.0},
        headers=services.admin(tenant),
    )
    assert created.status_code == 201, created.text
    scale_id: str = created.json()["scale_id"]
    revised = await services.objectives.put(
        f"/scales/{scale_id}",
        json={
            "name": "Lakeside four",
            "levels": LEVELS,
            "mastery_threshold": 2.7,
            "cut_points": [1.8, 2.7, 3.6],
            "marks": [
                {
                    "code": "M",
                    "label": "Missing",
                    "meaning": "missing",
                    "counts_as_lowest": True,
                }
            ],
        },
        headers=services.admin(tenant),
    )
    assert revised.status_code == 200, revised.text

    return scale_id


async def test_both_versions_of_a_revised_scale_reach_grading(
    services: Services,
) -> None:
    """Version 1 keeps its halfway cuts and threshold 3 after version 2
    arrives with its own cut points, threshold 2.7 and missing mark."""
    scale_id = await define_and_revise(services, LAKESIDE)

    second = await services.wait_for_scale(LAKESIDE, scale_id, 2)
    first = await services.wait_for_scale(LAKESIDE, scale_id, 1)

    assert [lvl["cut"] for lvl in first["levels"]] == [1.0, 1.5, 2.5, 3.5]
    assert first["mastery_threshold"] == 3.0
    assert first["marks"] == []
    assert [lvl["cut"] for lvl in second["levels"]] == [1.0, 1.8, 2.7, 3.6]
    assert [lvl["label"] for lvl in second["levels"]] == [x["label"] for x in LEVELS]
    assert second["mastery_threshold"] == 2.7
    assert second["marks"] == [
        {"code": "M", "meaning": "missing", "counts_as_lowest": True}
    ]
    assert (first["version"], second["version"]) == (1, 2)
    assert first["scale_id"] == second["scale_id"] == scale_id


async def test_another_tenant_cannot_see_the_scale_through_grading(
    services: Services,
) -> None:
    """Riverside asking for lakeside's scale gets the same 404 as for a
    scale that never was; lakeside itself sees it."""
    scale_id = await define_and_revise(services, LAKESIDE)
    await services.wait_for_scale(LAKESIDE, scale_id, 2)

    status, body = await services.grading_scale(RIVERSIDE, scale_id, 2)
    unknown, _ = await services.grading_scale(
        LAKESIDE, "01a23cb1-6997-74ca-8af2-0d18b6dd6f00", 1
    )
    too_far, _ = await services.grading_scale(LAKESIDE, scale_id, 3)

    assert status == 404
    assert body["title"] == "Scale version not found"
    assert scale_id not in str(body)
    assert unknown == too_far == 404


async def test_a_republished_event_has_no_second_effect(
    services: Services, nats_url: str, pool: asyncpg.Pool
) -> None:
    """With version 1's row taken away by hand, publishing ScaleDefined
    again under a new message id does not bring it back: the consumer
    finds the event applied and acks it untouched."""
    scale_id = await define_and_revise(services, LAKESIDE)
    await services.wait_for_scale(LAKESIDE, scale_id, 2)
    async with (
        pool.acquire() as connection,
        tenant_transaction(connection, LAKESIDE),
    ):
        await connection.execute(
            "DELETE FROM grading.catalogue_scale_versions "
            "WHERE tenant_id = $1 AND scale_id = $2 AND scale_version = 1",
            LAKESIDE,
            UUID(scale_id),
        )

    bus = await nats.connect(nats_url)
    try:
        js = bus.jetstream()
        stream = services.subjects.stream_name("objectives")
        subject = services.subjects.event("objectives", LAKESIDE, "ScaleDefined")
        original = await js.get_last_msg(stream, subject)
        # The relay's publish expectations held the first time, not now.
        headers = {
            name: value
            for name, value in (original.headers or {}).items()
            if not name.startswith("Nats-Expected")
        }
        event_id = headers["ce-id"]
        headers["Nats-Msg-Id"] = f"{headers['Nats-Msg-Id']}.again"
        republished = await js.publish(subject, original.data or b"", headers=headers)
        assert not republished.duplicate
        await wait_until_settled(js, stream, republished.seq)
    finally:
        await bus.close()

    status, _ = await services.grading_scale(LAKESIDE, scale_id, 1)
    async with (
        pool.acquire() as connection,
        tenant_transaction(connection, LAKESIDE),
    ):
        applied = await connection.fetchval(
            "SELECT count(*) FROM grading.processed_events "
            "WHERE consumer = $1 AND event_id = $2",
            CONSUMER,
            UUID(event_id),
        )

    assert status == 404
    assert applied == 1


async def wait_until_settled(js: Any, stream: str, sequence: int) -> None:
    """Wait until grading's consumer has acked every message up to
    ``sequence`` of ``stream``."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        info = await js.consumer_info(stream, CONSUMER)
        if info.ack_floor.stream_seq >= sequence:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"grading's consumer never settled message {sequence}")


async def test_policies_and_objectives_reach_grading(
    services: Services, pool: asyncpg.Pool
) -> None:
    """A set's policy in two versions, an override on RP.1.a and its
    clearing, and RP.1.a moved then removed, all read back from grading's
    catalogue with every policy version kept."""
    admin = services.admin(LAKESIDE)
    catalogue = Catalogue(pool, "grading")
    created = await services.objectives.post(
        "/objective-sets",
        json={"title": "Ratios and proportions", "subject": "Mathematics"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    set_id = created.json()["objective_set_id"]
    base = f"/objective-sets/{set_id}"
    first = await services.objectives.post(
        f"{base}/objectives",
        json={"statement": "Ratios", "code": "RP.1"},
        headers=admin,
    )
    parent = objective_named(first.json(), "RP.1")
    second = await services.objectives.post(
        f"{base}/objectives",
        json={"statement": "Unit rates", "code": "RP.1.a", "parent_id": parent},
        headers=admin,
    )
    child = objective_named(second.json(), "RP.1.a")
    for body in (
        {"method": "decaying_average", "decay": 0.65},
        {"method": "mean", "minimum_evidence": 2},
    ):
        answer = await services.objectives.put(
            f"{base}/policy", json=body, headers=admin
        )
        assert answer.status_code == 200, answer.text
    override = await services.objectives.put(
        f"{base}/objectives/{child}/policy",
        json={"method": "n_times", "n": 3},
        headers=admin,
    )
    assert override.status_code == 200, override.text

    async def override_in_force() -> bool:
        policy = await catalogue.policy_in_force(LAKESIDE, UUID(set_id), UUID(child))
        return policy is not None and policy.method == "n_times"

    await eventually(
        within=DEADLINE, check=override_in_force, what="the override on RP.1.a"
    )
    found = await catalogue.objective(LAKESIDE, UUID(child))
    first_version = await catalogue.policy_version(LAKESIDE, UUID(set_id), 1)
    second_version = await catalogue.policy_version(LAKESIDE, UUID(set_id), 2)
    on_parent = await catalogue.policy_in_force(LAKESIDE, UUID(set_id), UUID(parent))

    assert found is not None
    assert (found.code, found.parent_id) == ("RP.1.a", UUID(parent))
    assert (first_version.method, first_version.weight) == ("decaying_average", 0.65)
    assert (second_version.method, second_version.minimum_evidence) == ("mean", 2)
    assert on_parent == second_version
    with pytest.raises(PolicyVersionNotFoundError):
        await catalogue.policy_version(LAKESIDE, UUID(set_id), 3)

    cleared = await services.objectives.delete(
        f"{base}/objectives/{child}/policy", headers=admin
    )
    moved = await services.objectives.post(
        f"{base}/objectives/{child}/move", json={"parent_id": None}, headers=admin
    )
    assert (cleared.status_code, moved.status_code) == (200, 201), moved.text

    async def moved_to_the_top() -> bool:
        found = await catalogue.objective(LAKESIDE, UUID(child))
        return found is not None and found.parent_id is None

    await eventually(within=DEADLINE, check=moved_to_the_top, what="RP.1.a at the top")
    after_clearing = await catalogue.policy_in_force(
        LAKESIDE, UUID(set_id), UUID(child)
    )
    kept = await catalogue.policy_version(
        LAKESIDE, UUID(set_id), 1, objective_id=UUID(child)
    )
    removed = await services.objectives.delete(
        f"{base}/objectives/{child}", headers=admin
    )
    assert removed.status_code == 200, removed.text

    async def gone() -> bool:
        return await catalogue.objective(LAKESIDE, UUID(child)) is None

    await eventually(within=DEADLINE, check=gone, what="RP.1.a removed")
    assert after_clearing == second_version
    assert (kept.method, kept.n) == ("n_times", 3)
    assert await catalogue.objective(LAKESIDE, UUID(parent)) is not None


def objective_named(objective_set: dict[str, Any], code: str) -> str:
    """Return the id of the objective coded ``code`` in a set's answer."""
    return next(
        str(objective_id)
        for objective_id, objective in objective_set["objectives"].items()
        if objective["code"] == code
    )


async def test_grading_started_alone_follows_the_objectives_stream(
    tmp_path: Path, database_url: str, nats_url: str, subject_prefix: str
) -> None:
    """Before the objectives service ever ran, grading creates its stream
    and binds its durable consumer, so nothing published later is missed."""
    keys = TestKeys(tmp_path)
    settings = keys.settings(
        database_url=database_url, nats_url=nats_url, subject_prefix=subject_prefix
    )
    stream = Subjects(prefix=subject_prefix).stream_name("objectives")
    bus = await nats.connect(nats_url)
    try:
        js = bus.jetstream()
        async with AsyncTestClient(app=create_grading(settings)):

            async def bound() -> bool:
                try:
                    info = await js.consumer_info(stream, CONSUMER)
                except NotFoundError:
                    return False
                wanted = f"{subject_prefix}.objectives.>"
                return bool(info.config.filter_subject == wanted)

            await eventually(
                within=DEADLINE,
                check=bound,
                what="its consumer on the objectives stream",
            )
    finally:
        await bus.close()
