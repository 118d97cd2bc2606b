"""A student's report is read in one statement that binds its own tenant,
over connections handed back without asyncpg's session reset: the read
must see only its tenant's rows and leave nothing behind on the
connection for the next caller."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest

from mastery_deploy.credentials import enable_app_login
from mastery_events.database import StatementConnection
from mastery_events.tenancy import tenant_transaction
from mastery_reports.snapshot_store import Snapshots
from tests.integration.reports.district import Stack, new_district, seeded


@pytest.fixture
async def statements(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """One connection, logged in as ``mastery_app``, never reset, so each
    read meets what the one before it left."""
    app_url = await enable_app_login(database_url, secrets.token_urlsafe(12))
    async with asyncpg.create_pool(
        app_url, min_size=1, max_size=1, connection_class=StatementConnection
    ) as pool:
        yield pool


async def test_a_report_read_answers_its_tenant_and_leaves_no_tenant_behind(
    stack: Stack, statements: asyncpg.Pool
) -> None:
    """Two districts' students: each is read under its own tenant, neither
    under the other's, and afterwards the connection is bound to no tenant
    and sees no snapshot at all."""
    lakeside, hillcrest = new_district(), new_district()
    await seeded(stack, lakeside)
    await seeded(stack, hillcrest)
    snapshots = Snapshots(stack.pool, "reports", statements=statements)

    own = await snapshots.json_of_student(lakeside.tenant, lakeside.student_id)
    crossed = await snapshots.json_of_student(lakeside.tenant, hillcrest.student_id)
    async with statements.acquire() as connection:
        left_bound = await connection.fetchval(
            "SELECT current_setting('mastery.tenant_id', true)"
        )
        visible = await connection.fetchval("SELECT count(*) FROM reports.snapshots")

    assert own is not None
    document = msgspec.json.decode(own.document)
    assert document["student_id"] == lakeside.student_id
    assert [place.section_id for place in own.sections] == [
        section["section_id"] for section in document["sections"]
    ]
    assert crossed is None
    assert left_bound in (None, "")
    assert visible == 0


async def test_the_report_statement_will_not_rebind_another_tenants_transaction(
    stack: Stack,
) -> None:
    """Called inside a transaction bound to one district, the statement
    refuses to read for another rather than quietly switch tenants."""
    lakeside, hillcrest = new_district(), new_district()
    await seeded(stack, hillcrest)

    async with stack.pool.acquire() as connection:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with tenant_transaction(connection, lakeside.tenant):
                await connection.fetch(
                    "SELECT * FROM reports.student_report($1, $2)",
                    hillcrest.tenant,
                    hillcrest.student_id,
                )
