"""Anchor each tenant's newest seal outside the database.

Seals make a log's events hash into one chain per tenant, so an edit,
deletion or move shows. Someone with the database owner's rights could
still rewrite an event and then recompute every chain hash and seal after
it: the log would agree with itself. An anchor is the newest seal of a
tenant (its number and hash), published on NATS to a stream that refuses
deletes and purges. Verification compares the stored seal of that number
with its anchor, so a rewrite of anything sealed before the anchor shows
even when the rewritten log is consistent, unless NATS was rewritten too,
which takes other rights on other machines.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from mastery_events.jetstream import anchor_stream_name
from mastery_events.subjects import Subjects

if TYPE_CHECKING:
    # Seals import anchors to publish them; anchors only name a seal's type.
    from mastery_events.seals import Seal


class Anchor(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant's newest seal in one schema, as published."""

    schema: str
    tenant_id: str
    seal_number: int
    seal_hash: str
    event_id: UUID
    stream_id: str
    stream_version: int
    anchored_at: datetime

    @classmethod
    def of(cls, schema: str, tenant_id: str, seal: Seal, *, at: datetime) -> Anchor:
        """Return the anchor of ``seal``, published at ``at``."""
        return cls(
            schema=schema,
            tenant_id=tenant_id,
            seal_number=seal.seal_number,
            seal_hash=seal.seal_hash.hex(),
            event_id=seal.event_id,
            stream_id=seal.stream_id,
            stream_version=seal.stream_version,
            anchored_at=at,
        )


class SealAnchors:
    """The anchors' stream, seen from one JetStream connection."""

    def __init__(self, js: JetStreamContext, subjects: Subjects) -> None:
        self.js = js
        self.subjects = subjects

    async def publish(self, anchor: Anchor) -> None:
        """Publish ``anchor``; publishing one seal's anchor again within the
        stream's duplicate window keeps one copy."""
        message_id = f"{anchor.schema}.{anchor.tenant_id}.{anchor.seal_number}"
        await self.js.publish(
            self.subjects.anchor(anchor.schema, anchor.tenant_id),
            msgspec.json.encode(anchor),
            stream=anchor_stream_name(self.subjects),
            headers={"Nats-Msg-Id": message_id},
        )

    async def latest(self, schema: str, tenant_id: str) -> Anchor | None:
        """Return the newest anchor of ``tenant_id`` in ``schema``, if any."""
        try:
            message = await self.js.get_last_msg(
                anchor_stream_name(self.subjects),
                self.subjects.anchor(schema, tenant_id),
            )
        except NotFoundError:
            return None

        return msgspec.json.decode(message.data or b"", type=Anchor)
