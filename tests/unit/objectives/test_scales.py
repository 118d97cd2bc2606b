"""Proficiency scales: their rules, score-to-level mapping, the starter
library, and versions that never change once recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import msgspec
import pytest

from mastery_events.contract.objectives import ScaleLevel, ScaleMark
from mastery_objectives.errors import ScaleArchivedError, ScaleInvalidError
from mastery_objectives.scales import (
    STARTER_SCALES,
    Scale,
    archive_scale,
    counts_as_evidence,
    define_scale,
    evolve_scale,
    level_for,
    publish_scale,
    revise_scale,
    validate_scale,
)

FOUR = STARTER_SCALES["four-levels"]
SCALE_ID = UUID("0190a5c4-1e00-7000-8000-00000000005c")
MONDAY = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
COORDINATOR = "coordinator-hoover"


def test_every_starter_scale_keeps_the_rules() -> None:
    """The four starter scales pass validation, with the level counts the
    library promises."""
    counts = {key: len(scale.levels) for key, scale in STARTER_SCALES.items()}

    for scale in STARTER_SCALES.values():
        validate_scale(scale)
    assert counts == {
        "four-levels": 4,
        "three-levels": 3,
        "zero-to-four-half-points": 9,
        "one-to-five": 5,
    }
    assert [level.label for level in FOUR.levels] == [
        "Beginning",
        "Developing",
        "Proficient",
        "Mastered",
    ]


def test_a_scale_with_one_level_is_refused() -> None:
    """A scale needs at least two levels to say anything."""
    scale = msgspec.structs.replace(FOUR, levels=FOUR.levels[:1])

    with pytest.raises(ScaleInvalidError) as caught:
        validate_scale(scale)

    assert caught.value.field == "levels"


def test_two_levels_with_one_value_are_refused() -> None:
    """Level values must be distinct."""
    twin = msgspec.structs.replace(FOUR.levels[1], value=1)
    scale = msgspec.structs.replace(FOUR, levels=(FOUR.levels[0], twin))

    with pytest.raises(ScaleInvalidError, match="share one value"):
        validate_scale(scale)


@pytest.mark.parametrize("threshold", [0.5, 4.5])
def test_a_threshold_outside_the_levels_is_refused(threshold: float) -> None:
    """The mastery threshold must lie between the lowest and highest level."""
    scale = msgspec.structs.replace(FOUR, mastery_threshold=threshold)

    with pytest.raises(ScaleInvalidError) as caught:
        validate_scale(scale)

    assert caught.value.field == "mastery_threshold"


def test_cut_points_must_sit_between_their_levels() -> None:
    """A cut point above the level it opens is refused, naming its index."""
    scale = msgspec.structs.replace(FOUR, cut_points=(1.5, 3.5, 3.6))

    with pytest.raises(ScaleInvalidError) as caught:
        validate_scale(scale)

    assert caught.value.field == "cut_points[1]"


def test_only_the_missing_mark_may_count_as_the_lowest_level() -> None:
    """An excused mark that counts as evidence is refused."""
    excused = ScaleMark(
        code="EX", label="Excused", meaning="excused", counts_as_lowest=True
    )
    scale = msgspec.structs.replace(FOUR, marks=(excused,))

    with pytest.raises(ScaleInvalidError) as caught:
        validate_scale(scale)

    assert caught.value.field == "marks[0]"


def test_a_bad_colour_is_refused() -> None:
    """Colours are six-digit hex codes, so every client can draw them."""
    pink = ScaleLevel(value=5, label="Beyond", short_label="B+", colour="pink")
    scale = msgspec.structs.replace(FOUR, levels=(*FOUR.levels, pink))

    with pytest.raises(ScaleInvalidError) as caught:
        validate_scale(scale)

    assert caught.value.field == "levels[4].colour"


@pytest.mark.parametrize(
    ("score", "nearest", "down", "up"),
    [(2.5, 3, 2, 3), (2.49, 2, 2, 3), (0.2, 1, 1, 1), (3.2, 3, 3, 4), (9, 4, 4, 4)],
)
def test_scores_map_to_levels_by_the_rounding_rule(
    score: float, nearest: float, down: float, up: float
) -> None:
    """Nearest rounds a half up; down and up go to the level below or above."""
    found = {
        rounding: level_for(
            msgspec.structs.replace(FOUR, rounding=rounding), score
        ).value
        for rounding in ("nearest", "down", "up")
    }

    assert found == {"nearest": nearest, "down": down, "up": up}


def test_cut_points_decide_the_level_when_given() -> None:
    """With cut points 1.75, 2.6 and 3.5, a 2.59 is still Developing and a
    2.6 Proficient."""
    scale = msgspec.structs.replace(FOUR, cut_points=(1.75, 2.6, 3.5))

    assert level_for(scale, 2.59).label == "Developing"
    assert level_for(scale, 2.6).label == "Proficient"
    assert level_for(scale, 1.7).label == "Beginning"
    assert level_for(scale, 3.5).label == "Mastered"


def test_marks_count_as_evidence_only_when_the_scale_says_so() -> None:
    """IE and EX never count; missing counts once the scale says it does."""
    counting = msgspec.structs.replace(
        FOUR,
        marks=(
            ScaleMark(
                code="M", label="Missing", meaning="missing", counts_as_lowest=True
            ),
        ),
    )

    assert not counts_as_evidence(FOUR, "IE")
    assert not counts_as_evidence(FOUR, "EX")
    assert not counts_as_evidence(FOUR, "M")
    assert counts_as_evidence(counting, "M")


def test_revising_a_published_scale_makes_a_new_version_and_keeps_the_old() -> None:
    """Version 2 of a published scale leaves version 1 as it was."""
    record = None
    for event in define_scale(SCALE_ID, FOUR, by=COORDINATOR, at=MONDAY):
        record = evolve_scale(record, event)
    assert record is not None
    for event in publish_scale(record, by=COORDINATOR, at=MONDAY):
        record = evolve_scale(record, event)
    stricter = msgspec.structs.replace(FOUR, mastery_threshold=3.5)

    revised = revise_scale(record, stricter, by=COORDINATOR, at=MONDAY)
    for event in revised:
        record = evolve_scale(record, event)

    assert [type(e).__name__ for e in revised] == ["ScaleRevised"]
    assert record.latest_version == 2
    assert record.version(1).mastery_threshold == 3
    assert record.version(2).mastery_threshold == 3.5
    assert record.published_version == 1


def test_an_unchanged_revision_records_nothing() -> None:
    """Sending the same scale again makes no new version."""
    record = evolve_scale(
        None, define_scale(SCALE_ID, FOUR, by=COORDINATOR, at=MONDAY)[0]
    )

    assert revise_scale(record, FOUR, by=COORDINATOR, at=MONDAY) == []


def test_an_archived_scale_cannot_be_revised() -> None:
    """Archiving retires a scale for new versions."""
    record = evolve_scale(
        None, define_scale(SCALE_ID, FOUR, by=COORDINATOR, at=MONDAY)[0]
    )
    record = evolve_scale(record, archive_scale(record, by=COORDINATOR, at=MONDAY)[0])
    stricter = msgspec.structs.replace(FOUR, mastery_threshold=3.5)

    with pytest.raises(ScaleArchivedError):
        revise_scale(record, stricter, by=COORDINATOR, at=MONDAY)


def test_defining_an_invalid_scale_records_nothing() -> None:
    """Validation runs before any event is decided."""
    scale = Scale(name="Empty", levels=(), mastery_threshold=1)

    with pytest.raises(ScaleInvalidError):
        define_scale(SCALE_ID, scale, by=COORDINATOR, at=MONDAY)
