"""The objectives API: sets, objectives, policies, scales and imports.

Handlers take the tenant and the actor from the authenticated caller, turn
the request into a domain command, and let the repository store it. Every
refusal of the domain becomes an RFC 9457 problem here, and nowhere else.
"""

from __future__ import annotations

from litestar import Router

from mastery_events.runtime import ServiceRuntime
from mastery_objectives import errors
from mastery_objectives.routes import (
    imports,
    objective_sets,
    objectives,
    policies,
    scales,
)
from mastery_objectives.routes.dependencies import repository_provider
from mastery_objectives.routes.problems import problem_response


def objectives_router(runtime: ServiceRuntime) -> Router:
    """Return every route of the objectives API, bound to ``runtime``."""
    return Router(
        path="/",
        route_handlers=[
            objective_sets.create_set,
            objective_sets.list_sets,
            objective_sets.get_set,
            objective_sets.get_set_version,
            objective_sets.edit_set,
            objective_sets.publish_set,
            objective_sets.archive_set,
            objectives.add_objective,
            objectives.change_objective,
            objectives.move_objective,
            objectives.remove_objective,
            objectives.search_objectives,
            policies.set_set_policy,
            policies.set_objective_policy,
            policies.clear_objective_policy,
            scales.starter_scales,
            scales.create_scale,
            scales.create_starter_scale,
            scales.list_scales,
            scales.get_scale,
            scales.get_scale_version,
            scales.revise,
            scales.publish,
            scales.archive,
            imports.import_upload,
        ],
        dependencies={"repository": repository_provider(runtime)},
        exception_handlers={errors.ObjectivesError: problem_response},
        tags=["objectives"],
    )
