"""The reports service's HTTP application."""

from __future__ import annotations

from litestar import Litestar

from mastery_events.runtime import ServiceRuntime
from mastery_events.service_app import service_app
from mastery_events.settings import Settings
from mastery_reports.errors import ReportsError
from mastery_reports.rendering import template_config
from mastery_reports.routes import reports_router
from mastery_reports.service import SERVICE


def create_app(settings: Settings) -> Litestar:
    """Build the reports service's application; its lifespan starts the
    service's engines and its consumers, and stops them when the server
    stops."""
    runtime = ServiceRuntime(SERVICE, settings)

    return service_app(
        runtime,
        distribution="mastery-reports",
        route_handlers=[reports_router(runtime)],
        refusals=[ReportsError],
        template_config=template_config(),
    )
