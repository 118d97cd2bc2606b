"""Calculation policies: which method turns evidence into a level, with
which parameters, and how much evidence a level needs before it shows.

The grading service runs the methods; this module only guards their
parameters, so a policy that reaches the grading service is always one it
can run.
"""

from __future__ import annotations

from typing import get_args

import msgspec

from mastery_events.contract.objectives import (
    CalculationMethod,
    CalculationPolicy,
)
from mastery_objectives.errors import PolicyInvalidError

METHODS: tuple[CalculationMethod, ...] = get_args(CalculationMethod)
PARAMETERS = ("decay", "recent_weight", "n", "tie_rule")
MINIMUM_EVIDENCE_RANGE = (1, 20)


class ParameterRange(msgspec.Struct, frozen=True, kw_only=True):
    """The inclusive range of one numeric parameter."""

    low: float
    high: float


# The one parameter each method needs, and its inclusive range.
METHOD_PARAMETERS: dict[str, tuple[str, ParameterRange | None]] = {
    "decaying_average": ("decay", ParameterRange(low=0.5, high=0.99)),
    "weighted_average": ("recent_weight", ParameterRange(low=0.01, high=0.99)),
    "n_times": ("n", ParameterRange(low=1, high=10)),
    "mode": ("tie_rule", None),
}

DEFAULT_POLICY = CalculationPolicy(method="decaying_average", decay=0.65)


def validate_policy(policy: CalculationPolicy) -> CalculationPolicy:
    """Return ``policy`` when its parameters fit its method, else raise
    ``PolicyInvalidError`` naming the parameter."""
    wanted = METHOD_PARAMETERS.get(policy.method)
    wanted_name = wanted[0] if wanted else None
    for name in PARAMETERS:
        value = getattr(policy, name)
        if name == wanted_name:
            if value is None:
                reason = f"the {policy.method} method needs {name}"
                raise PolicyInvalidError(name, reason)
        elif value is not None:
            reason = f"the {policy.method} method takes no {name}"
            raise PolicyInvalidError(name, reason)

    bounds = wanted[1] if wanted else None
    if wanted is not None and bounds is not None:
        name = wanted[0]
        value = getattr(policy, name)
        if not bounds.low <= value <= bounds.high:
            reason = (
                f"{value:g} is outside {bounds.low:g} to {bounds.high:g} for "
                f"the {policy.method} method"
            )
            raise PolicyInvalidError(name, reason)

    low, high = MINIMUM_EVIDENCE_RANGE
    if not low <= policy.minimum_evidence <= high:
        reason = f"{policy.minimum_evidence} is outside {low} to {high}"
        raise PolicyInvalidError("minimum_evidence", reason)

    return policy
