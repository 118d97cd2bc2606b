"""Recompute a tenant's hash chains and seals, and name the first event that
was changed, deleted, moved or slipped in since it was stored.

Two checks run over what is stored now. The stream chains: each event's
chain hash is recomputed, by the database's own ``chained_hash``, from its
fields and the stored hash of the event before it in its stream. The seals:
each seal's hash is recomputed from the one before, and the event it names
must still be stored, in the same stream version and place in the global
order, with the same chain hash. Given the tenant's anchor (its newest
seal as published on NATS, see ``mastery_events.anchors``), the stored
seal of that number must still have the anchored hash, which a log
rewritten consistently up to there no longer has. What the checks find is
put in the global order, as sealed where the event was sealed, and the
first is the answer.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Literal
from uuid import UUID

import asyncpg
import msgspec

from mastery_events.anchors import Anchor
from mastery_events.database import Connection
from mastery_events.migrations import quote_schema
from mastery_events.seals import SEAL_COLUMNS, Seal, seal_from_row, seal_hash
from mastery_events.tenancy import set_tenant

FindingKind = Literal[
    "changed", "deleted", "reordered", "inserted", "seal broken", "anchor differs"
]
# Where a finding about something no longer stored sorts: after the rest.
BEYOND_THE_LOG = (sys.maxsize, sys.maxsize)


class ChainedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as stored now, with the chain hash its fields and its stored
    predecessor give (``recomputed``) beside the one it carries."""

    event_id: UUID
    stream_id: str
    stream_version: int
    position: int
    transaction_id: int
    chain_hash: bytes
    previous_version: int | None
    recomputed: bytes

    @property
    def place(self) -> tuple[int, int]:
        """Return where the event stands in the global order now."""
        return (self.transaction_id, self.position)


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One event whose stored record no longer matches its chain or seal.

    ``event_id`` and ``position`` are unknown only for an event deleted
    before it was sealed: its stream and version are then all that is left.
    """

    kind: FindingKind
    stream_id: str
    stream_version: int
    event_id: UUID | None = None
    position: int | None = None
    detail: str = ""

    def describe(self) -> str:
        """Return one line naming the event and what happened to it."""
        event = (
            "an unknown event" if self.event_id is None else f"event {self.event_id}"
        )
        place = "" if self.position is None else f", position {self.position}"
        return (
            f"{self.kind}: {event} (stream {self.stream_id}, "
            f"version {self.stream_version}{place}): {self.detail}"
        )


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """What verifying one tenant in one schema found, first finding first."""

    schema: str
    tenant_id: str
    events: int
    sealed: int
    findings: list[Finding]
    anchor: Anchor | None = None

    @property
    def intact(self) -> bool:
        """Return whether nothing was found."""
        return not self.findings


def chain_findings(
    events: Sequence[ChainedEvent],
) -> list[tuple[tuple[int, int], Finding]]:
    """Return what the stream chains show, each with the place of the event
    it was seen at."""
    found = []
    for event in events:
        previous = event.previous_version or 0
        if previous < event.stream_version - 1:
            finding = Finding(
                kind="deleted",
                stream_id=event.stream_id,
                stream_version=previous + 1,
                detail=(
                    f"the stream goes from version {previous} to "
                    f"{event.stream_version} at event {event.event_id}"
                ),
            )
        elif event.recomputed != event.chain_hash:
            finding = Finding(
                kind="changed",
                event_id=event.event_id,
                stream_id=event.stream_id,
                stream_version=event.stream_version,
                position=event.position,
                detail="its fields no longer give its chain hash",
            )
        else:
            continue
        found.append((event.place, finding))

    return found


def seal_findings(
    events: Sequence[ChainedEvent], seals: Sequence[Seal]
) -> list[tuple[tuple[int, int], Finding]]:
    """Return what the seals show, each with the place its event was sealed
    at; events stored now before the last sealed place, but never sealed,
    were slipped in."""
    stored = {event.event_id: event for event in events}
    found = []
    previous = b""
    for number, seal in enumerate(seals, start=1):
        finding = _seal_finding(seal, number, previous, stored.get(seal.event_id))
        if finding is not None:
            found.append((seal.place, finding))
        previous = seal.seal_hash

    if seals:
        sealed = {seal.event_id for seal in seals}
        last = seals[-1].place
        for event in events:
            if event.event_id not in sealed and event.place <= last:
                finding = Finding(
                    kind="inserted",
                    event_id=event.event_id,
                    stream_id=event.stream_id,
                    stream_version=event.stream_version,
                    position=event.position,
                    detail="it stands among sealed events but was never sealed",
                )
                found.append((event.place, finding))

    return found


def _seal_finding(
    seal: Seal, number: int, previous: bytes, event: ChainedEvent | None
) -> Finding | None:
    def finding(kind: FindingKind, detail: str) -> Finding:
        return Finding(
            kind=kind,
            event_id=seal.event_id,
            stream_id=seal.stream_id,
            stream_version=seal.stream_version,
            position=seal.position,
            detail=detail,
        )

    expected = seal_hash(
        previous,
        number,
        event_id=seal.event_id,
        stream_id=seal.stream_id,
        stream_version=seal.stream_version,
        position=seal.position,
        transaction_id=seal.transaction_id,
        chain_hash=seal.chain_hash,
    )
    if seal.seal_number != number or seal.seal_hash != expected:
        return finding("seal broken", f"seal {number} does not follow on")
    if event is None:
        return finding("deleted", "it was sealed and is no longer stored")
    if (event.stream_id, event.stream_version) != (
        seal.stream_id,
        seal.stream_version,
    ):
        detail = (
            f"it was sealed as version {seal.stream_version} of its stream "
            f"and is now version {event.stream_version} of {event.stream_id}"
        )
        return finding("reordered", detail)
    if event.place != seal.place:
        detail = (
            f"it was sealed at transaction {seal.transaction_id}, position "
            f"{seal.position}, and now stands at transaction "
            f"{event.transaction_id}, position {event.position}"
        )
        return finding("reordered", detail)
    if event.chain_hash != seal.chain_hash:
        return finding("changed", "its chain hash is not the one sealed")

    return None


def anchor_findings(
    anchor: Anchor | None, seals: Sequence[Seal]
) -> list[tuple[tuple[int, int], Finding]]:
    """Return what the anchor shows: its seal gone, or its seal's hash no
    longer the one anchored, with the place the seal stands at."""
    if anchor is None:
        return []
    number = anchor.seal_number
    stored = next((seal for seal in seals if seal.seal_number == number), None)
    when = anchor.anchored_at.isoformat()
    if stored is None:
        finding = Finding(
            kind="deleted",
            event_id=anchor.event_id,
            stream_id=anchor.stream_id,
            stream_version=anchor.stream_version,
            detail=f"seal {number} was anchored on NATS at {when} and is no "
            "longer stored",
        )
        return [(BEYOND_THE_LOG, finding)]
    if stored.seal_hash.hex() == anchor.seal_hash:
        return []
    finding = Finding(
        kind="anchor differs",
        event_id=stored.event_id,
        stream_id=stored.stream_id,
        stream_version=stored.stream_version,
        position=stored.position,
        detail=f"seal {number} no longer has the hash anchored on NATS at "
        f"{when}: the log up to it was rewritten since",
    )
    return [(stored.place, finding)]


def findings_in_order(
    events: Sequence[ChainedEvent],
    seals: Sequence[Seal],
    anchor: Anchor | None = None,
) -> list[Finding]:
    """Return every finding of the checks in the global order, each event
    named once, by the check that saw it first."""
    found = sorted(
        [
            *seal_findings(events, seals),
            *chain_findings(events),
            *anchor_findings(anchor, seals),
        ],
        key=lambda placed: placed[0],
    )
    # A deleted event shows in its seal by id and in its stream's chain
    # by stream and version: either names it.
    named: set[tuple[str, int]] = set()
    ordered = []
    for _, finding in found:
        keys = {(finding.stream_id, finding.stream_version)}
        if finding.event_id is not None:
            keys.add((str(finding.event_id), 0))
        if keys & named:
            continue
        named |= keys
        ordered.append(finding)

    return ordered


class Verifier:
    """Load what verification needs from one schema, tenant by tenant."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        quoted = quote_schema(schema)
        self._events = f"""
            SELECT event_id, stream_id, stream_version, position,
                   transaction_id::text::bigint, chain_hash,
                   lag(stream_version) OVER stream,
                   {quoted}.chained_hash(
                       coalesce(lag(chain_hash) OVER stream, '\\x'::bytea),
                       event_id, tenant_id, stream_id, stream_version,
                       event_type, event_version, occurred_at, recorded_at,
                       actor, correlation_id, causation_id, payload
                   )
            FROM {quoted}.events AS events
            WHERE tenant_id = $1
            WINDOW stream AS (PARTITION BY stream_id ORDER BY stream_version)
            ORDER BY events.transaction_id, events.position
        """
        self._seals = f"""
            SELECT {SEAL_COLUMNS} FROM {quoted}.event_seals
            WHERE tenant_id = $1 ORDER BY seal_number
        """

    async def verify(
        self, connection: Connection, tenant_id: str, *, anchor: Anchor | None = None
    ) -> Verdict:
        """Recompute ``tenant_id``'s chains and seals in one snapshot, and
        compare its seals with ``anchor`` when one is given."""
        # One snapshot for both reads, so a seal written in between cannot
        # name an event the first read did not see.
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            await set_tenant(connection, tenant_id)
            rows = await connection.fetch(self._events, tenant_id)
            seal_rows = await connection.fetch(self._seals, tenant_id)

        events = [chained_event_from_row(row) for row in rows]
        seals = [seal_from_row(row) for row in seal_rows]

        return Verdict(
            schema=self.schema,
            tenant_id=tenant_id,
            events=len(events),
            sealed=len(seals),
            findings=findings_in_order(events, seals, anchor),
            anchor=anchor,
        )


def chained_event_from_row(row: asyncpg.Record) -> ChainedEvent:
    """Build a chained event from a row of the verifier's events query."""
    event_id, stream_id, version, position, transaction_id, chain, previous, own = row
    return ChainedEvent(
        event_id=event_id,
        stream_id=stream_id,
        stream_version=version,
        position=position,
        transaction_id=transaction_id,
        chain_hash=chain,
        previous_version=previous,
        recomputed=own,
    )
