"""``mastery audit reproduce-view``: a shared report written again exactly
as one reader was given it, from the event log alone.

It replays into a scratch schema, which needs the right to create one, so
it connects as the migration role when one is set, as the launcher's other
audit commands do. The launcher's ``audit`` group finds it through the
``mastery.audit`` entry points, so it never imports reports by name; the
source services are found as the launcher finds them.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from uuid import UUID

import asyncpg
import click
import msgspec

from mastery_events.errors import EventsError
from mastery_events.keyring import (
    Keyring,
    LocalKeyWrapper,
    decode_key_encryption_key,
)
from mastery_events.moments import operator
from mastery_events.runtime import Service
from mastery_events.settings import Settings, SettingsError, variable
from mastery_events.subjects import InvalidTenantError, check_tenant_id
from mastery_reports.errors import ReportsError
from mastery_reports.reproduction import Reproduced, reproduce_view
from mastery_reports.service import SERVICE

SERVICES_GROUP = "mastery.services"


class ViewSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What the command tells beside the body: which view, how it was
    served, and the log positions it was rebuilt from."""

    view_id: UUID
    share_link_id: UUID
    viewed_at: datetime
    format: str
    language: str | None
    positions: dict[str, int]


def source_schemas() -> dict[str, str]:
    """Return each installed service's schema by its name, found as the
    launcher finds them."""
    schemas = {}
    for entry in entry_points(group=SERVICES_GROUP):
        service = entry.load()
        if isinstance(service, Service):
            schemas[service.name] = service.schema

    return schemas


def settings_with_key() -> tuple[Settings, str, Keyring]:
    """Return the settings, the database URL to work on and the keyring,
    or stop the command naming what is missing."""
    try:
        settings = Settings.from_environment(os.environ)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    url = settings.migration_database_url or settings.database_url
    if url is None:
        raise click.ClickException(f"{variable('database_url')} is not set")
    encoded = settings.key_encryption_key
    if encoded is None:
        raise click.ClickException(f"{variable('key_encryption_key')} is not set")
    try:
        key = decode_key_encryption_key(encoded)
    except ValueError as error:
        raise click.ClickException(
            f"{variable('key_encryption_key')} {error}"
        ) from None

    return settings, url, Keyring(LocalKeyWrapper(key))


@click.command(name="reproduce-view")
@click.option("--tenant", required=True, help="The district of the view.")
@click.option(
    "--view",
    "view_id",
    required=True,
    type=click.UUID,
    help="The event id of the ReportViewed to render again.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the body here instead of to standard output.",
)
@click.option(
    "--auditor",
    default=operator,
    show_default="operator:<login>",
    help="Who asks, as the ReportReproduced event records it.",
)
def reproduce_view_command(
    tenant: str, view_id: UUID, output: Path | None, auditor: str
) -> None:
    """Render a shared report again as that view served it (the page, the
    HTML its PDF was typeset from, or the JSON), from the log alone; the
    reproduction is recorded."""
    _, url, keyring = settings_with_key()
    try:
        tenant_id = check_tenant_id(tenant)
    except InvalidTenantError as error:
        raise click.BadParameter(str(error), param_hint="--tenant") from None

    async def run() -> Reproduced:
        async with asyncpg.create_pool(url, min_size=1, max_size=2) as pool:
            return await reproduce_view(
                pool,
                service=SERVICE,
                sources=source_schemas(),
                tenant_id=tenant_id,
                view_id=view_id,
                keyring=keyring,
                auditor=auditor,
                at=datetime.now(UTC),
            )

    try:
        reproduced = asyncio.run(run())
    except (ReportsError, EventsError, OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(str(error)) from None

    body = reproduced.body.encode()
    if output is None:
        sys.stdout.buffer.write(body)
    else:
        output.write_bytes(body)
    summary = ViewSummary(
        view_id=reproduced.view_id,
        share_link_id=reproduced.share_link_id,
        viewed_at=reproduced.viewed_at,
        format=reproduced.format,
        language=reproduced.language,
        positions=reproduced.positions,
    )
    click.echo(msgspec.json.encode(summary).decode(), err=True)
