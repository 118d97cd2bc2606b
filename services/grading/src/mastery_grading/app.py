"""The grading service's HTTP application."""

from __future__ import annotations

from litestar import Litestar

from mastery_events.runtime import ServiceRuntime
from mastery_events.service_app import service_app
from mastery_events.settings import Settings
from mastery_grading.errors import GradingError
from mastery_grading.routes import grading_routers
from mastery_grading.service import SERVICE


def create_app(settings: Settings) -> Litestar:
    """Build the grading service's application; its lifespan starts the
    service's engines and stops them when the server stops."""
    runtime = ServiceRuntime(SERVICE, settings)

    return service_app(
        runtime,
        distribution="mastery-grading",
        route_handlers=grading_routers(runtime),
        refusals=[GradingError],
    )
