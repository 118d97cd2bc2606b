"""``mastery audit as-of``: a student's mastery as of a valid date and as
known at a recorded moment, for an auditor at the operator's console.

It answers what the auditors' HTTP routes answer, from the same reader,
and records the read in grading's log as an ``AuditorAccessed``, as those
routes do. The launcher's ``audit`` group finds it through the
``mastery.audit`` entry points, so it never imports grading by name.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import click
import msgspec

from mastery_events.contract import CONTRACT
from mastery_events.ids import uuid7
from mastery_events.moments import TIME_FORMATS, as_utc, operator
from mastery_events.store import EventStore
from mastery_events.subjects import InvalidTenantError, check_tenant_id
from mastery_grading.auditor_access import audited_read, record_access
from mastery_grading.errors import GradingError, NoMasteryError
from mastery_grading.roster_commands import command_settings
from mastery_grading.service import SERVICE
from mastery_grading.timeline_reads import MasteryCell, Timeline, TimelineReader


class StudentAsOf(msgspec.Struct, frozen=True, kw_only=True):
    """A student's mastery on every objective at ``as_of`` as believed at
    ``known_at``; ``None`` for either means the newest, as known now."""

    student_id: str
    as_of: datetime | None
    known_at: datetime | None
    mastery: list[MasteryCell]


async def read_as_of(
    pool: asyncpg.Pool,
    tenant_id: str,
    student_id: str,
    *,
    objective_id: UUID | None,
    as_of: datetime | None,
    known_at: datetime | None,
    auditor: str,
    at: datetime,
) -> Timeline | StudentAsOf:
    """Read one timeline, or the student's whole summary, and record the
    read in grading's log as ``auditor``'s."""
    reader = TimelineReader(pool, SERVICE.schema)
    found: Timeline | StudentAsOf
    if objective_id is not None:
        found = await reader.timeline(
            tenant_id, student_id, objective_id, as_of=as_of, known_at=known_at
        )
    else:
        cells = await reader.summary(
            tenant_id, student_id, as_of=as_of, known_at=known_at
        )
        if not cells:
            raise NoMasteryError(student_id)
        found = StudentAsOf(
            student_id=student_id, as_of=as_of, known_at=known_at, mastery=cells
        )

    access = audited_read(
        auditor,
        "timeline" if objective_id is not None else "student-summary",
        student_id=student_id,
        objective_id=objective_id,
        as_of=as_of,
        known_at=known_at,
        at=at,
    )
    store = EventStore(pool, SERVICE.schema, registry=CONTRACT)
    await record_access(store, tenant_id, access, correlation_id=uuid7())

    return found


@click.command(name="as-of")
@click.option("--tenant", required=True, help="The student's district.")
@click.option("--student", required=True, help="The student's opaque id.")
@click.option("--objective", type=click.UUID, help="One objective's timeline only.")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(TIME_FORMATS),
    help="The state in force at this valid time (UTC unless given).",
)
@click.option(
    "--known-at",
    "known_at",
    type=click.DateTime(TIME_FORMATS),
    help="As the log knew it at this recorded moment (UTC unless given).",
)
@click.option(
    "--auditor",
    default=operator,
    show_default="operator:<login>",
    help="Who asks, as the access event records it.",
)
def as_of_command(
    tenant: str,
    student: str,
    objective: UUID | None,
    as_of: datetime | None,
    known_at: datetime | None,
    auditor: str,
) -> None:
    """Print a student's mastery (or one objective's timeline) as of a
    date and as known at a moment, as JSON; the read is recorded."""
    settings = command_settings()
    try:
        tenant_id = check_tenant_id(tenant)
    except InvalidTenantError as error:
        raise click.BadParameter(str(error), param_hint="--tenant") from None

    async def run() -> Timeline | StudentAsOf:
        async with asyncpg.create_pool(
            settings.database_url, min_size=1, max_size=2
        ) as pool:
            return await read_as_of(
                pool,
                tenant_id,
                student,
                objective_id=objective,
                as_of=as_utc(as_of),
                known_at=as_utc(known_at),
                auditor=auditor,
                at=datetime.now(UTC),
            )

    try:
        found = asyncio.run(run())
    except (GradingError, OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(msgspec.json.format(msgspec.json.encode(found)).decode())
