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

from mastery_events.subjects import Subjects
from mastery_events.tenancy import tenant_transaction
from mastery_grading.app import create_app as create_grading
from mastery_grading.catalogue_store import CONSUMER
from mastery_objectives.app import create_app as create_objectives
from tests.tokens import TestKeys, bearer

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
