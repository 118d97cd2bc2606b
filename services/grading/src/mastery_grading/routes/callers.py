"""Who asks and within which request: the caller, the correlation id of
the events it causes, and the idempotency claim of its key."""

from __future__ import annotations

from typing import Any, TypeAlias
from uuid import UUID

from litestar import Request

from mastery_events.identity import Identity
from mastery_events.ids import uuid7
from mastery_grading.assessment_store import Request as StoreRequest
from mastery_grading.idempotency import claim_of

AnyRequest: TypeAlias = Request[Any, Any, Any]


def correlation_of(request: AnyRequest) -> UUID:
    """Return the request's correlation id when the caller sent a valid
    one, else a new one, so the events it causes can be traced back."""
    header = request.headers.get("x-correlation-id")
    try:
        return UUID(header) if header else uuid7()
    except ValueError:
        return uuid7()


def store_request(
    identity: Identity, request: AnyRequest, key: str | None, body: Any
) -> StoreRequest:
    """Return who asks, in which correlation, with which idempotency claim:
    the key is bound to the caller, the method, the path and the body."""
    return StoreRequest(
        caller=identity,
        correlation_id=correlation_of(request),
        claim=claim_of(
            key,
            f"{request.method} {request.url.path}",
            body,
            caller=identity.subject,
        ),
    )
