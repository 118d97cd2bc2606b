"""The traditional gradebook on a running grading service: grades kept
per section beside mastery, voided with a reason, letter cuts set per
section, and refusals answered as problems with nothing stored."""

from __future__ import annotations

from typing import Any

from tests.integration.grading.classroom import (
    ARNOLD,
    FOUR_LEVELS,
    FRACTIONS,
    FRIZZLE,
    RATIOS,
    ROOM_12,
    ROOM_12_STUDENTS,
    ROOM_14,
    SCHEMA,
    School,
    count_rows,
)
from tests.waiting import eventually

ANA = ROOM_12_STUDENTS[0]
PROBLEM_JSON = "application/problem+json"


def points(**changes: Any) -> dict[str, Any]:
    """Ana's 17 of 20 on the spelling test, changed as given."""
    body: dict[str, Any] = {
        "student_id": str(ANA),
        "title": "Spelling test",
        "kind": "points",
        "points": 17,
        "points_possible": 20,
        "assessed_at": "2026-09-14T09:00:00+00:00",
    }
    return body | changes


LETTERS = {
    "cuts": [
        {"letter": "F", "min_percent": 0},
        {"letter": "A", "min_percent": 90},
        {"letter": "B", "min_percent": 80},
    ]
}


async def test_a_students_grades_are_shown_per_section_with_the_cuts(
    school: School,
) -> None:
    """A points grade and a pass/fail in room 12, one of them voided, and
    room 12's cuts: the student's gradebook shows room 12 with both grades
    (the void kept with its reason) and the cuts highest first."""
    scored = await school.post(f"/sections/{ROOM_12}/traditional-grades", points())
    passed = await school.post(
        f"/sections/{ROOM_12}/traditional-grades",
        points(kind="pass_fail", points=None, points_possible=None, passed=True),
    )
    cuts = await school.client.put(
        f"/sections/{ROOM_12}/grade-bridge", json=LETTERS, headers=school.frizzle()
    )
    voided = await school.post(
        f"/traditional-grades/{scored.json()['grade_id']}/void",
        {"reason": "Graded against the wrong list"},
    )

    assert scored.status_code == 201, scored.text
    assert passed.status_code == 201, passed.text
    assert cuts.status_code == 200, cuts.text
    assert voided.status_code == 200, voided.text

    shown = await school.client.get(
        f"/students/{ANA}/traditional-grades", headers=school.frizzle()
    )
    assert shown.status_code == 200
    (room,) = shown.json()
    assert room["section_id"] == ROOM_12
    assert [grade["kind"] for grade in room["grades"]] == ["points", "pass_fail"]
    assert room["grades"][0]["void_reason"] == "Graded against the wrong list"
    assert room["grades"][0]["voided_by"] == FRIZZLE
    assert room["grades"][1]["passed"] is True
    assert [cut["letter"] for cut in room["bridge"]["cuts"]] == ["A", "B", "F"]


async def test_gradebook_refusals_store_nothing(school: School) -> None:
    """Points without points possible (422, field named), Arnold of room
    14 (422), another teacher's room (403), a room nobody rostered (404),
    cuts with nothing at 0 (422) and a void of an unknown grade (404):
    no event and no row are stored."""
    no_possible = await school.post(
        f"/sections/{ROOM_12}/traditional-grades", points(points_possible=None)
    )
    arnold = await school.post(
        f"/sections/{ROOM_12}/traditional-grades", points(student_id=str(ARNOLD))
    )
    not_mine = await school.post(f"/sections/{ROOM_14}/traditional-grades", points())
    nowhere = await school.post(
        "/sections/room-99/traditional-grades",
        points(),
        school.as_role("district_admin"),
    )
    no_zero = await school.client.put(
        f"/sections/{ROOM_12}/grade-bridge",
        json={"cuts": [{"letter": "A", "min_percent": 90}]},
        headers=school.frizzle(),
    )
    unknown = await school.post(
        "/traditional-grades/01a23cb1-6997-74ca-8af2-0d18b6dd0000/void",
        {"reason": "Oops"},
    )

    assert no_possible.status_code == 422
    assert no_possible.headers["content-type"].startswith(PROBLEM_JSON)
    assert no_possible.json()["field"] == "points_possible"
    assert arnold.status_code == 422
    assert arnold.json()["field"] == "student_id"
    assert not_mine.status_code == 403
    assert nowhere.status_code == 404
    assert no_zero.status_code == 422
    assert no_zero.json()["field"] == "cuts"
    assert unknown.status_code == 404
    assert await school.events() == 0
    tables = ("traditional_grades", "grade_bridges", "idempotency_keys")
    for table in tables:
        assert await count_rows(school.pool, SCHEMA, table, school.tenant) == 0


async def test_a_retried_grade_and_void_record_once_and_answer_alike(
    school: School,
) -> None:
    """A grade and its void each sent twice with the same key: one event
    each, the retry answered with the first answer, and the key refused for
    a different grade."""
    grade_path = f"/sections/{ROOM_12}/traditional-grades"
    first = await school.post(grade_path, points(), key="spelling-ana")
    retried = await school.post(grade_path, points(), key="spelling-ana")
    other = await school.post(grade_path, points(points=12), key="spelling-ana")
    void_path = f"/traditional-grades/{first.json()['grade_id']}/void"
    reason = {"reason": "Graded against the wrong list"}
    voided = await school.post(void_path, reason, key="void-spelling-ana")
    void_retried = await school.post(void_path, reason, key="void-spelling-ana")

    assert first.status_code == 201, first.text
    assert retried.status_code == 201, retried.text
    assert retried.json() == first.json()
    assert other.status_code == 422, other.text
    assert voided.status_code == 200, voided.text
    assert void_retried.json() == voided.json()
    assert await school.events() == 2
    assert (
        await count_rows(school.pool, SCHEMA, "traditional_grades", school.tenant) == 1
    )


async def test_new_cuts_replace_the_old_and_keep_both_in_the_log(
    school: School,
) -> None:
    """Setting room 12's cuts twice leaves the second in force, at stream
    version 2."""
    await school.client.put(
        f"/sections/{ROOM_12}/grade-bridge", json=LETTERS, headers=school.frizzle()
    )
    pass_fail = {
        "cuts": [{"letter": "P", "min_percent": 60}, {"letter": "NY", "min_percent": 0}]
    }
    second = await school.client.put(
        f"/sections/{ROOM_12}/grade-bridge", json=pass_fail, headers=school.frizzle()
    )

    assert second.status_code == 200
    assert [cut["letter"] for cut in second.json()["cuts"]] == ["P", "NY"]
    assert second.json()["stream_version"] == 2
    assert await school.events() == 2


async def test_current_mastery_is_shown_as_a_percent_and_a_letter(
    school: School,
) -> None:
    """With A 90, B 80, F 0 set for room 12, Ana's Exemplary (4) on ratios
    and Proficient (3) on fractions become 83.3 % and a B beside her
    traditional grades, once the timelines have her levels."""
    await school.client.put(
        f"/sections/{ROOM_12}/grade-bridge", json=LETTERS, headers=school.frizzle()
    )
    for objective, level in ((RATIOS, 4), (FRACTIONS, 3)):
        recorded = await school.post(
            "/assessments",
            {
                "student_id": str(ANA),
                "section_id": ROOM_12,
                "objective_id": str(objective),
                "scale_id": str(FOUR_LEVELS),
                "scale_version": 1,
                "level": level,
                "assessed_at": "2026-09-14T09:00:00+00:00",
                "evidence": {"title": "Unit test"},
            },
        )
        assert recorded.status_code == 201, recorded.text
    shown: dict[str, Any] = {}

    async def both_levels_bridged() -> bool:
        answer = await school.client.get(
            f"/students/{ANA}/traditional-grades", headers=school.frizzle()
        )
        (room,) = answer.json()
        shown.update(room)
        return room["mastery"] is not None and room["mastery"]["percent"] == 83.3

    await eventually(both_levels_bridged, what="Ana's mastery read as a letter")

    assert shown["mastery"] == {"percent": 83.3, "letter": "B"}
    assert shown["grades"] == []
