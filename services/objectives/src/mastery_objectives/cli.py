"""The ``mastery objectives`` commands."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import click
from click._termui_impl import ProgressBar

from mastery_events.contract import CONTRACT
from mastery_events.ids import uuid7
from mastery_events.migrations import migrate
from mastery_events.service_app import serve as serve_app
from mastery_events.settings import Settings, SettingsError
from mastery_events.store import EventStore
from mastery_events.subjects import InvalidTenantError, check_tenant_id
from mastery_objectives.app import create_app
from mastery_objectives.errors import ObjectivesError
from mastery_objectives.import_plan import ImportPlan
from mastery_objectives.importing import ImportRequest, ImportResult, import_file
from mastery_objectives.repository import Actor, ObjectivesRepository
from mastery_objectives.service import SERVICE

# Below this many events an import is quick enough to need no progress bar.
PROGRESS_THRESHOLD = 200


@click.group(name="objectives")
def command() -> None:
    """Run the objectives service."""


@command.command()
def serve() -> None:
    """Serve the objectives API with uvicorn until SIGINT or SIGTERM."""
    settings = _settings()
    serve_app(create_app(settings), settings, service=SERVICE.name)


@command.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", required=True, help="The district to import into.")
@click.option("--set", "set_id", type=click.UUID, help="Update this set.")
@click.option("--title", help="The set's title (default: the file's).")
@click.option("--subject", help="The set's subject.")
@click.option(
    "--owner-scope",
    type=click.Choice(["district", "school", "teacher"]),
    default="district",
    show_default=True,
)
@click.option("--owner-id", help="The owning school or teacher id.")
@click.option(
    "--actor", default="system:importer", show_default=True, help="Who imports."
)
def import_command(
    file: Path,
    tenant: str,
    set_id: UUID | None,
    title: str | None,
    subject: str | None,
    owner_scope: Any,
    owner_id: str | None,
    actor: str,
) -> None:
    """Import a CSV or CASE JSON FILE into a set, all of it or nothing.

    The set is the one given with --set, else the one the same CASE
    document was imported into before, else a new one. The events reach
    NATS through the running service's relay.
    """
    settings = _settings(engines=False)
    if settings.database_url is None:
        raise click.ClickException("MASTERY_DATABASE_URL is not set")
    try:
        check_tenant_id(tenant)
    except InvalidTenantError as error:
        raise click.BadParameter(str(error), param_hint="--tenant") from None
    request = ImportRequest(
        data=file.read_bytes(),
        file_name=file.name,
        objective_set_id=set_id,
        title=title,
        subject=subject,
        owner_scope=owner_scope,
        owner_id=owner_id,
    )
    who = Actor(actor=actor, at=datetime.now(UTC), correlation_id=uuid7())
    try:
        result = asyncio.run(
            _import(
                settings.database_url,
                settings.migration_database_url or settings.database_url,
                tenant,
                request,
                actor=who,
            )
        )
    except ObjectivesError as error:
        raise click.ClickException(str(error)) from None

    verb = "created" if result.created else "updated"
    click.echo(
        f"{verb} objective set {result.objective_set_id}: {result.items} items, "
        f"{result.events} events recorded"
    )


async def _import(
    database_url: str,
    migration_url: str,
    tenant: str,
    request: ImportRequest,
    *,
    actor: Actor,
) -> ImportResult:
    # The application role owns no table: migrate as the owner, import as
    # the application, as the service itself does.
    migrator = await asyncpg.connect(migration_url)
    try:
        await migrate(migrator, SERVICE.schema, SERVICE.all_migrations())
    finally:
        await migrator.close()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        repository = ObjectivesRepository(
            EventStore(pool, SERVICE.schema, registry=CONTRACT)
        )
        bar = _ProgressBar()
        try:
            return await import_file(
                repository,
                tenant,
                request=request,
                actor=actor,
                on_plan=bar.planned,
                progress=bar.advance,
            )
        finally:
            bar.close()
    finally:
        await pool.close()


class _ProgressBar:
    """Show the append's progress once a file turns out to be large."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._bar: ProgressBar[int] | None = None
        self._shown = 0

    def planned(self, plan: ImportPlan) -> None:
        click.echo(f"read {plan.file_name}: {len(plan.items)} items", err=True)

    def advance(self, done: int, total: int) -> None:
        if total < PROGRESS_THRESHOLD:
            return
        if self._bar is None:
            bar: ProgressBar[int] = click.progressbar(
                length=total,
                label="recording events",
                file=sys.stderr,
            )
            self._bar = self._stack.enter_context(bar)
        self._bar.update(done - self._shown)
        self._shown = done

    def close(self) -> None:
        self._stack.close()


def _settings(*, engines: bool = True) -> Settings:
    try:
        settings = Settings.from_environment(os.environ)
        if engines:
            settings.require_engines()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None

    return settings
