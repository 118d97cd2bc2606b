"""Assessments recorded, corrected and read through a running grading
service on real PostgreSQL and NATS: a class graded in one batch, each
refusal answered as an RFC 9457 problem with nothing stored, retries made
safe by idempotency keys, and amends and voids kept with their reasons."""

from __future__ import annotations

import asyncio
import io
import zipfile
from typing import Any
from uuid import UUID

import pytest

from mastery_events.contract import CONTRACT
from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentRecorded,
    AssessmentVoided,
)
from mastery_events.store import EventStore
from tests.integration.grading.classroom import (
    ARNOLD,
    FOUR_LEVELS,
    FRACTIONS,
    FRIZZLE,
    MAGNETS,
    MATHS_SET,
    RATIOS,
    ROOM_12,
    ROOM_12_STUDENTS,
    SCHEMA,
    WANDA,
    School,
)
from tests.tokens import bearer
from tests.unit.grading.test_oneroster import lakeside

PROBLEM_JSON = "application/problem+json"


def one(student: UUID = ROOM_12_STUDENTS[0], **changes: Any) -> dict[str, Any]:
    """A level 3 on ratios in room 12 for ``student``, changed as given."""
    body: dict[str, Any] = {
        "student_id": str(student),
        "section_id": ROOM_12,
        "objective_id": str(RATIOS),
        "scale_id": str(FOUR_LEVELS),
        "scale_version": 1,
        "level": 3,
        "assessed_at": "2026-09-14T09:00:00+00:00",
        "evidence": {"title": "Ratio tables quiz", "kind": "summative"},
    }
    return body | changes


def batch(rows: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    """A batch of ``rows`` for the fractions project in room 12."""
    body: dict[str, Any] = {
        "section_id": ROOM_12,
        "scale_id": str(FOUR_LEVELS),
        "scale_version": 1,
        "assessed_at": "2026-09-18T13:00:00+00:00",
        "evidence": {"title": "Fractions project", "kind": "summative"},
        "rows": rows,
    }
    return body | changes


def class_rows() -> list[dict[str, Any]]:
    """Every room 12 student on ratios and fractions, levels 1 to 4 in
    turn, the last student's fractions marked missing."""
    rows: list[dict[str, Any]] = []
    for number, student in enumerate(ROOM_12_STUDENTS):
        for objective in (RATIOS, FRACTIONS):
            rows.append(
                {
                    "student_id": str(student),
                    "objective_id": str(objective),
                    "level": number % 4 + 1,
                }
            )
    rows[-1] = {
        "student_id": str(ROOM_12_STUDENTS[-1]),
        "objective_id": str(FRACTIONS),
        "mark": "M",
    }
    return rows


async def test_a_class_is_graded_in_one_batch(school: School) -> None:
    """48 results (24 students on two objectives) are recorded as 48
    events in 48 streams of one transaction, each readable with the
    batch's evidence and its own level or mark."""
    answer = await school.post("/assessments/batch", batch(class_rows()))

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["recorded"] == 48
    assert [row["row"] for row in body["rows"]] == list(range(48))
    assert await school.events() == 48
    assert await school.assessments() == 48

    store = EventStore(school.pool, SCHEMA, registry=CONTRACT)
    last = body["rows"][-1]
    (stored,) = await store.read_stream(
        school.tenant, f"assessment-{last['assessment_id']}"
    )
    event = CONTRACT.decode(stored)
    assert isinstance(event, AssessmentRecorded)
    assert event.mark == "M"
    assert event.level is None
    assert event.section_id == ROOM_12
    assert event.assessed_by == FRIZZLE
    assert event.evidence.title == "Fractions project"
    transactions = {
        envelope.transaction_id
        for row in body["rows"][:3]
        for envelope in await store.read_stream(
            school.tenant, f"assessment-{row['assessment_id']}"
        )
    }
    assert len(transactions) == 1

    third = body["rows"][4]
    shown = await school.client.get(
        f"/assessments/{third['assessment_id']}", headers=school.frizzle()
    )
    assert shown.status_code == 200
    assert shown.json()["level"] == 3
    assert shown.json()["evidence"]["kind"] == "summative"


async def test_one_bad_row_refuses_the_whole_batch_and_names_the_row(
    school: School,
) -> None:
    """Row 5 gives level 7 and row 9 names Arnold of room 14: the problem
    lists both rows with their fields, and not one event is stored."""
    rows = class_rows()[:12]
    rows[5] = rows[5] | {"level": 7}
    rows[9] = rows[9] | {"student_id": str(ARNOLD)}

    answer = await school.post("/assessments/batch", batch(rows))

    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    problem = answer.json()
    assert problem["title"] == "Batch refused"
    assert problem["total"] == 2
    assert [(row["row"], row["field"]) for row in problem["rows"]] == [
        (5, "rows[5].level"),
        (9, "rows[9].student_id"),
    ]
    assert "7" in problem["rows"][0]["message"]
    assert await school.events() == 0
    assert await school.assessments() == 0


@pytest.mark.parametrize(
    ("changes", "title", "field"),
    [
        pytest.param(
            {"level": 2.5}, "Not on the scale version", "level", id="level-between"
        ),
        pytest.param(
            {"level": None, "mark": "LATE"},
            "Not on the scale version",
            "mark",
            id="unknown-mark",
        ),
        pytest.param(
            {"objective_id": str(MAGNETS)},
            "Objective not taught there",
            "objective_id",
            id="objective-of-another-section",
        ),
        pytest.param(
            {"student_id": str(ARNOLD)},
            "Student not in the section",
            "student_id",
            id="student-of-another-section",
        ),
        pytest.param(
            {"student_id": str(WANDA)},
            "Student not in the section",
            "student_id",
            id="student-no-longer-enrolled",
        ),
        pytest.param(
            {"scale_version": 2},
            "Assessment refused",
            "scale_version",
            id="unknown-scale-version",
        ),
        pytest.param(
            {"level": 3, "mark": "M"},
            "Assessment refused",
            "level",
            id="level-and-mark",
        ),
    ],
)
async def test_a_refused_assessment_is_a_problem_and_stores_nothing(
    school: School, changes: dict[str, Any], title: str, field: str
) -> None:
    """Each mistake is answered 422 with a problem naming the field at
    fault, and the log and the read table stay empty."""
    answer = await school.post("/assessments", one(**changes))

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    assert answer.json()["title"] == title
    assert answer.json()["field"] == field
    assert await school.events() == 0
    assert await school.assessments() == 0


async def test_a_teacher_cannot_grade_another_teachers_section(school: School) -> None:
    """Mr Ratburn posting for room 12 is refused 403, and nothing is
    stored; an auditor is refused before the body is even read."""
    as_ratburn = await school.post("/assessments", one(), school.ratburn())
    as_auditor = await school.post("/assessments", one(), school.as_role("auditor"))

    assert as_ratburn.status_code == 403
    assert as_ratburn.json()["field"] == "section_id"
    assert as_auditor.status_code == 403
    assert await school.events() == 0


async def test_a_retry_with_the_same_key_records_nothing_twice(
    school: School,
) -> None:
    """The same batch posted three times under one key answers the same
    ids each time and stores one set of events; the same key with another
    body is refused 422 and stores nothing more."""
    rows = class_rows()[:6]
    first = await school.post("/assessments/batch", batch(rows), key="frizzle-0918-1")
    again = await school.post("/assessments/batch", batch(rows), key="frizzle-0918-1")
    third = await school.post("/assessments/batch", batch(rows), key="frizzle-0918-1")
    changed = batch(rows[:5])
    reused = await school.post("/assessments/batch", changed, key="frizzle-0918-1")

    assert first.status_code == 201
    assert again.status_code == 201
    assert again.json() == first.json()
    assert third.json() == first.json()
    assert reused.status_code == 422
    assert reused.json()["title"] == "Idempotency key reused"
    assert await school.events() == 6


async def test_a_refused_request_leaves_its_key_free(school: School) -> None:
    """A refused post keeps no key: the corrected request under the same
    key records once."""
    refused = await school.post("/assessments", one(level=9), key="ticket-77")
    accepted = await school.post("/assessments", one(), key="ticket-77")

    assert refused.status_code == 422
    assert accepted.status_code == 201
    assert await school.events() == 1


async def test_an_amend_and_a_void_are_recorded_with_their_reasons(
    school: School,
) -> None:
    """Level 2 amended to 3 with a new date, then voided: the assessment
    shows both corrections with who and why, the stream holds three
    events, and the student's list still shows it, voided."""
    recorded = await school.post("/assessments", one(level=2))
    assessment_id = recorded.json()["assessment_id"]

    amended = await school.post(
        f"/assessments/{assessment_id}/amendments",
        {
            "level": 3,
            "assessed_at": "2026-09-15T09:00:00+00:00",
            "reason": "Marked the wrong page",
        },
    )
    voided = await school.post(
        f"/assessments/{assessment_id}/void",
        {"reason": "Quiz was retaken by the whole class"},
    )

    assert amended.status_code == 201, amended.text
    assert amended.json()["level"] == 3
    assert amended.json()["assessed_at"].startswith("2026-09-15T09:00:00")
    assert voided.status_code == 200, voided.text
    shown = voided.json()
    assert shown["amendments"][0]["reason"] == "Marked the wrong page"
    assert shown["amendments"][0]["amended_by"] == FRIZZLE
    assert shown["voided"]["reason"] == "Quiz was retaken by the whole class"
    assert shown["stream_version"] == 3

    store = EventStore(school.pool, SCHEMA, registry=CONTRACT)
    stream = await store.read_stream(school.tenant, f"assessment-{assessment_id}")
    kinds = [type(CONTRACT.decode(envelope)) for envelope in stream]
    assert kinds == [AssessmentRecorded, AssessmentAmended, AssessmentVoided]

    listed = await school.client.get(
        f"/students/{ROOM_12_STUDENTS[0]}/assessments", headers=school.frizzle()
    )
    assert listed.status_code == 200
    assert [item["voided"]["voided_by"] for item in listed.json()] == [FRIZZLE]


async def test_corrections_of_unknown_or_voided_assessments_are_refused(
    school: School,
) -> None:
    """A void of an id nobody has is 404; a second void and an amend after
    it are 409; an amend with a level off the scale is 422; an amend that
    changes nothing is 422; none of them stores an event."""
    unknown = await school.post(
        "/assessments/01a23cb1-6997-74ca-8af2-0d18b6dd0000/void", {"reason": "Oops"}
    )
    recorded = await school.post("/assessments", one())
    assessment_id = recorded.json()["assessment_id"]
    off_scale = await school.post(
        f"/assessments/{assessment_id}/amendments", {"level": 5, "reason": "Typo"}
    )
    unchanged = await school.post(
        f"/assessments/{assessment_id}/amendments", {"level": 3, "reason": "Typo"}
    )
    await school.post(f"/assessments/{assessment_id}/void", {"reason": "Duplicate"})
    again = await school.post(
        f"/assessments/{assessment_id}/void", {"reason": "Duplicate"}
    )
    late_amend = await school.post(
        f"/assessments/{assessment_id}/amendments", {"level": 2, "reason": "Typo"}
    )

    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith(PROBLEM_JSON)
    assert unknown.json()["detail"] == "no such record"
    assert off_scale.status_code == 422
    assert off_scale.json()["field"] == "level"
    assert unchanged.status_code == 422
    assert again.status_code == 409
    assert late_amend.status_code == 409
    assert await school.events() == 2


async def test_other_sections_and_tenants_see_no_assessment(school: School) -> None:
    """Mr Ratburn can neither read nor void room 12's assessment (404, as
    for an unknown id); the school's leader and an auditor read it; a
    student nobody rostered is 404."""
    recorded = await school.post("/assessments", one())
    assessment_id = recorded.json()["assessment_id"]
    leader = bearer(
        school.keys.token(
            school.tenant, ["school_leader"], schools=["lakeside-elementary"]
        )
    )

    read_by_ratburn = await school.client.get(
        f"/assessments/{assessment_id}", headers=school.ratburn()
    )
    void_by_ratburn = await school.post(
        f"/assessments/{assessment_id}/void", {"reason": "Mine now"}, school.ratburn()
    )
    list_by_ratburn = await school.client.get(
        f"/students/{ROOM_12_STUDENTS[0]}/assessments", headers=school.ratburn()
    )
    read_by_leader = await school.client.get(
        f"/assessments/{assessment_id}", headers=leader
    )
    read_by_auditor = await school.client.get(
        f"/assessments/{assessment_id}", headers=school.as_role("auditor")
    )
    nobody = await school.client.get(
        "/students/01a23cb1-6997-74ca-8af2-0d18b6dd0001/assessments",
        headers=school.as_role("district_admin"),
    )

    assert read_by_ratburn.status_code == 404
    assert void_by_ratburn.status_code == 404
    assert list_by_ratburn.status_code == 404
    assert read_by_leader.status_code == 200
    assert read_by_auditor.status_code == 200
    assert nobody.status_code == 404
    assert await school.events() == 1


async def test_concurrent_requests_with_one_key_record_once(school: School) -> None:
    """Four copies of one batch sent at the same moment under one key: the
    first to claim the key records, the others wait for it and get its
    answer, and the log holds one set of events."""
    rows = class_rows()[:4]
    answers = await asyncio.gather(
        *(
            school.post("/assessments/batch", batch(rows), key="double-click")
            for _ in range(4)
        )
    )

    assert [answer.status_code for answer in answers] == [201] * 4
    assert len({answer.text for answer in answers}) == 1
    assert await school.events() == 4
    assert await school.assessments() == 4


async def test_one_key_is_the_tenants_own(school: School) -> None:
    """The key a teacher used once is free for another tenant: the answer
    of one tenant is never handed to another."""
    first = await school.post("/assessments", one(), key="shared-key")
    other_tenant = bearer(
        school.keys.token("riverside-keys", ["district_admin"], subject="mallory")
    )
    elsewhere = await school.post("/assessments", one(), other_tenant, key="shared-key")

    assert first.status_code == 201
    assert elsewhere.status_code == 422
    assert elsewhere.json()["field"] == "section_id"
    assert first.json()["assessment_id"] not in elsewhere.text


async def test_a_key_replays_only_for_the_caller_who_sent_it(school: School) -> None:
    """The district admin resending Ms Frizzle's request with her key is
    refused as a reused key and never sees her answer."""
    first = await school.post("/assessments", one(), key="frizzle-ticket")
    admin = await school.post(
        "/assessments", one(), school.as_role("district_admin"), key="frizzle-ticket"
    )

    assert first.status_code == 201
    assert admin.status_code == 422
    assert admin.json()["title"] == "Idempotency key reused"
    assert first.json()["assessment_id"] not in admin.text
    assert await school.events() == 1


async def test_a_class_imported_from_oneroster_is_graded_in_one_batch(
    school: School,
) -> None:
    """The Lakeside bundle uploaded, the maths set linked to alg-h by its
    teacher, then alg-h's two students graded on ratios and fractions in
    one batch: four assessments, each readable in the student's list."""
    admin = school.as_role("district_admin")
    ada = bearer(
        school.keys.token(
            school.tenant, ["teacher"], subject="t-ada", sections=["alg-h"]
        )
    )
    files = lakeside()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)

    imported = await school.client.post(
        "/rosters/imports",
        files={"file": ("lakeside.zip", archive.getvalue(), "application/zip")},
        headers=admin,
    )
    linked = await school.client.put(
        f"/sections/alg-h/objective-sets/{MATHS_SET}", headers=ada
    )
    students = await school.client.get("/sections/alg-h/students", headers=ada)
    ids = sorted(student["person_id"] for student in students.json())
    rows = [
        {"student_id": student, "objective_id": str(objective), "level": 4}
        for student in ids
        for objective in (RATIOS, FRACTIONS)
    ]
    graded = await school.post(
        "/assessments/batch", batch(rows, section_id="alg-h"), ada
    )

    assert imported.status_code == 200, imported.text
    assert linked.status_code == 200, linked.text
    assert len(ids) == 2
    assert graded.status_code == 201, graded.text
    assert graded.json()["recorded"] == 4
    assert await school.events() == 4
    listed = await school.client.get(f"/students/{ids[0]}/assessments", headers=ada)
    assert [item["objective_id"] for item in listed.json()] == [
        str(RATIOS),
        str(FRACTIONS),
    ]
