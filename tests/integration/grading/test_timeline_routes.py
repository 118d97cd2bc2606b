"""Timelines through a running grading service: its projector follows the
log by itself, its mastery events reach NATS through the relay, and its
routes show each reader what their role and sections allow."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import nats
import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient

from mastery_deploy.audit import audit
from mastery_events.contract import CONTRACT
from mastery_events.contract.grading import AuditorAccessed
from mastery_events.migrations import quote_schema
from mastery_events.store import EventStore
from mastery_events.subjects import Subjects
from mastery_events.tenancy import tenant_transaction
from mastery_grading.app import create_app
from mastery_grading.service import SERVICE
from tests.integration.grading.school import FRACTIONS, LISA, ROOM_12, School, day
from tests.tokens import TestKeys, bearer
from tests.waiting import eventually


class Running(msgspec.Struct, frozen=True, kw_only=True):
    """A running grading service, a school in its schema, and tokens."""

    client: AsyncTestClient[Litestar]
    keys: TestKeys
    school: School
    subjects: Subjects

    async def read(
        self,
        path: str,
        *,
        roles: list[str],
        sections: list[str] | None = None,
        tenant: str | None = None,
        query: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """GET ``path`` with ``query`` as a caller with ``roles`` and
        ``sections``."""
        token = self.keys.token(
            tenant or self.school.tenant,
            roles,  # type: ignore[arg-type]
            subject="reader",
            sections=sections or [],
        )
        answer = await self.client.get(path, headers=bearer(token), params=query)
        return answer.status_code, answer.json()


@pytest.fixture
async def running(
    tmp_path: Path,
    database_url: str,
    nats_url: str,
    subject_prefix: str,
    pool: asyncpg.Pool,
) -> AsyncIterator[Running]:
    """The grading service on this test's subjects, with a tenant of this
    test's own in its schema."""
    keys = TestKeys(tmp_path)
    settings = keys.settings(
        database_url=database_url,
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        relay_poll_interval=0.2,
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        store = EventStore(pool, SERVICE.schema, registry=CONTRACT)
        tenant = f"lakeside-{secrets.token_hex(3)}"
        school = await School(pool, SERVICE.schema, store, tenant=tenant).open()
        yield Running(
            client=client,
            keys=keys,
            school=school,
            subjects=Subjects(prefix=subject_prefix),
        )


async def projected(running: Running, points: int) -> None:
    """Wait until the service's projector has ``points`` points on Lisa's
    timeline."""

    async def ready() -> bool:
        status, body = await running.read(
            f"/timelines/{LISA}/{FRACTIONS}", roles=["auditor"]
        )
        return status == 200 and len(body["points"]) == points

    await eventually(ready, what="the projector to build Lisa's timeline")


async def test_mastery_events_reach_nats_through_the_relay(
    running: Running, nats_url: str
) -> None:
    """A recorded 3 is projected by the running service and its
    MasteryChanged arrives on the tenant's NATS subject, mastered."""
    connection = await nats.connect(nats_url)
    received: list[Any] = []
    subject = running.subjects.event("grading", running.school.tenant, "MasteryChanged")

    async def on_message(message: Any) -> None:
        received.append(msgspec.json.decode(message.data))

    await connection.subscribe(subject, cb=on_message)
    try:
        await running.school.record(3, on=day(1))

        async def arrived() -> bool:
            await asyncio.sleep(0)
            return bool(received)

        await eventually(arrived, within=20.0, what="MasteryChanged on NATS")
    finally:
        await connection.close()

    (event,) = received
    assert event["student_id"] == LISA
    assert event["score"] == 3.0
    assert event["mastered"] is True
    assert event["reason"] == "assessment recorded"


async def test_readers_see_timelines_as_their_role_and_sections_allow(
    running: Running,
) -> None:
    """Room 12's teacher, an auditor and a school leader read Lisa's
    timeline, summary and room 12's matrix; room 14's teacher and another
    tenant's admin are answered 404, as for a record that is not there."""
    await running.school.record(2, on=day(1))
    await running.school.record(4, on=day(3))
    await projected(running, 2)
    timeline = f"/timelines/{LISA}/{FRACTIONS}"

    for roles, sections in (
        (["teacher"], [ROOM_12]),
        (["auditor"], None),
        (["school_leader"], None),
    ):
        status, body = await running.read(timeline, roles=roles, sections=sections)
        assert status == 200, roles
        assert body["state"]["score"] == 4.0
    status, matrix = await running.read(
        f"/sections/{ROOM_12}/mastery", roles=["teacher"], sections=[ROOM_12]
    )
    assert status == 200
    assert [(c["student_id"], c["level_label"]) for c in matrix] == [
        (LISA, "Exemplary")
    ]
    status, summary = await running.read(f"/students/{LISA}/mastery", roles=["auditor"])
    assert status == 200
    assert [c["objective_id"] for c in summary] == [str(FRACTIONS)]

    for path in (timeline, f"/sections/{ROOM_12}/mastery", f"/students/{LISA}/mastery"):
        status, _ = await running.read(path, roles=["teacher"], sections=["room-14"])
        assert status == 404, path
        status, _ = await running.read(
            path, roles=["district_admin"], tenant="riverside-elsewhere"
        )
        assert status == 404, path


async def test_as_of_and_known_at_are_read_from_the_query(running: Running) -> None:
    """``as_of`` between the two pieces of evidence answers the first."""
    await running.school.record(2, on=day(1))
    await running.school.record(4, on=day(3))
    await projected(running, 2)
    status, body = await running.read(
        f"/timelines/{LISA}/{FRACTIONS}",
        roles=["auditor"],
        query={"as_of": day(2).isoformat()},
    )

    assert status == 200
    assert body["state"]["score"] == 2.0
    assert len(body["points"]) == 2


async def test_recalculation_progress_is_readable(running: Running) -> None:
    """The job the school's policy planned is listed with its progress,
    and one of another id is not found."""

    async def finished() -> bool:
        _, jobs = await running.read("/recalculations", roles=["auditor"])
        return bool(jobs) and jobs[0]["finished_at"] is not None

    await eventually(finished, what="the policy's job to finish")
    _, (job,) = await running.read("/recalculations", roles=["auditor"])
    status, one = await running.read(
        f"/recalculations/{job['job_id']}", roles=["auditor"]
    )
    missing, _ = await running.read(f"/recalculations/{FRACTIONS}", roles=["auditor"])

    assert status == 200
    assert one["reason"] == "policy version 1"
    assert missing == 404


async def auditor_accesses(running: Running) -> list[AuditorAccessed]:
    """Return the auditor reads grading's log holds for the school."""
    school = running.school
    async with (
        school.pool.acquire() as connection,
        tenant_transaction(connection, school.tenant),
    ):
        rows = await connection.fetch(
            f"SELECT payload FROM {quote_schema(SERVICE.schema)}.events "
            "WHERE tenant_id = $1 AND event_type = 'AuditorAccessed' "
            "ORDER BY position",
            school.tenant,
        )

    return [msgspec.json.decode(row["payload"], type=AuditorAccessed) for row in rows]


def believed(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return ``cells`` without the policy version: a point keeps the
    version it was computed under, while the newest state takes that of a
    recalculation even when it changed no result."""
    return [{k: v for k, v in c.items() if k != "policy_version"} for c in cells]


async def test_a_summary_as_known_before_an_amend_and_a_void_is_reproduced(
    running: Running,
) -> None:
    """Lisa's summary read before her 2 was amended to 1 and her 4 voided
    differs from today's, and asking for it as known at that moment gives
    the same cells back, as of any date."""
    first, _ = await running.school.record(2, on=day(1))
    second, known = await running.school.record(4, on=day(3))
    await projected(running, 2)
    summary = f"/students/{LISA}/mastery"
    before = known.recorded_at.isoformat()
    _, then = await running.read(summary, roles=["auditor"])
    _, then_on_day_2 = await running.read(
        summary, roles=["auditor"], query={"as_of": day(2).isoformat()}
    )

    await running.school.amend(first, level=1, reason="misread the rubric")
    await running.school.void(second, reason="wrong student")

    async def corrected() -> bool:
        _, cells = await running.read(summary, roles=["auditor"])
        return [c["score"] for c in cells] == [1.0]

    await eventually(corrected, what="the amend and the void to be projected")
    _, today = await running.read(summary, roles=["auditor"])
    status, as_known = await running.read(
        summary, roles=["auditor"], query={"known_at": before}
    )
    _, on_day_2_as_known = await running.read(
        summary,
        roles=["auditor"],
        query={"as_of": day(2).isoformat(), "known_at": before},
    )
    _, on_day_2_today = await running.read(
        summary, roles=["auditor"], query={"as_of": day(2).isoformat()}
    )

    assert status == 200
    assert today != then
    assert believed(as_known) == believed(then)
    assert on_day_2_as_known == then_on_day_2
    assert [c["score"] for c in then_on_day_2] == [2.0]
    assert [c["score"] for c in on_day_2_today] == [1.0]


async def test_each_auditor_read_is_recorded_and_no_one_elses(
    running: Running,
) -> None:
    """An auditor's timeline and summary reads become AuditorAccessed
    events naming the auditor, the read and the moments asked about; a
    teacher's read of the same timeline, and another district's auditor
    answered 404, record nothing."""
    _, recorded = await running.school.record(3, on=day(1))
    timeline = f"/timelines/{LISA}/{FRACTIONS}"

    async def ready() -> bool:
        status, body = await running.read(
            timeline, roles=["teacher"], sections=[ROOM_12]
        )
        return status == 200 and len(body["points"]) == 1

    await eventually(ready, what="the projector to build Lisa's timeline")
    await running.read(timeline, roles=["auditor"], query={"as_of": day(2).isoformat()})
    await running.read(
        f"/students/{LISA}/mastery",
        roles=["auditor"],
        query={"known_at": recorded.recorded_at.isoformat()},
    )

    outsider = [
        await running.read(path, roles=["auditor"], tenant="riverside")
        for path in (timeline, f"/students/{LISA}/mastery")
    ]

    timeline_read, summary_read = await auditor_accesses(running)
    assert [status for status, _ in outsider] == [404, 404]
    assert (timeline_read.read, timeline_read.objective_id) == ("timeline", FRACTIONS)
    assert timeline_read.as_of == day(2)
    assert timeline_read.known_at is None
    assert (summary_read.read, summary_read.objective_id) == ("student-summary", None)
    assert summary_read.known_at == recorded.recorded_at
    assert {timeline_read.auditor, summary_read.auditor} == {"reader"}
    assert {timeline_read.student_id, summary_read.student_id} == {LISA}


async def test_the_audit_command_answers_as_of_and_as_known_and_is_recorded(
    running: Running, database_url: str
) -> None:
    """``mastery audit as-of`` gives Lisa's summary as known before her 2
    was amended to 1 and her 4 voided, and her fractions timeline on day 2
    as known then and now; each run is an AuditorAccessed naming the
    auditor, and a student with no mastery is refused."""
    first, _ = await running.school.record(2, on=day(1))
    second, known = await running.school.record(4, on=day(3))
    await projected(running, 2)
    before = known.recorded_at.isoformat()
    await running.school.amend(first, level=1, reason="misread the rubric")
    await running.school.void(second, reason="wrong student")

    async def corrected() -> bool:
        _, cells = await running.read(f"/students/{LISA}/mastery", roles=["auditor"])
        return [c["score"] for c in cells] == [1.0]

    await eventually(corrected, what="the amend and the void to be projected")
    runner = CliRunner(env={"MASTERY_DATABASE_URL": database_url})
    asked = ["as-of", "--tenant", running.school.tenant, "--auditor", "dana"]

    async def run(*arguments: str) -> Any:
        done = await asyncio.to_thread(
            runner.invoke, audit, [*asked, "--student", LISA, *arguments]
        )
        assert done.exit_code == 0, done.output
        return msgspec.json.decode(done.stdout)

    then = await run("--known-at", before)
    today = await run()
    day_2_then = await run(
        "--objective",
        str(FRACTIONS),
        "--as-of",
        day(2).isoformat(),
        "--known-at",
        before,
    )
    day_2_now = await run("--objective", str(FRACTIONS), "--as-of", day(2).isoformat())
    nobody = await asyncio.to_thread(
        runner.invoke, audit, [*asked, "--student", "student-nobody"]
    )
    recorded = [a for a in await auditor_accesses(running) if a.auditor == "dana"]

    assert [c["score"] for c in then["mastery"]] == [4.0]
    assert [c["score"] for c in today["mastery"]] == [1.0]
    assert day_2_then["state"]["score"] == 2.0
    assert day_2_now["state"]["score"] == 1.0
    assert nobody.exit_code == 1
    assert "no mastery of student student-nobody" in nobody.output
    assert [a.read for a in recorded] == ["student-summary"] * 2 + ["timeline"] * 2
    assert [a.objective_id for a in recorded[2:]] == [FRACTIONS, FRACTIONS]
    assert recorded[0].known_at == known.recorded_at
