"""Errors raised by the event contract and its plumbing."""

from __future__ import annotations


class EventsError(Exception):
    """Root of every error raised by ``mastery_events``."""


class ConcurrencyError(EventsError):
    """Raised when a stream's version is not the one the writer expected,
    because somebody else appended to it first.

    ``actual`` is the stream's version when the store could read it, and
    ``None`` when no single version is known: after a collision with another
    writer aborted the caller's transaction, or when the stream was behind
    the expected version and another writer caught it up meanwhile.
    """

    def __init__(
        self, tenant_id: str, stream_id: str, *, expected: int, actual: int | None
    ) -> None:
        self.tenant_id = tenant_id
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        found = "is no longer at" if actual is None else f"is at {actual}, not"
        message = (
            f"stream {stream_id!r} of tenant {tenant_id!r} {found} the "
            f"expected version {expected}; reload and decide again"
        )
        super().__init__(message)


class UnknownEventTypeError(EventsError):
    """Raised when a stored or received event names a type, or a version of a
    type, that this code's contract does not know."""

    def __init__(self, event_type: str, event_version: int) -> None:
        self.event_type = event_type
        self.event_version = event_version
        message = f"no event type {event_type!r} version {event_version} is known"
        super().__init__(message)


class ContractError(EventsError):
    """Raised when the contract itself is inconsistent: a payload registered
    twice, or a version with no upcaster path to the current one."""
