"""A tenant's history exported from a running deployment and imported into
an empty one rebuilds the same read models, on real PostgreSQL and NATS:
grading's timelines and reports' snapshots, with nothing added to the log.

The source district is graded through the services' routes, including an
amendment and a void, so grading's timeline projector announces its own
``MasteryChanged`` events; the copy must take those from the import, not
announce them again.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from mastery_events.checkpoints import Checkpoints
from mastery_events.tenancy import system_transaction, tenant_transaction
from mastery_grading.app import create_app as create_grading
from mastery_grading.projector import NAME as TIMELINES
from mastery_grading.roster_store import ROSTER_TABLES
from mastery_grading.timeline_store import REBUILT_TABLES
from mastery_objectives.app import create_app as create_objectives
from mastery_reports.app import create_app as create_reports
from tests.integration.grading.test_roster_routes import zipped
from tests.integration.test_audit_history import (
    fresh_database,
    mastery,
    same_but_fresh,
    source_url,
)
from tests.tokens import TestKeys, bearer
from tests.unit.grading.test_oneroster import lakeside
from tests.waiting import eventually

__all__ = ["fresh_database", "source_url"]

SECTION = "alg-h"
SOURCES = ("objectives", "grading")
GRADING_TABLES = (*REBUILT_TABLES, *ROSTER_TABLES, "assessments")
# The JSON columns of those tables, compared decoded.
JSON_COLUMNS = {"summary", "item", "header", "event", "policy", "state"}


class Deployment:
    """The three services running on one database, on subjects of their
    own, and a tenant's district admin."""

    def __init__(
        self,
        clients: dict[str, AsyncTestClient[Litestar]],
        keys: TestKeys,
        tenant: str,
    ) -> None:
        self.clients = clients
        self.keys = keys
        self.tenant = tenant

    def admin(self) -> dict[str, str]:
        """Return the district admin's headers."""
        return bearer(self.keys.token(self.tenant, ["district_admin"], subject="ada"))

    async def call(self, service: str, method: str, path: str, **sent: Any) -> Any:
        """Send a request to ``service`` as the admin; return the JSON of a
        successful answer."""
        client = self.clients[service]
        answer = await client.request(method, path, headers=self.admin(), **sent)
        assert answer.is_success, (path, answer.text)

        return answer.json()


@contextlib.asynccontextmanager
async def running(
    url: str, nats_url: str, keys: TestKeys, tenant: str
) -> AsyncIterator[Deployment]:
    """Run objectives, grading (with its timeline projector) and reports on
    ``url``, on a subject prefix of their own."""
    settings = keys.settings(
        database_url=url,
        nats_url=nats_url,
        subject_prefix=f"trip{secrets.token_hex(4)}",
        relay_poll_interval=0.1,
    )
    async with (
        AsyncTestClient(app=create_objectives(settings)) as objectives,
        AsyncTestClient(app=create_grading(settings)) as grading,
        AsyncTestClient(app=create_reports(settings)) as reports,
    ):
        clients = {"objectives": objectives, "grading": grading, "reports": reports}
        yield Deployment(clients, keys, tenant)


async def seed(deployment: Deployment) -> None:
    """Through the routes: a published scale and set of two objectives, the
    Lakeside roster, the set on Ada's section, four assessments of her two
    students, one of them amended and one voided, then a new policy for
    the set."""
    scale = await deployment.call("objectives", "POST", "/scales/starter/four-levels")
    scale_id = scale["scale_id"]
    await deployment.call("objectives", "POST", f"/scales/{scale_id}/publish")
    created = await deployment.call(
        "objectives",
        "POST",
        "/objective-sets",
        json={"title": "Algebra I", "subject": "Mathematics"},
    )
    set_id = created["objective_set_id"]
    for code, statement in (("A.1", "Solve linear equations"), ("A.2", "Graph lines")):
        await deployment.call(
            "objectives",
            "POST",
            f"/objective-sets/{set_id}/objectives",
            json={"code": code, "statement": statement},
        )
    await deployment.call("objectives", "POST", f"/objective-sets/{set_id}/publish")
    found = await deployment.call("objectives", "GET", f"/objective-sets/{set_id}")
    equations, lines = list(found["objectives"])

    bundle = zipped(lakeside())
    await deployment.call(
        "grading",
        "POST",
        "/rosters/imports",
        files={"file": ("lakeside.zip", bundle, "application/zip")},
    )

    async def linked() -> bool:
        answer = await deployment.clients["grading"].put(
            f"/sections/{SECTION}/objective-sets/{set_id}",
            headers=deployment.admin(),
        )
        return answer.status_code == 200

    await eventually(linked, within=30, what="grading learning the catalogue")
    students = await deployment.call("grading", "GET", f"/sections/{SECTION}/students")
    grace, katherine = sorted(s["person_id"] for s in students)

    recorded = []
    for student, objective, level, day in (
        (grace, equations, 2, 14),
        (grace, equations, 3, 16),
        (katherine, equations, 1, 14),
        (katherine, lines, 4, 15),
    ):
        answer = await deployment.call(
            "grading",
            "POST",
            "/assessments",
            json={
                "student_id": student,
                "section_id": SECTION,
                "objective_id": objective,
                "scale_id": scale_id,
                "scale_version": 1,
                "level": level,
                "assessed_at": f"2026-09-{day:02d}T09:00:00+00:00",
                "evidence": {"title": "Exit ticket", "kind": "formative"},
            },
        )
        recorded.append(answer["assessment_id"])
    await deployment.call(
        "grading",
        "POST",
        f"/assessments/{recorded[1]}/amendments",
        json={"level": 4, "reason": "marked against the wrong rubric"},
    )
    await deployment.call(
        "grading",
        "POST",
        f"/assessments/{recorded[2]}/void",
        json={"reason": "recorded for the wrong student"},
    )
    # A new policy for the set: grading plans a recalculation of its
    # timelines, which its projector announces, applies and ends.
    await deployment.call(
        "objectives",
        "PUT",
        f"/objective-sets/{set_id}/policy",
        json={"method": "highest"},
    )


async def shared_and_viewed(deployment: Deployment) -> str:
    """Share the first student's report in Ada's section and open it once;
    return the link's token."""
    students = await deployment.call("grading", "GET", f"/sections/{SECTION}/students")
    student = min(s["person_id"] for s in students)
    created = await deployment.call(
        "reports",
        "POST",
        f"/students/{student}/share-links",
        json={"section_ids": [SECTION]},
    )
    token: str = created["token"]
    page = await deployment.clients["reports"].get(
        f"/shared/{deployment.tenant}/{token}"
    )
    assert page.status_code == 200, page.text

    return token


async def skip_positions(url: str, count: int) -> None:
    """Move grading's log positions on by ``count`` at ``url``, as appends
    rolled back would: the copy's positions then differ from the source's
    for certain, where without gaps they would match by chance."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "SELECT setval(pg_get_serial_sequence('grading.events', 'position'), $1)",
            count,
        )
    finally:
        await connection.close()


async def settled(url: str, tenant: str) -> None:
    """Wait until grading has finished the recalculation the policy
    started, its timelines have applied its whole log, and reports has
    applied both source logs of the tenant."""
    connection = await asyncpg.connect(url)
    timelines = Checkpoints("grading", TIMELINES)

    async def caught_up() -> bool:
        async with tenant_transaction(connection, tenant):
            finished = await connection.fetchval(
                "SELECT count(*) FROM grading.events WHERE tenant_id = $1 "
                "AND event_type = 'RecalculationFinished'",
                tenant,
            )
        if finished == 0:
            return False
        async with system_transaction(connection):
            applied = await timelines.load(connection)
            head = await connection.fetchrow(
                "SELECT transaction_id::text::bigint AS transaction_id, position "
                "FROM grading.events ORDER BY transaction_id DESC, position DESC "
                "LIMIT 1"
            )
        if head is None or (applied.transaction_id, applied.position) != tuple(head):
            return False
        async with tenant_transaction(connection, tenant):
            heads = {
                source: await connection.fetchval(
                    f"SELECT max(position) FROM {source}.events WHERE tenant_id = $1",
                    tenant,
                )
                for source in SOURCES
            }
            reached = await connection.fetch(
                "SELECT source, position FROM reports.source_positions "
                "WHERE tenant_id = $1",
                tenant,
            )
        return {row["source"]: row["position"] for row in reached} == heads

    try:
        await eventually(caught_up, within=40, what="the read models to settle")
    finally:
        await connection.close()


def by_event(value: Any, events: dict[int, str]) -> Any:
    """Return ``value`` with each ``position`` it holds, at any depth,
    replaced by the id of the event at that place in the log.

    Positions are handed out by each database: the import gives the same
    events new ones, equal to the source's only while the source's
    sequence had no gaps. The event at a position is the same in both.
    """
    if isinstance(value, dict):
        return {
            key: events.get(inner, inner)
            if key == "position"
            else by_event(inner, events)
            for key, inner in value.items()
        }
    if isinstance(value, list):
        return [by_event(inner, events) for inner in value]

    return value


async def read_models(url: str, tenant: str) -> dict[str, Any]:
    """Return the tenant's timeline, roster and assessment rows, table by
    table and sorted, its share links and its snapshot documents by
    student, every log position named by its event's id."""
    connection = await asyncpg.connect(url)
    found: dict[str, Any] = {}
    try:
        async with tenant_transaction(connection, tenant):
            rows = await connection.fetch(
                "SELECT position, event_id FROM grading.events WHERE tenant_id = $1",
                tenant,
            )
            events = {row["position"]: str(row["event_id"]) for row in rows}
            for table in GRADING_TABLES:
                rows = await connection.fetch(
                    f"SELECT * FROM grading.{table} WHERE tenant_id = $1", tenant
                )
                decoded = [
                    {
                        key: json.loads(value) if key in JSON_COLUMNS else value
                        for key, value in row.items()
                    }
                    for row in rows
                ]
                found[table] = sorted(by_event(decoded, events), key=repr)
            links = await connection.fetch(
                "SELECT * FROM reports.share_links WHERE tenant_id = $1", tenant
            )
            snapshots = await connection.fetch(
                "SELECT student_id, document FROM reports.snapshots "
                "WHERE tenant_id = $1",
                tenant,
            )
    finally:
        await connection.close()
    found["share_links"] = [dict(row) for row in links]
    found["snapshots"] = {
        row["student_id"]: by_event(json.loads(row["document"]), events)
        for row in snapshots
    }

    return found


def differing(
    after: dict[str, Any], before: dict[str, Any], table: str
) -> tuple[list[Any], list[Any]]:
    """Return the rows of ``table`` only the copy holds, and those only the
    source holds, to say what a failed comparison is about."""
    copy, source = after[table], before[table]
    if isinstance(copy, dict):
        copy, source = list(copy.items()), list(source.items())

    return (
        [row for row in copy if row not in source],
        [row for row in source if row not in copy],
    )


async def test_an_imported_history_rebuilds_the_source_s_read_models(
    source_url: str, fresh_database: str, nats_url: str, tmp_path: Path
) -> None:
    """A graded district, with an amendment and a void, is exported and
    imported into an empty deployment whose services then start: its
    timelines, roster, assessments, share links and report snapshots
    equal the source's, exporting it again gives the first export, so no
    event was announced twice, and the shared link opens the copy's
    report."""
    keys = TestKeys(tmp_path)
    tenant = f"lakeside-{secrets.token_hex(4)}"
    first, second = tmp_path / "first.ndjson", tmp_path / "second.ndjson"

    await skip_positions(source_url, 1000)
    async with running(source_url, nats_url, keys, tenant) as source:
        await seed(source)
        await settled(source_url, tenant)
        token = await shared_and_viewed(source)
    before = await read_models(source_url, tenant)
    exported = await mastery(
        source_url, "audit", "export", "--tenant", tenant, "--output", str(first)
    )

    imported = await mastery(fresh_database, "audit", "import", str(first))
    async with running(fresh_database, nats_url, keys, tenant) as copy:
        await settled(fresh_database, tenant)
        after = await read_models(fresh_database, tenant)
        again = await mastery(
            fresh_database,
            "audit",
            "export",
            "--tenant",
            tenant,
            "--output",
            str(second),
        )
        # Viewing records an event, so only once the copy is exported.
        page = await copy.clients["reports"].get(f"/shared/{tenant}/{token}")

    for result in (exported, imported, again):
        assert result.exit_code == 0, result.output
    assert b'"type":"MasteryChanged"' in first.read_bytes()
    assert first.read_bytes().count(b'"type":"RecalculationStarted"') == 1
    assert len(before["timeline_points"]) >= 3
    assert len(before["snapshots"]) >= 2
    assert len(before["roster_enrollments"]) >= 2
    assert len(before["assessments"]) == 4
    assert [link["views"] for link in before["share_links"]] == [1]
    for table in (*GRADING_TABLES, "share_links", "snapshots"):
        assert after[table] == before[table], (table, *differing(after, before, table))
    assert same_but_fresh(second.read_bytes()) == same_but_fresh(first.read_bytes())
    assert page.status_code == 200, page.text
