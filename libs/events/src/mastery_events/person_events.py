"""Find every event of one service's log that is about one person, for a
records request.

An event is about a person when its payload holds their id as a value
(anywhere, nested or not), or when it belongs to a stream whose first
event does: a record's later events (an assessment's amendment, a share
link's views) name only the record. Streams that many people share (a
tenant's roster) are named by the caller and followed by value only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

import msgspec

from mastery_events.database import Connection
from mastery_events.envelope import Envelope
from mastery_events.migrations import quote_schema
from mastery_events.store import ENVELOPE_COLUMNS, envelope_from_row


class PersonEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One event about the person, with its payload decoded."""

    envelope: Envelope
    payload: Any


async def events_about(
    connection: Connection,
    schema: str,
    tenant_id: str,
    person_id: str,
    *,
    shared_streams: Collection[str] = (),
) -> list[PersonEvent]:
    """Return the tenant's events in ``schema`` about ``person_id``, in the
    log's order; run it inside the caller's ``tenant_transaction``."""
    table = f"{quote_schema(schema)}.events"
    # The text search narrows the scan to payloads holding the id at all;
    # the walk below keeps those holding it as a whole value.
    rows = await connection.fetch(
        f"WITH named AS (SELECT event_id, stream_id, stream_version FROM {table} "
        "WHERE tenant_id = $1 AND strpos(payload::text, $2) > 0), "
        "owned AS (SELECT stream_id FROM named "
        "WHERE stream_version = 1 AND stream_id <> ALL($3::text[])) "
        f"SELECT {ENVELOPE_COLUMNS} FROM {table} AS events "
        "WHERE tenant_id = $1 AND (event_id IN (SELECT event_id FROM named) "
        "OR stream_id IN (SELECT stream_id FROM owned)) "
        "ORDER BY events.transaction_id, events.position",
        tenant_id,
        person_id,
        list(shared_streams),
    )
    found = [
        PersonEvent(envelope=envelope, payload=msgspec.json.decode(envelope.payload))
        for envelope in map(envelope_from_row, rows)
    ]
    naming = {
        event.envelope.event_id
        for event in found
        if person_id in string_values(event.payload)
    }
    owned = {
        event.envelope.stream_id
        for event in found
        if event.envelope.stream_version == 1
        and event.envelope.stream_id not in shared_streams
        and event.envelope.event_id in naming
    }

    return [
        event
        for event in found
        if event.envelope.event_id in naming or event.envelope.stream_id in owned
    ]


def string_values(payload: Any) -> Iterator[str]:
    """Yield every string value inside ``payload``, nested ones included."""
    if isinstance(payload, str):
        yield payload
    elif isinstance(payload, dict):
        for inner in payload.values():
            yield from string_values(inner)
    elif isinstance(payload, list):
        for inner in payload:
            yield from string_values(inner)
