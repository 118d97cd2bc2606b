"""A records request: everything grading holds about one student, gathered
for the student's family or a district admin to read.

The log is the record: every event of the tenant whose payload names the
student's id (roster changes, guardians, assessments with their
corrections, mastery changes, traditional grades, an erasure) is listed
whole, with sealed personal fields opened. Beside it come the read models a
person would ask about first: who the student is (opened), where they are
enrolled, their assessments, timelines and traditional grades.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec

from mastery_events.contract.roster import Sealed
from mastery_events.database import Connection
from mastery_events.identity import Identity
from mastery_events.keyring import Keyring
from mastery_events.migrations import quote_schema
from mastery_events.person_events import PersonEvent, events_about
from mastery_events.store import EventStore
from mastery_events.tenancy import tenant_transaction
from mastery_grading.assessment_store import AssessmentStore, AssessmentView
from mastery_grading.errors import PersonNotFoundError, StudentNotFoundError
from mastery_grading.gradebook_store import GradebookStore, SectionGrades
from mastery_grading.roster_store import ROSTER_STREAM, RosterReader
from mastery_grading.timeline_reads import Timeline, TimelineReader

RECORDS_SUBJECT = "system:records-request"


class Person(msgspec.Struct, frozen=True, kw_only=True):
    """The person as the roster holds them now; ``fields`` are their opened
    personal fields, ``None`` once erased."""

    person_id: UUID
    role: str
    enabled: bool
    removed: bool
    erased: bool
    fields: dict[str, str | None] | None


class Enrollment(msgspec.Struct, frozen=True, kw_only=True):
    """One enrollment of the person, current or ended."""

    section_id: str
    role: str
    active: bool
    begins_on: date | None
    ends_on: date | None
    ended_at: datetime | None


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One event of the log that names the person, as it was recorded;
    sealed fields in ``payload`` are replaced by their opened values, or
    ``None`` when their key is destroyed."""

    event_id: UUID
    event_type: str
    stream_id: str
    position: int
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    payload: dict[str, Any]


class StudentRecords(msgspec.Struct, frozen=True, kw_only=True):
    """Everything grading holds about one student of one tenant."""

    tenant_id: str
    person_id: UUID
    gathered_at: datetime
    person: Person
    enrollments: list[Enrollment]
    guardian_ids: list[UUID]
    assessments: list[AssessmentView]
    timelines: list[Timeline]
    traditional_grades: list[SectionGrades]
    events: list[RecordedEvent]
    # Other services' events about them, by service schema (reports' share
    # links and views); filled by the records command, which may read
    # every installed service's log, and empty over grading's HTTP route.
    elsewhere: dict[str, list[RecordedEvent]] = msgspec.field(default_factory=dict)


class RecordsRequest:
    """Gather a student's records from one grading schema."""

    def __init__(self, store: EventStore, keyring: Keyring) -> None:
        self.store = store
        self.pool = store.pool
        self.keyring = keyring
        self.schema = quote_schema(store.schema)
        self.roster = RosterReader(store.schema)

    async def gather(
        self, tenant_id: str, person_id: UUID, *, at: datetime
    ) -> StudentRecords:
        """Return everything held about ``person_id``, or raise
        ``PersonNotFoundError`` when the tenant's roster has no such one."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            row = await self.roster.person(connection, tenant_id, person_id)
            if row is None:
                raise PersonNotFoundError(tenant_id, person_id)
            fields = None
            if row.personal is not None:
                fields = await self.keyring.open(
                    connection, tenant_id=tenant_id, sealed=row.personal
                )
            enrollments = await self._enrollments(connection, tenant_id, person_id)
            guardians = await connection.fetch(
                f"SELECT guardian_id FROM {self.schema}.roster_guardians "
                "WHERE tenant_id = $1 AND student_id = $2 ORDER BY guardian_id",
                tenant_id,
                person_id,
            )
            events = await self._events(connection, tenant_id, person_id)

        # The read models, each read as a district admin would.
        student = str(person_id)
        reader = Identity(
            subject=RECORDS_SUBJECT,
            tenant_id=tenant_id,
            roles=frozenset({"district_admin"}),
        )
        try:
            assessments = await AssessmentStore(self.store).of_student(reader, student)
        except StudentNotFoundError:
            assessments = []
        try:
            grades = await GradebookStore(self.store).of_student(reader, student)
        except StudentNotFoundError:
            grades = []
        timelines = TimelineReader(self.pool, self.store.schema)
        cells = await timelines.student(tenant_id, student)

        return StudentRecords(
            tenant_id=tenant_id,
            person_id=person_id,
            gathered_at=at,
            person=Person(
                person_id=person_id,
                role=row.role,
                enabled=row.enabled,
                removed=row.removed,
                erased=row.erased,
                fields=fields,
            ),
            enrollments=enrollments,
            guardian_ids=[guardian["guardian_id"] for guardian in guardians],
            assessments=assessments,
            timelines=[
                await timelines.timeline(tenant_id, student, cell.objective_id)
                for cell in cells
            ],
            traditional_grades=grades,
            events=events,
        )

    async def _enrollments(
        self, connection: Connection, tenant_id: str, person_id: UUID
    ) -> list[Enrollment]:
        rows = await connection.fetch(
            "SELECT section_id, role, active, begins_on, ends_on, ended_at "
            f"FROM {self.schema}.roster_enrollments "
            "WHERE tenant_id = $1 AND person_id = $2 ORDER BY section_id, role",
            tenant_id,
            person_id,
        )
        return [Enrollment(**dict(row)) for row in rows]

    async def _events(
        self, connection: Connection, tenant_id: str, person_id: UUID
    ) -> list[RecordedEvent]:
        """Return every event of grading's log about the person, in the
        log's order, with sealed fields opened."""
        found = await events_about(
            connection,
            self.store.schema,
            tenant_id,
            str(person_id),
            shared_streams=(ROSTER_STREAM,),
        )
        return [
            recorded(event, await self._opened(connection, tenant_id, event.payload))
            for event in found
        ]

    async def elsewhere(
        self, tenant_id: str, person_id: UUID, *, schemas: Sequence[str]
    ) -> dict[str, list[RecordedEvent]]:
        """Return the events about the person in other services' logs, by
        schema: reports' share links and their views, for one."""
        found: dict[str, list[RecordedEvent]] = {}
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            for schema in schemas:
                # A service installed but never migrated holds nothing.
                table = f"{quote_schema(schema)}.events"
                if await connection.fetchval("SELECT to_regclass($1)", table) is None:
                    continue
                events = await events_about(
                    connection, schema, tenant_id, str(person_id)
                )
                found[schema] = [recorded(event, event.payload) for event in events]
        return found

    async def _opened(
        self, connection: Connection, tenant_id: str, payload: Any
    ) -> dict[str, Any]:
        """Return ``payload`` with its sealed ``personal`` field opened."""
        if not isinstance(payload, dict):
            return {"value": payload}
        sealed = payload.get("personal")
        if not isinstance(sealed, dict) or "ciphertext" not in sealed:
            return payload
        seal = msgspec.json.decode(msgspec.json.encode(sealed), type=Sealed)
        opened = await self.keyring.open(connection, tenant_id=tenant_id, sealed=seal)

        return {**payload, "personal": opened}


def recorded(event: PersonEvent, payload: Any) -> RecordedEvent:
    """Return ``event`` as a records request lists it, with ``payload``."""
    envelope = event.envelope
    return RecordedEvent(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        stream_id=envelope.stream_id,
        position=envelope.position,
        occurred_at=envelope.occurred_at,
        recorded_at=envelope.recorded_at,
        actor=envelope.actor,
        payload=payload if isinstance(payload, dict) else {"value": payload},
    )
