"""The grading service's HTTP routes, one module per concept.

The edge of the service: bodies are decoded strictly here, the domain is
called, and its errors become RFC 9457 problem details here and nowhere
else.
"""

from __future__ import annotations

from litestar import Router

from mastery_events.runtime import ServiceRuntime
from mastery_grading.routes.assessments import assessments_router
from mastery_grading.routes.gradebook import gradebook_router
from mastery_grading.routes.previews import previews_router
from mastery_grading.routes.privacy import privacy_router
from mastery_grading.routes.roster import roster_router
from mastery_grading.routes.timelines import timelines_router


def grading_routers(runtime: ServiceRuntime) -> list[Router]:
    """Return every router of the grading API, bound to ``runtime``."""
    return [
        previews_router(runtime),
        roster_router(runtime),
        assessments_router(runtime),
        gradebook_router(runtime),
        timelines_router(runtime),
        privacy_router(runtime),
    ]
