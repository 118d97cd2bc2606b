"""The public routes a share link opens: the report as a page, as PDF and
as JSON, and the page's stylesheet.

They carry no bearer token, so they are rate limited per client address.
A token that is unknown, expired or revoked, or a tenant that does not
exist, all get the same not-found page: the answer never tells which. The
token is never logged; the route's log lines name the link's id only once
it is known to be open.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from mastery_events.api_security import PUBLIC, UNLOGGED
from mastery_events.errors import EventsError
from mastery_events.subjects import check_tenant_id
from mastery_reports.errors import SharedReportNotFoundError, StudentNotFoundError
from mastery_reports.messages import choose_language
from mastery_reports.rendering import (
    NOT_FOUND_TEMPLATE,
    REPORT_TEMPLATE,
    STYLESHEET,
    not_found_context,
    render_pdf,
    report_context,
    shared_pdf_href,
)
from mastery_reports.routes.dependencies import LinkStore, People, SnapshotReader
from mastery_reports.share_links import Served, token_hash
from mastery_reports.snapshots import StudentSnapshot, narrowed

Format = Literal["html", "pdf", "json"]
# A shared report is personal: no cache, shared or private, keeps it.
NO_STORE = {"cache-control": "no-store"}

log = structlog.get_logger(__name__)


async def shared_snapshot(
    request: Request[Any, Any, Any],
    snapshots: SnapshotReader,
    links: LinkStore,
    *,
    tenant_id: str,
    token: str,
    format: Format,
) -> StudentSnapshot:
    """Record a view of the open link ``token`` names and return the part
    of the student's report it covers; raise ``SharedReportNotFoundError``
    for anything else.

    The snapshot is read before the view is recorded, so the view names
    the log positions of the very report served, and an auditor can have
    it rendered again from the log alone.
    """
    try:
        check_tenant_id(tenant_id)
    except EventsError:
        raise SharedReportNotFoundError from None
    hashed = token_hash(token)
    at = datetime.now(UTC)
    found = await links.opened(tenant_id, hashed, at=at)
    stored = await snapshots.of_student(tenant_id, found.student_id)
    if stored is None:
        raise SharedReportNotFoundError

    served = Served(
        format=format,
        language=None if format == "json" else language_of(request),
        positions=stored.positions,
    )
    link = await links.view(tenant_id, hashed, at=at, served=served)
    log.info(
        "report.viewed",
        tenant=tenant_id,
        share_link_id=str(link.share_link_id),
        format=format,
    )

    return narrowed(stored.snapshot, link.section_ids, term_id=link.term_id)


def language_of(request: Request[Any, Any, Any]) -> str:
    """Return the language the reader asked for."""
    return choose_language(
        request.query_params.get("lang"), request.headers.get("accept-language")
    )


def not_found_page(request: Request[Any, Any, Any]) -> Template:
    """Answer every bad link with one and the same page."""
    return Template(
        template_name=NOT_FOUND_TEMPLATE,
        context=not_found_context(language_of(request)),
        status_code=404,
        headers=NO_STORE,
    )


@get(
    "/shared/{tenant_id:str}/{token:str}",
    opt={PUBLIC: True, UNLOGGED: True},
    tags=["shared"],
    summary="A shared report, as a page",
)
async def shared_page(
    request: Request[Any, Any, Any],
    snapshots: SnapshotReader,
    links: LinkStore,
    keyring: People,
    tenant_id: FromPath[str],
    token: FromPath[str],
    download: FromQuery[Literal["pdf"] | None] = None,
) -> Template | Response[bytes]:
    """Show the report a share link opens, readable on a phone and in
    print, or its PDF when the page's own link asks for it; every bad link
    gets the same not-found page."""
    if download == "pdf":
        return await pdf_answer(request, snapshots, links, keyring, tenant_id, token)
    try:
        snapshot = await shared_snapshot(
            request, snapshots, links, tenant_id=tenant_id, token=token, format="html"
        )
    except (SharedReportNotFoundError, StudentNotFoundError):
        return not_found_page(request)
    language = language_of(request)
    names = await snapshots.names(tenant_id, [snapshot.student_id], keyring=keyring)

    return Template(
        template_name=REPORT_TEMPLATE,
        context=report_context(
            snapshot,
            language=language,
            pdf_href=shared_pdf_href(language),
            student_name=names[snapshot.student_id],
        ),
        headers=NO_STORE,
    )


@get(
    "/shared/{tenant_id:str}/{token:str}/pdf",
    opt={PUBLIC: True, UNLOGGED: True},
    tags=["shared"],
    summary="A shared report, as PDF",
    response_description="The report typeset as PDF.",
    media_type="application/pdf",
)
async def shared_pdf(
    request: Request[Any, Any, Any],
    snapshots: SnapshotReader,
    links: LinkStore,
    keyring: People,
    tenant_id: FromPath[str],
    token: FromPath[str],
) -> Response[bytes] | Template:
    """Return the report a share link opens as a PDF to keep or print."""
    return await pdf_answer(request, snapshots, links, keyring, tenant_id, token)


async def pdf_answer(
    request: Request[Any, Any, Any],
    snapshots: SnapshotReader,
    links: LinkStore,
    keyring: People,
    tenant_id: str,
    token: str,
) -> Response[bytes] | Template:
    """Answer with the PDF of the report a share link opens, or with the
    not-found page."""
    try:
        snapshot = await shared_snapshot(
            request, snapshots, links, tenant_id=tenant_id, token=token, format="pdf"
        )
    except (SharedReportNotFoundError, StudentNotFoundError):
        return not_found_page(request)
    names = await snapshots.names(tenant_id, [snapshot.student_id], keyring=keyring)
    pdf = await render_pdf(
        snapshot,
        language=language_of(request),
        student_name=names[snapshot.student_id],
    )

    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            **NO_STORE,
            "content-disposition": 'inline; filename="report.pdf"',
        },
    )


@get(
    "/shared/{tenant_id:str}/{token:str}/json",
    opt={PUBLIC: True, UNLOGGED: True},
    tags=["shared"],
    summary="A shared report, as JSON",
)
async def shared_json(
    request: Request[Any, Any, Any],
    snapshots: SnapshotReader,
    links: LinkStore,
    tenant_id: FromPath[str],
    token: FromPath[str],
) -> Response[StudentSnapshot] | Template:
    """Return the report a share link opens as JSON."""
    try:
        snapshot = await shared_snapshot(
            request, snapshots, links, tenant_id=tenant_id, token=token, format="json"
        )
    except (SharedReportNotFoundError, StudentNotFoundError):
        return not_found_page(request)

    return Response(snapshot, headers=NO_STORE)


@get(
    "/report.css",
    opt={PUBLIC: True},
    include_in_schema=False,
    sync_to_thread=False,
    media_type="text/css",
)
def stylesheet() -> Response[str]:
    """Serve the reports' stylesheet, from this origin as the page's
    content security policy requires."""
    return Response(
        STYLESHEET,
        media_type="text/css",
        headers={"cache-control": "public, max-age=3600"},
    )
