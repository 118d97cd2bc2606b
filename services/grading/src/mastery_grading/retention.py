"""How long a district keeps a student who left, and who is due for erasure.

A student has left when they hold no active enrollment and either the
student information system removed them or their last enrollment ended.
Once the district's retention period has passed since then, they are due:
the retention job erases them as a district admin would, with the period
as the reason. A student who never had an enrollment and was never removed
has not left, so nothing about them is decided here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

import msgspec

# Long enough for any legal schedule (a century), small enough for SQL.
LONGEST_PERIOD_DAYS = 36_500
RETENTION_ACTOR = "system:retention"


class RetentionPeriod(msgspec.Struct, frozen=True, kw_only=True):
    """A district's retention period: who set it and when."""

    days: int
    set_by: str
    set_at: datetime

    def reason(self) -> str:
        """Return why the job erases someone, kept in ``PersonErased``."""
        return f"retention period of {self.days} days passed since they left"


class Leaver(msgspec.Struct, frozen=True, kw_only=True):
    """A student not erased who holds no active enrollment, and when they
    left (``None`` when the roster cannot tell)."""

    person_id: UUID
    left_at: datetime | None


def due_for_erasure(
    leavers: Iterable[Leaver], *, period: RetentionPeriod, now: datetime
) -> list[Leaver]:
    """Return the leavers whose period has passed at ``now``, the longest
    gone first; a leaver without a known leaving time is never due."""
    cutoff = now - timedelta(days=period.days)
    due = [
        leaver
        for leaver in leavers
        if leaver.left_at is not None and leaver.left_at <= cutoff
    ]

    return sorted(due, key=lambda leaver: (leaver.left_at, leaver.person_id))
