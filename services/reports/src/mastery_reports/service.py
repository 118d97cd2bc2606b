"""The reports service as the shared runtime and the launcher see it."""

from __future__ import annotations

from importlib import resources

from mastery_events.migrations import load_migrations
from mastery_events.runtime import Service

SERVICE = Service(
    name="reports",
    migrations=tuple(
        load_migrations("reports", resources.files("mastery_reports.migrations"))
    ),
    # Reports show students' names to the people allowed to see them.
    personal_data=True,
)
