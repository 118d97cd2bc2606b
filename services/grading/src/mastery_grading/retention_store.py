"""Read what the retention job needs from grading's roster tables: the
tenant's period, its leavers, and which tenants set a period at all.

Every query but ``tenants_with_period`` expects the caller's
``tenant_transaction``; that one runs in a ``system_transaction``.
"""

from __future__ import annotations

from mastery_events.database import Connection
from mastery_events.migrations import quote_schema
from mastery_grading.retention import Leaver, RetentionPeriod


class RetentionReader:
    """Queries of the retention tables in ``schema``."""

    def __init__(self, schema: str) -> None:
        self.schema = quote_schema(schema)

    async def period(
        self, connection: Connection, tenant_id: str
    ) -> RetentionPeriod | None:
        """Return the tenant's retention period, or ``None`` when unset."""
        row = await connection.fetchrow(
            f"SELECT days, set_by, set_at FROM {self.schema}.retention_periods "
            "WHERE tenant_id = $1",
            tenant_id,
        )
        return None if row is None else RetentionPeriod(**dict(row))

    async def leavers(self, connection: Connection, tenant_id: str) -> list[Leaver]:
        """Return the tenant's students not erased who hold no active
        enrollment, with the time they were removed or else the time their
        last enrollment ended."""
        rows = await connection.fetch(
            "SELECT p.person_id, CASE WHEN p.removed THEN p.removed_at "
            "ELSE max(e.ended_at) END AS left_at "
            f"FROM {self.schema}.roster_people AS p "
            f"LEFT JOIN {self.schema}.roster_enrollments AS e "
            "USING (tenant_id, person_id) "
            "WHERE p.tenant_id = $1 AND p.role = 'student' AND NOT p.erased "
            "GROUP BY p.tenant_id, p.person_id "
            "HAVING NOT coalesce(bool_or(e.active), false) "
            "ORDER BY p.person_id",
            tenant_id,
        )
        return [Leaver(**dict(row)) for row in rows]

    async def tenants_with_period(self, connection: Connection) -> list[str]:
        """Return every tenant that set a retention period."""
        rows = await connection.fetch(
            f"SELECT tenant_id FROM {self.schema}.retention_periods ORDER BY tenant_id"
        )
        return [row["tenant_id"] for row in rows]
