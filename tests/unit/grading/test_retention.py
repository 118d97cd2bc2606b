"""Who the retention job erases: students whose district's period has
passed since they left, and nobody whose leaving time is unknown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from mastery_grading.retention import Leaver, RetentionPeriod, due_for_erasure

NOW = datetime(2027, 7, 1, 12, 0, tzinfo=UTC)
YEAR = RetentionPeriod(days=365, set_by="admin-chalmers", set_at=NOW)
BART, LISA, MILHOUSE = (UUID(int=number) for number in (1, 2, 3))


def left(person_id: UUID, days_ago: float | None) -> Leaver:
    """A student who left ``days_ago`` days before ``NOW``."""
    at = None if days_ago is None else NOW - timedelta(days=days_ago)
    return Leaver(person_id=person_id, left_at=at)


def test_a_student_gone_longer_than_the_period_is_due_and_a_recent_one_is_not() -> None:
    """Bart left 400 days ago and is due; Lisa left 30 days ago and stays."""
    due = due_for_erasure([left(BART, 400), left(LISA, 30)], period=YEAR, now=NOW)

    assert [leaver.person_id for leaver in due] == [BART]


def test_the_period_ends_exactly_on_its_last_day() -> None:
    """Leaving exactly 365 days ago is due; a second less is not."""
    exactly = left(BART, 365)
    almost = left(LISA, 365 - 1 / 86_400)

    due = due_for_erasure([almost, exactly], period=YEAR, now=NOW)

    assert due == [exactly]


def test_a_leaver_without_a_known_time_is_never_due() -> None:
    """Milhouse's leaving time is unknown, so no period can have passed."""
    assert due_for_erasure([left(MILHOUSE, None)], period=YEAR, now=NOW) == []


def test_the_longest_gone_come_first() -> None:
    """Lisa, gone 900 days, comes before Bart, gone 500."""
    due = due_for_erasure([left(BART, 500), left(LISA, 900)], period=YEAR, now=NOW)

    assert [leaver.person_id for leaver in due] == [LISA, BART]


def test_the_reason_names_the_period() -> None:
    """The erasure's reason says which period passed."""
    assert "365 days" in YEAR.reason()
