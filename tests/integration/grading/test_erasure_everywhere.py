"""Erasure end to end on the real engines: a student imported under a
memorable name and email, graded, published, built into a report and
shared, then erased, leaves no trace of either string in any table, any
stream message, the run's logs or an audit export, while her grades still
count, anonymously, in grading's timelines and in reports' roll-ups."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog
from click.testing import CliRunner, Result
from litestar import Litestar
from litestar.testing import AsyncTestClient

from mastery_deploy.cli import main
from mastery_events.envelope import PendingEvent
from mastery_events.ids import uuid7
from mastery_events.runtime import ServiceRuntime
from mastery_events.subjects import Subjects
from mastery_grading.app import create_app
from mastery_grading.service import SERVICE
from mastery_objectives.service import SERVICE as OBJECTIVES
from mastery_reports.app import create_app as create_reports
from tests.integration.grading.test_roster_routes import zipped
from tests.integration.leak_search import every_stream_message, search_database
from tests.integration.reports.district import (
    SEPTEMBER,
    catalogue_events,
    new_district,
)
from tests.tokens import TestKeys, bearer
from tests.unit.grading.test_oneroster import USERS, lakeside, with_row
from tests.waiting import eventually

# Grace is the third data row of users.csv, a student of alg-h.
GRACE_ROW = 3


class District:
    """Running objectives, grading and reports, and one tenant of this
    test's own whose catalogue ids are ``ids``'s."""

    def __init__(
        self,
        client: AsyncTestClient[Litestar],
        reports: AsyncTestClient[Litestar],
        keys: TestKeys,
        subjects: Subjects,
    ) -> None:
        self.client = client
        self.reports = reports
        self.keys = keys
        self.subjects = subjects
        self.ids = new_district()
        self.tenant = self.ids.tenant

    def admin(self) -> dict[str, str]:
        """Return the district admin's headers."""
        return bearer(self.keys.token(self.tenant, ["district_admin"], subject="ada"))

    async def get(self, path: str, *, reports: bool = False) -> Any:
        """GET ``path`` from grading, or reports, as the admin and return
        the JSON answer."""
        client = self.reports if reports else self.client
        answer = await client.get(path, headers=self.admin())
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def assess(self, student: str, level: int, day: int) -> None:
        """Record ``level`` on fractions for ``student`` in alg-h."""
        answer = await self.client.post(
            "/assessments",
            json={
                "student_id": student,
                "section_id": "alg-h",
                "objective_id": str(self.ids.fractions),
                "scale_id": str(self.ids.scale_id),
                "scale_version": 1,
                "level": level,
                "assessed_at": f"2026-09-{day:02d}T09:00:00+00:00",
                "evidence": {"title": "Fractions quiz", "kind": "summative"},
            },
            headers=self.admin(),
        )
        assert answer.status_code == 201, answer.text


@pytest.fixture
async def district(
    tmp_path: Path, database_url: str, nats_url: str, subject_prefix: str
) -> AsyncIterator[District]:
    """Objectives' runtime, grading and reports on this test's subjects,
    relaying quickly."""
    keys = TestKeys(tmp_path)
    settings = keys.settings(
        database_url=database_url,
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        relay_poll_interval=0.1,
    )
    async with (
        ServiceRuntime(OBJECTIVES, settings).running() as objectives,
        AsyncTestClient(app=create_app(settings)) as client,
        AsyncTestClient(app=create_reports(settings)) as reports,
    ):
        found = District(client, reports, keys, Subjects(prefix=subject_prefix))
        for event in catalogue_events(found.ids):
            pending = PendingEvent(
                payload=event,
                occurred_at=SEPTEMBER,
                actor="coordinator",
                correlation_id=uuid7(),
            )
            await objectives.store.append(found.tenant, f"set-{uuid7()}", 0, [pending])
        yield found


async def mastery(
    database_url: str, *arguments: str, bus: Subjects | None = None, nats_url: str = ""
) -> Result:
    """Run the ``mastery`` command against the session's database, and
    its NATS under ``bus``'s prefix when given."""
    runner = CliRunner()
    environment = {"MASTERY_DATABASE_URL": database_url}
    if bus is not None:
        environment |= {
            "MASTERY_NATS_URL": nats_url,
            "MASTERY_SUBJECT_PREFIX": bus.prefix,
        }
    return await asyncio.to_thread(
        runner.invoke, main, list(arguments), env=environment
    )


async def published(district: District, nats_url: str, event_type: str) -> None:
    """Wait until an event of ``event_type`` of the tenant is on NATS."""

    async def arrived() -> bool:
        streams = await every_stream_message(nats_url)
        stream = district.subjects.stream_name(SERVICE.name)
        return any(event_type.encode() in data for data in streams.get(stream, []))

    await eventually(arrived, within=30, what=f"{event_type} reaching NATS")


def share_of(rollup: Any, key: str) -> dict[str, Any] | None:
    """Return the roll-up's share of one group, wherever it is listed."""
    if isinstance(rollup, dict):
        if rollup.get("key") == key and "pairs" in rollup:
            return rollup
        rollup = list(rollup.values())
    if isinstance(rollup, list):
        for inner in rollup:
            if (found := share_of(inner, key)) is not None:
                return found
    return None


def mastered(matrix: list[dict[str, Any]]) -> int:
    """Count the cells of a section's matrix that are mastered."""
    return sum(1 for cell in matrix if cell["mastered"])


async def test_an_erased_student_leaves_no_name_or_email_anywhere(
    district: District,
    pool: asyncpg.Pool,
    database_url: str,
    nats_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Grace, under names of this test's own, is graded and published, then
    erased: her names and email are in no column of any table, no message
    of any stream, no log line and no audit export; her timeline and the
    section's roll-up are as before, and the audit chain verifies."""
    token = secrets.token_hex(4)
    given, family = f"Grace{token}", f"Hopper{token}"
    email = f"grace.{token}@example.org"
    secrets_ = (given, family, email)
    users = with_row(USERS, GRACE_ROW, "givenName", given)
    users = with_row(users, GRACE_ROW, "familyName", family)
    users = with_row(users, GRACE_ROW, "email", email)
    caplog.set_level(logging.DEBUG)

    with structlog.testing.capture_logs() as logged:
        # Roster, the catalogue from objectives, the set on alg-h, grades.
        imported = await district.client.post(
            "/rosters/imports",
            files={"file": ("lakeside.zip", zipped(lakeside(users=users)), "zip")},
            headers=district.admin(),
        )
        assert imported.status_code == 200, imported.text
        link_path = f"/sections/alg-h/objective-sets/{district.ids.set_id}"

        async def linked() -> bool:
            answer = await district.client.put(link_path, headers=district.admin())
            return answer.status_code == 200

        await eventually(linked, within=30, what="grading learning the catalogue")
        students = await district.get("/sections/alg-h/students")
        ids = {student["given_name"]: student["person_id"] for student in students}
        grace, katherine = ids[given], ids["Katherine"]
        for student, levels in ((grace, (2, 3)), (katherine, (1, 2))):
            for day, level in enumerate(levels, start=14):
                await district.assess(student, level, day)

        timeline_path = f"/timelines/{grace}/{district.ids.fractions}"

        async def projected() -> bool:
            answer = await district.client.get(
                "/sections/alg-h/mastery", headers=district.admin()
            )
            return answer.status_code == 200 and len(answer.json()) == 2

        await eventually(projected, what="both timelines being projected")
        await published(district, nats_url, "MasteryChanged")
        timeline_before = await district.get(timeline_path)
        matrix_before = await district.get("/sections/alg-h/mastery")

        # Reports builds both snapshots, counted in the fractions roll-up
        # as grading counts them; Grace's report is shared.
        async def reported() -> bool:
            answer = await district.reports.get("/rollups", headers=district.admin())
            if answer.status_code != 200:
                return False
            share = share_of(answer.json(), str(district.ids.fractions))
            return share is not None and (share["pairs"], share["mastered"]) == (
                2,
                mastered(matrix_before),
            )

        await eventually(reported, within=30, what="reports building snapshots")
        rollups_before = await district.get("/rollups", reports=True)
        shared = await district.reports.post(
            f"/students/{grace}/share-links",
            json={"section_ids": ["alg-h"]},
            headers=district.admin(),
        )
        assert shared.status_code == 201, shared.text
        page = await district.reports.get(
            f"/shared/{district.tenant}/{shared.json()['token']}"
        )
        # Reports opens her name at read time, so the page names her.
        assert given in page.text
        # The audit commands span every installed service's schema.
        migrated = await mastery(database_url, "migrate")
        assert migrated.exit_code == 0, migrated.output
        sealed = await mastery(
            database_url, "audit", "seal", "--tenant", district.tenant
        )
        assert sealed.exit_code == 0, sealed.output
        # The scan must be able to see the name: the roster page shows it.
        assert given in str(students)

        erased = await district.client.post(
            f"/people/{grace}/erasure",
            json={"reason": "the family asked for erasure"},
            headers=district.admin(),
        )
        assert erased.status_code == 200, erased.text
        await published(district, nats_url, "PersonErased")
        link_id = shared.json()["share_link"]["share_link_id"]

        async def revoked() -> bool:
            links = await district.get(f"/students/{grace}/share-links", reports=True)
            return any(
                link["share_link_id"] == link_id and link["revoked_at"]
                for link in links
            )

        await eventually(revoked, within=30, what="reports revoking her link")
        timeline_after = await district.get(timeline_path)
        matrix_after = await district.get("/sections/alg-h/mastery")
        rollups_after = await district.get("/rollups", reports=True)
        page_after = await district.reports.get(
            f"/shared/{district.tenant}/{shared.json()['token']}"
        )

    verified = await mastery(
        database_url,
        "audit",
        "verify",
        "--tenant",
        district.tenant,
        bus=district.subjects,
        nats_url=nats_url,
    )
    exported = await mastery(
        database_url, "audit", "export", "--tenant", district.tenant
    )
    tables, columns = await search_database(pool, secrets_)
    streams = await every_stream_message(nats_url)
    logs = "\n".join(repr(entry) for entry in logged) + caplog.text

    # Each place searched holds what the run put there.
    assert columns > 50
    assert any(entry["event"] == "person.erased" for entry in logged)
    bus = b"\n".join(b"\n".join(messages) for messages in streams.values())
    assert grace.encode() in bus
    assert grace in exported.stdout
    assert "PersonErased" in exported.stdout
    assert tables == []
    for secret in secrets_:
        assert secret.encode() not in bus, secret
        assert secret not in logs, secret
        assert secret not in exported.stdout, secret

    # Her grades still count: the same timeline, the same roll-up.
    assert timeline_after == timeline_before
    assert timeline_after["points"]
    assert matrix_after == matrix_before
    assert mastered(matrix_after) == 1
    assert rollups_after == rollups_before
    assert page_after.status_code == 404
    assert verified.exit_code == 0, verified.output
    assert "intact" in verified.output


async def test_the_search_finds_a_string_in_text_json_bytes_and_arrays(
    pool: asyncpg.Pool,
) -> None:
    """A string planted in a text, a jsonb, a bytea and a text[] column of
    a new table is found in each, so an empty search means something."""
    planted = f"Planted{secrets.token_hex(4)}"
    table = f"leak_{secrets.token_hex(4)}"
    async with pool.acquire() as connection:
        await connection.execute(
            f"CREATE TABLE public.{table} (note text, facts jsonb, blob bytea, "
            "tags text[])"
        )
        try:
            await connection.execute(
                f"INSERT INTO public.{table} VALUES ($1, $2::jsonb, $3, $4)",
                f"by {planted}",
                f'{{"name": "{planted}"}}',
                b"\x00" + planted.encode() + b"\xff",
                ["x", planted],
            )
            found, _ = await search_database(pool, (planted,))
        finally:
            await connection.execute(f"DROP TABLE public.{table}")

    assert sorted(finding.where for finding in found) == [
        f'"public"."{table}".{column}' for column in ("blob", "facts", "note", "tags")
    ]
