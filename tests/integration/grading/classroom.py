"""A school as grading knows it, for assessment and gradebook tests.

Two rooms of one school: Ms Frizzle's room 12 teaches the maths set
(ratios, fractions) to 24 students; Mr Ratburn's room 14 teaches the
science set (magnets) to Arnold. One four-level scale with a missing mark
that counts as the lowest and an excused mark.

The catalogue is filled the way the consumer fills it, through
``CatalogueWriter``; the roster the way an import records it, as roster
events appended and applied by ``RosterProjection`` in one transaction.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient

from mastery_events.contract import CONTRACT
from mastery_events.contract.objectives import (
    ObjectiveAdded,
    ScaleDefined,
    ScaleLevel,
    ScaleMark,
)
from mastery_events.contract.roster import (
    ObjectiveSetLinked,
    PersonEnrolled,
    PersonRostered,
    PersonUnenrolled,
    Sealed,
    SectionRostered,
)
from mastery_events.envelope import Envelope, Event, PendingEvent
from mastery_events.ids import uuid7
from mastery_events.store import EventStore, StreamAppend
from mastery_events.tenancy import tenant_transaction
from mastery_grading.catalogue_store import CatalogueWriter
from mastery_grading.roster_store import ROSTER_STREAM, RosterProjection
from mastery_grading.service import SERVICE
from tests.tokens import TestKeys, bearer

SCHOOL = "lakeside-elementary"
ROOM_12 = "room-12"
ROOM_14 = "room-14"
MATHS_SET = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd7001")
SCIENCE_SET = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd7002")
RATIOS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd7011")
FRACTIONS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd7012")
MAGNETS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd7021")
FOUR_LEVELS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd7031")
ROOM_12_STUDENTS = tuple(
    UUID(f"01a23cb1-6997-74ca-8af2-0d18b6dd8{number:03d}") for number in range(24)
)
ARNOLD = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd9001")
# Rostered in room 12 once, and no longer enrolled there.
WANDA = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd9002")
FRIZZLE = "ms-frizzle"
RATBURN = "mr-ratburn"
MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
SCHEMA = SERVICE.schema


def new_tenant() -> str:
    """Return a tenant of this test's own in the shared grading schema."""
    return f"lakeside-{secrets.token_hex(4)}"


def four_levels() -> ScaleDefined:
    """Beginning 1 to Exemplary 4, mastery at 3, with missing and excused
    marks."""
    return ScaleDefined(
        scale_id=FOUR_LEVELS,
        name="Lakeside four",
        levels=tuple(
            ScaleLevel(value=value, label=label, short_label=label[0], colour="#2a6f97")
            for value, label in (
                (1, "Beginning"),
                (2, "Developing"),
                (3, "Proficient"),
                (4, "Exemplary"),
            )
        ),
        mastery_threshold=3.0,
        marks=(
            ScaleMark(
                code="M", label="Missing", meaning="missing", counts_as_lowest=True
            ),
            ScaleMark(code="EX", label="Excused", meaning="excused"),
        ),
        defined_by="coordinator-hoover",
        defined_at=MONDAY,
    )


def objective(set_id: UUID, objective_id: UUID, code: str) -> ObjectiveAdded:
    """An objective added to a set."""
    return ObjectiveAdded(
        objective_set_id=set_id,
        objective_id=objective_id,
        code=code,
        statement=f"Shows {code}",
        added_by="coordinator-hoover",
        added_at=MONDAY,
    )


def envelope(tenant: str, event: Event) -> Envelope:
    """Wrap ``event`` as the first event of its stream, for the writer."""
    return Envelope(
        event_id=uuid7(),
        event_type=type(event).__name__,
        event_version=1,
        tenant_id=tenant,
        stream_id="catalogue-seed",
        stream_version=1,
        position=1,
        transaction_id=1,
        occurred_at=MONDAY,
        recorded_at=MONDAY,
        actor="coordinator-hoover",
        correlation_id=uuid7(),
        payload=msgspec.Raw(b"{}"),
    )


async def fill_catalogue(pool: asyncpg.Pool, schema: str, tenant: str) -> None:
    """Give grading the scale and the three objectives, as the catalogue
    consumer would."""
    writer = CatalogueWriter(schema)
    events: list[Event] = [
        four_levels(),
        objective(MATHS_SET, RATIOS, "M.1"),
        objective(MATHS_SET, FRACTIONS, "M.2"),
        objective(SCIENCE_SET, MAGNETS, "S.1"),
    ]
    async with pool.acquire() as connection, tenant_transaction(connection, tenant):
        for event in events:
            await writer(connection, envelope(tenant, event), event)


def sealed() -> Sealed:
    """An opaque sealed value: the projection keeps it and never opens it,
    and these tests read no names."""
    return Sealed(key_id=uuid7(), nonce=bytes(12), ciphertext=b"sealed")


def roster_events() -> list[Event]:
    """The school's roster as a roster import records it: two rooms, their
    students (Wanda enrolled in room 12, then unenrolled), and the set each
    room teaches."""
    events: list[Event] = [
        SectionRostered(
            section_id=section_id,
            title=title,
            school_id=SCHOOL,
            course_id=course_id,
            course_title=course_id,
            rostered_at=MONDAY,
        )
        for section_id, title, course_id in (
            (ROOM_12, "Room 12", "maths-6"),
            (ROOM_14, "Room 14", "science-6"),
        )
    ]
    placed = [(student, ROOM_12) for student in ROOM_12_STUDENTS]
    placed += [(ARNOLD, ROOM_14), (WANDA, ROOM_12)]
    for person, section_id in placed:
        events.append(
            PersonRostered(
                person_id=person,
                sourced_id_digest=person.hex,
                role="student",
                school_ids=(SCHOOL,),
                personal=sealed(),
                rostered_at=MONDAY,
            )
        )
        events.append(
            PersonEnrolled(
                person_id=person,
                section_id=section_id,
                role="student",
                enrolled_at=MONDAY,
            )
        )
    events.append(
        PersonUnenrolled(person_id=WANDA, section_id=ROOM_12, unenrolled_at=MONDAY)
    )
    events += [
        ObjectiveSetLinked(
            section_id=section_id,
            objective_set_id=set_id,
            linked_by="coordinator-hoover",
            linked_at=MONDAY,
        )
        for section_id, set_id in ((ROOM_12, MATHS_SET), (ROOM_14, SCIENCE_SET))
    ]
    return events


async def record_roster(pool: asyncpg.Pool, schema: str, tenant: str) -> None:
    """Append the school's roster events to grading's roster stream and
    apply them with the roster projection, in one transaction, as a roster
    import does."""
    store = EventStore(pool, schema, registry=CONTRACT)
    events = roster_events()
    pending = [
        PendingEvent(
            payload=event,
            occurred_at=MONDAY,
            actor="coordinator-hoover",
            correlation_id=uuid7(),
        )
        for event in events
    ]
    batch = StreamAppend(
        tenant_id=tenant, stream_id=ROSTER_STREAM, expected_version=0, events=pending
    )
    async with pool.acquire() as connection, tenant_transaction(connection, tenant):
        await store.append_within(connection, [batch])
        await RosterProjection(schema).apply_many(connection, tenant, events)


async def count_events(pool: asyncpg.Pool, schema: str, tenant: str) -> int:
    """Return how many events the tenant has in grading's log besides its
    roster."""
    async with pool.acquire() as connection, tenant_transaction(connection, tenant):
        found: int = await connection.fetchval(
            f'SELECT count(*) FROM "{schema}".events '
            "WHERE tenant_id = $1 AND stream_id <> $2",
            tenant,
            ROSTER_STREAM,
        )
    return found


async def count_rows(pool: asyncpg.Pool, schema: str, table: str, tenant: str) -> int:
    """Return how many rows the tenant has in one of grading's tables."""
    async with pool.acquire() as connection, tenant_transaction(connection, tenant):
        found: int = await connection.fetchval(
            f'SELECT count(*) FROM "{schema}".{table} WHERE tenant_id = $1', tenant
        )
    return found


class School:
    """A running grading service, one seeded tenant, and its people."""

    def __init__(
        self,
        client: AsyncTestClient[Litestar],
        keys: TestKeys,
        pool: asyncpg.Pool,
        tenant: str,
    ) -> None:
        self.client = client
        self.keys = keys
        self.pool = pool
        self.tenant = tenant

    def frizzle(self) -> dict[str, str]:
        """Headers of room 12's teacher."""
        token = self.keys.token(
            self.tenant, ["teacher"], subject=FRIZZLE, sections=[ROOM_12]
        )
        return bearer(token)

    def ratburn(self) -> dict[str, str]:
        """Headers of room 14's teacher."""
        token = self.keys.token(
            self.tenant, ["teacher"], subject=RATBURN, sections=[ROOM_14]
        )
        return bearer(token)

    def as_role(self, role: str) -> dict[str, str]:
        """Headers of someone holding only ``role``."""
        token = self.keys.token(self.tenant, [role], subject=f"{role}-1")  # type: ignore[list-item]
        return bearer(token)

    async def post(
        self,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
        *,
        key: str | None = None,
    ) -> httpx.Response:
        """Post ``body`` as Ms Frizzle unless ``headers`` say otherwise."""
        sent = dict(headers or self.frizzle())
        if key is not None:
            sent["Idempotency-Key"] = key
        return await self.client.post(path, json=body, headers=sent)

    async def events(self) -> int:
        """How many events the tenant has in grading's log."""
        return await count_events(self.pool, SCHEMA, self.tenant)

    async def assessments(self) -> int:
        """How many rows the tenant has in the assessments read table."""
        return await count_rows(self.pool, SCHEMA, "assessments", self.tenant)
