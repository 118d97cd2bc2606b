"""Staff views on a running reports service: the student's name opened
through the keyring until the student is erased, a section's matrix for
its teacher and no other, and the leaders' roll-ups as JSON and CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from mastery_events.contract.roster import (
    ObjectiveSetLinked,
    PersonEnrolled,
    PersonErased,
    SectionRostered,
)
from mastery_events.tenancy import tenant_transaction
from tests.integration.reports.district import (
    SCHOOL,
    SECTION,
    SEPTEMBER,
    Stack,
    new_district,
    objectives_of,
    seeded,
)
from tests.tokens import bearer
from tests.waiting import eventually


async def test_the_name_shows_until_the_student_is_erased(stack: Stack) -> None:
    """The shared page and the teacher's matrix name Ada Lovelace; once her
    data key is destroyed and PersonErased arrives, both show no name,
    while her levels stay."""
    district = new_district()
    await seeded(stack, district)
    created = await stack.client.post(
        f"/students/{district.student_id}/share-links",
        json={"section_ids": [SECTION]},
        headers=stack.teacher(district),
    )
    path = created.json()["path"]
    named_page = await stack.client.get(path)
    named_matrix = await stack.client.get(
        f"/sections/{SECTION}/matrix", headers=stack.teacher(district)
    )

    now = datetime.now(UTC)
    async with (
        stack.pool.acquire() as connection,
        tenant_transaction(connection, district.tenant),
    ):
        await stack.keyring.destroy(
            connection,
            tenant_id=district.tenant,
            key_id=district.student,
            destroyed_by="district-admin",
            destroyed_at=now,
        )
    await stack.append(
        stack.grading,
        district.tenant,
        [
            PersonErased(
                person_id=district.student,
                erased_by="district-admin",
                erased_at=now,
                reason="family request",
            )
        ],
    )

    async def anonymous() -> bool:
        answer = await stack.client.get(
            f"/sections/{SECTION}/matrix", headers=stack.teacher(district)
        )
        return bool(answer.json()["students"][0]["name"] is None)

    await eventually(anonymous, within=30.0, what="the erasure reaching reports")
    erased_page = await stack.client.get(path)
    report = await stack.report(district)

    assert "Ada Lovelace" in named_page.text
    assert named_matrix.json()["students"][0]["name"] == "Ada Lovelace"
    assert "Ada" not in erased_page.text
    assert "Lovelace" not in erased_page.text
    assert report is not None
    assert objectives_of(report)["4.NF.1"]["level"]["label"] == "Developing"


async def test_a_report_is_cut_to_the_sections_its_reader_reads(
    stack: Stack,
) -> None:
    """With Ada in two sections, the school's leader reads both, served as
    stored; room 12's teacher reads only room 12, the very same section as
    the leader sees it; a teacher of neither reads nothing, answered as
    for a student without a report."""
    district = new_district()
    await seeded(stack, district)
    await stack.append(
        stack.grading,
        district.tenant,
        [
            SectionRostered(
                section_id="room-14",
                title="Room 14 art",
                school_id=SCHOOL,
                course_id="art-4",
                course_title="Art 4",
                rostered_at=SEPTEMBER,
            ),
            PersonEnrolled(
                person_id=district.student,
                section_id="room-14",
                role="student",
                enrolled_at=SEPTEMBER,
            ),
            ObjectiveSetLinked(
                section_id="room-14",
                objective_set_id=district.set_id,
                linked_by="mr-ratburn",
                linked_at=SEPTEMBER,
            ),
        ],
    )
    leader = bearer(
        stack.keys.token(
            district.tenant, ["school_leader"], subject="principal", schools=[SCHOOL]
        )
    )
    path = f"/students/{district.student_id}/report"

    # Every event applied, the set's link to room 14 included, so that
    # the two reads meet the same snapshot.
    await stack.snapshot_positions(district)
    led = await stack.client.get(path, headers=leader)
    taught = await stack.client.get(path, headers=stack.teacher(district))
    stranger = await stack.client.get(
        path, headers=stack.teacher(district, section="room-99")
    )
    missing = await stack.client.get(
        "/students/nobody/report", headers=stack.teacher(district, section="room-99")
    )

    assert led.status_code == taught.status_code == 200
    assert led.headers["content-type"].startswith("application/json")
    assert taught.headers["content-type"].startswith("application/json")
    led_sections = {s["section_id"]: s for s in led.json()["report"]["sections"]}
    [own] = taught.json()["report"]["sections"]
    assert set(led_sections) == {SECTION, "room-14"}
    assert own == led_sections[SECTION]
    assert taught.json()["positions"] == led.json()["positions"]
    assert taught.json()["report"]["terms"] == led.json()["report"]["terms"]
    assert stranger.status_code == missing.status_code == 404
    assert stranger.json() == missing.json()


async def test_a_section_matrix_is_its_teachers_and_leaders(stack: Stack) -> None:
    """Room 12's teacher reads its matrix and its CSV, a row per student
    and a column per objective; room 14's teacher gets 404 as for a
    section that does not exist; the school's leader reads it."""
    district = new_district()
    await seeded(stack, district)
    leader = bearer(
        stack.keys.token(
            district.tenant, ["school_leader"], subject="principal", schools=[SCHOOL]
        )
    )

    own = await stack.client.get(
        f"/sections/{SECTION}/matrix", headers=stack.teacher(district)
    )
    exported = await stack.client.get(
        f"/sections/{SECTION}/matrix.csv", headers=stack.teacher(district)
    )
    other = await stack.client.get(
        f"/sections/{SECTION}/matrix",
        headers=stack.teacher(district, section="room-14"),
    )
    missing = await stack.client.get(
        "/sections/room-99/matrix", headers=stack.teacher(district, section="room-99")
    )
    led = await stack.client.get(f"/sections/{SECTION}/matrix", headers=leader)
    rows = list(csv.reader(io.StringIO(exported.text)))

    assert own.status_code == 200
    assert [o["code"] for o in own.json()["objectives"]] == ["4.NF.1", "4.NF.6"]
    assert own.json()["students"][0]["cells"][0]["label"] == "Developing"
    assert exported.headers["content-type"].startswith("text/csv")
    assert rows[0] == ["student_id", "name", "4.NF.1", "4.NF.6"]
    assert rows[1] == [district.student_id, "Ada Lovelace", "Developing", ""]
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()
    assert led.status_code == 200


async def test_roll_ups_show_the_share_at_mastery(stack: Stack) -> None:
    """With fractions at Developing and decimals unassessed, the leader's
    roll-up has each objective at 0 of 1, the school at 0 of 2 and grade
    band 4 at 0 of 2; a teacher of another section sees no students; the
    CSV has a row per group."""
    district = new_district()
    await seeded(stack, district)
    leader = bearer(
        stack.keys.token(
            district.tenant, ["school_leader"], subject="principal", schools=[SCHOOL]
        )
    )

    rollup = await stack.client.get("/rollups", headers=leader)
    narrowed = await stack.client.get(
        "/rollups", params={"grade_band": "4"}, headers=leader
    )
    elsewhere = await stack.client.get(
        "/rollups", headers=stack.teacher(district, section="room-14")
    )
    exported = await stack.client.get("/rollups.csv", headers=leader)
    rows = list(csv.reader(io.StringIO(exported.text)))

    assert rollup.status_code == 200
    assert rollup.json()["students"] == 1
    assert [
        (o["label"], o["mastered"], o["pairs"]) for o in rollup.json()["objectives"]
    ] == [
        ("4.NF.1", 0, 1),
        ("4.NF.6", 0, 1),
    ]
    assert [(s["key"], s["pairs"]) for s in rollup.json()["schools"]] == [(SCHOOL, 2)]
    assert [(b["key"], b["pairs"]) for b in narrowed.json()["grade_bands"]] == [
        ("4", 2)
    ]
    assert elsewhere.json()["students"] == 0
    assert rows[0] == ["group", "key", "label", "pairs", "mastered", "share"]
    assert len(rows) == 1 + 2 + 1 + 1 + 1
