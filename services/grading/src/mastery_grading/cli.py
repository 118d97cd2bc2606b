"""The ``mastery grading`` commands."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import get_args

import asyncpg
import click
import msgspec
from click._termui_impl import ProgressBar

from mastery_events.migrations import migrate
from mastery_events.service_app import serve as serve_app
from mastery_events.settings import Settings, SettingsError
from mastery_grading.app import create_app
from mastery_grading.errors import GradingError, InvalidParameterError
from mastery_grading.mastery import METHODS, Method, Policy, TieRule
from mastery_grading.previews import PreviewResult, preview, with_threshold
from mastery_grading.rebuild import Rebuild, RebuildReport
from mastery_grading.roster_commands import roster
from mastery_grading.scales import BUILT_IN_SCALES, DEFAULT_SCALE
from mastery_grading.service import SERVICE

# How each parameter is spelled on the command line, to name it in errors.
OPTION_NAMES = {
    "weight": "--weight",
    "n": "--n",
    "tie": "--tie",
    "threshold": "--threshold",
    "scores": "SCORE",
}


@click.group(name="grading")
def command() -> None:
    """Run the grading service."""


command.add_command(roster)


@command.command()
def serve() -> None:
    """Serve the grading API with uvicorn until SIGINT or SIGTERM."""
    try:
        settings = Settings.from_environment(os.environ)
        settings.require_engines()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None

    serve_app(create_app(settings), settings, service=SERVICE.name)


@command.command()
def rebuild() -> None:
    """Rebuild every timeline from grading's whole log and swap it in.

    The service keeps answering from the old tables until the swap; no
    mastery event is announced again. Connects as the schema's owner
    (MASTERY_MIGRATION_DATABASE_URL, else MASTERY_DATABASE_URL).
    """
    try:
        settings = Settings.from_environment(os.environ)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    url = settings.migration_database_url or settings.database_url
    if url is None:
        raise click.ClickException("set MASTERY_DATABASE_URL to rebuild")

    report = asyncio.run(rebuild_timelines(url))
    click.echo(
        f"rebuilt timelines from {report.events} events "
        f"({report.events_per_second:,.0f} events/s), "
        f"{report.caught_up} more applied at the swap"
    )


async def rebuild_timelines(owner_url: str) -> RebuildReport:
    """Migrate, then rebuild the timelines with a progress bar."""
    pool = await asyncpg.create_pool(owner_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as connection:
            await migrate(connection, SERVICE.schema, SERVICE.all_migrations())
        with contextlib.ExitStack() as stack:
            bars: list[ProgressBar[int]] = []

            def planned(total: int) -> None:
                bar: ProgressBar[int] = click.progressbar(
                    length=total, label="replaying the log", file=sys.stderr
                )
                bars.append(stack.enter_context(bar))

            def progress(count: int) -> None:
                bars[0].update(count)

            async with pool.acquire() as connection:
                rebuild = Rebuild(pool, connection, SERVICE.schema)
                return await rebuild.run(planned=planned, progress=progress)
    finally:
        await pool.close()


@command.command(name="preview")
@click.argument("method", type=click.Choice(METHODS))
@click.argument("scores", nargs=-1, required=True, type=float)
@click.option("--weight", type=float, help="Weight of the newest score.")
@click.option("--n", "n", type=int, help="Scores at the threshold n_times needs.")
@click.option("--threshold", type=float, help="Mastery threshold to try instead.")
@click.option(
    "--tie",
    type=click.Choice(get_args(TieRule)),
    default="higher",
    show_default=True,
    help="How mode breaks a tie.",
)
@click.option(
    "--scale",
    "scale_name",
    type=click.Choice(sorted(BUILT_IN_SCALES)),
    default=DEFAULT_SCALE,
    show_default=True,
    help="Built-in scale to read the score on.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def preview_command(
    method: Method,
    scores: tuple[float, ...],
    *,
    weight: float | None,
    n: int | None,
    threshold: float | None,
    tie: TieRule,
    scale_name: str,
    as_json: bool,
) -> None:
    """Show what METHOD makes of SCOREs, given oldest first.

    The scale is four-level (1 to 4, mastery at 3) unless --scale names
    five-level (1 to 5, mastery at 4) or zero-to-four (0 to 4, mastery at
    3, missing work counting as 0).
    """
    try:
        policy = Policy(method=method, weight=weight, n=n, tie=tie)
        scale = with_threshold(BUILT_IN_SCALES[scale_name], threshold)
        result = preview(scores, policy, scale)
    except InvalidParameterError as error:
        option = OPTION_NAMES.get(error.field, error.field)
        raise click.BadParameter(error.message, param_hint=option) from None
    except GradingError as error:
        raise click.ClickException(str(error)) from None

    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(result)).decode())
    else:
        click.echo("\n".join(described(result)))


def described(result: PreviewResult) -> list[str]:
    """Describe a preview in lines a teacher reads top to bottom."""
    explanation = result.explanation
    scale = explanation.scale
    scores = " ".join(f"{score:g}" for score in explanation.scores)
    lines = [
        f"method: {explanation.method}{parameters_text(result)}",
        f"scale: {scale.name} v{scale.version}, {scale.low:g} to {scale.high:g}, "
        f"mastery at {scale.mastery_threshold:g}",
        f"scores, oldest first: {scores}",
    ]
    if result.score is None or result.level is None:
        return [*lines, f"result: {result.note}"]

    unrounded = result.unrounded_score
    rounding = f" (unrounded {unrounded:g})" if unrounded != result.score else ""
    return [
        *lines,
        f"score: {result.score:g}{rounding}",
        f"level: {result.level.value:g} {result.level.label}",
        f"mastered: {'yes' if result.mastered else 'not yet'}",
    ]


def parameters_text(result: PreviewResult) -> str:
    """Name the parameters the method used, or nothing when it has none."""
    parameters = msgspec.structs.asdict(result.explanation.parameters)
    used = [
        f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}"
        for name, value in parameters.items()
        if value is not None
    ]
    return f" ({', '.join(used)})" if used else ""
