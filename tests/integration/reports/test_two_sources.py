"""Two consumers, one student: reports follows objectives and grading with
one durable consumer each, so an objective and a grade on it can be applied
at the same moment in two transactions. Whichever commits last must write a
snapshot that holds both."""

from __future__ import annotations

import asyncio

import asyncpg

from mastery_events.envelope import Event
from mastery_events.keyring import Keyring
from mastery_events.migrations import migrate
from mastery_events.tenancy import tenant_transaction
from mastery_reports.facts_store import FactsWriter
from mastery_reports.service import SERVICE as REPORTS
from mastery_reports.snapshot_store import Snapshots
from tests.integration.reports.district import (
    District,
    assessed,
    catalogue_events,
    new_district,
    relayed,
    roster_events,
)


async def apply_all(
    pool: asyncpg.Pool,
    writer: FactsWriter,
    district: District,
    events: list[Event],
) -> None:
    """Apply ``events`` one transaction each, as a caught-up consumer."""
    for position, event in enumerate(events, start=1):
        async with (
            pool.acquire() as connection,
            tenant_transaction(connection, district.tenant),
        ):
            await writer(connection, relayed(district.tenant, event, position), event)


async def test_an_objective_and_its_grade_applied_together_both_reach_the_report(
    pool: asyncpg.Pool, schema: str, keyring: Keyring
) -> None:
    """The grade's transaction builds the snapshot first and holds it; the
    objective's transaction, running meanwhile, commits after it. The
    stored snapshot shows the objective with the grade's level."""
    async with pool.acquire() as connection:
        await migrate(connection, schema, REPORTS.migrations)
    district = new_district()
    objectives = FactsWriter(schema, source="objectives")
    grading = FactsWriter(schema, source="grading")
    scale, objective_set, fractions, decimals = catalogue_events(district)
    async with (
        pool.acquire() as connection,
        tenant_transaction(connection, district.tenant),
    ):
        personal = await keyring.seal(
            connection,
            tenant_id=district.tenant,
            key_id=district.student,
            fields={"given_name": "Ada", "family_name": "Lovelace"},
        )
    await apply_all(pool, objectives, district, [scale, objective_set, decimals])
    await apply_all(pool, grading, district, roster_events(district, personal))
    recorded, changed = assessed(
        district, district.fractions, 3, days=2, label="Proficient", mastered=True
    )
    await apply_all(pool, grading, district, [recorded])

    grade_applied = asyncio.Event()
    objective_waited = asyncio.Event()

    async def grade() -> None:
        async with (
            pool.acquire() as connection,
            tenant_transaction(connection, district.tenant),
        ):
            await grading(connection, relayed(district.tenant, changed, 100), changed)
            grade_applied.set()
            # Hold the transaction open while the objective's runs.
            await objective_waited.wait()

    async def objective() -> None:
        await grade_applied.wait()
        async with (
            pool.acquire() as connection,
            tenant_transaction(connection, district.tenant),
        ):
            applying = asyncio.ensure_future(
                objectives(
                    connection, relayed(district.tenant, fractions, 100), fractions
                )
            )
            # It gets as far as it can while the grade is uncommitted.
            await asyncio.wait({applying}, timeout=0.5)
            objective_waited.set()
            await applying

    await asyncio.gather(grade(), objective())

    report = await Snapshots(pool, schema).of_student(
        district.tenant, district.student_id
    )
    assert report is not None
    shown = {
        objective.code: objective
        for section in report.snapshot.sections
        for group in section.objective_sets
        for objective in group.objectives
    }
    assert set(shown) == {"4.NF.1", "4.NF.6"}
    assert shown["4.NF.1"].level is not None
    assert shown["4.NF.1"].level.label == "Proficient"
