"""The grading service's HTTP application."""

from __future__ import annotations

from litestar import Litestar

from mastery_events.runtime import ServiceRuntime
from mastery_events.service_app import service_app
from mastery_events.settings import Settings
from mastery_grading.routes import ROUTES
from mastery_grading.service import SERVICE


def create_app(settings: Settings) -> Litestar:
    """Build the grading service's application; its lifespan starts the
    service's engines and stops them when the server stops."""
    return service_app(
        ServiceRuntime(SERVICE, settings),
        distribution="mastery-grading",
        route_handlers=ROUTES,
    )
