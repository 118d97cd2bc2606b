"""The reports service as the shared runtime and the launcher see it."""

from __future__ import annotations

from importlib import resources

from mastery_events.migrations import load_migrations
from mastery_events.runtime import Service
from mastery_reports.facts_store import report_followers

NAME = "reports"

SERVICE = Service(
    name=NAME,
    migrations=tuple(
        load_migrations(NAME, resources.files("mastery_reports.migrations"))
    ),
    # Its schema is its name, where the facts and snapshots live.
    followers=report_followers(NAME),
    # Reports show students' names to the people allowed to see them.
    personal_data=True,
)
