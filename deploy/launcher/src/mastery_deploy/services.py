"""Find the services installed beside the launcher.

Each service registers itself under the ``mastery.services`` entry-point
group, so the launcher starts and migrates whatever is installed without
importing any service by name.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from mastery_events.runtime import Service
from mastery_events.settings import SERVICES

GROUP = "mastery.services"


class ServiceDiscoveryError(Exception):
    """Raised when an entry point of the services group names something
    that is not a service."""


def installed_services() -> list[Service]:
    """Return every registered service, in the order they should start."""
    found = []
    for entry in entry_points(group=GROUP):
        service = entry.load()
        if not isinstance(service, Service):
            message = f"entry point {entry.name!r} of {GROUP} is not a Service"
            raise ServiceDiscoveryError(message)
        found.append(service)

    return sorted(found, key=start_order)


def start_order(service: Service) -> tuple[int, str]:
    """Sort the known services first, in their usual order, then the rest."""
    if service.name in SERVICES:
        return SERVICES.index(service.name), service.name
    return len(SERVICES), service.name
