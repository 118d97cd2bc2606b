"""Reports' snapshots fed over NATS from the objectives and grading
streams: a recorded grade changes the student's snapshot, a redelivered
event changes nothing, and the snapshot names the log position it
reflects."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import nats
import pytest

from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentRecorded,
    AssessmentVoided,
)
from mastery_events.subjects import Subjects
from mastery_events.tenancy import tenant_transaction
from mastery_reports.facts_store import GRADING_CONSUMER
from tests.integration.reports.district import (
    Stack,
    assessed,
    new_district,
    objectives_of,
    seeded,
)

DEADLINE = 30.0


async def test_a_recorded_grade_changes_the_snapshot(stack: Stack) -> None:
    """Fractions at Developing on the 10th of September, then Proficient
    on the 17th: the report shows Proficient, mastered on the 17th, two
    points on the timeline and both pieces of evidence with the teacher's
    comment, one of two objectives mastered, at the position of the
    mastery event."""
    district = new_district()
    first = await seeded(stack, district)
    before = objectives_of(first)["4.NF.1"]

    stored = await stack.append(
        stack.grading,
        district.tenant,
        assessed(
            district,
            district.fractions,
            3,
            days=10,
            label="Proficient",
            mastered=True,
            title="Fraction strips quiz",
            comment="Explained equivalence with strips",
        ),
    )
    report = await stack.settle(
        district,
        "the second assessment reaching the report",
        lambda r: objectives_of(r)["4.NF.1"]["mastered"],
    )
    fractions = objectives_of(report)["4.NF.1"]
    decimals = objectives_of(report)["4.NF.6"]
    totals = report["report"]["sections"][0]["objective_sets"][0]["totals"]

    assert before["level"]["label"] == "Developing"
    assert before["mastered_since"] is None
    assert fractions["level"]["label"] == "Proficient"
    assert (fractions["level"]["rank"], fractions["level"]["ranks"]) == (3, 4)
    assert fractions["mastered_since"].startswith("2026-09-17")
    assert [p["level"] for p in fractions["timeline"]] == [2.0, 3.0]
    assert [e["title"] for e in fractions["evidence"]] == [
        "Exit ticket",
        "Fraction strips quiz",
    ]
    assert fractions["evidence"][1]["comment"] == "Explained equivalence with strips"
    assert decimals["level"] is None
    assert totals == {"objectives": 2, "assessed": 1, "mastered": 1}
    assert report["positions"]["grading"] == stored[-1].position


async def test_a_redelivered_event_changes_nothing(
    stack: Stack, nats_url: str, subject_prefix: str
) -> None:
    """The student's assessment published again under a new message id is
    acked by reports' consumer and leaves the snapshot exactly as it was:
    one piece of evidence, the same document, the same positions."""
    district = new_district()
    before = await seeded(stack, district)
    subjects = Subjects(prefix=subject_prefix)

    bus = await nats.connect(nats_url)
    try:
        js = bus.jetstream()
        stream = subjects.stream_name("grading")
        subject = subjects.event("grading", district.tenant, "AssessmentRecorded")
        original = await js.get_last_msg(stream, subject)
        headers = {
            name: value
            for name, value in (original.headers or {}).items()
            if not name.startswith("Nats-Expected")
        }
        headers["Nats-Msg-Id"] = f"{headers['Nats-Msg-Id']}.again"
        republished = await js.publish(subject, original.data or b"", headers=headers)
        assert not republished.duplicate
        await settled(js, stream, republished.seq)
    finally:
        await bus.close()
    after = await stack.report(district)

    assert after == before
    assert len(objectives_of(before)["4.NF.1"]["evidence"]) == 1


async def settled(js: Any, stream: str, sequence: int) -> None:
    """Wait until reports' grading consumer has acked every message up to
    ``sequence`` of ``stream``."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        info = await js.consumer_info(stream, GRADING_CONSUMER)
        if info.ack_floor.stream_seq >= sequence:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"reports' consumer never settled message {sequence}")


async def test_corrections_reach_the_evidence(stack: Stack) -> None:
    """An amendment moving the exit ticket to the 9th keeps its level; one
    regrading it to Exemplary changes it; a voided quiz leaves the list."""
    district = new_district()
    await seeded(stack, district)
    quiz = assessed(
        district, district.fractions, 1, days=5, label="Beginning", mastered=False
    )
    await stack.append(stack.grading, district.tenant, quiz)
    report = await stack.settle(
        district,
        "the quiz reaching the report",
        lambda r: len(objectives_of(r)["4.NF.1"]["evidence"]) == 2,
    )
    ticket_id = UUID(
        next(
            e["assessment_id"]
            for e in await evidence_rows(stack, district)
            if e["evidence"] == "Exit ticket"
        )
    )
    recorded = quiz[0]
    assert isinstance(recorded, AssessmentRecorded)
    at = datetime(2026, 9, 20, tzinfo=UTC)

    await stack.append(
        stack.grading,
        district.tenant,
        [
            AssessmentAmended(
                assessment_id=ticket_id,
                assessed_at=datetime(2026, 9, 16, 8, 30, tzinfo=UTC),
                reason="wrong day",
                amended_by="ms-frizzle",
                amended_at=at,
            ),
            AssessmentVoided(
                assessment_id=recorded.assessment_id,
                reason="wrong student",
                voided_by="ms-frizzle",
                voided_at=at,
            ),
        ],
    )
    moved = await stack.settle(
        district,
        "the corrections reaching the report",
        lambda r: len(objectives_of(r)["4.NF.1"]["evidence"]) == 1,
    )
    await stack.append(
        stack.grading,
        district.tenant,
        [
            AssessmentAmended(
                assessment_id=ticket_id,
                level=4,
                reason="regraded",
                amended_by="ms-frizzle",
                amended_at=at,
            )
        ],
    )
    regraded = await stack.settle(
        district,
        "the regrade reaching the report",
        lambda r: (
            objectives_of(r)["4.NF.1"]["evidence"][0]["level"]["label"] == "Exemplary"
        ),
    )

    assert [e["title"] for e in objectives_of(report)["4.NF.1"]["evidence"]] == [
        "Exit ticket",
        "Exit ticket",
    ]
    (ticket,) = objectives_of(moved)["4.NF.1"]["evidence"]
    assert ticket["at"].startswith("2026-09-16")
    assert ticket["level"]["label"] == "Developing"
    assert objectives_of(regraded)["4.NF.1"]["evidence"][0]["at"].startswith(
        "2026-09-16"
    )


async def evidence_rows(stack: Stack, district: Any) -> list[dict[str, Any]]:
    """Return reports' assessment rows of the district's student."""
    async with (
        stack.pool.acquire() as connection,
        tenant_transaction(connection, district.tenant),
    ):
        rows = await connection.fetch(
            "SELECT assessment_id::text, evidence FROM reports.assessments "
            "WHERE tenant_id = $1 AND student_id = $2 ORDER BY assessed_at",
            district.tenant,
            district.student_id,
        )
    return [dict(row) for row in rows]
