"""The grading service as the shared runtime and the launcher see it."""

from __future__ import annotations

from importlib import resources

from mastery_events.migrations import load_migrations
from mastery_events.runtime import Projection, Service
from mastery_grading.catalogue_store import catalogue_follower
from mastery_grading.projector import NAME as TIMELINES
from mastery_grading.projector import timeline_projector
from mastery_grading.retention_job import RETENTION_SCHEDULE

NAME = "grading"

SERVICE = Service(
    name=NAME,
    migrations=tuple(
        load_migrations(NAME, resources.files("mastery_grading.migrations"))
    ),
    # Its schema is its name, where the catalogue's tables live.
    followers=(catalogue_follower(NAME),),
    # Roster events carry people's sealed names and emails.
    personal_data=True,
    # Timelines commit with their checkpoint, so they follow the store
    # itself rather than the bus: see docs/grading.md.
    projections=(Projection(name=TIMELINES, start=timeline_projector),),
    # Erases the students whose district's retention period has passed.
    schedules=(RETENTION_SCHEDULE,),
)
