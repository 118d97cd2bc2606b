"""Who is calling, on behalf of which tenant, and what they may change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from mastery_events.access import NotAllowedError, identity_of, scoped
from mastery_events.contract.objectives import OwnerScope
from mastery_events.identity import Identity
from mastery_events.ids import uuid7
from mastery_objectives.objective_sets import ObjectiveSet
from mastery_objectives.repository import Actor

AREA = "objectives"


def tenant_of(identity: Identity) -> str:
    """Return the tenant every read and write of this request is scoped to."""
    return identity.tenant_id


def owner_of(identity: Identity, scope: OwnerScope, owner_id: str | None) -> str:
    """Return who a new set belongs to: ``owner_id`` when given, else the
    caller for a teacher's set, else the tenant (district)."""
    if owner_id:
        return owner_id
    if scope == "teacher":
        return identity.subject
    return tenant_of(identity)


def may_edit_set(identity: Identity, state: ObjectiveSet) -> bool:
    """Tell whether the caller may change a set: district admins any set,
    school leaders their schools' sets, teachers their own."""
    if identity.has_role("district_admin"):
        return True
    if identity.has_role("service") and scoped(identity, action="write", area=AREA):
        return True
    if state.owner_scope == "school" and identity.has_role("school_leader"):
        return state.owner_id in identity.schools
    if state.owner_scope == "teacher" and identity.has_role("teacher"):
        return state.owner_id == identity.subject

    return False


def may_create_set(identity: Identity, scope: OwnerScope, owner_id: str) -> bool:
    """Tell whether the caller may start a set owned by ``owner_id``."""
    draft = ObjectiveSet(
        objective_set_id=UUID(int=0),
        title="",
        subject="",
        owner_scope=scope,
        owner_id=owner_id,
    )
    return may_edit_set(identity, draft)


def may_edit_scales(identity: Identity) -> bool:
    """Tell whether the caller may define or change the district's scales."""
    if identity.has_role("service"):
        return scoped(identity, action="write", area=AREA)
    return identity.has_role("district_admin")


def edits_objectives(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard a route that changes objectives: auditors never pass."""
    identity = identity_of(connection)
    if identity.has_role("district_admin", "school_leader", "teacher"):
        return
    if identity.has_role("service") and scoped(identity, action="write", area=AREA):
        return
    raise NotAllowedError(identity.subject, needed=f"{AREA}:write")


def actor_of(identity: Identity, request: Request[Any, Any, Any]) -> Actor:
    """Return who acts, now, under the request's correlation id when the
    caller sent one."""
    header = request.headers.get("x-correlation-id")
    try:
        correlation = UUID(header) if header else uuid7()
    except ValueError:
        correlation = uuid7()

    return Actor(
        actor=identity.subject, at=datetime.now(UTC), correlation_id=correlation
    )
