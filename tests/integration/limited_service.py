"""A service with one public route, served by ``serve`` as a deployment
serves it, so a test can reach it over a real socket.

Run as ``python -m tests.integration.limited_service SCHEMA``; settings come
from the ``MASTERY_*`` variables, and it answers on the objectives port.
"""

from __future__ import annotations

import os
import sys

from litestar import get

from mastery_events.api_security import PUBLIC
from mastery_events.runtime import Service, ServiceRuntime
from mastery_events.service_app import serve, service_app
from mastery_events.settings import Settings


@get("/notices", opt={PUBLIC: True}, sync_to_thread=False)
def notices() -> dict[str, str]:
    """Answer anybody, as a share-link view does."""
    return {"notice": "school is closed for snow"}


def main(schema: str) -> None:
    """Serve the route until SIGINT or SIGTERM."""
    settings = Settings.from_environment(os.environ)
    app = service_app(
        ServiceRuntime(Service(name=schema), settings),
        distribution="mastery-events",
        route_handlers=[notices],
    )
    serve(app, settings, service="objectives")


if __name__ == "__main__":
    main(sys.argv[1])
