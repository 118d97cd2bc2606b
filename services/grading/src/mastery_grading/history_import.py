"""Bring grading up to an imported history, inside the import.

An imported grading log already holds every ``MasteryChanged``,
``RecalculationStarted`` and ``RecalculationFinished`` the source's
projector announced. Were the
projector to apply the imported assessments as new, it would announce them
a second time, on mastery streams that already hold them. So the import,
in its own transaction, leaves a mark naming itself: the projector applies
the events of a marked transaction as the rebuild does, making the same
decisions and appending nothing, and announces again from the first event
after it.

The projector applies them when it gets to them, not at the import: its
decisions need the scales and policies of grading's catalogue, which the
catalogue follower fills from the objectives service's events once the
services run.
"""

from __future__ import annotations

from mastery_events.checkpoints import Checkpoints
from mastery_events.database import Connection
from mastery_events.migrations import quote_schema
from mastery_events.store import Checkpoint
from mastery_grading.assessment_store import refill_assessments
from mastery_grading.projector import import_mark, save_as_relay
from mastery_grading.roster_store import RosterProjection
from mastery_grading.service import SERVICE


async def mark_import(connection: Connection, tenant_id: str) -> None:
    """Mark the tenant's events the import stored in grading's log, and
    fill the roster and the assessments from them, inside the import's
    transaction, whose tenant is ``tenant_id``.

    The import refuses a deployment that holds any of the tenant's events,
    so every grading event of the tenant is the import's own. The mark is
    a checkpoint at the last of them: it commits with the events, so the
    projector never sees one without the other.
    """
    row = await connection.fetchrow(
        "SELECT pg_current_xact_id()::text::bigint AS transaction_id, "
        f"max(position) AS position FROM {quote_schema(SERVICE.schema)}.events "
        "WHERE tenant_id = $1",
        tenant_id,
    )
    if row is None or row["position"] is None:
        return

    last = Checkpoint(transaction_id=row["transaction_id"], position=row["position"])
    marks = Checkpoints(SERVICE.schema, import_mark(tenant_id))
    await save_as_relay(connection, marks, last)
    await RosterProjection(SERVICE.schema).rebuild(connection, tenant_id)
    await refill_assessments(connection, SERVICE.schema, tenant_id)
