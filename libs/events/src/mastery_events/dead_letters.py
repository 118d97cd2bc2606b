"""Messages a consumer gave up on: how they are parked, listed and replayed.

A consumer parks a message on ``<prefix>.deadletter.<consumer>`` with its
original body and CloudEvents headers, plus headers saying which consumer gave
up, on which error class, after how many deliveries, and where the message
came from. An operator lists them without seeing payloads, fixes the cause,
and replays a message to the subject it came from; every consumer of that
subject records the events it applied, so a replay changes only the
consumers that had not applied the event yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import msgspec
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from mastery_events.errors import EventsError
from mastery_events.jetstream import dead_letter_stream_name
from mastery_events.subjects import Subjects

HEADER_PREFIX = "Mastery-Dead-Letter-"
CONSUMER_HEADER = f"{HEADER_PREFIX}Consumer"
ERROR_HEADER = f"{HEADER_PREFIX}Error"
DELIVERIES_HEADER = f"{HEADER_PREFIX}Deliveries"
SUBJECT_HEADER = f"{HEADER_PREFIX}Subject"
STREAM_HEADER = f"{HEADER_PREFIX}Stream"
SEQUENCE_HEADER = f"{HEADER_PREFIX}Sequence"
MESSAGE_ID = "Nats-Msg-Id"


class DeadLetterError(EventsError):
    """Raised when a dead-letter message cannot be found or lacks the headers
    that say where it came from."""

    def __init__(self, sequence: int, reason: str) -> None:
        self.sequence = sequence
        super().__init__(f"dead letter {sequence}: {reason}")


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """What an operator needs to judge one parked message, without its
    payload, which may name a student."""

    sequence: int
    consumer: str
    error: str
    deliveries: int
    subject: str
    stream: str
    stream_sequence: int
    event_id: str | None
    event_type: str | None
    tenant_id: str | None
    parked_at: datetime | None


class Replayed(msgspec.Struct, frozen=True, kw_only=True):
    """Where a replayed message went, and whether JetStream took it as new
    or dropped it as a repeat of a replay inside the duplicate window."""

    subject: str
    stream: str
    stream_sequence: int
    duplicate: bool


def dead_letter_headers(
    original: Mapping[str, str] | None,
    *,
    consumer: str,
    error: str,
    deliveries: int,
    subject: str,
    stream: str,
    stream_sequence: int,
) -> dict[str, str]:
    """Return the headers a message is parked with: its own, minus the
    ``Nats-`` ones that would steer the new publish, plus where it came from
    and why it was given up."""
    headers = {
        name: value
        for name, value in (original or {}).items()
        if not name.startswith("Nats-") and not name.startswith(HEADER_PREFIX)
    }
    headers[CONSUMER_HEADER] = consumer
    headers[ERROR_HEADER] = error
    headers[DELIVERIES_HEADER] = str(deliveries)
    headers[SUBJECT_HEADER] = subject
    headers[STREAM_HEADER] = stream
    headers[SEQUENCE_HEADER] = str(stream_sequence)
    # A crash between parking and the ack parks the message again; the
    # dead-letter stream drops that copy as a duplicate.
    headers[MESSAGE_ID] = f"{consumer}.{stream}.{stream_sequence}"

    return headers


def replay_headers(parked: Mapping[str, str], *, sequence: int) -> dict[str, str]:
    """Return the headers a parked message is republished with: its original
    ones, under a message id of its own so JetStream does not drop it as a
    duplicate of the first publish."""
    headers = {
        name: value
        for name, value in parked.items()
        if not name.startswith("Nats-") and not name.startswith(HEADER_PREFIX)
    }
    origin = parked.get("ce-id") or parked.get(SEQUENCE_HEADER, "unknown")
    headers[MESSAGE_ID] = f"{origin}.replay.{sequence}"

    return headers


def describe(
    sequence: int,
    headers: Mapping[str, str],
    *,
    parked_at: datetime | None,
) -> DeadLetter:
    """Return what a parked message's headers say about it."""
    try:
        return DeadLetter(
            sequence=sequence,
            consumer=headers[CONSUMER_HEADER],
            error=headers[ERROR_HEADER],
            deliveries=int(headers[DELIVERIES_HEADER]),
            subject=headers[SUBJECT_HEADER],
            stream=headers[STREAM_HEADER],
            stream_sequence=int(headers[SEQUENCE_HEADER]),
            event_id=headers.get("ce-id"),
            event_type=headers.get("ce-type"),
            tenant_id=headers.get("ce-tenantid"),
            parked_at=parked_at,
        )
    except (KeyError, ValueError) as error:
        reason = f"lacks or garbles the dead-letter header {error}"
        raise DeadLetterError(sequence, reason) from error


async def list_dead_letters(
    js: JetStreamContext,
    subjects: Subjects,
    *,
    consumer: str | None = None,
    limit: int = 1000,
) -> list[DeadLetter]:
    """Return up to ``limit`` parked messages, oldest first, of one consumer
    or of all, so an operator can see what failed and why."""
    stream = dead_letter_stream_name(subjects)
    wanted = subjects.dead_letter(consumer or "*")
    found: list[DeadLetter] = []
    sequence = 1
    while len(found) < limit:
        try:
            stored = await js.get_msg(stream, sequence, subject=wanted, next=True)
        except NotFoundError:
            break
        assert stored.seq is not None
        found.append(describe(stored.seq, stored.headers or {}, parked_at=stored.time))
        sequence = stored.seq + 1

    return found


async def replay_dead_letter(
    js: JetStreamContext,
    subjects: Subjects,
    *,
    sequence: int,
) -> Replayed:
    """Republish one parked message to the subject it came from, so its
    consumers try it again after the cause was fixed.

    The parked copy stays until an operator purges it, as a record. Its
    replay carries a message id of its own, so replaying it twice within the
    stream's duplicate window publishes it once.
    """
    try:
        stored = await js.get_msg(dead_letter_stream_name(subjects), sequence)
    except NotFoundError:
        raise DeadLetterError(sequence, "no such message") from None
    parked = stored.headers or {}
    letter = describe(sequence, parked, parked_at=stored.time)

    ack = await js.publish(
        letter.subject,
        stored.data or b"",
        headers=replay_headers(parked, sequence=sequence),
    )

    return Replayed(
        subject=letter.subject,
        stream=ack.stream,
        stream_sequence=ack.seq,
        duplicate=bool(ack.duplicate),
    )
