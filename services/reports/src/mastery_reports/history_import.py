"""Fill the share links of an imported history, inside the import.

The share links table is written where a link is created, revoked or
viewed, in the transaction that appends the event, not by a follower of
the log: a copy made by ``mastery audit import`` would know none of its
links, and their tokens would open nothing. The import folds each link's
events into its row, so a link shared before the move keeps working after
it. Only the token's hash is in the log, as in the table.
"""

from __future__ import annotations

from uuid import UUID

from mastery_events.contract import CONTRACT
from mastery_events.contract.registry import event_name
from mastery_events.contract.reports import (
    ReportViewed,
    ShareLinkCreated,
    ShareLinkRevoked,
)
from mastery_events.database import Connection
from mastery_events.envelope import Envelope
from mastery_events.migrations import quote_schema
from mastery_events.store import ENVELOPE_COLUMNS, envelope_from_row
from mastery_reports.service import SERVICE
from mastery_reports.share_links import ShareLink, evolve

SHARE_LINK_EVENTS = (ShareLinkCreated, ShareLinkRevoked, ReportViewed)


async def refill_share_links(connection: Connection, tenant_id: str) -> None:
    """Replace the tenant's share link rows with the fold of each link's
    events in the log's order, inside the import's transaction, whose
    tenant is ``tenant_id``."""
    quoted = quote_schema(SERVICE.schema)
    await connection.execute(
        f"DELETE FROM {quoted}.share_links WHERE tenant_id = $1", tenant_id
    )
    rows = await connection.fetch(
        f"SELECT {ENVELOPE_COLUMNS} FROM {quoted}.events AS events "
        "WHERE tenant_id = $1 AND event_type = ANY($2::text[]) "
        "ORDER BY events.transaction_id, events.position",
        tenant_id,
        [event_name(kind) for kind in SHARE_LINK_EVENTS],
    )
    # Each link as its events leave it, its token's hash and its last event.
    links: dict[UUID, tuple[ShareLink, str, Envelope]] = {}
    for row in rows:
        envelope = envelope_from_row(row)
        event = CONTRACT.decode(envelope)
        assert isinstance(event, SHARE_LINK_EVENTS)
        found = links.get(event.share_link_id)
        link = evolve(found[0] if found else None, event)
        digest = event.token_hash if isinstance(event, ShareLinkCreated) else ""
        links[event.share_link_id] = (link, found[1] if found else digest, envelope)

    await connection.executemany(
        f"INSERT INTO {quoted}.share_links (tenant_id, share_link_id, "
        "token_hash, student_id, section_ids, term_id, created_by, created_at, "
        "expires_at, revoked_at, views, last_viewed_at, stream_version) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        [
            (
                tenant_id,
                link.share_link_id,
                digest,
                link.student_id,
                list(link.section_ids),
                link.term_id,
                link.created_by,
                link.created_at,
                link.expires_at,
                link.revoked_at,
                link.views,
                link.last_viewed_at,
                last.stream_version,
            )
            for link, digest, last in links.values()
        ],
    )
