"""The ``mastery reports`` commands."""

from __future__ import annotations

import asyncio
import os
import sys

import click
import msgspec
import structlog

from mastery_events.log_output import structlog_processors
from mastery_events.service_app import serve as serve_app
from mastery_events.settings import Settings, SettingsError
from mastery_reports.app import create_app
from mastery_reports.benchmark import run_reports_benchmark
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


@command.command(name="bench")
@click.option("--students", type=click.IntRange(min=1), default=600, show_default=True)
@click.option(
    "--rate",
    type=click.FloatRange(min=1),
    default=1500,
    show_default=True,
    help="Grades appended per second.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=1),
    default=60,
    show_default=True,
    help="How long grades are appended.",
)
@click.option(
    "--read-clients", type=click.IntRange(min=1), default=16, show_default=True
)
@click.option(
    "--read-seconds", type=click.FloatRange(min=1), default=10, show_default=True
)
@click.option(
    "--paced-read-rate",
    type=click.FloatRange(min=1),
    default=1000,
    show_default=True,
    help="Reads started per second in the paced phase, whatever their latency.",
)
def bench_command(
    students: int,
    rate: float,
    seconds: float,
    read_clients: int,
    read_seconds: float,
    paced_read_rate: float,
) -> None:
    """Measure grade-to-snapshot latency at a steady rate, then snapshot
    reads, on the configured engines in schemas and streams of its own."""
    try:
        settings = Settings.from_environment(os.environ)
        settings.require_engines()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None

    # Progress goes to stderr, the result alone to stdout.
    structlog.configure(
        processors=structlog_processors(settings.log_format, colors=False),
        wrapper_class=structlog.make_filtering_bound_logger("warning"),
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
    )
    result = asyncio.run(
        run_reports_benchmark(
            settings,
            students=students,
            rate=rate,
            seconds=seconds,
            read_clients=read_clients,
            read_seconds=read_seconds,
            paced_read_rate=paced_read_rate,
        )
    )
    click.echo(msgspec.json.format(msgspec.json.encode(result)).decode())
