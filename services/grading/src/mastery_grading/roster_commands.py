"""The ``mastery grading roster`` commands: import a OneRoster bundle from a
folder, the same way the upload route does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import click
from click._termui_impl import ProgressBar

from mastery_events.contract import CONTRACT
from mastery_events.keyring import (
    SCHEMA as KEYRING_SCHEMA,
)
from mastery_events.keyring import (
    KeyEncryptionKeyMissingError,
    Keyring,
    KeyringError,
    LocalKeyWrapper,
    decode_key_encryption_key,
    keyring_migrations,
)
from mastery_events.migrations import migrate
from mastery_events.settings import Settings, SettingsError, variable
from mastery_events.store import EventStore
from mastery_events.subjects import InvalidTenantError, check_tenant_id
from mastery_grading.errors import GradingError, RosterImportError
from mastery_grading.oneroster import read_bundle_directory
from mastery_grading.roster import RosterBundle
from mastery_grading.roster_import import KINDS, OUTCOMES
from mastery_grading.rostering import Actor, ImportSummary, Rostering
from mastery_grading.service import SERVICE

# Below this many people to seal an import is quick enough to need no bar.
PROGRESS_THRESHOLD = 200


@click.group(name="roster")
def roster() -> None:
    """Import and inspect school rosters."""


@roster.command(name="import")
@click.argument(
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option("--tenant", required=True, help="The district to import into.")
@click.option(
    "--actor", default="system:roster-import", show_default=True, help="Who imports."
)
def import_command(directory: Path, tenant: str, actor: str) -> None:
    """Import the OneRoster 1.2 bundle unpacked in DIRECTORY, all of it or
    nothing; a bundle already imported records nothing.

    The events reach NATS through the running grading service's relay.
    """
    try:
        check_tenant_id(tenant)
    except InvalidTenantError as error:
        raise click.BadParameter(str(error), param_hint="--tenant") from None
    settings = command_settings()

    try:
        bundle = read_bundle_directory(directory)
    except RosterImportError as error:
        for problem in error.problems:
            click.echo(problem.describe(), err=True)
        if error.total > len(error.problems):
            click.echo(f"... and {error.total - len(error.problems)} more", err=True)
        raise click.ClickException(
            f"{directory} refused: {error.total} problem(s), nothing imported"
        ) from None
    click.echo(
        f"read {directory}: {len(bundle.schools)} schools, "
        f"{len(bundle.sections)} sections, {len(bundle.people)} people, "
        f"{len(bundle.enrollments)} enrollments",
        err=True,
    )

    who = Actor(subject=actor, at=datetime.now(UTC))
    try:
        summary = asyncio.run(_import(settings, tenant, bundle, actor=who))
    except (GradingError, KeyringError) as error:
        raise click.ClickException(str(error)) from None

    click.echo("\n".join(described(summary)))


def described(summary: ImportSummary) -> list[str]:
    """Describe an import's counts, one kind of record a line."""
    if summary.import_id is None:
        lines = ["nothing changed: the roster already matches this bundle"]
    else:
        lines = [f"import {summary.import_id}: {summary.events} events recorded"]
    for kind in KINDS:
        counts = ", ".join(
            f"{summary.counts[f'{kind}_{outcome}']} {outcome}" for outcome in OUTCOMES
        )
        lines.append(f"{kind.replace('_', ' ')}: {counts}")
    if summary.skipped_erased:
        lines.append(f"erased people left out: {summary.skipped_erased}")

    return lines


async def _import(
    settings: Settings, tenant: str, bundle: RosterBundle, *, actor: Actor
) -> ImportSummary:
    async with opened_rostering(settings) as rostering:
        with contextlib.ExitStack() as stack:
            bar = _Bar(stack)
            return await rostering.import_bundle(
                tenant, bundle, actor=actor, progress=bar.advance
            )


@contextlib.asynccontextmanager
async def opened_rostering(settings: Settings) -> AsyncIterator[Rostering]:
    """Migrate grading's schema and the keyring, then yield the roster's
    commands on a small pool of the application role, closed afterwards."""
    database_url = settings.database_url or ""
    keyring = _keyring(settings)

    # The application role owns no table: migrate as the owner, work as
    # the application, as the service itself does.
    migrator = await asyncpg.connect(settings.migration_database_url or database_url)
    try:
        await migrate(migrator, SERVICE.schema, SERVICE.all_migrations())
        await migrate(migrator, KEYRING_SCHEMA, keyring_migrations())
        await keyring.check(migrator)
    finally:
        await migrator.close()

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        yield Rostering(
            pool,
            EventStore(pool, SERVICE.schema, registry=CONTRACT),
            keyring,
            schema=SERVICE.schema,
        )
    finally:
        await pool.close()


class _Bar:
    """Show the sealing of people once there are many to seal."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self._bar: ProgressBar[int] | None = None
        self._shown = 0

    def advance(self, done: int, total: int) -> None:
        if total < PROGRESS_THRESHOLD:
            return
        if self._bar is None:
            bar: ProgressBar[int] = click.progressbar(
                length=total, label="sealing people", file=sys.stderr
            )
            self._bar = self._stack.enter_context(bar)
        self._bar.update(done - self._shown)
        self._shown = done


def _keyring(settings: Settings) -> Keyring:
    """Return the keyring the settings' key-encryption key opens."""
    encoded = settings.key_encryption_key
    if encoded is None:
        raise KeyEncryptionKeyMissingError(variable("key_encryption_key"))
    try:
        key = decode_key_encryption_key(encoded)
    except ValueError as error:
        name = variable("key_encryption_key")
        raise click.ClickException(f"{name} {error}") from None

    return Keyring(LocalKeyWrapper(key))


def command_settings() -> Settings:
    """Return the settings of the environment, or stop the command when
    they are not valid or name no database."""
    try:
        settings = Settings.from_environment(os.environ)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    if settings.database_url is None:
        raise click.ClickException(f"{variable('database_url')} is not set")

    return settings
