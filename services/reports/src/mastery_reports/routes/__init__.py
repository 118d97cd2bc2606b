"""The reports API: share links, the reports they open, and staff views.

Handlers take the tenant from the authenticated caller (or, on the public
shared routes, from the link's path), read snapshots and links through
their stores, and turn every refusal of the service into an RFC 9457
problem here and nowhere else.
"""

from __future__ import annotations

from litestar import Router

from mastery_events.runtime import ServiceRuntime
from mastery_reports import errors
from mastery_reports.routes import share_links, shared, views
from mastery_reports.routes.dependencies import providers
from mastery_reports.routes.problems import problem_response


def reports_router(runtime: ServiceRuntime) -> Router:
    """Return every route of the reports API, bound to ``runtime``."""
    return Router(
        path="/",
        route_handlers=[
            share_links.create_share_link,
            share_links.list_share_links,
            share_links.revoke_share_link,
            shared.shared_page,
            shared.shared_pdf,
            shared.shared_json,
            shared.stylesheet,
            views.student_report,
            views.matrix,
            views.matrix_csv,
            views.rollups,
            views.rollups_csv,
        ],
        dependencies=providers(runtime),
        exception_handlers={errors.ReportsError: problem_response},
        tags=["reports"],
    )
