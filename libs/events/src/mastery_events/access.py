"""What a caller may read and write: route guards and the object check.

Two layers, and a route needs both. A guard on the route refuses a caller
whose roles can never do what the route does (an auditor posting, a service
token without the scope) with 403. Then the handler, once it has loaded the
record, calls ``authorize`` with the record's owner: a record of another
tenant, or outside the caller's sections or schools, raises
``NotVisibleError``, which the HTTP edge answers 404 exactly as if the record
did not exist, so ids never reveal that something is there.

Who may do what, within the caller's own tenant:

- ``district_admin`` reads and writes everything;
- ``school_leader`` reads what belongs to its schools, and the tenant-wide
  records (frameworks, scales) everybody reads;
- ``teacher`` reads and writes what belongs to its sections, and reads what
  belongs to its schools and the tenant-wide records;
- ``auditor`` reads everything and writes nothing;
- ``service`` reads or writes everything in an area its ``scope`` names,
  as ``<area>:read`` or ``<area>:write`` (write includes read).
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import msgspec
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from mastery_events.errors import EventsError
from mastery_events.identity import Identity, Role

Action = Literal["read", "write"]
Caller: TypeAlias = NamedDependency[Identity]
"""How a handler asks for the authenticated caller: ``identity: Caller``."""
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITERS: tuple[Role, ...] = ("district_admin", "teacher")
READERS: tuple[Role, ...] = ("district_admin", "school_leader", "teacher", "auditor")


class AccessError(EventsError):
    """Root of the errors raised when a caller may not do something."""


class NotVisibleError(AccessError):
    """Raised when a record belongs to another tenant or lies outside the
    caller's sections or schools; answered exactly like a missing record."""

    def __init__(self, subject: str, *, tenant_id: str, action: Action) -> None:
        self.subject = subject
        self.tenant_id = tenant_id
        self.action = action
        message = f"{subject!r} of tenant {tenant_id!r} may not {action} this record"
        super().__init__(message)


class NotAllowedError(AccessError):
    """Raised when the caller's roles or scopes never allow what a route
    does, whatever record it names."""

    def __init__(self, subject: str, *, needed: str) -> None:
        self.subject = subject
        self.needed = needed
        super().__init__(f"{subject!r} lacks {needed}")


class Owner(msgspec.Struct, frozen=True, kw_only=True):
    """Where a record belongs: its tenant, and its school and section when it
    has them (a framework has neither, an assessment has both)."""

    tenant_id: str
    school_id: str | None = None
    section_id: str | None = None


def may(identity: Identity, owner: Owner, *, action: Action, area: str) -> bool:
    """Tell whether ``identity`` may ``action`` the record ``owner`` holds
    in the service ``area``; use it to filter lists."""
    if owner.tenant_id != identity.tenant_id:
        return False
    if identity.has_role("district_admin"):
        return True
    if identity.has_role("service") and scoped(identity, action=action, area=area):
        return True
    if action == "read":
        return reads_owner(identity, owner)

    return identity.has_role("teacher") and owner.section_id in identity.sections


def reads_owner(identity: Identity, owner: Owner) -> bool:
    """Tell whether a human reader in the right tenant sees this record."""
    if identity.has_role("auditor"):
        return True
    if not identity.has_role("school_leader", "teacher"):
        return False
    if owner.school_id is None and owner.section_id is None:
        return True
    if owner.section_id is not None and owner.section_id in identity.sections:
        return True

    return owner.school_id is not None and owner.school_id in identity.schools


def scoped(identity: Identity, *, action: Action, area: str) -> bool:
    """Tell whether a service token's scope covers ``action`` in ``area``."""
    if f"{area}:write" in identity.scopes:
        return True
    return action == "read" and f"{area}:read" in identity.scopes


def authorize(identity: Identity, owner: Owner, *, action: Action, area: str) -> None:
    """Raise ``NotVisibleError`` unless ``identity`` may ``action`` the
    record ``owner`` holds; call it on every record a handler loads by id."""
    if not may(identity, owner, action=action, area=area):
        raise NotVisibleError(
            identity.subject, tenant_id=identity.tenant_id, action=action
        )


def identity_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity:
    """Return the authenticated caller of ``connection``; a route marked
    public has none, and asking there is a programming error."""
    user = connection.scope.get("user")
    if not isinstance(user, Identity):
        message = "this route is public: no identity was authenticated"
        raise NotAllowedError("anonymous", needed=message)

    return user


def may_act(identity: Identity, *, action: Action, area: str) -> bool:
    """Tell whether any record could allow ``identity`` to ``action`` in
    ``area``: the coarse check a route guard makes."""
    if identity.has_role("district_admin"):
        return True
    if identity.has_role("service") and scoped(identity, action=action, area=area):
        return True
    allowed = READERS if action == "read" else WRITERS

    return identity.has_role(*(role for role in allowed if role != "district_admin"))


def reads(area: str) -> Guard:
    """Guard a route that reads in ``area``: every human role passes, a
    service token only with ``<area>:read`` or ``<area>:write``."""
    return action_guard("read", area)


def writes(area: str) -> Guard:
    """Guard a route that changes something in ``area``: district admins,
    teachers, and service tokens with ``<area>:write``; never auditors."""
    return action_guard("write", area)


def by_method(area: str) -> Guard:
    """Guard a route as a read for GET, HEAD and OPTIONS and as a write for
    every other method, for controllers that mix both."""

    def guard(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        action: Action = (
            "read" if connection.scope.get("method") in READ_METHODS else "write"
        )
        check_action(identity_of(connection), action=action, area=area)

    return guard


def requires_role(*roles: Role) -> Guard:
    """Guard a route that only callers holding one of ``roles`` may use."""
    needed = "one of the roles " + ", ".join(roles)

    def guard(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        identity = identity_of(connection)
        if not identity.has_role(*roles):
            raise NotAllowedError(identity.subject, needed=needed)

    return guard


def action_guard(action: Action, area: str) -> Guard:
    """Return a guard refusing callers that may never ``action`` in
    ``area``."""

    def guard(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        check_action(identity_of(connection), action=action, area=area)

    return guard


def check_action(identity: Identity, *, action: Action, area: str) -> None:
    """Raise ``NotAllowedError`` when ``identity`` may never ``action`` in
    ``area``."""
    if not may_act(identity, action=action, area=area):
        raise NotAllowedError(identity.subject, needed=f"{area}:{action}")
