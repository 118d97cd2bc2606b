"""The ``mastery reports`` commands."""

from __future__ import annotations

import asyncio
import os

import click
import msgspec

from mastery_events.service_app import serve as serve_app
from mastery_events.settings import Settings, SettingsError
from mastery_reports.app import create_app
from mastery_reports.rebuild import rebuild
from mastery_reports.service import SERVICE


@click.group(name="reports")
def command() -> None:
    """Run the reports service."""


@command.command()
def serve() -> None:
    """Serve the reports API with uvicorn until SIGINT or SIGTERM."""
    try:
        settings = Settings.from_environment(os.environ)
        settings.require_engines()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None

    serve_app(create_app(settings), settings, service=SERVICE.name)


@command.command(name="rebuild")
def rebuild_command() -> None:
    """Rebuild every report snapshot by replaying the objectives and
    grading streams from the start. Stop the reports service first."""
    try:
        settings = Settings.from_environment(os.environ)
        settings.require_engines()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None

    result = asyncio.run(rebuild(SERVICE, settings))
    click.echo(msgspec.json.format(msgspec.json.encode(result)).decode())
