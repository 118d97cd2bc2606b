"""The disclosure log of auditors' reads: each read of a student's mastery
by an auditor becomes an ``AuditorAccessed`` event on a stream of its own,
so recording one never waits on another."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import structlog

from mastery_events.contract.grading import AuditedRead, AuditorAccessed
from mastery_events.envelope import PendingEvent
from mastery_events.ids import uuid7
from mastery_events.store import EventStore

log = structlog.get_logger(__name__)


def access_stream(access_id: UUID) -> str:
    """Return the id of the stream that holds one auditor's read."""
    return f"auditor-access-{access_id}"


def audited_read(
    auditor: str,
    read: AuditedRead,
    *,
    student_id: str,
    objective_id: UUID | None,
    as_of: datetime | None,
    known_at: datetime | None,
    at: datetime,
) -> AuditorAccessed:
    """Return the event that records ``auditor``'s read at ``at``, however
    it was asked for: over HTTP or with the audit command."""
    return AuditorAccessed(
        access_id=uuid7(unix_ms=int(at.timestamp() * 1000)),
        auditor=auditor,
        read=read,
        student_id=student_id,
        objective_id=objective_id,
        as_of=as_of,
        known_at=known_at,
        accessed_at=at,
    )


async def record_access(
    store: EventStore,
    tenant_id: str,
    event: AuditorAccessed,
    *,
    correlation_id: UUID,
) -> None:
    """Append ``event`` to ``tenant_id``'s part of grading's log, as its
    auditor's doing."""
    pending = PendingEvent(
        payload=event,
        occurred_at=event.accessed_at,
        actor=event.auditor,
        correlation_id=correlation_id,
    )
    (envelope,) = await store.append(
        tenant_id, access_stream(event.access_id), 0, [pending]
    )
    log.info(
        "auditor.accessed",
        tenant=tenant_id,
        read=event.read,
        access_id=str(event.access_id),
        position=envelope.position,
    )
