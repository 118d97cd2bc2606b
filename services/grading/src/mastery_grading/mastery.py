"""The mastery engine: from counted evidence to a score, a level and why.

Every method is a pure function over scores in the order the work happened
(oldest first). ``compute`` picks the counted evidence, applies the policy's
method, clamps and rounds the score on the scale, maps it to a level through
the cut points, and says which assessments counted and which were left out.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Literal, get_args
from uuid import UUID

import msgspec

from mastery_grading.errors import InvalidParameterError, NoScoresError
from mastery_grading.evidence import COUNTED, EvidenceItem
from mastery_grading.scales import Level, Precision, ScaleView

Method = Literal[
    "most_recent",
    "highest",
    "mean",
    "median",
    "mode",
    "decaying_average",
    "weighted_average",
    "n_times",
    "power_law",
]
METHODS: tuple[Method, ...] = get_args(Method)
TieRule = Literal["higher", "recent"]
Status = Literal["scored", "not_enough_evidence"]

WEIGHT_RANGES: dict[Method, tuple[float, float]] = {
    "decaying_average": (0.50, 0.99),
    "weighted_average": (0.01, 0.99),
}
N_RANGE = (1, 10)


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """One version of a grading policy: the method, its parameters and the
    least evidence it needs before it gives a score.

    ``weight`` belongs to the two averages that favour recent work and
    ``n`` to ``n_times``; giving either to another method is refused, so a
    policy never carries a parameter that silently does nothing.
    """

    method: Method
    weight: float | None = None
    n: int | None = None
    tie: TieRule = "higher"
    minimum_evidence: int = 1
    policy_id: UUID | None = None
    version: int = 1

    def __post_init__(self) -> None:
        check_weight(self.method, self.weight)
        check_n(self.method, self.n)
        if self.minimum_evidence < 1:
            message = "must be at least 1"
            raise InvalidParameterError("minimum_evidence", message)


def check_weight(method: Method, weight: float | None) -> None:
    """Refuse a missing, stray or out-of-range weight for ``method``."""
    allowed = WEIGHT_RANGES.get(method)
    if allowed is None:
        if weight is not None:
            raise InvalidParameterError("weight", f"{method} takes no weight")
        return
    low, high = allowed
    if weight is None or not low <= weight <= high:
        message = f"{method} needs a weight from {low:.2f} to {high:.2f}"
        raise InvalidParameterError("weight", message)


def check_n(method: Method, n: int | None) -> None:
    """Refuse a missing, stray or out-of-range ``n`` for ``method``."""
    low, high = N_RANGE
    if method != "n_times":
        if n is not None:
            raise InvalidParameterError("n", f"{method} takes no n")
        return
    if n is None or not low <= n <= high:
        raise InvalidParameterError("n", f"n_times needs n from {low} to {high}")


# The methods. Each takes at least one score, oldest first.


def most_recent(scores: Sequence[float]) -> float:
    """Return the newest score: where the student stands now."""
    require(scores, "most_recent")
    return scores[-1]


def highest(scores: Sequence[float]) -> float:
    """Return the best score the student has shown."""
    require(scores, "highest")
    return max(scores)


def mean(scores: Sequence[float]) -> float:
    """Return the plain average, every score weighing the same."""
    require(scores, "mean")
    return math.fsum(scores) / len(scores)


def median(scores: Sequence[float]) -> float:
    """Return the middle score; of an even count, the mean of the two
    middle ones."""
    require(scores, "median")
    return float(statistics.median(scores))


def mode(scores: Sequence[float], *, tie: TieRule) -> float:
    """Return the most frequent score; among equally frequent ones, the
    higher (``tie="higher"``) or the one seen most recently
    (``tie="recent"``)."""
    require(scores, "mode")
    counts = Counter(scores)
    most = max(counts.values())
    tied = [score for score, count in counts.items() if count == most]
    if tie == "higher":
        return max(tied)

    last_seen = {score: index for index, score in enumerate(scores)}
    return max(tied, key=last_seen.__getitem__)


def decaying_average(scores: Sequence[float], weight: float) -> float:
    """Fold oldest to newest, each new score taking ``weight`` of the
    running value: d = d * (1 - weight) + score * weight, from the oldest
    score."""
    require(scores, "decaying_average")
    running = scores[0]
    for score in scores[1:]:
        running = running * (1 - weight) + score * weight
    return running


def weighted_average(scores: Sequence[float], weight: float) -> float:
    """Give the newest score ``weight`` and the mean of all older ones the
    rest; a single score is its own average."""
    require(scores, "weighted_average")
    *older, newest = scores
    if not older:
        return newest
    return newest * weight + mean(older) * (1 - weight)


def n_times(scores: Sequence[float], n: int, *, threshold: float) -> float | None:
    """Return the mean of the scores at or above ``threshold`` once there
    are at least ``n`` of them, and ``None`` (no score yet) before."""
    require(scores, "n_times")
    reached = [score for score in scores if score >= threshold]
    if len(reached) < n:
        return None
    return mean(reached)


def power_law(scores: Sequence[float], *, low: float) -> float:
    """Fit ln(score) on ln(attempt) by least squares and return the fitted
    value at the last attempt, predicting where the learning has got to.

    A logarithm needs positive scores, and a scale may start at zero, so
    the fit runs on ``score + offset`` where the offset lifts the scale's
    lowest value ``low`` to 1 (none on a scale from 1), and the fitted
    value is shifted back. Every shifted score is at least 1, so a zero
    weighs like the lowest level rather than like minus infinity. A single
    score, which no line fits, is its own prediction.
    """
    require(scores, "power_law")
    if len(scores) == 1:
        return scores[0]
    offset = power_law_offset(low)
    xs = [math.log(attempt) for attempt in range(1, len(scores) + 1)]
    ys = [math.log(score + offset) for score in scores]

    x_mean, y_mean = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
    spread = math.fsum((x - x_mean) ** 2 for x in xs)
    slope = math.fsum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True))
    slope /= spread
    fitted = y_mean + slope * (xs[-1] - x_mean)

    return math.exp(fitted) - offset


def power_law_offset(low: float) -> float:
    """Return what ``power_law`` adds to every score before the logarithm
    so the scale's lowest value becomes 1."""
    return 1 - low


def require(scores: Sequence[float], method: str) -> None:
    """Refuse to summarise no scores."""
    if not scores:
        raise NoScoresError(method)


# Results and their explanation.


class Parameters(msgspec.Struct, frozen=True, kw_only=True):
    """The parameters the method ran with, including the mastery threshold
    ``n_times`` counts against and the shift ``power_law`` fitted with."""

    weight: float | None = None
    n: int | None = None
    tie: TieRule | None = None
    threshold: float | None = None
    offset: float | None = None


class ScaleRef(msgspec.Struct, frozen=True, kw_only=True):
    """Which scale version the score was read on, its range and the
    precision the score is reported to."""

    scale_id: UUID | None
    name: str
    version: int
    low: float
    high: float
    mastery_threshold: float
    precision: Precision


class PolicyRef(msgspec.Struct, frozen=True, kw_only=True):
    """Which policy version chose the method, and the evidence it needs."""

    policy_id: UUID | None
    version: int
    minimum_evidence: int


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """The score, the level it earns and whether that is mastery.

    ``score`` is clamped to the scale and rounded by its rule; the level and
    the mastered flag are read from it, so what a teacher sees is what
    decided. ``note`` says why there is no score when there is none.
    """

    status: Status
    score: float | None
    unrounded_score: float | None
    level: Level | None
    mastered: bool
    note: str | None = None


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    """Everything behind a result: the evidence that counted, in the order
    the method saw it, the evidence left out with its standing, and the
    method, parameters, scale and policy versions."""

    method: Method
    parameters: Parameters
    scale: ScaleRef
    policy: PolicyRef
    counted: tuple[EvidenceItem, ...]
    left_out: tuple[EvidenceItem, ...]


class MasteryResult(Outcome, frozen=True, kw_only=True):
    """A student's mastery of one objective, with its explanation."""

    explanation: Explanation


def compute(
    evidence: Sequence[EvidenceItem], policy: Policy, scale: ScaleView
) -> MasteryResult:
    """Compute a student's mastery of one objective from its evidence."""
    return compute_ordered(sorted(evidence, key=EvidenceItem.order), policy, scale)


def compute_ordered(
    ordered: Sequence[EvidenceItem], policy: Policy, scale: ScaleView
) -> MasteryResult:
    """Compute mastery from evidence already in ``EvidenceItem.order``, as
    a timeline's folded evidence is, sparing ``compute``'s sort."""
    # One pass: a replay computes a point per event, so three passes over
    # the evidence showed in its profile.
    counted: list[EvidenceItem] = []
    left_out: list[EvidenceItem] = []
    values: list[float] = []
    for item in ordered:
        if item.standing in COUNTED:
            counted.append(item)
            if item.value is not None:
                values.append(item.value)
        else:
            left_out.append(item)
    outcome = evaluate(values, policy, scale)

    parameters, scale_named, policy_named = named_by(policy, scale)
    explanation = Explanation(
        method=policy.method,
        parameters=parameters,
        scale=scale_named,
        policy=policy_named,
        counted=tuple(counted),
        left_out=tuple(left_out),
    )
    return MasteryResult(
        status=outcome.status,
        score=outcome.score,
        unrounded_score=outcome.unrounded_score,
        level=outcome.level,
        mastered=outcome.mastered,
        note=outcome.note,
        explanation=explanation,
    )


class Named(msgspec.Struct, frozen=True, kw_only=True):
    """What explanations under one policy and scale name, kept with them."""

    policy: Policy
    scale: ScaleView
    refs: tuple[Parameters, ScaleRef, PolicyRef]


# The last policy and scale explained, by identity. A replay computes a
# timeline's points under the very same policy and scale objects, so they
# share these objects too, and a stored explanation finds its rules by
# identity instead of comparing them (see ``explanations``). One entry
# keeps one policy and one scale alive, no more.
_last_named: list[Named] = []


def named_by(
    policy: Policy, scale: ScaleView
) -> tuple[Parameters, ScaleRef, PolicyRef]:
    """Return the parameters, scale and policy an explanation under
    ``policy`` and ``scale`` names: the same objects as last time when
    both are the same objects as last time, equal ones otherwise."""
    if _last_named:
        last = _last_named[0]
        if last.policy is policy and last.scale is scale:
            return last.refs
    refs = (
        parameters_of(policy, scale),
        scale_ref(scale),
        PolicyRef(
            policy_id=policy.policy_id,
            version=policy.version,
            minimum_evidence=policy.minimum_evidence,
        ),
    )
    _last_named[:] = [Named(policy=policy, scale=scale, refs=refs)]

    return refs


def evaluate(scores: Sequence[float], policy: Policy, scale: ScaleView) -> Outcome:
    """Apply ``policy`` to ``scores`` (oldest first) on ``scale``."""
    if len(scores) < policy.minimum_evidence:
        note = (
            f"not enough evidence yet: {len(scores)} counted, "
            f"the policy needs {policy.minimum_evidence}"
        )
        return no_score(note)

    raw = run_method(scores, policy, scale)
    if raw is None:
        reached = sum(1 for score in scores if score >= scale.mastery_threshold)
        note = (
            f"not enough evidence yet: {reached} of the {policy.n} scores at or "
            f"above {scale.mastery_threshold:g} that n_times needs"
        )
        return no_score(note)

    unrounded = scale.clamp(raw)
    score = scale.precision.apply(unrounded)
    return Outcome(
        status="scored",
        score=score,
        unrounded_score=unrounded,
        level=scale.level_of(score),
        mastered=score >= scale.mastery_threshold,
    )


def run_method(
    scores: Sequence[float], policy: Policy, scale: ScaleView
) -> float | None:
    """Dispatch to the policy's method with its parameters."""
    match policy.method:
        case "most_recent":
            return most_recent(scores)
        case "highest":
            return highest(scores)
        case "mean":
            return mean(scores)
        case "median":
            return median(scores)
        case "mode":
            return mode(scores, tie=policy.tie)
        case "decaying_average":
            return decaying_average(scores, weight_of(policy))
        case "weighted_average":
            return weighted_average(scores, weight_of(policy))
        case "n_times":
            return n_times(scores, n_of(policy), threshold=scale.mastery_threshold)
        case "power_law":
            return power_law(scores, low=scale.low)


def weight_of(policy: Policy) -> float:
    """Return the weight a policy's own checks made sure it has."""
    if policy.weight is None:
        raise InvalidParameterError("weight", f"{policy.method} needs a weight")
    return policy.weight


def n_of(policy: Policy) -> int:
    """Return the ``n`` a policy's own checks made sure it has."""
    if policy.n is None:
        raise InvalidParameterError("n", f"{policy.method} needs n")
    return policy.n


def no_score(note: str) -> Outcome:
    """Say there is no score yet, and why."""
    return Outcome(
        status="not_enough_evidence",
        score=None,
        unrounded_score=None,
        level=None,
        mastered=False,
        note=note,
    )


def parameters_of(policy: Policy, scale: ScaleView) -> Parameters:
    """Name the parameters ``policy.method`` actually used."""
    return Parameters(
        weight=policy.weight,
        n=policy.n,
        tie=policy.tie if policy.method == "mode" else None,
        threshold=scale.mastery_threshold if policy.method == "n_times" else None,
        offset=power_law_offset(scale.low) if policy.method == "power_law" else None,
    )


def scale_ref(scale: ScaleView) -> ScaleRef:
    """Name the scale version and the range and rules the score used."""
    return ScaleRef(
        scale_id=scale.scale_id,
        name=scale.name,
        version=scale.version,
        low=scale.low,
        high=scale.high,
        mastery_threshold=scale.mastery_threshold,
        precision=scale.precision,
    )
