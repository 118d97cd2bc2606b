"""A teacher drafting an objective set: the one event the event store's
own tests append, told apart by its title, time or set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from mastery_events.contract.objectives import ObjectiveSetCreated
from mastery_events.envelope import PendingEvent

SET_ID = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fa2")
MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)


def set_drafted(
    title: str = "Ratios and proportions",
    *,
    minute: int = 0,
    set_id: UUID = SET_ID,
) -> PendingEvent:
    """Return Ms Ada's draft of a set, ``minute`` minutes into Monday."""
    moment = MONDAY + timedelta(minutes=minute)
    return PendingEvent(
        payload=ObjectiveSetCreated(
            objective_set_id=set_id,
            title=title,
            subject="Mathematics",
            owner_scope="teacher",
            owner_id="teacher-ada",
            created_by="teacher-ada",
            created_at=moment,
        ),
        occurred_at=moment,
        actor="teacher-ada",
        correlation_id=set_id,
    )
