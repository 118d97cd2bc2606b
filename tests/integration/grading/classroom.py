"""A school as grading knows it, for assessment and gradebook tests.

Two rooms of one school: Ms Frizzle's room 12 teaches the maths set
(ratios, fractions) to 24 students; Mr Ratburn's room 14 teaches the
science set (magnets) to Arnold. One four-level scale with a missing mark
that counts as the lowest and an excused mark.

The catalogue is filled the way the consumer fills it, through
``CatalogueWriter``. The roster is written straight into the roster
tables by ``insert_roster_rows``, standing in for roster import until its
projection exists; the rows are the ones that projection keeps.
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

from mastery_events.contract.objectives import (
    ObjectiveAdded,
    ScaleDefined,
    ScaleLevel,
    ScaleMark,
)
from mastery_events.envelope import Envelope, Event
from mastery_events.ids import uuid7
from mastery_events.tenancy import tenant_transaction
from mastery_grading.catalogue_store import CatalogueWriter
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


async def insert_roster_rows(pool: asyncpg.Pool, schema: str, tenant: str) -> None:
    """Write the school's roster straight into grading's roster tables:
    the two rooms, their students and teachers, and the sets they teach."""
    quoted = f'"{schema}"'
    enrollments = [
        (ROOM_12, student, "student", True) for student in ROOM_12_STUDENTS
    ] + [(ROOM_14, ARNOLD, "student", True), (ROOM_12, WANDA, "student", False)]
    async with pool.acquire() as connection, tenant_transaction(connection, tenant):
        await connection.executemany(
            f"INSERT INTO {quoted}.roster_sections (tenant_id, section_id, title, "
            "school_id, course_id, course_title) VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (tenant, ROOM_12, "Room 12", SCHOOL, "maths-6", "Maths 6"),
                (tenant, ROOM_14, "Room 14", SCHOOL, "science-6", "Science 6"),
            ],
        )
        await connection.executemany(
            f"INSERT INTO {quoted}.roster_people (tenant_id, person_id, "
            "sourced_id_digest, role, school_ids) VALUES ($1, $2, $3, $4, $5)",
            [
                (tenant, person, person.hex, "student", [SCHOOL])
                for person in (*ROOM_12_STUDENTS, ARNOLD, WANDA)
            ],
        )
        await connection.executemany(
            f"INSERT INTO {quoted}.roster_enrollments (tenant_id, section_id, "
            "person_id, role, active) VALUES ($1, $2, $3, $4, $5)",
            [(tenant, *enrollment) for enrollment in enrollments],
        )
        await connection.executemany(
            f"INSERT INTO {quoted}.section_objective_sets "
            "(tenant_id, section_id, objective_set_id) VALUES ($1, $2, $3)",
            [(tenant, ROOM_12, MATHS_SET), (tenant, ROOM_14, SCIENCE_SET)],
        )


async def count_events(pool: asyncpg.Pool, schema: str, tenant: str) -> int:
    """Return how many events the tenant has in grading's log."""
    async with pool.acquire() as connection, tenant_transaction(connection, tenant):
        found: int = await connection.fetchval(
            f'SELECT count(*) FROM "{schema}".events WHERE tenant_id = $1', tenant
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
