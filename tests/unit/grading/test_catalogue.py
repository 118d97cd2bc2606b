"""Grading's reading of the objectives service's scale and policy events."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from mastery_events.contract.objectives import (
    CalculationPolicy,
    CalculationPolicySet,
    ScaleDefined,
    ScaleLevel,
    ScaleMark,
    ScaleRevised,
)
from mastery_grading.catalogue import policy_from, scale_view_from
from mastery_grading.errors import InvalidParameterError

SCALE_ID = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fb1")
SET_ID = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fc2")
MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)


def level(value: float, label: str) -> ScaleLevel:
    """A level with a plain colour and a one-letter short label."""
    return ScaleLevel(value=value, label=label, short_label=label[0], colour="#333")


LEVELS = (
    level(1, "Beginning"),
    level(2, "Developing"),
    level(3, "Proficient"),
    level(4, "Exemplary"),
)


def defined(**changes: object) -> ScaleDefined:
    """Lakeside's four-level scale as first defined, with ``changes``."""
    fields: dict[str, object] = {
        "scale_id": SCALE_ID,
        "name": "Lakeside four",
        "levels": LEVELS,
        "mastery_threshold": 3.0,
        "defined_by": "coordinator-hoover",
        "defined_at": MONDAY,
    } | changes
    return ScaleDefined(**fields)  # type: ignore[arg-type]


def policy_set(policy: CalculationPolicy, *, version: int = 1) -> CalculationPolicySet:
    """The set's policy set to ``policy`` as version ``version``."""
    return CalculationPolicySet(
        objective_set_id=SET_ID,
        policy_version=version,
        policy=policy,
        set_by="coordinator-hoover",
        set_at=MONDAY,
    )


def test_a_defined_scale_is_cut_halfway_by_default() -> None:
    """Without cut points, nearest rounding cuts at 1.5, 2.5 and 3.5, and
    the view carries the id, version, name and threshold."""
    view = scale_view_from(defined())

    assert [lvl.cut for lvl in view.levels] == [1.0, 1.5, 2.5, 3.5]
    assert [lvl.label for lvl in view.levels] == [lvl.label for lvl in LEVELS]
    assert (view.scale_id, view.version, view.name) == (SCALE_ID, 1, "Lakeside four")
    assert view.mastery_threshold == 3.0


def test_a_revised_scale_keeps_its_cut_points_and_marks() -> None:
    """Version 2 with cut points 1.8, 2.7, 3.6 and a missing mark counted
    as lowest is read exactly so: 2.69 is Developing, 2.7 Proficient."""
    revised = ScaleRevised(
        scale_id=SCALE_ID,
        scale_version=2,
        name="Lakeside four",
        levels=LEVELS,
        mastery_threshold=2.7,
        cut_points=(1.8, 2.7, 3.6),
        marks=(
            ScaleMark(
                code="M", label="Missing", meaning="missing", counts_as_lowest=True
            ),
            ScaleMark(code="EX", label="Excused", meaning="excused"),
        ),
        revised_by="coordinator-hoover",
        revised_at=MONDAY,
    )

    view = scale_view_from(revised)

    assert view.version == 2
    assert [lvl.cut for lvl in view.levels] == [1.0, 1.8, 2.7, 3.6]
    assert view.level_of(2.69).label == "Developing"
    assert view.level_of(2.7).label == "Proficient"
    assert view.mastery_threshold == 2.7
    missing = view.mark("M")
    assert missing is not None
    assert missing.counts_as_lowest
    excused = view.mark("EX")
    assert excused is not None
    assert excused.meaning == "excused"


def test_rounding_down_gives_a_level_only_at_its_value() -> None:
    """Rounding down cuts each level at its own value: 2.99 is Developing."""
    view = scale_view_from(defined(rounding="down"))

    assert [lvl.cut for lvl in view.levels] == [1.0, 2.0, 3.0, 4.0]
    assert view.level_of(2.99).label == "Developing"


def test_a_scale_grading_cannot_read_is_refused() -> None:
    """Levels that do not go up are refused rather than stored."""
    backwards = (level(2, "Developing"), level(1, "Beginning"))

    with pytest.raises(InvalidParameterError):
        scale_view_from(defined(levels=backwards, mastery_threshold=1.0))


def test_a_decaying_average_keeps_its_decay_as_the_weight() -> None:
    """decay 0.65 becomes grading's weight 0.65, at the event's version."""
    policy = policy_from(
        policy_set(
            CalculationPolicy(
                method="decaying_average", decay=0.65, minimum_evidence=2
            ),
            version=3,
        )
    )

    assert (policy.method, policy.weight, policy.version) == (
        "decaying_average",
        0.65,
        3,
    )
    assert policy.minimum_evidence == 2


def test_a_weighted_average_keeps_its_recent_weight_as_the_weight() -> None:
    """recent_weight 0.4 becomes grading's weight 0.4."""
    policy = policy_from(
        policy_set(CalculationPolicy(method="weighted_average", recent_weight=0.4))
    )

    assert (policy.method, policy.weight) == ("weighted_average", 0.4)


def test_mode_tie_rules_are_renamed_and_n_times_keeps_n() -> None:
    """most_recent becomes recent, higher_level (and none) higher; n stays."""
    recent = policy_from(
        policy_set(CalculationPolicy(method="mode", tie_rule="most_recent"))
    )
    plain = policy_from(policy_set(CalculationPolicy(method="mode")))
    three = policy_from(policy_set(CalculationPolicy(method="n_times", n=3)))

    assert recent.tie == "recent"
    assert plain.tie == "higher"
    assert (three.n, three.weight) == (3, None)
