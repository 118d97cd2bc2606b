"""Replay a service's events from JetStream, from any place in its stream.

A reader that was not there when the events were published (an auditor's
tool, a new service filling its tables) asks the stream for them with an
ordered consumer: an ephemeral consumer, kept by the server in memory,
that hands over messages strictly in stream order and that the client
recreates from the next sequence if a message goes missing. It needs no
name, no acknowledgements and no clean-up, and it leaves no trace in the
stream. ``docs/audit.md`` shows it in use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from mastery_events.cloudevents import from_nats
from mastery_events.envelope import Envelope
from mastery_events.subjects import Subjects, check_tenant_id

# Seconds to wait for the next message the server said was pending.
NEXT_MESSAGE_TIMEOUT = 5.0


class Replayed(msgspec.Struct, frozen=True, kw_only=True):
    """An event read back from the stream, with its sequence there, the
    place to resume from after it."""

    sequence: int
    envelope: Envelope


async def replay(
    js: JetStreamContext,
    service: str,
    *,
    subjects: Subjects,
    from_sequence: int = 1,
    tenant_id: str | None = None,
) -> AsyncIterator[Replayed]:
    """Yield ``service``'s events from stream sequence ``from_sequence`` on,
    only ``tenant_id``'s when given, in stream order, until none is left."""
    subject = subjects.service_events(service)
    if tenant_id is not None:
        subject = f"{subjects.prefix}.{service}.{check_tenant_id(tenant_id)}.*"
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=from_sequence,
    )
    subscription = await js.subscribe(
        subject,
        stream=subjects.stream_name(service),
        ordered_consumer=True,
        config=config,
    )
    try:
        # The server pushes as soon as the consumer exists, so what it has
        # yet to send may already be on its way: only a consumer that has
        # neither sent nor still holds anything means a replay past the
        # end, which then stops at once instead of waiting.
        info = await subscription.consumer_info()
        sent = 0 if info.delivered is None else info.delivered.consumer_seq or 0
        pending = info.num_pending or sent
        while pending:
            message = await subscription.next_msg(timeout=NEXT_MESSAGE_TIMEOUT)
            metadata = message.metadata
            yield Replayed(
                sequence=metadata.sequence.stream,
                envelope=from_nats(message.headers, message.data),
            )
            pending = metadata.num_pending
    finally:
        await subscription.unsubscribe()
