"""What the objectives routes are given besides the request itself."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency, Provide

from mastery_events.runtime import ServiceRuntime
from mastery_objectives.repository import ObjectivesRepository

Repository: TypeAlias = NamedDependency[ObjectivesRepository]
"""How a handler asks for the objectives repository."""


def repository_provider(runtime: ServiceRuntime) -> Provide:
    """Provide each request with a repository over ``runtime``'s store."""

    def provide_repository() -> ObjectivesRepository:
        return ObjectivesRepository(runtime.store)

    return Provide(provide_repository, sync_to_thread=False)
