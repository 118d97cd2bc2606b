"""``mastery audit``: seal and verify every service's log, and export or
import a tenant's history.

These commands span every installed service's schema, so they live with the
launcher rather than in any one service. They connect with
``MASTERY_MIGRATION_DATABASE_URL`` when it is set, else with
``MASTERY_DATABASE_URL``; every read and write still runs for one tenant at
a time, under its row-level policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import BinaryIO

import asyncpg
import click
import nats
from nats.errors import Error as NatsError

from mastery_deploy.cli import load_settings
from mastery_deploy.services import installed_services
from mastery_events.anchors import SealAnchors
from mastery_events.errors import EventsError
from mastery_events.history import (
    HistoryImport,
    ImportHook,
    export_history,
    read_export,
)
from mastery_events.moments import TIME_FORMATS, as_utc
from mastery_events.runtime import Service
from mastery_events.seals import Sealer, tenants_of
from mastery_events.settings import Settings, variable
from mastery_events.subjects import InvalidTenantError, Subjects, check_tenant_id
from mastery_events.verification import Verdict, Verifier

AUDIT_GROUP = "mastery.audit"
# What each service does inside an import's transaction, so that it does
# not derive again the events the import brought along.
IMPORTED_GROUP = "mastery.imported"


def audit_url() -> str:
    """Return the database URL the audit commands use, or stop the command
    when none is set."""
    settings = load_settings()
    url = settings.migration_database_url or settings.database_url
    if url is None:
        message = f"{variable('database_url')} is not set: there is nothing to audit"
        raise click.ClickException(message)

    return url


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    """Yield one connection to ``url``, closed afterwards."""
    connection = await asyncpg.connect(url)
    try:
        yield connection
    finally:
        await connection.close()


def checked_tenant(tenant: str | None) -> str | None:
    """Return ``tenant`` when it is a valid tenant id, else stop the command."""
    if tenant is None:
        return None
    try:
        return check_tenant_id(tenant)
    except InvalidTenantError as error:
        raise click.BadParameter(str(error), param_hint="--tenant") from None


async def tenants_to_audit(
    connection: asyncpg.Connection, service: Service, tenant: str | None
) -> list[str]:
    """Return the one tenant asked for, or every tenant of ``service``."""
    if tenant is not None:
        return [tenant]
    return await tenants_of(connection, service.schema)


class AuditGroup(click.Group):
    """The audit commands, with those each installed service adds through
    the ``mastery.audit`` entry points (a student's mastery as of a date,
    a shared report rendered again), loaded only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return the built-in and the services' audit commands' names."""
        added = {entry.name for entry in entry_points(group=AUDIT_GROUP)}
        return sorted({*super().list_commands(ctx), *added})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return a built-in audit command, or load a service's by name."""
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        for entry in entry_points(group=AUDIT_GROUP, name=cmd_name):
            loaded: click.Command = entry.load()
            return loaded

        return None


@click.group(cls=AuditGroup)
def audit() -> None:
    """Prove the log untouched, take a tenant's history elsewhere, and
    show auditors the past as it was."""


@audit.command()
@click.option("--tenant", help="Seal only this tenant (default: every tenant).")
def seal(tenant: str | None) -> None:
    """Seal every committed event not sealed yet, in each tenant's global
    order, now: the services also seal every MASTERY_SEAL_INTERVAL."""
    url = audit_url()
    tenant = checked_tenant(tenant)

    async def run() -> list[tuple[str, str, int]]:
        sealed = []
        async with connected(url) as connection:
            for service in installed_services():
                for tenant_id in await tenants_to_audit(connection, service, tenant):
                    count = await Sealer(service.schema).seal(connection, tenant_id)
                    sealed.append((service.schema, tenant_id, count))
        return sealed

    try:
        results = asyncio.run(run())
    except (EventsError, OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(str(error)) from None
    for schema, tenant_id, count in results:
        click.echo(f"{schema} {tenant_id}: {count} events sealed")


@contextlib.asynccontextmanager
async def anchors_on(settings: Settings) -> AsyncIterator[SealAnchors]:
    """Yield the seal anchors on the configured NATS, or stop the command
    saying why they cannot be read."""
    if settings.nats_url is None:
        message = (
            f"{variable('nats_url')} is not set, so the seals cannot be "
            "compared with their anchors; give it, or pass --no-anchors"
        )
        raise click.ClickException(message)
    try:
        client = await nats.connect(
            settings.nats_url.split(","),
            connect_timeout=2,
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )
    except (OSError, TimeoutError, NatsError) as error:
        message = (
            f"NATS does not answer ({type(error).__name__}), so the seals "
            "cannot be compared with their anchors; pass --no-anchors to "
            "verify without them"
        )
        raise click.ClickException(message) from None
    try:
        yield SealAnchors(client.jetstream(), Subjects(prefix=settings.subject_prefix))
    finally:
        await client.close()


@audit.command()
@click.option("--tenant", help="Verify only this tenant (default: every tenant).")
@click.option(
    "--anchors/--no-anchors",
    default=True,
    show_default=True,
    help="Compare each tenant's seals with the newest anchor on NATS.",
)
def verify(tenant: str | None, anchors: bool) -> None:
    """Recompute every hash chain and seal, and compare the seals with
    their anchors on NATS; name the first event changed, deleted or
    reordered, and exit 1 if there is one."""
    settings = load_settings()
    url = audit_url()
    tenant = checked_tenant(tenant)

    async def run() -> list[Verdict]:
        verdicts = []
        async with contextlib.AsyncExitStack() as stack:
            board = (
                await stack.enter_async_context(anchors_on(settings))
                if anchors
                else None
            )
            connection = await stack.enter_async_context(connected(url))
            for service in installed_services():
                for tenant_id in await tenants_to_audit(connection, service, tenant):
                    anchor = None
                    if board is not None:
                        anchor = await board.latest(service.schema, tenant_id)
                    verifier = Verifier(service.schema)
                    verdicts.append(
                        await verifier.verify(connection, tenant_id, anchor=anchor)
                    )
        return verdicts

    try:
        verdicts = asyncio.run(run())
    except (EventsError, OSError, asyncpg.PostgresError, NatsError) as error:
        raise click.ClickException(str(error)) from None

    if not anchors:
        click.echo("anchors not compared (--no-anchors)", err=True)
    broken = [verdict for verdict in verdicts if not verdict.intact]
    for verdict in verdicts:
        where = f"{verdict.schema} {verdict.tenant_id}"
        counts = f"{verdict.events} events, {verdict.sealed} sealed"
        if anchors:
            counts += f", {anchored(verdict)}"
        if verdict.intact:
            click.echo(f"intact: {where}: {counts}")
            continue
        click.echo(
            f"TAMPERED: {where}: {counts}, {len(verdict.findings)} found; first:"
        )
        click.echo(f"  {verdict.findings[0].describe()}")
    if broken:
        raise SystemExit(1)


def anchored(verdict: Verdict) -> str:
    """Say which anchor a verdict's seals were compared with."""
    if verdict.anchor is None:
        return "no anchor yet"
    when = verdict.anchor.anchored_at.isoformat(timespec="seconds")
    return f"anchored up to seal {verdict.anchor.seal_number} at {when}"


@audit.command()
@click.option("--tenant", required=True, help="The tenant whose history to export.")
@click.option(
    "--from",
    "since",
    type=click.DateTime(TIME_FORMATS),
    help="Only events recorded at or after this time (UTC unless given).",
)
@click.option(
    "--to",
    "until",
    type=click.DateTime(TIME_FORMATS),
    help="Only events recorded before this time (UTC unless given).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write here instead of to standard output.",
)
def export(
    tenant: str,
    since: datetime | None,
    until: datetime | None,
    output: Path | None,
) -> None:
    """Write the tenant's history as NDJSON, one CloudEvent (structured JSON)
    per line, each service's events in their global order."""
    url = audit_url()
    tenant_id = checked_tenant(tenant)
    assert tenant_id is not None

    async def run(sink: BinaryIO) -> int:
        written = 0
        async with connected(url) as connection:
            for service in installed_services():
                lines = export_history(
                    connection,
                    schema=service.schema,
                    service=service.name,
                    tenant_id=tenant_id,
                    since=as_utc(since),
                    until=as_utc(until),
                )
                async for line in lines:
                    sink.write(line + b"\n")
                    written += 1
        return written

    try:
        if output is None:
            written = asyncio.run(run(sys.stdout.buffer))
        else:
            with output.open("wb") as sink:
                written = asyncio.run(run(sink))
    except (EventsError, OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"exported {written} events of {tenant_id}", err=True)


@audit.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(file: Path) -> None:
    """Append an export's events, with their ids, order and payloads, into a
    deployment that holds none of its tenant's events: all or nothing.
    Each service's ``mastery.imported`` hook runs in the same transaction,
    so nothing the export holds is derived again."""
    url = audit_url()
    schemas = {service.name: service.schema for service in installed_services()}
    hooks: list[ImportHook] = [
        entry.load() for entry in entry_points(group=IMPORTED_GROUP)
    ]

    async def run() -> tuple[str, dict[str, int]]:
        history = HistoryImport(schemas, source=str(file), within=hooks)
        with file.open("rb") as lines:
            async with connected(url) as connection:
                events = read_export(lines, source=str(file))
                tenant_id = await history.run(connection, events)
        return tenant_id, history.counts

    try:
        tenant_id, counts = asyncio.run(run())
    except (EventsError, OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(str(error)) from None
    for schema, count in counts.items():
        click.echo(f"{schema} {tenant_id}: {count} events imported")
