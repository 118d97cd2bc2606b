"""Grading's reading of the objectives service's scales and policies.

The objectives service owns scales and calculation policies; grading learns
them from its events and never from its tables. These pure functions turn
one event into the value the mastery engine reads: a ``ScaleView`` for a
scale version, a ``Policy`` for a policy version. The tables that keep them
live in ``catalogue_store``.
"""

from __future__ import annotations

from mastery_events.contract.objectives import (
    CalculationPolicy,
    CalculationPolicySet,
    ScaleDefined,
    ScaleRevised,
)
from mastery_events.contract.objectives import (
    TieRule as ObjectivesTieRule,
)
from mastery_grading.mastery import Policy, TieRule
from mastery_grading.scales import Mark, ScaleView, cut_levels

# The objectives service names the mode's tie rules after what wins.
TIE_RULES: dict[ObjectivesTieRule, TieRule] = {
    "higher_level": "higher",
    "most_recent": "recent",
}


def scale_view_from(event: ScaleDefined | ScaleRevised) -> ScaleView:
    """Return the scale version ``event`` carries as the mastery engine
    reads it, cut exactly as the objectives service cuts it."""
    levels = cut_levels(
        [(level.value, level.label) for level in event.levels],
        cut_points=event.cut_points,
        rounding=event.rounding,
    )
    marks = tuple(
        Mark(
            code=mark.code,
            meaning=mark.meaning,
            counts_as_lowest=mark.counts_as_lowest,
        )
        for mark in event.marks
    )

    return ScaleView(
        name=event.name,
        version=event.scale_version,
        levels=levels,
        mastery_threshold=event.mastery_threshold,
        marks=marks,
        scale_id=event.scale_id,
    )


def policy_from(event: CalculationPolicySet) -> Policy:
    """Return the policy version ``event`` sets, in grading's terms."""
    return grading_policy(event.policy, version=event.policy_version)


def grading_policy(policy: CalculationPolicy, *, version: int) -> Policy:
    """Translate the objectives service's policy into grading's: both
    recent-weighted averages keep their weight in ``weight``."""
    weight = policy.decay if policy.method == "decaying_average" else None
    if policy.method == "weighted_average":
        weight = policy.recent_weight

    return Policy(
        method=policy.method,
        weight=weight,
        n=policy.n if policy.method == "n_times" else None,
        tie=TIE_RULES[policy.tie_rule or "higher_level"],
        minimum_evidence=policy.minimum_evidence,
        version=version,
    )
