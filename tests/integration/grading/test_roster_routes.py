"""The roster over HTTP on a running grading service: a zipped bundle
uploaded by a district admin, sections and their students as each caller
may see them, objective sets linked to sections, and erasure, after which
no table and no message on the bus holds the person's name or email."""

from __future__ import annotations

import io
import secrets
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import nats
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from mastery_events.contract.objectives import ObjectiveAdded
from mastery_events.contract.roster import PersonRostered
from mastery_events.envelope import Envelope
from mastery_events.ids import uuid7
from mastery_events.keyring import Keyring
from mastery_events.subjects import Subjects
from mastery_events.tenancy import tenant_transaction
from mastery_grading.app import create_app
from mastery_grading.catalogue_store import CatalogueWriter
from mastery_grading.service import SERVICE
from tests.tokens import TestKeys, bearer
from tests.unit.grading.test_oneroster import USERS, lakeside, with_row
from tests.waiting import eventually

PROBLEM_JSON = "application/problem+json"
FRACTIONS = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6f01")
MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)


class Grading:
    """A running grading service, its keys, and one tenant of this test's."""

    def __init__(
        self, client: AsyncTestClient[Litestar], keys: TestKeys, subjects: Subjects
    ) -> None:
        self.client = client
        self.keys = keys
        self.subjects = subjects
        self.tenant = f"lakeside-{secrets.token_hex(3)}"

    def headers(self, role: str, **claims: Any) -> dict[str, str]:
        """Return the headers of a caller of ``role`` in the test's tenant."""
        token = self.keys.token(self.tenant, [role], **claims)  # type: ignore[list-item]
        return bearer(token)

    def admin(self) -> dict[str, str]:
        """Return the district admin's headers."""
        return self.headers("district_admin", subject="ada")

    async def upload(
        self, files: dict[str, bytes], *, headers: dict[str, str] | None = None
    ) -> Any:
        """Upload ``files`` zipped, as the admin unless ``headers`` say."""
        return await self.client.post(
            "/rosters/imports",
            files={"file": ("lakeside.zip", zipped(files), "application/zip")},
            headers=headers or self.admin(),
        )


def zipped(files: dict[str, bytes]) -> bytes:
    """Zip ``files`` inside one folder, as a student information system
    exports them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"export-2026-08/{name}", data)
    return buffer.getvalue()


@pytest.fixture
async def grading(
    tmp_path: Path, database_url: str, nats_url: str, subject_prefix: str
) -> AsyncIterator[Grading]:
    """A grading service on this test's subjects, trusting its keys."""
    keys = TestKeys(tmp_path)
    settings = keys.settings(
        database_url=database_url,
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        relay_poll_interval=0.2,
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield Grading(client, keys, Subjects(prefix=subject_prefix))


async def know_objective_set(pool: asyncpg.Pool, tenant: str) -> None:
    """Put one objective of the fractions set in grading's catalogue, as
    the objectives service's events would."""
    added = ObjectiveAdded(
        objective_set_id=FRACTIONS,
        objective_id=uuid7(),
        statement="Add fractions with unlike denominators",
        added_by="coordinator-hoover",
        added_at=MONDAY,
    )
    envelope = Envelope(
        event_id=uuid7(),
        event_type="ObjectiveAdded",
        event_version=1,
        tenant_id=tenant,
        stream_id=f"objective-set-{FRACTIONS}",
        stream_version=1,
        position=1,
        transaction_id=1,
        occurred_at=MONDAY,
        recorded_at=MONDAY,
        actor="coordinator-hoover",
        correlation_id=uuid7(),
        payload=msgspec.Raw(msgspec.json.encode(added)),
    )
    async with pool.acquire() as connection, tenant_transaction(connection, tenant):
        await CatalogueWriter(SERVICE.schema)(connection, envelope, added)


async def test_an_admin_uploads_a_zipped_bundle_and_a_repeat_records_nothing(
    grading: Grading,
) -> None:
    """The first upload adds six people; the same zip again adds nothing."""
    first = await grading.upload(lakeside())
    second = await grading.upload(lakeside())

    assert first.status_code == 200, first.text
    assert first.json()["counts"]["people_added"] == 6
    assert first.json()["events"] == 18
    assert second.status_code == 200
    assert second.json()["events"] == 0
    assert second.json()["import_id"] is None


async def test_a_broken_file_refuses_the_whole_bundle_naming_file_line_column(
    grading: Grading,
) -> None:
    """A bad enabledUser on users.csv line 3 is a 422 problem pointing at
    it, and no section appears."""
    users = with_row(USERS, 2, "enabledUser", "maybe")

    refused = await grading.upload(lakeside(users=users))
    sections = await grading.client.get("/sections", headers=grading.admin())

    assert refused.status_code == 422
    assert refused.headers["content-type"] == PROBLEM_JSON
    problems = refused.json()["problems"]
    assert problems == [
        {
            "file": "users.csv",
            "line": 3,
            "column": "enabledUser",
            "message": "'maybe' is not one of true, false",
        }
    ]
    assert sections.json() == []


async def test_a_file_that_is_not_a_zip_is_refused(grading: Grading) -> None:
    """A CSV sent where the zip belongs is named as not an archive."""
    refused = await grading.client.post(
        "/rosters/imports",
        files={"file": ("users.csv", b"sourcedId\r\n", "text/csv")},
        headers=grading.admin(),
    )

    assert refused.status_code == 422
    assert refused.json()["problems"][0]["message"] == "is not a zip archive"


async def test_only_a_district_admin_uploads_a_bundle(grading: Grading) -> None:
    """A teacher's upload is refused before anything is read."""
    refused = await grading.upload(
        lakeside(), headers=grading.headers("teacher", sections=["alg-h"])
    )

    assert refused.status_code == 403


async def test_a_teacher_sees_their_section_and_its_students_by_name(
    grading: Grading,
) -> None:
    """Ada teaches alg-h: she lists it alone, reads Grace and Katherine by
    name, and is told alg-r does not exist."""
    await grading.upload(lakeside())
    ada = grading.headers("teacher", subject="t-ada", sections=["alg-h"])

    sections = await grading.client.get("/sections", headers=ada)
    students = await grading.client.get("/sections/alg-h/students", headers=ada)
    elsewhere = await grading.client.get("/sections/alg-r/students", headers=ada)

    assert [s["section_id"] for s in sections.json()] == ["alg-h"]
    assert sections.json()[0]["course_title"] == "Algebra I"
    names = sorted(student["display_name"] for student in students.json())
    assert names == ["Grace Hopper", "Katherine Johnson"]
    assert elsewhere.status_code == 404


async def test_a_school_leader_sees_the_sections_of_their_school(
    grading: Grading,
) -> None:
    """Riverside's principal lists alg-r and not Hillside's class."""
    await grading.upload(lakeside())
    leader = grading.headers("school_leader", schools=["riverside"])

    sections = await grading.client.get("/sections", headers=leader)

    assert [s["section_id"] for s in sections.json()] == ["alg-r"]


async def test_a_teacher_links_and_unlinks_an_objective_set_on_their_section(
    grading: Grading, pool: asyncpg.Pool
) -> None:
    """Ada links fractions to alg-h, linking again changes nothing, and
    unlinking empties the section's sets."""
    await grading.upload(lakeside())
    await know_objective_set(pool, grading.tenant)
    ada = grading.headers("teacher", subject="t-ada", sections=["alg-h"])
    path = f"/sections/alg-h/objective-sets/{FRACTIONS}"

    linked = await grading.client.put(path, headers=ada)
    again = await grading.client.put(path, headers=ada)
    listed = await grading.client.get("/sections", headers=ada)
    unlinked = await grading.client.delete(path, headers=ada)

    assert linked.status_code == 200, linked.text
    assert linked.json()["recorded"] is True
    assert again.json() == {**linked.json(), "recorded": False}
    assert listed.json()[0]["objective_set_ids"] == [str(FRACTIONS)]
    assert unlinked.json()["objective_set_ids"] == []


async def test_a_link_is_refused_for_an_unknown_set_or_another_teacher(
    grading: Grading, pool: asyncpg.Pool
) -> None:
    """A set grading never heard of is a 422; Alan, who teaches alg-r,
    cannot see alg-h to link it; an auditor may never link."""
    await grading.upload(lakeside())
    await know_objective_set(pool, grading.tenant)
    admin = grading.admin()
    alan = grading.headers("teacher", subject="t-alan", sections=["alg-r"])
    auditor = grading.headers("auditor")

    unknown = await grading.client.put(
        f"/sections/alg-h/objective-sets/{uuid7()}", headers=admin
    )
    other = await grading.client.put(
        f"/sections/alg-h/objective-sets/{FRACTIONS}", headers=alan
    )
    audited = await grading.client.put(
        f"/sections/alg-h/objective-sets/{FRACTIONS}", headers=auditor
    )

    assert unknown.status_code == 422
    assert unknown.json()["title"] == "Unknown objective set"
    assert other.status_code == 404
    assert audited.status_code == 403


async def grace_id(grading: Grading) -> str:
    """Return the id of the student named Grace in alg-h."""
    students = await grading.client.get(
        "/sections/alg-h/students", headers=grading.admin()
    )
    grace = next(s for s in students.json() if s["given_name"].startswith("Grace"))
    person_id: str = grace["person_id"]
    return person_id


async def test_only_a_district_admin_erases_and_with_a_reason(
    grading: Grading,
) -> None:
    """A teacher is refused; an admin without a reason gets a 400; an
    unknown person is a 404."""
    await grading.upload(lakeside())
    grace = await grace_id(grading)
    teacher = grading.headers("teacher", sections=["alg-h"])

    by_teacher = await grading.client.post(
        f"/people/{grace}/erasure", json={"reason": "asked"}, headers=teacher
    )
    no_reason = await grading.client.post(
        f"/people/{grace}/erasure", json={"reason": ""}, headers=grading.admin()
    )
    unknown = await grading.client.post(
        f"/people/{uuid7()}/erasure", json={"reason": "asked"}, headers=grading.admin()
    )

    assert by_teacher.status_code == 403
    assert no_reason.status_code == 400
    assert unknown.status_code == 404


async def stream_messages(
    grading: Grading, nats_url: str, at_least: int
) -> list[bytes]:
    """Return every message on grading's stream once it holds at least
    ``at_least``."""
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        stream = grading.subjects.stream_name(SERVICE.name)

        async def published() -> bool:
            info = await js.stream_info(stream)
            return info.state.messages >= at_least

        await eventually(published, what="the roster events reaching NATS")
        info = await js.stream_info(stream)
        found = []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(stream, sequence)
            found.append(message.data or b"")
    finally:
        await client.close()
    return found


async def every_row_as_text(pool: asyncpg.Pool) -> str:
    """Return every row of every table of grading's schema and of the
    keyring, each as text, joined."""
    async with pool.acquire() as connection:
        tables = await connection.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE'",
            [SERVICE.schema, "keyring"],
        )
        texts: list[str] = []
        for table in tables:
            rows = await connection.fetch(
                f'SELECT t::text AS row FROM "{table["table_schema"]}".'
                f'"{table["table_name"]}" AS t'
            )
            texts.extend(row["row"] for row in rows)
    return "\n".join(texts)


async def test_after_erasure_no_table_and_no_bus_message_holds_the_name(
    grading: Grading, pool: asyncpg.Pool, nats_url: str, keyring: Keyring
) -> None:
    """Grace, under names of this test's own, is erased: her section shows
    "Erased student", and neither her names nor her email remain in any
    grading or keyring table or in any message of grading's stream."""
    token = secrets.token_hex(4)
    given, family = f"Grace{token}", f"Hopper{token}"
    email = f"grace.{token}@example.org"
    users = with_row(with_row(USERS, 3, "givenName", given), 3, "familyName", family)
    users = with_row(users, 3, "email", email)
    uploaded = await grading.upload(lakeside(users=users))
    assert uploaded.status_code == 200, uploaded.text
    before = await every_row_as_text(pool)
    grace = await grace_id(grading)

    erased = await grading.client.post(
        f"/people/{grace}/erasure",
        json={"reason": "the family asked for erasure"},
        headers=grading.admin(),
    )
    students = await grading.client.get(
        "/sections/alg-h/students", headers=grading.admin()
    )
    messages = await stream_messages(grading, nats_url, at_least=19)

    assert erased.status_code == 200, erased.text
    assert erased.json() == {"person_id": grace, "erased": True, "recorded": True}
    shown = {s["person_id"]: s for s in students.json()}
    assert shown[grace]["display_name"] == "Erased student"
    assert shown[grace]["given_name"] is None
    # The sealed fields were already unreadable before: the search would
    # prove nothing if they had been stored in the clear all along.
    assert given not in before
    after = await every_row_as_text(pool)
    bus = b"\n".join(messages)
    assert b"PersonErased" in bus
    for secret in (given, family, email):
        assert secret not in after
        assert secret.encode() not in bus
    assert await seals_of(pool, keyring, grading.tenant, UUID(grace)) == [None]


async def seals_of(
    pool: asyncpg.Pool, keyring: Keyring, tenant: str, person_id: UUID
) -> list[dict[str, str | None] | None]:
    """Open every seal the log holds for ``person_id``."""
    async with pool.acquire() as connection, tenant_transaction(connection, tenant):
        payloads = await connection.fetch(
            f'SELECT payload FROM "{SERVICE.schema}".events '
            "WHERE tenant_id = $1 AND event_type = 'PersonRostered'",
            tenant,
        )
        opened = []
        for row in payloads:
            event = msgspec.json.decode(row["payload"], type=PersonRostered)
            if event.person_id == person_id:
                opened.append(
                    await keyring.open(
                        connection, tenant_id=tenant, sealed=event.personal
                    )
                )
    return opened
