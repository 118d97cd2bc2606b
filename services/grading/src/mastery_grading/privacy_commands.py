"""The ``mastery privacy`` commands: answer a records request for one
student, and apply a district's retention period (or list whom it would
erase)."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from uuid import UUID

import click
import msgspec

from mastery_events.keyring import KeyringError
from mastery_events.runtime import Service
from mastery_events.subjects import InvalidTenantError, check_tenant_id
from mastery_grading.errors import GradingError
from mastery_grading.records import RecordsRequest, StudentRecords
from mastery_grading.records_document import records_html
from mastery_grading.retention_job import RetentionJob, RetentionRun
from mastery_grading.roster_commands import command_settings, opened_rostering
from mastery_grading.service import SERVICE

SERVICES_GROUP = "mastery.services"


@click.group(name="privacy")
def privacy() -> None:
    """Answer records requests and apply retention periods."""


def checked(tenant: str) -> str:
    """Return ``tenant`` when it is a valid tenant id, else stop."""
    try:
        return check_tenant_id(tenant)
    except InvalidTenantError as error:
        raise click.BadParameter(str(error), param_hint="--tenant") from None


@privacy.command(name="export")
@click.option("--tenant", required=True, help="The student's district.")
@click.option("--student", required=True, type=click.UUID, help="The person id.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write records-<id>.json and records-<id>.pdf here "
    "(default: the JSON to standard output).",
)
def export_command(tenant: str, student: UUID, out: Path | None) -> None:
    """Gather everything grading holds about one student: roster data
    opened, enrollments, assessments with corrections, timelines,
    traditional grades and every event about them."""
    settings = command_settings()
    tenant = checked(tenant)

    async def gather() -> StudentRecords:
        async with opened_rostering(settings) as rostering:
            request = RecordsRequest(rostering.store, rostering.keyring)
            records = await request.gather(tenant, student, at=datetime.now(UTC))
            elsewhere = await request.elsewhere(
                tenant, student, schemas=other_schemas()
            )
        return msgspec.structs.replace(records, elsewhere=elsewhere)

    try:
        records = asyncio.run(gather())
    except (GradingError, KeyringError) as error:
        raise click.ClickException(str(error)) from None
    document = msgspec.json.format(msgspec.json.encode(records))
    if out is None:
        sys.stdout.buffer.write(document + b"\n")
        return

    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"records-{student}.json"
    pdf_path = out / f"records-{student}.pdf"
    json_path.write_bytes(document + b"\n")
    pdf_path.write_bytes(typeset(records_html(records)))
    click.echo(f"wrote {json_path} and {pdf_path}: {len(records.events)} events")


def other_schemas() -> list[str]:
    """Return the schemas of the other services installed beside grading,
    found as the launcher finds them, so none is imported by name."""
    schemas = []
    for entry in entry_points(group=SERVICES_GROUP):
        service = entry.load()
        if isinstance(service, Service) and service.schema != SERVICE.schema:
            schemas.append(service.schema)

    return sorted(schemas)


def typeset(html: str) -> bytes:
    """Return ``html`` typeset as a PDF with WeasyPrint, which the reports
    service installs; loaded only here, as only this command needs it."""
    try:
        from weasyprint import HTML
    except ImportError:
        message = "the PDF needs WeasyPrint: install mastery-reports beside grading"
        raise click.ClickException(message) from None

    pdf: bytes = HTML(string=html).write_pdf()
    return pdf


@privacy.command(name="retention")
@click.option("--tenant", required=True, help="The district whose period applies.")
@click.option(
    "--dry-run", is_flag=True, help="List whom it would erase, erasing nobody."
)
def retention_command(tenant: str, dry_run: bool) -> None:
    """Erase the district's students who left longer ago than its
    retention period, each as an admin's erasure would."""
    settings = command_settings()
    tenant = checked(tenant)

    async def run() -> RetentionRun:
        async with opened_rostering(settings) as rostering:
            job = RetentionJob(rostering)
            return await job.run(tenant, now=datetime.now(UTC), dry_run=dry_run)

    try:
        outcome = asyncio.run(run())
    except (GradingError, KeyringError) as error:
        raise click.ClickException(str(error)) from None

    if outcome.period is None:
        raise click.ClickException(f"{tenant} has set no retention period")
    verb = "would erase" if dry_run else "erased"
    for leaver in outcome.due:
        left = leaver.left_at.date().isoformat() if leaver.left_at else "?"
        click.echo(f"{verb} {leaver.person_id} (left {left})")
    click.echo(
        f"{tenant}: period {outcome.period.days} days, {len(outcome.due)} due, "
        f"{outcome.erased} erased",
        err=True,
    )
