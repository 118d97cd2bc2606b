"""``mastery privacy export`` and ``retention`` against real PostgreSQL: a
student's records written as JSON and a readable PDF, and a dry run that
lists who left long enough ago without erasing them."""

from __future__ import annotations

import asyncio
import io
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import asyncpg
import msgspec
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from mastery_events.contract import CONTRACT
from mastery_events.ids import uuid7
from mastery_events.keyring import Keyring
from mastery_events.migrations import migrate
from mastery_events.store import EventStore
from mastery_grading.oneroster import read_bundle
from mastery_grading.privacy_commands import privacy
from mastery_grading.records import RecordsRequest
from mastery_grading.rostering import Actor, Rostering
from mastery_grading.service import SERVICE
from mastery_reports.service import SERVICE as REPORTS
from mastery_reports.share_link_store import ShareLinks, new_token
from mastery_reports.share_links import CreateShareLink, token_hash
from tests.keys import KEY_ENCRYPTION_KEY
from tests.unit.grading.test_oneroster import ENROLLMENTS, lakeside, with_row

NOW = datetime.now(UTC)
GRACE_ENROLLMENT = 3


@pytest.fixture
def runner(database_url: str) -> CliRunner:
    """A runner reaching the session's PostgreSQL with its key."""
    return CliRunner(
        env={
            "MASTERY_DATABASE_URL": database_url,
            "MASTERY_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY,
        }
    )


@pytest.fixture
async def lakeside_district(
    pool: asyncpg.Pool, keyring: Keyring
) -> tuple[Rostering, str, dict[str, str]]:
    """Lakeside rostered twenty days ago, Grace unenrolled ten days ago;
    return the roster commands, the tenant and the students by name."""
    async with pool.acquire() as connection:
        await migrate(connection, SERVICE.schema, SERVICE.all_migrations())
        await migrate(connection, REPORTS.schema, REPORTS.all_migrations())
    rostering = Rostering(
        pool,
        EventStore(pool, SERVICE.schema, registry=CONTRACT),
        keyring,
        schema=SERVICE.schema,
    )
    tenant = f"lakeside-{secrets.token_hex(3)}"
    sis = Actor(subject="sis", at=NOW - timedelta(days=20))
    await rostering.import_bundle(tenant, read_bundle(lakeside()), actor=sis)
    students = await rostering.students(tenant, "alg-h")
    names = {
        str((student.fields or {})["given_name"]): str(student.person_id)
        for student in students
    }
    left = with_row(ENROLLMENTS, GRACE_ENROLLMENT, "status", "tobedeleted")
    later = Actor(subject="sis", at=NOW - timedelta(days=10))
    await rostering.import_bundle(
        tenant, read_bundle(lakeside(enrollments=left)), actor=later
    )
    return rostering, tenant, names


async def share(pool: asyncpg.Pool, tenant: str, student: str) -> UUID:
    """Share the student's report in reports' log; return the link's id."""
    links = ShareLinks(pool, EventStore(pool, REPORTS.schema, registry=CONTRACT))
    link = await links.create(
        tenant,
        CreateShareLink(
            share_link_id=uuid7(),
            student_id=student,
            section_ids=("alg-h",),
            token_hash=token_hash(new_token()),
            created_by="t-ada",
            at=NOW,
        ),
    )
    return link.share_link_id


async def test_export_writes_her_records_as_json_and_a_pdf_naming_her(
    runner: CliRunner,
    lakeside_district: tuple[Rostering, str, dict[str, str]],
    tmp_path: Path,
    pool: asyncpg.Pool,
) -> None:
    """The JSON holds Grace's opened fields, her roster events and, from
    reports' log, her share link and its revocation; the PDF's text names
    her and lists those events; Katherine and her link are in neither."""
    _, tenant, names = lakeside_district
    grace = names["Grace"]
    hers = await share(pool, tenant, grace)
    theirs = await share(pool, tenant, names["Katherine"])
    links = ShareLinks(pool, EventStore(pool, REPORTS.schema, registry=CONTRACT))
    await links.revoke(tenant, hers, by="t-ada", at=NOW)
    arguments = ["export", "--tenant", tenant, "--student", grace]

    written = await asyncio.to_thread(
        runner.invoke, privacy, [*arguments, "--out", str(tmp_path)]
    )

    assert written.exit_code == 0, written.output
    records = msgspec.json.decode((tmp_path / f"records-{grace}.json").read_bytes())
    assert records["person"]["fields"]["given_name"] == "Grace"
    kinds = [event["event_type"] for event in records["events"]]
    assert kinds == [
        "PersonRostered",
        "PersonEnrolled",
        "GuardianLinked",
        "PersonUnenrolled",
    ]
    elsewhere = records["elsewhere"]["reports"]
    assert [event["event_type"] for event in elsewhere] == [
        "ShareLinkCreated",
        "ShareLinkRevoked",
    ]
    assert {event["stream_id"] for event in elsewhere} == {f"share-link-{hers}"}
    pdf = PdfReader(io.BytesIO((tmp_path / f"records-{grace}.pdf").read_bytes()))
    text = " ".join(page.extract_text() for page in pdf.pages)
    assert "Records of Grace Hopper" in text
    for kind in kinds:
        assert kind in text
    for document in (text, (tmp_path / f"records-{grace}.json").read_text()):
        assert "Katherine" not in document
        assert names["Katherine"] not in document
        assert str(theirs) not in document


async def test_export_of_an_unknown_student_says_so(
    runner: CliRunner, lakeside_district: tuple[Rostering, str, dict[str, str]]
) -> None:
    """A person the district never rostered is named in the error."""
    _, tenant, _ = lakeside_district
    nobody = "01a23cb1-6997-74ca-8af2-0d18b6dd0000"

    refused = await asyncio.to_thread(
        runner.invoke, privacy, ["export", "--tenant", tenant, "--student", nobody]
    )

    assert refused.exit_code == 1
    assert nobody in refused.output


async def test_retention_dry_run_lists_who_left_and_erases_nobody_then_erases(
    runner: CliRunner, lakeside_district: tuple[Rostering, str, dict[str, str]]
) -> None:
    """With a 7-day period, the dry run lists Grace, who left ten days ago,
    and her name still opens; the real run erases her."""
    rostering, tenant, names = lakeside_district
    admin = Actor(subject="ada", at=NOW)
    await rostering.set_retention_period(tenant, 7, actor=admin)

    dry = await asyncio.to_thread(
        runner.invoke, privacy, ["retention", "--tenant", tenant, "--dry-run"]
    )
    after_dry = await erased(rostering, tenant, names["Grace"])
    real = await asyncio.to_thread(
        runner.invoke, privacy, ["retention", "--tenant", tenant]
    )

    assert dry.exit_code == 0, dry.output
    assert f"would erase {names['Grace']}" in dry.stdout
    assert names["Katherine"] not in dry.stdout
    assert after_dry is False
    assert real.exit_code == 0, real.output
    assert f"erased {names['Grace']}" in real.stdout
    assert await erased(rostering, tenant, names["Grace"]) is True


async def erased(rostering: Rostering, tenant: str, person_id: str) -> bool:
    """Tell whether the roster holds the person as erased."""
    request = RecordsRequest(rostering.store, rostering.keyring)
    records = await request.gather(tenant, UUID(person_id), at=NOW)
    return records.person.erased
