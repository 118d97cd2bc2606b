"""The pure timeline: change points in valid time, revisions that keep
what they do not change, and the states announced for each change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec

from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentEvent,
    AssessmentRecorded,
    AssessmentVoided,
    Evidence,
)
from mastery_grading.evidence import StoredAssessmentEvent
from mastery_grading.mastery import Policy
from mastery_grading.scales import BUILT_IN_SCALES
from mastery_grading.timeline import (
    Point,
    Rules,
    advance,
    announcement,
    curve,
    read_on,
    revise,
    since_of,
)

SCALE_ID = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fb1")
OBJECTIVE = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fd3")
MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
FOUR = BUILT_IN_SCALES["four-level"]
RULES = Rules(
    scale=FOUR.__class__(
        name=FOUR.name,
        version=2,
        levels=FOUR.levels,
        mastery_threshold=FOUR.mastery_threshold,
        marks=FOUR.marks,
        scale_id=SCALE_ID,
    ),
    policy=Policy(method="mean"),
    policy_version=4,
)


def day(n: int) -> datetime:
    """Return the ``n``-th day after Monday."""
    return MONDAY + timedelta(days=n)


def assessment(number: int) -> UUID:
    """Return the ``number``-th assessment's id."""
    return UUID(int=number)


def recorded(number: int, level: float, on: datetime) -> AssessmentRecorded:
    """A recording on version 1 of the scale, read on version 2."""
    return AssessmentRecorded(
        assessment_id=assessment(number),
        student_id="student-lisa",
        objective_id=OBJECTIVE,
        scale_id=SCALE_ID,
        scale_version=1,
        level=level,
        assessed_at=on,
        assessed_by="ms-frizzle",
        evidence=Evidence(title=f"Quiz {number}"),
    )


def stored(*events: AssessmentEvent) -> list[StoredAssessmentEvent]:
    """Number the events as the log would, recorded on day 20."""
    return [
        StoredAssessmentEvent(event=event, recorded_at=day(20), position=index)
        for index, event in enumerate(events, start=1)
    ]


def scores(points: tuple[Point, ...]) -> list[tuple[datetime, float | None]]:
    """Return each point's valid time and score."""
    return [(point.valid_from, point.result.score) for point in points]


def test_each_valid_time_is_a_point_computed_from_the_evidence_up_to_it() -> None:
    """Under mean, 2 on day 1 and 4 on day 3 give 2 from day 1, 3 from
    day 3, whatever order they were recorded in."""
    log = stored(recorded(2, 4, day(3)), recorded(1, 2, day(1)))

    revision = advance(log, (), RULES, since=None)

    assert scores(revision.points) == [(day(1), 2.0), (day(3), 3.0)]


def test_a_late_recording_changes_its_day_and_every_later_one_only() -> None:
    """A 1 on day 2 leaves day 1 as it was, opens day 2 and replaces day
    3, and announces the state at day 2 and day 3."""
    before = advance(
        stored(recorded(1, 2, day(1)), recorded(2, 4, day(3))), (), RULES, since=None
    )
    log = stored(recorded(1, 2, day(1)), recorded(2, 4, day(3)), recorded(3, 1, day(2)))

    after = advance(log, before.points, RULES, since=day(2))

    assert after.points[0] is before.points[0]
    # The mean of 2, 1 and 4 is reported to three decimals.
    assert scores(after.opened) == [(day(2), 1.5), (day(3), 2.333)]
    assert after.closed == (day(3),)
    assert [point.valid_from for point in after.announced] == [day(2), day(3)]


def test_a_revision_keeping_every_old_point_answers_as_the_full_comparison() -> None:
    """A recording dated after all the rest keeps every old point as it
    was; the shortcut for that case opens, closes and announces what
    comparing the points one by one does, given equal but not identical
    old points."""
    first = stored(recorded(1, 2, day(1)), recorded(2, 4, day(3)))
    before = advance(first, (), RULES, since=None)
    log = stored(recorded(1, 2, day(1)), recorded(2, 4, day(3)), recorded(3, 1, day(5)))
    new = curve(log, RULES, keep=before.points, since=day(5))
    copies = [msgspec.structs.replace(point) for point in before.points]

    kept = revise(before.points, new, RULES)
    compared = revise(copies, new, RULES)

    assert copies == list(before.points)
    assert copies[0] is not before.points[0]
    assert scores(kept.opened) == [(day(5), 2.333)]
    assert kept.opened == compared.opened
    assert kept.closed == compared.closed == ()
    assert kept.changed_at == compared.changed_at == (day(5),)
    assert kept.announced == compared.announced


def test_an_amend_that_moves_a_date_announces_the_day_it_left() -> None:
    """Moving day 3's 4 to day 5 removes the day-3 point; day 3 is
    announced with the state carried from day 1."""
    log = stored(recorded(1, 2, day(1)), recorded(2, 4, day(3)))
    before = advance(log, (), RULES, since=None)
    amend = AssessmentAmended(
        assessment_id=assessment(2),
        assessed_at=day(5),
        reason="dated from the wrong week",
        amended_by="ms-frizzle",
        amended_at=day(6),
    )
    log = stored(recorded(1, 2, day(1)), recorded(2, 4, day(3)), amend)

    after = advance(log, before.points, RULES, since=since_of(log, assessment(2)))

    assert scores(after.points) == [(day(1), 2.0), (day(5), 3.0)]
    assert scores(after.announced) == [(day(3), 2.0), (day(5), 3.0)]


def test_a_void_of_the_only_evidence_announces_not_enough_evidence() -> None:
    """Voiding the one assessment leaves a point with no score, the void
    left out by name."""
    void = AssessmentVoided(
        assessment_id=assessment(1),
        reason="copied",
        voided_by="ms-frizzle",
        voided_at=day(2),
    )
    log = stored(recorded(1, 3, day(1)), void)

    (point,) = advance(log, (), RULES, since=None).points

    assert point.result.status == "not_enough_evidence"
    assert [item.standing for item in point.result.explanation.left_out] == ["voided"]


def test_evidence_on_an_older_version_of_the_scale_is_read_on_the_newer() -> None:
    """A level recorded on version 1 counts on version 2 of the same scale."""
    (read,) = read_on(stored(recorded(1, 3, day(1))), RULES.scale)

    assert isinstance(read.event, AssessmentRecorded)
    assert read.event.scale_version == 2


def test_an_announcement_carries_the_explanation_and_the_versions() -> None:
    """The event names the counted assessment, the method, the scale and
    policy versions, the cause and the reason."""
    (point,) = advance(stored(recorded(1, 3, day(1))), (), RULES, since=None).points

    event = announcement(
        point,
        student_id="student-lisa",
        objective_id=OBJECTIVE,
        rules=RULES,
        cause_event_id=assessment(9),
        reason="assessment recorded",
    )

    assert event.counted == (assessment(1),)
    assert (event.method, event.scale_version, event.policy_version) == ("mean", 2, 4)
    assert (event.level_label, event.mastered) == ("Proficient", True)
    assert event.cause_event_id == assessment(9)
