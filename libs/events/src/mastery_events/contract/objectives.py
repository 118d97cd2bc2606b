"""Events of the objectives service: objective sets and proficiency scales."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from mastery_events.envelope import Event

OwnerScope = Literal["district", "school", "teacher"]


class ObjectiveSetCreated(Event, frozen=True, kw_only=True):
    """A new objective set was drafted."""

    objective_set_id: UUID
    title: str
    subject: str
    owner_scope: OwnerScope
    owner_id: str
    grade_bands: tuple[str, ...] = ()
    created_by: str
    created_at: datetime


class ObjectiveSetPublished(Event, frozen=True, kw_only=True):
    """An objective set's draft became a published version teachers can grade."""

    objective_set_id: UUID
    set_version: int
    published_by: str
    published_at: datetime


ObjectiveSetEvent = ObjectiveSetCreated | ObjectiveSetPublished
