"""Records requests and retention on a running grading service: a
student's records hold every event about her and nothing about a
classmate, and students who left are erased once the district's period
has passed, by the job's dry run, its real run and its schedule."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from mastery_events.contract import CONTRACT
from mastery_events.keyring import Keyring
from mastery_events.store import EventStore
from mastery_events.tenancy import tenant_transaction
from mastery_grading.app import create_app
from mastery_grading.oneroster import read_bundle
from mastery_grading.retention_job import RetentionJob
from mastery_grading.rostering import Actor, Rostering
from mastery_grading.service import SERVICE
from tests.integration.grading.classroom import (
    FOUR_LEVELS,
    FRACTIONS,
    MATHS_SET,
    fill_catalogue,
)
from tests.tokens import TestKeys, bearer
from tests.unit.grading.test_oneroster import ENROLLMENTS, lakeside, with_row
from tests.waiting import eventually

# Grace's enrollment in alg-h is the third data row of enrollments.csv.
GRACE_ENROLLMENT = 3
NOW = datetime.now(UTC)


class District:
    """A running grading service, one tenant of this test's own, and the
    roster commands on the same database for back-dated imports."""

    def __init__(
        self,
        client: AsyncTestClient[Litestar],
        keys: TestKeys,
        rostering: Rostering,
    ) -> None:
        self.client = client
        self.keys = keys
        self.rostering = rostering
        self.tenant = f"lakeside-{secrets.token_hex(3)}"

    def headers(self, role: str = "district_admin", **claims: Any) -> dict[str, str]:
        """Return the headers of a caller of ``role`` in the tenant."""
        claims.setdefault("subject", "ada")
        token = self.keys.token(self.tenant, [role], **claims)  # type: ignore[list-item]
        return bearer(token)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request as the admin and return the answer."""
        kwargs.setdefault("headers", self.headers())
        return await self.client.request(method, path, **kwargs)

    async def roster(self, *, at: datetime, **changes: Any) -> None:
        """Import the Lakeside bundle with ``changes``, recorded at ``at``."""
        bundle = read_bundle(lakeside(**changes))
        await self.rostering.import_bundle(
            self.tenant, bundle, actor=Actor(subject="sis", at=at)
        )

    async def people(self) -> dict[str, str]:
        """Return alg-h's students' ids by given name."""
        answer = await self.call("GET", "/sections/alg-h/students")
        return {s["given_name"]: s["person_id"] for s in answer.json()}

    async def assess(self, student: str, level: int, *, day: int = 14) -> str:
        """Record ``level`` on fractions for ``student`` on a September
        ``day``; return the assessment's id."""
        answer = await self.call(
            "POST",
            "/assessments",
            json={
                "student_id": student,
                "section_id": "alg-h",
                "objective_id": str(FRACTIONS),
                "scale_id": str(FOUR_LEVELS),
                "scale_version": 1,
                "level": level,
                "assessed_at": f"2026-09-{day:02d}T09:00:00+00:00",
                "evidence": {"title": "Fractions quiz", "kind": "summative"},
            },
        )
        assert answer.status_code == 201, answer.text
        assessment_id: str = answer.json()["assessment_id"]
        return assessment_id


@pytest.fixture
async def district(
    tmp_path: Path,
    database_url: str,
    nats_url: str,
    subject_prefix: str,
    pool: asyncpg.Pool,
    keyring: Keyring,
    request: pytest.FixtureRequest,
) -> AsyncIterator[District]:
    """Grading on this test's subjects; a test marked ``schedule`` runs the
    retention job every fifth of a second."""
    keys = TestKeys(tmp_path)
    interval = 0.2 if request.node.get_closest_marker("schedule") else 3600.0
    settings = keys.settings(
        database_url=database_url,
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        schedule_interval=interval,
    )
    rostering = Rostering(
        pool,
        EventStore(pool, SERVICE.schema, registry=CONTRACT),
        keyring,
        schema=SERVICE.schema,
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield District(client, keys, rostering)


async def log_of(pool: asyncpg.Pool, tenant: str) -> list[dict[str, Any]]:
    """Return every event of the tenant's grading log, decoded."""
    async with pool.acquire() as connection, tenant_transaction(connection, tenant):
        rows = await connection.fetch(
            f'SELECT event_id, event_type, stream_id, payload FROM "{SERVICE.schema}"'
            ".events WHERE tenant_id = $1 ORDER BY position",
            tenant,
        )
    return [
        {**dict(row), "payload": msgspec.json.decode(row["payload"])} for row in rows
    ]


async def test_a_records_request_holds_every_event_about_her_and_none_of_others(
    district: District, pool: asyncpg.Pool
) -> None:
    """Grace's records name her, hold her roster events, both her
    assessments with the correction of one, her timeline and every event
    of the log that names her or one of her assessments; Katherine, in the
    same section, appears nowhere in them."""
    await fill_catalogue(pool, SERVICE.schema, district.tenant)
    await district.roster(at=NOW)
    await district.call("PUT", f"/sections/alg-h/objective-sets/{MATHS_SET}")
    people = await district.people()
    grace, katherine = people["Grace"], people["Katherine"]
    first = await district.assess(grace, 2)
    await district.assess(grace, 3, day=21)
    await district.assess(katherine, 1)
    amended = await district.call(
        "POST",
        f"/assessments/{first}/amendments",
        json={"level": 4, "reason": "regraded after review"},
    )
    assert amended.status_code in (200, 201), amended.text

    async def projected() -> bool:
        answer = await district.call("GET", f"/timelines/{grace}/{FRACTIONS}")
        return answer.status_code == 200 and len(answer.json()["points"]) >= 2

    await eventually(projected, what="Grace's timeline being projected")
    # The projector may still append mastery changes: compare the records
    # with a log that did not change while they were gathered.
    taken: list[Any] = []

    async def gathered_from_a_still_log() -> bool:
        before = await log_of(pool, district.tenant)
        answer = await district.call("GET", f"/people/{grace}/records")
        after = await log_of(pool, district.tenant)
        taken[:] = [answer, after]
        return before == after

    await eventually(gathered_from_a_still_log, what="a still log")
    answer, log = taken

    assert answer.status_code == 200, answer.text
    records = answer.json()
    assert records["person"]["fields"]["given_name"] == "Grace"
    assert records["person"]["fields"]["family_name"] == "Hopper"
    assert [e["section_id"] for e in records["enrollments"]] == ["alg-h"]
    assert len(records["guardian_ids"]) == 1
    assert len(records["assessments"]) == 2
    assert [t["objective_id"] for t in records["timelines"]] == [str(FRACTIONS)]
    # Every event naming her, and every event of her assessments' streams.
    hers = {
        event["stream_id"]
        for event in log
        if event["event_type"] == "AssessmentRecorded"
        and event["payload"]["student_id"] == grace
    }
    expected = {
        str(event["event_id"])
        for event in log
        if grace in str(event["payload"]) or event["stream_id"] in hers
    }
    exported = {event["event_id"] for event in records["events"]}
    assert exported == expected
    kinds = {event["event_type"] for event in records["events"]}
    assert {
        "PersonRostered",
        "PersonEnrolled",
        "GuardianLinked",
        "AssessmentRecorded",
        "AssessmentAmended",
        "MasteryChanged",
    } <= kinds
    rostered = next(e for e in records["events"] if e["event_type"] == "PersonRostered")
    assert rostered["payload"]["personal"]["given_name"] == "Grace"
    # Nothing of Katherine: not her id, not her name.
    assert katherine not in answer.text
    assert "Katherine" not in answer.text
    assert "Johnson" not in answer.text


async def test_records_are_for_district_admins_of_the_same_district(
    district: District,
) -> None:
    """A teacher is refused, another district's admin and an unknown id
    are told there is no such record."""
    await district.roster(at=NOW)
    grace = (await district.people())["Grace"]
    path = f"/people/{grace}/records"

    teacher = await district.call(
        "GET", path, headers=district.headers("teacher", sections=["alg-h"])
    )
    other_token = district.keys.token("riverside-x", ["district_admin"])
    elsewhere = await district.call("GET", path, headers=bearer(other_token))
    unknown = await district.call("GET", f"/people/{UUID(int=7)}/records")

    assert teacher.status_code == 403
    assert elsewhere.status_code == 404
    assert unknown.status_code == 404
    assert grace not in elsewhere.text


async def test_an_admin_sets_the_retention_period_once_and_it_is_checked(
    district: District, pool: asyncpg.Pool
) -> None:
    """No period at first; 365 days is recorded once as an event, a second
    identical request records nothing, zero days is a 400 and a teacher
    may not set it."""
    before = await district.call("GET", "/retention-period")
    first = await district.call("PUT", "/retention-period", json={"days": 365})
    again = await district.call("PUT", "/retention-period", json={"days": 365})
    zero = await district.call("PUT", "/retention-period", json={"days": 0})
    teacher = await district.call(
        "PUT",
        "/retention-period",
        json={"days": 1},
        headers=district.headers("teacher", sections=["alg-h"]),
    )
    after = await district.call("GET", "/retention-period")
    log = await log_of(pool, district.tenant)

    assert before.json()["days"] is None
    assert first.json()["recorded"] is True
    assert again.json()["recorded"] is False
    assert zero.status_code == 400
    assert teacher.status_code == 403
    assert after.json()["days"] == 365
    assert after.json()["set_by"] == "ada"
    assert [e["event_type"] for e in log] == ["RetentionPeriodSet"]


async def left_ten_days_ago(district: District) -> dict[str, str]:
    """Roster Lakeside twenty days ago and unenroll Grace ten days ago;
    return alg-h's students by given name as they were."""
    await district.roster(at=NOW - timedelta(days=20))
    people = await district.people()
    left = with_row(ENROLLMENTS, GRACE_ENROLLMENT, "status", "tobedeleted")
    await district.roster(at=NOW - timedelta(days=10), enrollments=left)
    return people


async def test_the_retention_job_lists_then_erases_only_who_left_long_enough_ago(
    district: District,
) -> None:
    """Grace left ten days ago: with a 30-day period nobody is due; with
    7 days the dry run lists her alone and erases nobody, the real run
    erases her with the period as the reason, and a second run finds
    nothing left to do. Katherine, still enrolled, stays."""
    people = await left_ten_days_ago(district)
    job = RetentionJob(district.rostering)

    await district.call("PUT", "/retention-period", json={"days": 30})
    too_soon = await district.call("GET", "/retention/due")
    await district.call("PUT", "/retention-period", json={"days": 7})
    listed = await district.call("GET", "/retention/due")
    dry = await job.run(district.tenant, now=NOW, dry_run=True)
    still_named = await district.call("GET", f"/people/{people['Grace']}/records")
    real = await job.run(district.tenant, now=NOW, dry_run=False)
    second = await job.run(district.tenant, now=NOW, dry_run=False)
    records = await district.call("GET", f"/people/{people['Grace']}/records")
    katherine = await district.call("GET", f"/people/{people['Katherine']}/records")

    assert too_soon.json() == []
    assert [leaver["person_id"] for leaver in listed.json()] == [people["Grace"]]
    assert [str(leaver.person_id) for leaver in dry.due] == [people["Grace"]]
    assert dry.erased == 0
    assert still_named.json()["person"]["erased"] is False
    assert real.erased == 1
    assert second.due == []
    assert records.json()["person"] == {
        **records.json()["person"],
        "erased": True,
        "fields": None,
    }
    erasure = records.json()["events"][-1]
    assert erasure["event_type"] == "PersonErased"
    assert erasure["payload"]["erased_by"] == "system:retention"
    assert "retention period of 7 days" in erasure["payload"]["reason"]
    assert katherine.json()["person"]["erased"] is False


@pytest.mark.schedule
async def test_the_scheduled_job_erases_only_while_it_holds_the_lock(
    district: District, pool: asyncpg.Pool
) -> None:
    """With the job's lock held elsewhere (another replica running it),
    the service's schedule erases nobody; once the lock is free, its next
    turn erases Grace."""
    people = await left_ten_days_ago(district)
    path = f"/people/{people['Grace']}/records"

    async def erased() -> bool:
        answer = await district.call("GET", path)
        return bool(answer.json()["person"]["erased"])

    async with pool.acquire() as replica:
        await replica.execute(
            "SELECT pg_advisory_lock(hashtextextended($1, 0))",
            "mastery.schedule.grading.retention",
        )
        await district.call("PUT", "/retention-period", json={"days": 7})
        # Five turns of the schedule pass while the lock is held.
        await asyncio.sleep(1.0)
        held = await erased()
        await replica.execute(
            "SELECT pg_advisory_unlock(hashtextextended($1, 0))",
            "mastery.schedule.grading.retention",
        )

    assert held is False
    await eventually(erased, what="the scheduled job erasing Grace")
