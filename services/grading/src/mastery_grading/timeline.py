"""Timelines: how one student's mastery of one objective changed, in valid
time and in recorded time.

A timeline is a list of change points in valid time: at each moment some
evidence happened (an ``assessed_at``), the mastery computed from all the
evidence up to that moment. Every event that touches the timeline (an
assessment recorded, amended or voided, or a recalculation) makes a new
revision of that list, believed from the event's recorded time on. Points a
revision keeps unchanged stay believed; the others are closed and replaced.

Everything here is pure: the projector and the rebuild both call
``advance`` with the same inputs in the same order, which is what makes a
rebuilt timeline identical to the one built event by event.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import msgspec

from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentRecorded,
    AssessmentVoided,
    LeftOut,
    MasteryChanged,
)
from mastery_grading.evidence import EvidenceItem, StoredAssessmentEvent, fold_evidence
from mastery_grading.mastery import MasteryResult, Policy, compute, compute_ordered
from mastery_grading.scales import ScaleView

DEFAULT_POLICY = Policy(method="most_recent")
"""The policy a timeline follows until its set's first policy reaches
grading's log: the newest evidence, which hides nothing from a teacher."""


class Point(msgspec.Struct, frozen=True, kw_only=True):
    """Mastery from ``valid_from`` until the next point of its revision."""

    valid_from: datetime
    result: MasteryResult


class Rules(msgspec.Struct, frozen=True, kw_only=True):
    """The scale version and policy a timeline is read with.

    ``policy_version`` is ``None`` while the timeline follows
    ``DEFAULT_POLICY``.
    """

    scale: ScaleView
    policy: Policy
    policy_version: int | None


class Revision(msgspec.Struct, frozen=True, kw_only=True):
    """What one event did to a timeline.

    ``points`` is the whole new list; ``opened`` the points new in it and
    ``closed`` the valid times of old points it no longer believes.
    ``changed_at`` holds each valid time that changed, in valid order, and
    ``announced`` the state at each of them: what the projector tells the
    rest of the school (left empty when not asked for).
    """

    points: tuple[Point, ...]
    opened: tuple[Point, ...]
    closed: tuple[datetime, ...]
    changed_at: tuple[datetime, ...]
    announced: tuple[Point, ...]


def read_on(
    events: Sequence[StoredAssessmentEvent], scale: ScaleView
) -> list[StoredAssessmentEvent]:
    """Return ``events`` with every recording on an older version of
    ``scale`` read on ``scale``'s version instead.

    A level is a value on the scale, and a newer version moves cut points
    and labels, not what a level was; so evidence keeps counting when its
    scale is revised. Evidence on another scale is left as it is, and so
    left out.
    """
    read = []
    for stored in events:
        event = stored.event
        if (
            isinstance(event, AssessmentRecorded)
            and event.scale_id == scale.scale_id
            and event.scale_version < scale.version
        ):
            event = msgspec.structs.replace(event, scale_version=scale.version)
            stored = msgspec.structs.replace(stored, event=event)
        read.append(stored)

    return read


def curve(
    events: Sequence[StoredAssessmentEvent],
    rules: Rules,
    *,
    keep: Sequence[Point] = (),
    since: datetime | None = None,
) -> tuple[Point, ...]:
    """Return the change points of a timeline with ``events``.

    Points of ``keep`` before ``since`` are taken as they are, because
    nothing at or after ``since`` can change them; the rest are computed.
    """
    items = fold_evidence(read_on(events, rules.scale), rules.scale)
    return curve_of(items, rules, keep=keep, since=since)


def curve_of(
    items: Sequence[EvidenceItem],
    rules: Rules,
    *,
    keep: Sequence[Point] = (),
    since: datetime | None = None,
) -> tuple[Point, ...]:
    """Return the change points of a timeline whose evidence, folded and
    read on ``rules.scale``, is ``items`` (in ``EvidenceItem.order``, as a
    fold gives them); ``keep`` and ``since`` as for ``curve``."""
    dates = [item.reading.assessed_at for item in items]
    kept: Sequence[Point] = ()
    if since is not None and keep:
        kept = keep[: bisect.bisect_left(keep, since, key=valid_from_of)]

    computed = []
    policy, scale = rules.policy, rules.scale
    start = 0 if since is None else bisect.bisect_left(dates, since)
    for moment in dict.fromkeys(dates[start:]):
        known = items[: bisect.bisect_right(dates, moment)]
        computed.append(
            Point(valid_from=moment, result=compute_ordered(known, policy, scale))
        )

    return (*kept, *computed)


def valid_from_of(point: Point) -> datetime:
    """Sort key: where a point starts in valid time."""
    return point.valid_from


def evaluate(items: Sequence[EvidenceItem], rules: Rules) -> MasteryResult:
    """Compute mastery from ``items`` under ``rules``."""
    return compute(items, rules.policy, rules.scale)


def since_of(
    events: Sequence[StoredAssessmentEvent], assessment_id: UUID
) -> datetime | None:
    """Return the earliest valid time an assessment has ever stood at: no
    point before it can change when that assessment does."""
    dates = []
    for stored in events:
        event = stored.event
        if event.assessment_id != assessment_id:
            continue
        if isinstance(event, AssessmentRecorded | AssessmentAmended) and (
            event.assessed_at is not None
        ):
            dates.append(event.assessed_at)

    return min(dates, default=None)


def advance(
    events: Sequence[StoredAssessmentEvent],
    points: Sequence[Point],
    rules: Rules,
    *,
    since: datetime | None,
) -> Revision:
    """Revise a timeline whose points were ``points`` now that its events
    are ``events`` (the new one included) and its rules ``rules``.

    ``since`` bounds what can change; ``None`` recomputes every point, as
    a new policy or scale version must.
    """
    return revise(points, curve(events, rules, keep=points, since=since), rules)


def revise(
    points: Sequence[Point],
    new: tuple[Point, ...],
    rules: Rules,
    *,
    announce: bool = True,
) -> Revision:
    """Compare a timeline's old ``points`` with its ``new`` ones and say
    what the revision opened, closed and, with ``announce``, announces."""
    # Points kept from before are the very same objects: skip them, and
    # compare only from the first place the two lists part.
    same = 0
    for old_point, new_point in zip(points, new, strict=False):
        if old_point is not new_point:
            break
        same += 1
    if same == len(points):
        # Nothing old left to compare: every new point opens, and points
        # are already in valid order, each moment once.
        closed: tuple[datetime, ...] = ()
        opened = new[same:]
        changed_at = tuple(point.valid_from for point in opened)
    else:
        old_at = {point.valid_from: point for point in points[same:]}
        new_at = {point.valid_from: point for point in new[same:]}
        closed = tuple(
            moment for moment, point in old_at.items() if new_at.get(moment) != point
        )
        opened = tuple(
            point for moment, point in new_at.items() if old_at.get(moment) != point
        )
        changed_at = tuple(sorted({*closed, *(point.valid_from for point in opened)}))
    announced: tuple[Point, ...] = ()
    if announce:
        starts = [point.valid_from for point in new]
        announced = tuple(
            state_at(new, moment, rules, starts=starts) for moment in changed_at
        )

    return Revision(
        points=new,
        opened=opened,
        closed=closed,
        changed_at=changed_at,
        announced=announced,
    )


def state_at(
    points: Sequence[Point],
    moment: datetime,
    rules: Rules,
    *,
    starts: Sequence[datetime] | None = None,
) -> Point:
    """Return the state a timeline gives at ``moment``: its last point up
    to then, or "no evidence yet" before its first. ``starts``, the
    points' valid times, spares listing them again for each moment."""
    if starts is None:
        starts = [point.valid_from for point in points]
    found = bisect.bisect_right(starts, moment)
    if found:
        return msgspec.structs.replace(points[found - 1], valid_from=moment)

    return Point(valid_from=moment, result=evaluate((), rules))


def reason_of(
    event: AssessmentRecorded | AssessmentAmended | AssessmentVoided,
) -> str:
    """Say why an assessment event changed a timeline, keeping the
    teacher's own reason for a correction."""
    if isinstance(event, AssessmentRecorded):
        return "assessment recorded"
    if isinstance(event, AssessmentAmended):
        return f"assessment amended: {event.reason}"

    return f"assessment voided: {event.reason}"


def recalculation_reason(reason: str) -> str:
    """Say that a recalculation job changed a timeline, and why it ran."""
    return f"recalculated: {reason}"


def announcement(
    point: Point,
    *,
    student_id: str,
    objective_id: UUID,
    rules: Rules,
    cause_event_id: UUID,
    reason: str,
) -> MasteryChanged:
    """Return the event that tells the school a timeline's state at
    ``point.valid_from`` is now ``point``'s."""
    result = point.result
    explanation = result.explanation
    parameters = {
        name: value
        for name, value in msgspec.structs.asdict(explanation.parameters).items()
        if value is not None
    }
    scale_id = rules.scale.scale_id
    if scale_id is None:
        message = "a timeline is read on a scale of the catalogue, which has an id"
        raise ValueError(message)

    return MasteryChanged(
        student_id=student_id,
        objective_id=objective_id,
        valid_from=point.valid_from,
        status=result.status,
        score=result.score,
        level=result.level.value if result.level else None,
        level_label=result.level.label if result.level else None,
        mastered=result.mastered,
        method=explanation.method,
        parameters=parameters,
        scale_id=scale_id,
        scale_version=rules.scale.version,
        policy_version=rules.policy_version,
        counted=tuple(item.assessment_id for item in explanation.counted),
        left_out=tuple(
            LeftOut(assessment_id=item.assessment_id, reason=item.standing)
            for item in explanation.left_out
        ),
        cause_event_id=cause_event_id,
        reason=reason,
    )
