"""Which tenant a database transaction works for, and the one way around it.

Every table of a tenant's records has row-level security keyed on the
setting ``mastery.tenant_id``. It is set per transaction, never per session,
so a pooled connection cannot carry one request's tenant into the next:
when the transaction ends the setting is gone, and a query without it sees
no rows at all.

The relay, and anything else that must follow every tenant's events in
order, works as the role ``mastery_relay`` instead, which one policy lets
read the events table whole. It is a separate, named step
(``system_transaction``) so that a reader of the code sees where the wall is
crossed; ``docs/security.md`` explains why that path is safe.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable

from mastery_events.database import Connection
from mastery_events.errors import EventsError
from mastery_events.subjects import check_tenant_id

TENANT_SETTING = "mastery.tenant_id"
APP_ROLE = "mastery_app"
RELAY_ROLE = "mastery_relay"


class NoTransactionError(EventsError):
    """Raised when a tenant is to be set on a connection outside a
    transaction, where it would vanish before the next statement."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        message = f"tenant {tenant_id!r} can only be set inside a transaction"
        super().__init__(message)


class OpenTransactionError(EventsError):
    """Raised when a read of its own is begun on a connection already in a
    transaction, whose tenant it would silently replace."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        message = f"a read for tenant {tenant_id!r} needs a connection of its own"
        super().__init__(message)


async def set_tenant(connection: Connection, tenant_id: str) -> None:
    """Bind the caller's open transaction to ``tenant_id`` until it ends."""
    check_tenant_id(tenant_id)
    if not connection.is_in_transaction():
        raise NoTransactionError(tenant_id)
    await connection.execute(
        "SELECT set_config($1, $2, true)", TENANT_SETTING, tenant_id
    )


@contextlib.asynccontextmanager
async def tenant_transaction(
    connection: Connection, tenant_id: str
) -> AsyncIterator[Connection]:
    """Run a transaction that sees and writes only ``tenant_id``'s rows."""
    async with connection.transaction():
        await set_tenant(connection, tenant_id)
        yield connection


@contextlib.asynccontextmanager
async def tenant_read(
    connection: Connection, tenant_id: str
) -> AsyncIterator[Connection]:
    """Run a read-only transaction that sees only ``tenant_id``'s rows,
    opened and bound to the tenant in one round trip instead of two.

    A route that answers with one query pays for every round trip around
    it, so the ``BEGIN`` and the setting go to the server as one simple
    query. The tenant id is written into that text, which is safe only
    because ``check_tenant_id`` lets through nothing but lower-case
    letters, digits and hyphens; it is checked here, every time.
    """
    literal = check_tenant_id(tenant_id)
    if connection.is_in_transaction():
        raise OpenTransactionError(tenant_id)
    await connection.execute(
        f"BEGIN READ ONLY; SELECT set_config('{TENANT_SETTING}', '{literal}', true)"
    )
    try:
        yield connection
    except BaseException:
        if not connection.is_closed():
            await connection.execute("ROLLBACK")
        raise
    await connection.execute("COMMIT")


@contextlib.asynccontextmanager
async def system_transaction(connection: Connection) -> AsyncIterator[Connection]:
    """Run a transaction as the relay's role, which reads every tenant's
    events and nothing else: for followers of the whole log only."""
    async with connection.transaction():
        await connection.execute(f"SET LOCAL ROLE {RELAY_ROLE}")
        yield connection


def sole_tenant(tenant_ids: Iterable[str]) -> str | None:
    """Return the one tenant ``tenant_ids`` all name, or ``None`` when they
    name several (which the application role is refused)."""
    found = set(tenant_ids)
    if len(found) != 1:
        return None
    (tenant_id,) = found

    return tenant_id
