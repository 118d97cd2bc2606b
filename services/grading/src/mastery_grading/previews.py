"""Previews: what a method would make of bare scores, before a teacher
chooses it for a policy.

A preview has no students and no stored evidence, only scores in the order
the work happened, so it names no one and reads nothing; the command line
and the HTTP route both call ``preview``.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from mastery_events.contract.objectives import Rounding
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
from mastery_grading.scales import ScaleView, cut_levels


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
    levels: Sequence[tuple[float, str]],
    *,
    cut_points: Sequence[float] = (),
    rounding: Rounding = "nearest",
    threshold: float | None = None,
) -> ScaleView:
    """Build a preview scale from ``(value, label)`` levels, lowest first,
    cut as the objectives service cuts a scale; without a threshold,
    mastery is the second-highest level."""
    if len(levels) < 2:
        raise InvalidParameterError("levels", "a scale needs at least two levels")
    cut = cut_levels(levels, cut_points=cut_points, rounding=rounding)

    return ScaleView(
        name="custom",
        version=1,
        levels=cut,
        mastery_threshold=cut[-2].value if threshold is None else threshold,
    )
