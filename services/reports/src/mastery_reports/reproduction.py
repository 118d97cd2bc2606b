"""Render a shared report again exactly as one reader was given it, from
the event log alone.

Each view of a share link is a ``ReportViewed`` that names the source log
positions of the snapshot it served, its format and its language. To show
an auditor that report, the source services' events up to those positions
are replayed, through the very handler the running consumers and a rebuild
use, into a scratch schema migrated like reports' own; the student's
snapshot built there is narrowed to the link's sections and rendered with
the same templates. The scratch schema is dropped afterwards, whatever
happened.

It needs the right to create a schema, and reads every source service's
log, so it runs with the migration role, as the other audit commands do.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec
import structlog

from mastery_events.contract import CONTRACT
from mastery_events.contract.reports import (
    ReportReproduced,
    ReportViewed,
    ShareLinkEvent,
)
from mastery_events.database import Connection
from mastery_events.envelope import PendingEvent
from mastery_events.ids import uuid7
from mastery_events.keyring import Keyring
from mastery_events.migrations import migrate, quote_schema
from mastery_events.runtime import Service
from mastery_events.store import ENVELOPE_COLUMNS, EventStore, envelope_from_row
from mastery_events.tenancy import tenant_transaction
from mastery_reports.errors import ViewNotFoundError, ViewNotReproducibleError
from mastery_reports.facts_store import FactsWriter
from mastery_reports.rendering import (
    REPORT_TEMPLATE,
    render,
    report_context,
    shared_pdf_href,
)
from mastery_reports.share_link_store import stream_of
from mastery_reports.share_links import ShareLink, fold
from mastery_reports.snapshot_store import Snapshots
from mastery_reports.snapshots import StudentSnapshot, narrowed

log = structlog.get_logger(__name__)


class Reproduced(msgspec.Struct, frozen=True, kw_only=True):
    """A view rendered again: what was recorded of it, and the body.

    ``body`` is the page for a page view, the HTML the PDF was typeset
    from for a PDF view (a PDF's own bytes carry the moment it was made),
    and the JSON document for a JSON view.
    """

    view_id: UUID
    share_link_id: UUID
    viewed_at: datetime
    format: str
    language: str | None
    positions: dict[str, int]
    body: str


class RecordedView(msgspec.Struct, frozen=True, kw_only=True):
    """A view as reports' log holds it, with the link it opened."""

    view: ReportViewed
    link: ShareLink


async def recorded_view(
    connection: Connection,
    *,
    schema: str,
    tenant_id: str,
    view_id: UUID,
) -> RecordedView:
    """Return the view whose event id is ``view_id``, and its link as its
    events up to that view left it."""
    table = f"{quote_schema(schema)}.events"
    async with tenant_transaction(connection, tenant_id):
        row = await connection.fetchrow(
            f"SELECT {ENVELOPE_COLUMNS} FROM {table} "
            "WHERE tenant_id = $1 AND event_id = $2 "
            "AND event_type = 'ReportViewed'",
            tenant_id,
            view_id,
        )
        if row is None:
            raise ViewNotFoundError(view_id)
        found = envelope_from_row(row)
        rows = await connection.fetch(
            f"SELECT {ENVELOPE_COLUMNS} FROM {table} WHERE tenant_id = $1 "
            "AND stream_id = $2 AND stream_version <= $3 ORDER BY stream_version",
            tenant_id,
            found.stream_id,
            found.stream_version,
        )

    view = CONTRACT.decode(found)
    assert isinstance(view, ReportViewed)
    if found.stream_id != stream_of(view.share_link_id):
        raise ViewNotFoundError(view_id)
    events: list[ShareLinkEvent] = []
    for row in rows:
        event = CONTRACT.decode(envelope_from_row(row))
        assert isinstance(event, ShareLinkEvent)
        events.append(event)
    link = fold(events)
    assert link is not None

    return RecordedView(view=view, link=link)


async def replay_into(
    connection: Connection,
    scratch: str,
    *,
    tenant_id: str,
    positions: Mapping[str, int],
    sources: Mapping[str, str],
) -> int:
    """Apply each source's events of ``tenant_id`` up to its position in
    ``positions`` to the facts and snapshots of ``scratch``, through the
    consumers' own handler; return how many events were replayed.
    ``sources`` names the schema of every source in ``positions``."""
    replayed = 0
    async with tenant_transaction(connection, tenant_id):
        for source, position in sorted(positions.items()):
            writer = FactsWriter(scratch, source=source)
            log_table = f"{quote_schema(sources[source])}.events"
            cursor = connection.cursor(
                f"SELECT {ENVELOPE_COLUMNS} FROM {log_table} AS events "
                "WHERE tenant_id = $1 AND position <= $2 "
                "ORDER BY events.transaction_id, events.position",
                tenant_id,
                position,
                prefetch=500,
            )
            async for row in cursor:
                envelope = envelope_from_row(row)
                await writer(connection, envelope, CONTRACT.decode(envelope))
                replayed += 1

    return replayed


async def reproduce_view(
    pool: asyncpg.Pool,
    *,
    service: Service,
    sources: Mapping[str, str],
    tenant_id: str,
    view_id: UUID,
    keyring: Keyring,
    auditor: str,
    at: datetime,
) -> Reproduced:
    """Render the view ``view_id`` of ``tenant_id`` again from the log for
    ``auditor``, and record in reports' log that they had it at ``at``.

    ``service`` is reports as installed (its schema holds the view);
    ``sources`` maps each source service's name to its schema.
    """
    async with pool.acquire() as connection:
        recorded = await recorded_view(
            connection, schema=service.schema, tenant_id=tenant_id, view_id=view_id
        )
    view, link = recorded.view, recorded.link
    if not view.positions:
        reason = "it was recorded before views kept their log positions"
        raise ViewNotReproducibleError(view_id, reason)
    missing = sorted(set(view.positions) - set(sources))
    if missing:
        reason = f"no installed service is named {', '.join(missing)}"
        raise ViewNotReproducibleError(view_id, reason)

    scratch = f"{service.schema}_replay_{secrets.token_hex(6)}"
    try:
        async with pool.acquire() as connection:
            await migrate(connection, scratch, service.all_migrations())
            replayed = await replay_into(
                connection,
                scratch,
                tenant_id=tenant_id,
                positions=view.positions,
                sources=sources,
            )
        snapshots = Snapshots(pool, scratch)
        stored = await snapshots.of_student(tenant_id, link.student_id)
        if stored is None or stored.positions != view.positions:
            reason = "the log no longer holds every event the report reflected"
            raise ViewNotReproducibleError(view_id, reason)
        snapshot = narrowed(stored.snapshot, link.section_ids, term_id=link.term_id)
        names = await snapshots.names(tenant_id, [link.student_id], keyring=keyring)
    finally:
        async with pool.acquire() as connection:
            await connection.execute(
                f"DROP SCHEMA IF EXISTS {quote_schema(scratch)} CASCADE"
            )
    reproduction = ReportReproduced(
        reproduction_id=uuid7(unix_ms=int(at.timestamp() * 1000)),
        auditor=auditor,
        view_id=view_id,
        share_link_id=view.share_link_id,
        reproduced_at=at,
    )
    store = EventStore(pool, service.schema, registry=CONTRACT)
    await store.append(
        tenant_id,
        reproduction_stream(reproduction.reproduction_id),
        0,
        [
            PendingEvent(
                payload=reproduction,
                occurred_at=at,
                actor=auditor,
                correlation_id=reproduction.reproduction_id,
            )
        ],
    )
    log.info(
        "report.view_reproduced",
        tenant=tenant_id,
        view_id=str(view_id),
        share_link_id=str(view.share_link_id),
        format=view.format,
        replayed=replayed,
    )

    return Reproduced(
        view_id=view_id,
        share_link_id=view.share_link_id,
        viewed_at=view.viewed_at,
        format=view.format,
        language=view.language,
        positions=view.positions,
        body=body_of(snapshot, view, student_name=names[link.student_id]),
    )


def reproduction_stream(reproduction_id: UUID) -> str:
    """Return the stream of one reproduction's record."""
    return f"report-reproduction-{reproduction_id}"


def body_of(
    snapshot: StudentSnapshot, view: ReportViewed, *, student_name: str | None
) -> str:
    """Render ``snapshot`` as ``view`` was served: the page, the HTML its
    PDF was typeset from, or the JSON document."""
    if view.format == "json":
        return msgspec.json.encode(snapshot).decode()
    language = view.language or "en"
    if view.format == "pdf":
        context = report_context(
            snapshot, language=language, for_pdf=True, student_name=student_name
        )
    else:
        context = report_context(
            snapshot,
            language=language,
            pdf_href=shared_pdf_href(language),
            student_name=student_name,
        )

    return render(REPORT_TEMPLATE, context)
