"""A small district for the reports tests: the events the objectives and
grading services would append, appended straight into their event stores
so their relays publish them to NATS, as in production.

One scale of four levels, one set with two objectives, one school, one
term, one section and one student, who is assessed on both objectives.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from mastery_events.contract import CONTRACT
from mastery_events.contract.grading import (
    AssessmentRecorded,
    Evidence,
    MasteryChanged,
)
from mastery_events.contract.objectives import (
    ObjectiveAdded,
    ObjectiveSetCreated,
    ScaleDefined,
    ScaleLevel,
)
from mastery_events.contract.roster import (
    ObjectiveSetLinked,
    PersonEnrolled,
    PersonRostered,
    SchoolRostered,
    Sealed,
    SectionRostered,
    TermRostered,
)
from mastery_events.envelope import Envelope, Event, PendingEvent
from mastery_events.ids import uuid7
from mastery_events.keyring import Keyring
from mastery_events.runtime import Service, ServiceRuntime
from mastery_events.settings import Settings
from mastery_events.store import EventStore
from mastery_events.tenancy import tenant_transaction
from mastery_grading.service import SERVICE as GRADING_SERVICE
from mastery_objectives.service import SERVICE as OBJECTIVES
from mastery_reports.app import create_app
from tests.tokens import TestKeys, bearer
from tests.waiting import eventually

# Grading's relay without its timeline projector: these tests append the
# MasteryChanged that grading would derive themselves, and a projector
# deriving its own as well would move grading's log past what they expect.
GRADING = msgspec.structs.replace(GRADING_SERVICE, projections=())

SCHOOL = "lincoln-elementary"
SECTION = "room-12"
TERM = "fall-2026"
SEPTEMBER = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
LEVELS = (
    ScaleLevel(value=1, label="Beginning", short_label="B", colour="#b3261e"),
    ScaleLevel(value=2, label="Developing", short_label="D", colour="#f2c12e"),
    ScaleLevel(value=3, label="Proficient", short_label="P", colour="#2e7d32"),
    ScaleLevel(value=4, label="Exemplary", short_label="E", colour="#1a237e"),
)


@dataclass
class District:
    """One tenant's district, with the ids its events use."""

    tenant: str
    scale_id: UUID = field(default_factory=uuid7)
    set_id: UUID = field(default_factory=uuid7)
    fractions: UUID = field(default_factory=uuid7)
    decimals: UUID = field(default_factory=uuid7)
    student: UUID = field(default_factory=uuid7)

    @property
    def student_id(self) -> str:
        """The student as grading's events name them."""
        return str(self.student)


class Stack:
    """The reports service over HTTP, and the objectives and grading
    stores whose relays feed it."""

    def __init__(
        self,
        client: AsyncTestClient[Litestar],
        keys: TestKeys,
        pool: asyncpg.Pool,
        keyring: Keyring,
    ) -> None:
        self.client = client
        self.keys = keys
        self.pool = pool
        self.keyring = keyring
        self.objectives = EventStore(pool, "objectives", registry=CONTRACT)
        self.grading = EventStore(pool, "grading", registry=CONTRACT)

    def teacher(self, district: District, *, section: str = SECTION) -> dict[str, str]:
        """Headers of the teacher of ``section``."""
        return bearer(
            self.keys.token(
                district.tenant, ["teacher"], subject="ms-frizzle", sections=[section]
            )
        )

    async def append(
        self, store: EventStore, tenant: str, events: Sequence[Event]
    ) -> list[Envelope]:
        """Append ``events``, each to a stream of its own, as one writer."""
        pending = [
            PendingEvent(
                payload=event,
                occurred_at=SEPTEMBER,
                actor="registrar",
                correlation_id=uuid7(),
            )
            for event in events
        ]
        stored = []
        for event in pending:
            stored.extend(await store.append(tenant, f"stream-{uuid7()}", 0, [event]))
        return stored

    async def seal(self, district: District, **fields: str) -> Sealed:
        """Seal the student's personal fields with their own data key."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, district.tenant),
        ):
            return await self.keyring.seal(
                connection,
                tenant_id=district.tenant,
                key_id=district.student,
                fields=fields,
            )

    async def report(self, district: District) -> dict[str, Any] | None:
        """Return the student's report as the teacher reads it, or
        ``None`` while reports has none."""
        answer = await self.client.get(
            f"/students/{district.student_id}/report",
            headers=self.teacher(district),
        )
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    async def snapshot_positions(self, district: District) -> dict[str, int]:
        """Wait until the student's stored snapshot reflects the newest
        event of each source log of the district; return those positions."""
        found: dict[str, int] = {}

        async def caught_up() -> bool:
            async with (
                self.pool.acquire() as connection,
                tenant_transaction(connection, district.tenant),
            ):
                positions = await connection.fetchval(
                    "SELECT positions FROM reports.snapshots "
                    "WHERE tenant_id = $1 AND student_id = $2",
                    district.tenant,
                    district.student_id,
                )
                heads = {
                    source: await connection.fetchval(
                        f"SELECT max(position) FROM {source}.events "
                        "WHERE tenant_id = $1",
                        district.tenant,
                    )
                    for source in ("objectives", "grading")
                }
            found.clear()
            found.update(msgspec.json.decode(positions or b"{}"))
            return found == heads

        await eventually(caught_up, within=30.0, what="the snapshot to catch up")
        return found

    async def settle(self, district: District, what: str, check: Any) -> dict[str, Any]:
        """Wait until the student's report satisfies ``check``; return it."""
        seen: dict[str, Any] = {}

        async def ready() -> bool:
            found = await self.report(district)
            if found is None:
                return False
            seen.update(found)
            return bool(check(found))

        await eventually(ready, within=30.0, what=what)
        return seen


def publishing(service: Service) -> Service:
    """Return ``service`` with its schema and relay only: what the tests
    append to its store is published as it would be, and nothing of its
    own (grading's timelines, its catalogue) adds events or reads ours."""
    return Service(
        name=service.name,
        migrations=service.migrations,
        personal_data=service.personal_data,
    )


@pytest.fixture
async def stack(
    tmp_path: Path,
    database_url: str,
    nats_url: str,
    subject_prefix: str,
    pool: asyncpg.Pool,
    keyring: Keyring,
) -> AsyncIterator[Stack]:
    """The reports service, with the objectives and grading relays that
    publish what the tests append, on this test's subjects."""
    keys = TestKeys(tmp_path)
    settings: Settings = keys.settings(
        database_url=database_url,
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        relay_poll_interval=0.1,
    )
    async with (
        ServiceRuntime(publishing(OBJECTIVES), settings).running(),
        ServiceRuntime(publishing(GRADING), settings).running(),
        AsyncTestClient(app=create_app(settings)) as client,
    ):
        yield Stack(client, keys, pool, keyring)


def new_district() -> District:
    """Return a district under a tenant of its own."""
    return District(tenant=f"lakeside-{secrets.token_hex(4)}")


def relayed(
    tenant: str, event: Event, position: int, *, stream_version: int = 1
) -> Envelope:
    """Wrap ``event`` as its source's relay would deliver it at ``position``
    of the log, for a test that hands a writer the decoded event beside it."""
    return Envelope(
        event_id=uuid7(),
        event_type=type(event).__name__,
        event_version=1,
        tenant_id=tenant,
        stream_id=f"stream-{uuid7()}",
        stream_version=stream_version,
        position=position,
        transaction_id=position,
        occurred_at=SEPTEMBER,
        recorded_at=SEPTEMBER,
        actor="registrar",
        correlation_id=uuid7(),
        payload=msgspec.Raw(msgspec.json.encode(event)),
    )


def catalogue_events(district: District) -> list[Event]:
    """The scale, the set and its two objectives."""
    return [
        ScaleDefined(
            scale_id=district.scale_id,
            name="Lakeside four",
            levels=LEVELS,
            mastery_threshold=3.0,
            defined_by="coordinator",
            defined_at=SEPTEMBER,
        ),
        ObjectiveSetCreated(
            objective_set_id=district.set_id,
            title="Grade 4 mathematics",
            subject="Mathematics",
            owner_scope="district",
            owner_id=district.tenant,
            grade_bands=("4",),
            created_by="coordinator",
            created_at=SEPTEMBER,
        ),
        ObjectiveAdded(
            objective_set_id=district.set_id,
            objective_id=district.fractions,
            code="4.NF.1",
            statement="Explain why fractions are equivalent",
            order=1,
            grade_bands=("4",),
            added_by="coordinator",
            added_at=SEPTEMBER,
        ),
        ObjectiveAdded(
            objective_set_id=district.set_id,
            objective_id=district.decimals,
            code="4.NF.6",
            statement="Use decimal notation for fractions with denominators 10 or 100",
            order=2,
            grade_bands=("4",),
            added_by="coordinator",
            added_at=SEPTEMBER,
        ),
    ]


def roster_events(district: District, personal: Sealed) -> list[Event]:
    """The school, the term, the section, the student (their fields sealed
    in ``personal``) and their enrolment, and the set the section
    teaches."""
    return [
        SchoolRostered(
            school_id=SCHOOL, name="Lincoln Elementary", rostered_at=SEPTEMBER
        ),
        TermRostered(
            term_id=TERM,
            title="Fall 2026",
            kind="term",
            starts_on=date(2026, 8, 31),
            ends_on=date(2026, 12, 18),
            school_year="2026-27",
            rostered_at=SEPTEMBER,
        ),
        SectionRostered(
            section_id=SECTION,
            title="Room 12 mathematics",
            school_id=SCHOOL,
            course_id="math-4",
            course_title="Mathematics 4",
            term_ids=(TERM,),
            rostered_at=SEPTEMBER,
        ),
        PersonRostered(
            person_id=district.student,
            sourced_id_digest=secrets.token_hex(16),
            role="student",
            school_ids=(SCHOOL,),
            personal=personal,
            rostered_at=SEPTEMBER,
        ),
        PersonEnrolled(
            person_id=district.student,
            section_id=SECTION,
            role="student",
            enrolled_at=SEPTEMBER,
        ),
        ObjectiveSetLinked(
            section_id=SECTION,
            objective_set_id=district.set_id,
            linked_by="ms-frizzle",
            linked_at=SEPTEMBER,
        ),
    ]


def assessed(
    district: District,
    objective_id: UUID,
    level: float,
    *,
    days: int,
    label: str,
    mastered: bool,
    title: str = "Exit ticket",
    comment: str | None = None,
) -> list[Event]:
    """An assessment at ``level`` ``days`` after the first of September's
    week, and the mastery grading would derive from it."""
    at = SEPTEMBER + timedelta(days=days)
    assessment_id = uuid7()
    return [
        AssessmentRecorded(
            assessment_id=assessment_id,
            student_id=district.student_id,
            section_id=SECTION,
            objective_id=objective_id,
            scale_id=district.scale_id,
            scale_version=1,
            level=level,
            assessed_at=at,
            assessed_by="ms-frizzle",
            evidence=Evidence(title=title, kind="formative"),
            comment=comment,
        ),
        MasteryChanged(
            student_id=district.student_id,
            objective_id=objective_id,
            valid_from=at,
            status="scored",
            score=level,
            level=level,
            level_label=label,
            mastered=mastered,
            method="most_recent",
            scale_id=district.scale_id,
            scale_version=1,
            counted=(assessment_id,),
            cause_event_id=assessment_id,
            reason="assessment recorded",
        ),
    ]


def objectives_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return a report's objectives by code."""
    return {
        objective["code"]: objective
        for section in report["report"]["sections"]
        for objective_set in section["objective_sets"]
        for objective in objective_set["objectives"]
    }


async def seeded(stack: Stack, district: District) -> dict[str, Any]:
    """Publish the district's catalogue and roster, with the student sealed
    as Ada Lovelace, then one assessment of fractions at Developing;
    return the report once it shows it and the whole catalogue: the two
    streams reach reports independently, so the assessment may well arrive
    before the catalogue's last objective."""
    await stack.append(stack.objectives, district.tenant, catalogue_events(district))
    personal = await stack.seal(
        district, given_name="Ada", family_name="Lovelace", email="ada@example.org"
    )
    await stack.append(
        stack.grading, district.tenant, roster_events(district, personal)
    )
    await stack.append(
        stack.grading,
        district.tenant,
        assessed(
            district, district.fractions, 2, days=3, label="Developing", mastered=False
        ),
    )

    return await stack.settle(
        district,
        "the first assessment and the whole catalogue reaching the report",
        lambda r: (
            (objectives_of(r).get("4.NF.1") or {}).get("level")
            and set(objectives_of(r)) == {"4.NF.1", "4.NF.6"}
        ),
    )
