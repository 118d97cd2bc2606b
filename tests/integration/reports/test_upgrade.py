"""A deployment that ran an earlier release of reports' migrations takes
the later ones and keeps its snapshots: districts upgrade in place, so a
released migration is never edited, and each change comes as a new one."""

from __future__ import annotations

import asyncpg
import msgspec

from mastery_events.migrations import migrate
from mastery_events.tenancy import tenant_transaction
from mastery_reports.service import SERVICE as REPORTS
from mastery_reports.snapshot_store import Snapshots

# Reports' migrations as the release before the json document shipped them.
RELEASED = 3


async def test_snapshots_stored_as_jsonb_read_back_after_the_upgrade(
    pool: asyncpg.Pool, schema: str
) -> None:
    """A snapshot written under the released migrations, where the document
    was jsonb and the report function named the sections' places, is read
    through the upgraded function with its document and places intact."""
    released = [m for m in REPORTS.migrations if m.number <= RELEASED]
    document = {
        "student_id": "student-7",
        "sections": [
            {"section_id": "math-4a", "school_id": "lincoln", "title": "Math"},
            {"section_id": "art-4", "school_id": "lincoln", "title": "Art"},
        ],
        "terms": [],
    }
    async with pool.acquire() as connection:
        await migrate(connection, schema, released)
        async with tenant_transaction(connection, "lakeside"):
            await connection.execute(
                f'INSERT INTO "{schema}".snapshots (tenant_id, student_id, '
                "document, positions, updated_at) "
                "VALUES ($1, $2, $3::jsonb, '{\"grading\": 41}', now())",
                "lakeside",
                "student-7",
                msgspec.json.encode(document).decode(),
            )

        upgraded = await migrate(connection, schema, REPORTS.migrations)

    read = await Snapshots(pool, schema).json_of_student("lakeside", "student-7")

    assert [m.number for m in upgraded] == [
        m.number for m in REPORTS.migrations if m.number > RELEASED
    ]
    assert read is not None
    assert msgspec.json.decode(read.document) == document
    assert msgspec.json.decode(read.positions) == {"grading": 41}
    assert [(p.section_id, p.school_id) for p in read.sections] == [
        ("math-4a", "lincoln"),
        ("art-4", "lincoln"),
    ]
