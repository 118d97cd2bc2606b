"""Shared reports rendered again from the log: a guardian's page read
before a correction and one read after are both written again, byte for
byte, once the correction is in the log; a view is found only in its own
tenant, and no scratch schema outlives a reproduction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest
from click.testing import CliRunner

from mastery_deploy.audit import audit
from mastery_events.contract import CONTRACT
from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentRecorded,
    AssessmentVoided,
    MasteryChanged,
)
from mastery_events.contract.reports import ReportReproduced, ReportViewed
from mastery_events.store import EventStore
from mastery_reports.errors import ViewNotFoundError
from mastery_reports.reproduction import Reproduced, reproduce_view
from mastery_reports.service import SERVICE
from mastery_reports.share_link_store import stream_of
from tests.integration.reports.district import (
    SECTION,
    SEPTEMBER,
    District,
    Stack,
    assessed,
    catalogue_events,
    new_district,
    objectives_of,
    roster_events,
)
from tests.keys import KEY_ENCRYPTION_KEY

SOURCES = {"objectives": "objectives", "grading": "grading"}
CORRECTED_AT = datetime(2026, 9, 21, 15, 0, tzinfo=UTC)


async def share(stack: Stack, district: District) -> dict[str, Any]:
    """Create a link to the student's report as their teacher."""
    answer = await stack.client.post(
        f"/students/{district.student_id}/share-links",
        json={"section_ids": [SECTION]},
        headers=stack.teacher(district),
    )
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def views_of(stack: Stack, district: District, link_id: UUID) -> list[UUID]:
    """Return the event ids of a link's views, oldest first."""
    store = EventStore(stack.pool, SERVICE.schema, registry=CONTRACT)
    envelopes = await store.read_stream(district.tenant, stream_of(link_id))
    return [
        envelope.event_id
        for envelope in envelopes
        if isinstance(CONTRACT.decode(envelope), ReportViewed)
    ]


async def reproductions_of(stack: Stack, district: District) -> list[ReportReproduced]:
    """Return the reproductions reports' log holds for the district."""
    async with stack.pool.acquire() as connection:
        rows = await connection.fetch(
            "SELECT payload FROM reports.events WHERE tenant_id = $1 "
            "AND event_type = 'ReportReproduced' ORDER BY position",
            district.tenant,
        )
    return [msgspec.json.decode(row["payload"], type=ReportReproduced) for row in rows]


async def reproduced(stack: Stack, district: District, view_id: UUID) -> Reproduced:
    """Render one view of the district again from the log."""
    return await reproduce_view(
        stack.pool,
        service=SERVICE,
        sources=SOURCES,
        tenant_id=district.tenant,
        view_id=view_id,
        keyring=stack.keyring,
        auditor="state-auditor-7",
        at=datetime.now(UTC),
    )


async def graded_twice(stack: Stack, district: District) -> tuple[UUID, UUID]:
    """Publish the district with Ada Lovelace at Developing on fractions
    and Exemplary on decimals; return the two assessments' ids."""
    await stack.append(stack.objectives, district.tenant, catalogue_events(district))
    personal = await stack.seal(district, given_name="Ada", family_name="Lovelace")
    await stack.append(
        stack.grading, district.tenant, roster_events(district, personal)
    )
    fractions = assessed(
        district, district.fractions, 2, days=3, label="Developing", mastered=False
    )
    decimals = assessed(
        district, district.decimals, 4, days=5, label="Exemplary", mastered=True
    )
    await stack.append(stack.grading, district.tenant, [*fractions, *decimals])
    first, second = fractions[0], decimals[0]
    assert isinstance(first, AssessmentRecorded)
    assert isinstance(second, AssessmentRecorded)

    return first.assessment_id, second.assessment_id


def corrections(
    district: District, fractions: UUID, decimals: UUID
) -> list[AssessmentAmended | AssessmentVoided | MasteryChanged]:
    """The fractions ticket amended to Proficient and the decimals quiz
    voided, with the mastery grading would derive from each."""
    on_day_3 = SEPTEMBER + timedelta(days=3)
    return [
        AssessmentAmended(
            assessment_id=fractions,
            level=3,
            reason="misread the rubric",
            amended_by="ms-frizzle",
            amended_at=CORRECTED_AT,
        ),
        MasteryChanged(
            student_id=district.student_id,
            objective_id=district.fractions,
            valid_from=on_day_3,
            status="scored",
            score=3,
            level=3,
            level_label="Proficient",
            mastered=True,
            method="most_recent",
            scale_id=district.scale_id,
            scale_version=1,
            counted=(fractions,),
            cause_event_id=fractions,
            reason="assessment amended",
        ),
        AssessmentVoided(
            assessment_id=decimals,
            reason="wrong student",
            voided_by="ms-frizzle",
            voided_at=CORRECTED_AT,
        ),
        MasteryChanged(
            student_id=district.student_id,
            objective_id=district.decimals,
            valid_from=SEPTEMBER + timedelta(days=5),
            status="not_enough_evidence",
            method="most_recent",
            scale_id=district.scale_id,
            scale_version=1,
            cause_event_id=decimals,
            reason="assessment voided",
        ),
    ]


async def test_pages_read_before_and_after_a_correction_are_reproduced_exactly(
    stack: Stack,
) -> None:
    """A guardian reads the page, the fractions ticket is amended and the
    decimals quiz voided, and she reads it again, in Spanish: the two
    pages differ, and after the correction each is written again from the
    log byte for byte, the first with the quiz and the old level."""
    district = new_district()
    fractions, decimals = await graded_twice(stack, district)
    await stack.snapshot_positions(district)
    created = await share(stack, district)
    link_id = UUID(created["share_link"]["share_link_id"])
    before = await stack.client.get(created["path"])

    await stack.append(
        stack.grading, district.tenant, corrections(district, fractions, decimals)
    )
    await stack.settle(
        district,
        "the corrections reaching the report",
        lambda r: objectives_of(r)["4.NF.6"]["evidence"] == [],
    )
    await stack.snapshot_positions(district)
    after = await stack.client.get(created["path"], params={"lang": "es"})
    first_view, second_view = await views_of(stack, district, link_id)
    then = await reproduced(stack, district, first_view)
    now = await reproduced(stack, district, second_view)

    assert before.status_code == after.status_code == 200
    assert before.content != after.content
    assert then.body.encode() == before.content
    assert now.body.encode() == after.content
    assert "Ada Lovelace" in then.body
    assert "Exemplary" in then.body
    assert "Proficient" in now.body
    assert (then.language, now.language) == ("en", "es")
    assert then.positions["grading"] < now.positions["grading"]


async def test_the_pdf_view_reproduces_the_html_it_was_typeset_from(
    stack: Stack,
) -> None:
    """A PDF read through the page's own link is logged as a PDF view, and
    its reproduction is the report's print HTML, not the page's."""
    district = new_district()
    await graded_twice(stack, district)
    await stack.snapshot_positions(district)
    created = await share(stack, district)
    link_id = UUID(created["share_link"]["share_link_id"])
    page = await stack.client.get(created["path"])
    pdf = await stack.client.get(
        created["path"], params={"lang": "en", "download": "pdf"}
    )
    page_view, pdf_view = await views_of(stack, district, link_id)

    printed = await reproduced(stack, district, pdf_view)
    shown = await reproduced(stack, district, page_view)

    assert pdf.content.startswith(b"%PDF")
    assert printed.format == "pdf"
    assert shown.body.encode() == page.content
    assert printed.body != shown.body
    assert "download=pdf" not in printed.body


async def test_a_view_is_found_only_in_its_own_tenant_and_leaves_no_scratch(
    stack: Stack,
) -> None:
    """Asking for a view under another tenant is not found, and neither
    that nor a reproduction leaves a scratch schema behind."""
    district = new_district()
    await graded_twice(stack, district)
    await stack.snapshot_positions(district)
    created = await share(stack, district)
    link_id = UUID(created["share_link"]["share_link_id"])
    await stack.client.get(created["path"])
    (view_id,) = await views_of(stack, district, link_id)

    await reproduced(stack, district, view_id)
    with pytest.raises(ViewNotFoundError):
        await reproduced(stack, new_district(), view_id)
    async with stack.pool.acquire() as connection:
        scratch = await connection.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'reports_replay_%'"
        )

    assert scratch == 0


async def test_the_audit_command_writes_the_page_again_and_is_recorded(
    stack: Stack, database_url: str, tmp_path: Path
) -> None:
    """``mastery audit reproduce-view`` writes the page a guardian read,
    byte for byte, says which view it was, and leaves a ReportReproduced
    naming the auditor and the view; an unknown view is refused."""
    district = new_district()
    await graded_twice(stack, district)
    await stack.snapshot_positions(district)
    created = await share(stack, district)
    link_id = UUID(created["share_link"]["share_link_id"])
    page = await stack.client.get(created["path"])
    (view_id,) = await views_of(stack, district, link_id)
    runner = CliRunner(
        env={
            "MASTERY_DATABASE_URL": database_url,
            "MASTERY_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY,
        }
    )
    written = tmp_path / "view.html"
    arguments = ["reproduce-view", "--tenant", district.tenant, "--auditor", "dana"]

    done = await asyncio.to_thread(
        runner.invoke,
        audit,
        [*arguments, "--view", str(view_id), "--output", str(written)],
    )
    refused = await asyncio.to_thread(
        runner.invoke, audit, [*arguments, "--view", str(link_id)]
    )
    (recorded,) = await reproductions_of(stack, district)

    assert done.exit_code == 0, done.output
    assert written.read_bytes() == page.content
    assert str(view_id) in done.output
    assert refused.exit_code == 1
    assert f"no view {link_id}" in refused.output
    assert (recorded.auditor, recorded.view_id) == ("dana", view_id)
    assert recorded.share_link_id == link_id
