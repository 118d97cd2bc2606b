"""The envelope every stored event travels in, and the event it wraps."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

import msgspec

from mastery_events.ids import uuid7


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    """Base of every event payload: tagged by class name, versioned by
    ``version``. Stored events may carry fields a reader does not know yet,
    so payloads never forbid unknown fields."""

    version: ClassVar[int] = 1


class PendingEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event decided but not yet stored: the store gives it a stream
    version, a global position and its recorded time."""

    payload: Event
    occurred_at: datetime
    actor: str
    correlation_id: UUID
    causation_id: UUID | None = None
    event_id: UUID = msgspec.field(default_factory=uuid7)


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """A stored event with everything the log knows about it.

    ``payload`` stays as the JSON bytes that were stored; decode it with the
    contract's registry, which upcasts older versions on the way.
    ``position`` is unique and grows within one transaction, and the global
    order is ``(transaction_id, position)``: the order in which readers that
    follow the whole log receive events. ``traceparent`` is the W3C trace
    context of the append, when it was traced.
    """

    event_id: UUID
    event_type: str
    event_version: int
    tenant_id: str
    stream_id: str
    stream_version: int
    position: int
    transaction_id: int
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    correlation_id: UUID
    causation_id: UUID | None = None
    payload: msgspec.Raw
    traceparent: str | None = None
