"""The ``mastery grading`` commands."""

from __future__ import annotations

import os

import click
import uvicorn

from mastery_events.settings import Settings, SettingsError
from mastery_grading.app import create_app


@click.group(name="grading")
def command() -> None:
    """Run the grading service."""


@command.command()
def serve() -> None:
    """Serve the grading API with uvicorn until SIGINT or SIGTERM."""
    try:
        settings = Settings.from_environment(os.environ)
        settings.require_engines()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        # Port 0 asks the system for a free one, which uvicorn then reports.
        port=settings.grading_port or 0,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
