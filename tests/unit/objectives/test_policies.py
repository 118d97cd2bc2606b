"""Calculation policies: each method takes its own parameter, in range."""

from __future__ import annotations

import pytest

from mastery_events.contract.objectives import CalculationPolicy
from mastery_objectives.errors import PolicyInvalidError
from mastery_objectives.policies import DEFAULT_POLICY, validate_policy


@pytest.mark.parametrize(
    "policy",
    [
        CalculationPolicy(method="most_recent"),
        CalculationPolicy(method="highest"),
        CalculationPolicy(method="mean", minimum_evidence=3),
        CalculationPolicy(method="median"),
        CalculationPolicy(method="mode", tie_rule="most_recent"),
        CalculationPolicy(method="decaying_average", decay=0.5),
        CalculationPolicy(method="decaying_average", decay=0.99),
        CalculationPolicy(method="weighted_average", recent_weight=0.01),
        CalculationPolicy(method="n_times", n=10),
        CalculationPolicy(method="power_law"),
        DEFAULT_POLICY,
    ],
)
def test_policies_within_their_ranges_are_accepted(policy: CalculationPolicy) -> None:
    """Every method with its parameter at a bound of its range passes."""
    assert validate_policy(policy) == policy


@pytest.mark.parametrize(
    ("policy", "parameter"),
    [
        (CalculationPolicy(method="decaying_average", decay=0.49), "decay"),
        (CalculationPolicy(method="decaying_average", decay=1.0), "decay"),
        (
            CalculationPolicy(method="weighted_average", recent_weight=1.0),
            "recent_weight",
        ),
        (CalculationPolicy(method="n_times", n=0), "n"),
        (CalculationPolicy(method="n_times", n=11), "n"),
        (CalculationPolicy(method="n_times"), "n"),
        (CalculationPolicy(method="mode"), "tie_rule"),
        (CalculationPolicy(method="mean", decay=0.7), "decay"),
        (CalculationPolicy(method="highest", minimum_evidence=0), "minimum_evidence"),
    ],
)
def test_a_parameter_out_of_range_or_out_of_place_is_refused(
    policy: CalculationPolicy, parameter: str
) -> None:
    """The error names the parameter at fault."""
    with pytest.raises(PolicyInvalidError) as caught:
        validate_policy(policy)

    assert caught.value.parameter == parameter
