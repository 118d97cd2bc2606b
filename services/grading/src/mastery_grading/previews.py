"""Previews: what a method would make of bare scores, before a teacher
chooses it for a policy.

A preview has no students and no stored evidence, only scores in the order
the work happened, so it names no one and reads nothing; the command line
and the HTTP route both call ``preview``.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from mastery_grading.errors import InvalidParameterError
from mastery_grading.mastery import (
    Method,
    Outcome,
    Parameters,
    Policy,
    ScaleRef,
    evaluate,
    parameters_of,
    scale_ref,
)
from mastery_grading.scales import Level, ScaleView


class PreviewExplanation(msgspec.Struct, frozen=True, kw_only=True):
    """The method, parameters and scale a preview used, and its scores in
    the order it read them, oldest first."""

    method: Method
    parameters: Parameters
    scale: ScaleRef
    scores: tuple[float, ...]


class PreviewResult(Outcome, frozen=True, kw_only=True):
    """What the method makes of the scores, with its explanation."""

    explanation: PreviewExplanation


def preview(scores: Sequence[float], policy: Policy, scale: ScaleView) -> PreviewResult:
    """Apply ``policy`` to ``scores``, oldest first, on ``scale``."""
    if not scores:
        raise InvalidParameterError("scores", "give at least one score")
    for score in scores:
        if not scale.holds(score):
            message = (
                f"{score:g} lies outside the scale {scale.name}, "
                f"{scale.low:g} to {scale.high:g}"
            )
            raise InvalidParameterError("scores", message)

    outcome = evaluate(scores, policy, scale)

    explanation = PreviewExplanation(
        method=policy.method,
        parameters=parameters_of(policy, scale),
        scale=scale_ref(scale),
        scores=tuple(scores),
    )
    return PreviewResult(**msgspec.structs.asdict(outcome), explanation=explanation)


def with_threshold(scale: ScaleView, threshold: float | None) -> ScaleView:
    """Return ``scale`` with its mastery threshold replaced, when one is
    given, so a teacher can try another bar on the same levels."""
    if threshold is None:
        return scale
    return msgspec.structs.replace(scale, mastery_threshold=threshold)


def custom_scale(
    levels: Sequence[tuple[float, str, float | None]], *, threshold: float | None
) -> ScaleView:
    """Build a preview scale from ``(value, label, cut)`` levels, lowest
    first; a level without a cut is cut halfway down to the level below,
    and without a threshold mastery is the second-highest level."""
    built: list[Level] = []
    for value, label, cut in levels:
        if cut is None:
            cut = (built[-1].value + value) / 2 if built else value
        built.append(Level(value=value, label=label, cut=cut))
    if len(built) < 2:
        raise InvalidParameterError("levels", "a scale needs at least two levels")

    return ScaleView(
        name="custom",
        version=1,
        levels=tuple(built),
        mastery_threshold=built[-2].value if threshold is None else threshold,
    )
