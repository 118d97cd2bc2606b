"""The reports side of an erasure: grading's ``PersonErased`` revokes every
open share link of the student, each with a ``ShareLinkRevoked`` that says
why, and the name opened at read time is gone from the report."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from mastery_events.contract.roster import PersonErased
from mastery_events.tenancy import tenant_transaction
from mastery_reports.facts_store import ERASURE_ACTOR, ERASURE_REASON
from mastery_reports.share_link_store import stream_of
from tests.integration.reports.district import (
    SECTION,
    SEPTEMBER,
    Stack,
    new_district,
    seeded,
)
from tests.integration.reports.test_share_links import share
from tests.waiting import eventually


async def revocations(stack: Stack, tenant: str, link_id: str) -> list[dict[str, Any]]:
    """Return the ShareLinkRevoked events of one link in reports' log."""
    async with (
        stack.pool.acquire() as connection,
        tenant_transaction(connection, tenant),
    ):
        rows = await connection.fetch(
            "SELECT payload, actor FROM reports.events WHERE tenant_id = $1 "
            "AND stream_id = $2 AND event_type = 'ShareLinkRevoked'",
            tenant,
            stream_of(UUID(link_id)),
        )
    return [
        {**msgspec.json.decode(row["payload"]), "actor": row["actor"]} for row in rows
    ]


async def test_erasing_a_student_revokes_her_open_links_with_a_reason(
    stack: Stack,
) -> None:
    """Ada has two open links and one her teacher revoked: after her
    erasure both open ones are revoked by the erasure, saying why, the
    revoked one keeps its single revocation, her links open nowhere, and
    her section's matrix no longer names her."""
    district = new_district()
    await seeded(stack, district)
    matrix_path = f"/sections/{SECTION}/matrix"
    named = await stack.client.get(matrix_path, headers=stack.teacher(district))
    first = await share(stack, district)
    second = await share(stack, district)
    earlier = await share(stack, district)
    by_teacher = await stack.client.post(
        f"/share-links/{earlier['share_link']['share_link_id']}/revoke",
        headers=stack.teacher(district),
    )
    assert by_teacher.status_code == 200

    erased = PersonErased(
        person_id=district.student,
        erased_by="admin-chalmers",
        erased_at=SEPTEMBER,
        reason="the family asked for erasure",
    )
    await stack.append(stack.grading, district.tenant, [erased])

    async def revoked() -> bool:
        listed = await stack.client.get(
            f"/students/{district.student_id}/share-links",
            headers=stack.teacher(district, section=SECTION),
        )
        return all(link["revoked_at"] for link in listed.json())

    await eventually(revoked, within=30.0, what="the erasure revoking the links")
    matrix = await stack.client.get(matrix_path, headers=stack.teacher(district))

    for link in (first, second):
        events = await revocations(
            stack, district.tenant, link["share_link"]["share_link_id"]
        )
        assert [(e["reason"], e["actor"]) for e in events] == [
            (ERASURE_REASON, ERASURE_ACTOR)
        ]
        opened = await stack.client.get(f"/shared/{district.tenant}/{link['token']}")
        assert opened.status_code == 404
    kept = await revocations(
        stack, district.tenant, earlier["share_link"]["share_link_id"]
    )
    assert [e["reason"] for e in kept] == [None]
    assert "Lovelace" in named.text
    assert matrix.status_code == 200
    assert "Lovelace" not in matrix.text
