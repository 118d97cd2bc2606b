"""The objectives service's HTTP application."""

from __future__ import annotations

from litestar import Litestar

from mastery_events.runtime import ServiceRuntime
from mastery_events.service_app import service_app
from mastery_events.settings import Settings
from mastery_objectives.errors import ObjectivesError
from mastery_objectives.routes import objectives_router
from mastery_objectives.service import SERVICE


def create_app(settings: Settings) -> Litestar:
    """Build the objectives service's application; its lifespan starts the
    service's engines and stops them when the server stops."""
    runtime = ServiceRuntime(SERVICE, settings)

    return service_app(
        runtime,
        distribution="mastery-objectives",
        route_handlers=[objectives_router(runtime)],
        refusals=[ObjectivesError],
    )
