"""The catalogue's tables in grading's schema, and the consumer that fills
them from the objectives service's events.

``CatalogueWriter`` is the handler of the durable consumer
``grading-catalogue``: the consumer runs it once per event, in a transaction
bound to the event's tenant, and it writes only there. Its writes are
idempotent anyway, and those that replace a row compare the stream version,
so a retried event that arrives after a later one of the same stream does
not undo it. ``Catalogue`` reads the tables for one tenant at a time.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import msgspec
import structlog

from mastery_events.consumer import ConsumerSettings
from mastery_events.contract.objectives import (
    CalculationPolicyCleared,
    CalculationPolicySet,
    ObjectiveAdded,
    ObjectiveChanged,
    ObjectiveMoved,
    ObjectiveRemoved,
    ScaleArchived,
    ScaleDefined,
    ScalePublished,
    ScaleRevised,
)
from mastery_events.database import Connection
from mastery_events.envelope import Envelope, Event
from mastery_events.migrations import quote_schema
from mastery_events.runtime import Follower
from mastery_events.tenancy import tenant_transaction
from mastery_grading.catalogue import policy_from, scale_view_from
from mastery_grading.errors import PolicyVersionNotFoundError, ScaleVersionNotFoundError
from mastery_grading.mastery import Policy
from mastery_grading.recalculation import Recalculations, Trigger
from mastery_grading.scales import ScaleView

CONSUMER = "grading-catalogue"
SOURCE = "objectives"

log = structlog.get_logger(__name__)


class CatalogueWriter:
    """The consumer's handler: keeps grading's catalogue, in ``schema``, in
    step with the objectives service's events.

    With ``recalculations``, a scale revision or a policy version that
    comes into force also plans a recalculation of the timelines it
    affects, in the same transaction.
    """

    def __init__(
        self, schema: str, *, recalculations: Recalculations | None = None
    ) -> None:
        self._recalculations = recalculations
        quoted = quote_schema(schema)
        self._scale_versions = f"{quoted}.catalogue_scale_versions"
        self._scales = f"{quoted}.catalogue_scales"
        self._policy_versions = f"{quoted}.catalogue_policy_versions"
        self._policies = f"{quoted}.catalogue_policies"
        self._objectives = f"{quoted}.catalogue_objectives"

    async def __call__(
        self, connection: Connection, envelope: Envelope, event: Event
    ) -> None:
        """Apply one objectives event to the catalogue."""
        tenant = envelope.tenant_id
        version = envelope.stream_version
        match event:
            case ScaleDefined() | ScaleRevised():
                await self._add_scale_version(connection, envelope, event)
                if isinstance(event, ScaleRevised):
                    await self._plan_scale(connection, envelope, event)
            case ScalePublished():
                await self._put_scale(
                    connection,
                    tenant,
                    event.scale_id,
                    version,
                    published=event.scale_version,
                )
            case ScaleArchived():
                await self._put_scale(
                    connection, tenant, event.scale_id, version, archived=True
                )
            case CalculationPolicySet():
                await self._add_policy_version(connection, envelope, event)
                await self._plan_policy(
                    connection,
                    envelope,
                    event.objective_set_id,
                    event.objective_id,
                    event.policy_version,
                )
            case CalculationPolicyCleared():
                await self._put_policy(
                    connection,
                    tenant,
                    event.objective_set_id,
                    event.objective_id,
                    None,
                    stream_version=version,
                )
                await self._plan_policy(
                    connection,
                    envelope,
                    event.objective_set_id,
                    event.objective_id,
                    None,
                )
            case ObjectiveAdded():
                await connection.execute(
                    f"INSERT INTO {self._objectives} (tenant_id, objective_set_id, "
                    "objective_id, parent_id, code, stream_version) "
                    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    tenant,
                    event.objective_set_id,
                    event.objective_id,
                    event.parent_id,
                    event.code,
                    version,
                )
            case ObjectiveChanged():
                await self._update_objective(
                    connection,
                    "code = $3",
                    tenant,
                    event.objective_id,
                    event.code,
                    stream_version=version,
                )
            case ObjectiveMoved():
                await self._update_objective(
                    connection,
                    "parent_id = $3",
                    tenant,
                    event.objective_id,
                    event.parent_id,
                    stream_version=version,
                )
            case ObjectiveRemoved():
                await self._update_objective(
                    connection,
                    "removed = $3",
                    tenant,
                    event.objective_id,
                    True,
                    stream_version=version,
                )
            case _:
                # Titles, links and set publication do not change how
                # grading scores; nothing of them is kept.
                return

        log.info(
            "catalogue.applied",
            tenant=tenant,
            event_type=envelope.event_type,
            event_id=str(envelope.event_id),
            stream_version=version,
        )

    async def _plan_scale(
        self, connection: Connection, envelope: Envelope, event: ScaleRevised
    ) -> None:
        if self._recalculations is None:
            return
        latest = await connection.fetchval(
            f"SELECT latest_version FROM {self._scales} "
            "WHERE tenant_id = $1 AND scale_id = $2",
            envelope.tenant_id,
            event.scale_id,
        )
        # A late, older revision changes nothing that is read.
        if latest != event.scale_version:
            return
        trigger = Trigger(
            reason=f"scale version {event.scale_version}",
            scale_id=event.scale_id,
            scale_version=event.scale_version,
        )
        await self._recalculations.plan(connection, envelope, trigger)

    async def _plan_policy(
        self,
        connection: Connection,
        envelope: Envelope,
        objective_set_id: UUID,
        objective_id: UUID | None,
        policy_version: int | None,
    ) -> None:
        if self._recalculations is None:
            return
        row = await connection.fetchrow(
            f"SELECT policy_version, stream_version FROM {self._policies} "
            "WHERE tenant_id = $1 AND objective_set_id = $2 "
            "AND objective_id IS NOT DISTINCT FROM $3",
            envelope.tenant_id,
            objective_set_id,
            objective_id,
        )
        # Only the event that put its version in force plans a job.
        if row is None or row["stream_version"] != envelope.stream_version:
            return
        if row["policy_version"] != policy_version:
            return
        scope = "override" if objective_id else "policy"
        reason = (
            f"{scope} cleared"
            if policy_version is None
            else f"{scope} version {policy_version}"
        )
        trigger = Trigger(
            reason=reason,
            objective_set_id=objective_set_id,
            objective_id=objective_id,
            policy_version=policy_version,
        )
        await self._recalculations.plan(connection, envelope, trigger)

    async def _add_scale_version(
        self,
        connection: Connection,
        envelope: Envelope,
        event: ScaleDefined | ScaleRevised,
    ) -> None:
        view = scale_view_from(event)
        await connection.execute(
            f"INSERT INTO {self._scale_versions} "
            "(tenant_id, scale_id, scale_version, view, defined_at) "
            "VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT DO NOTHING",
            envelope.tenant_id,
            event.scale_id,
            event.scale_version,
            msgspec.json.encode(view).decode(),
            envelope.occurred_at,
        )
        await self._put_scale(
            connection,
            envelope.tenant_id,
            event.scale_id,
            envelope.stream_version,
            latest=event.scale_version,
        )

    async def _put_scale(
        self,
        connection: Connection,
        tenant: str,
        scale_id: UUID,
        stream_version: int,
        *,
        latest: int = 0,
        published: int | None = None,
        archived: bool = False,
    ) -> None:
        # The latest version and the archive only move forward; the
        # published version is the one the latest publication named.
        await connection.execute(
            f"""
            INSERT INTO {self._scales} AS s
                (tenant_id, scale_id, latest_version, published_version,
                 archived, stream_version)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (tenant_id, scale_id) DO UPDATE SET
                latest_version = greatest(s.latest_version, excluded.latest_version),
                published_version = CASE
                    WHEN excluded.published_version IS NOT NULL
                        AND excluded.stream_version > s.stream_version
                    THEN excluded.published_version
                    ELSE coalesce(s.published_version, excluded.published_version)
                    END,
                archived = s.archived OR excluded.archived,
                stream_version = greatest(s.stream_version, excluded.stream_version)
            """,
            tenant,
            scale_id,
            latest,
            published,
            archived,
            stream_version,
        )

    async def _add_policy_version(
        self, connection: Connection, envelope: Envelope, event: CalculationPolicySet
    ) -> None:
        policy = policy_from(event)
        await connection.execute(
            f"INSERT INTO {self._policy_versions} (tenant_id, objective_set_id, "
            "objective_id, policy_version, policy, set_at) "
            "VALUES ($1, $2, $3, $4, $5::jsonb, $6) ON CONFLICT DO NOTHING",
            envelope.tenant_id,
            event.objective_set_id,
            event.objective_id,
            event.policy_version,
            msgspec.json.encode(policy).decode(),
            event.set_at,
        )
        await self._put_policy(
            connection,
            envelope.tenant_id,
            event.objective_set_id,
            event.objective_id,
            event.policy_version,
            stream_version=envelope.stream_version,
        )

    async def _put_policy(
        self,
        connection: Connection,
        tenant: str,
        objective_set_id: UUID,
        objective_id: UUID | None,
        policy_version: int | None,
        *,
        stream_version: int,
    ) -> None:
        # A retried event older than the row's must not undo a later one.
        await connection.execute(
            f"""
            INSERT INTO {self._policies} AS p
                (tenant_id, objective_set_id, objective_id, policy_version,
                 stream_version)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (tenant_id, objective_set_id, objective_id) DO UPDATE SET
                policy_version = excluded.policy_version,
                stream_version = excluded.stream_version
            WHERE p.stream_version < excluded.stream_version
            """,
            tenant,
            objective_set_id,
            objective_id,
            policy_version,
            stream_version,
        )

    async def _update_objective(
        self,
        connection: Connection,
        assignment: str,
        tenant: str,
        objective_id: UUID,
        value: object,
        *,
        stream_version: int,
    ) -> None:
        await connection.execute(
            f"UPDATE {self._objectives} SET {assignment}, stream_version = $4 "
            "WHERE tenant_id = $1 AND objective_id = $2 AND stream_version < $4",
            tenant,
            objective_id,
            value,
            stream_version,
        )


class CatalogueObjective(msgspec.Struct, frozen=True, kw_only=True):
    """An objective as grading knows it: where it sits and its code."""

    objective_id: UUID
    objective_set_id: UUID
    parent_id: UUID | None
    code: str | None


class Catalogue:
    """Grading's catalogue, read one tenant at a time."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        quoted = quote_schema(schema)
        self._scale_versions = f"{quoted}.catalogue_scale_versions"
        self._policy_versions = f"{quoted}.catalogue_policy_versions"
        self._policies = f"{quoted}.catalogue_policies"
        self._objectives = f"{quoted}.catalogue_objectives"

    async def scale_version(
        self, tenant_id: str, scale_id: UUID, version: int
    ) -> ScaleView:
        """Return the scale version assessments made with it are read on."""
        found = await self._fetchval(
            tenant_id,
            f"SELECT view FROM {self._scale_versions} "
            "WHERE tenant_id = $1 AND scale_id = $2 AND scale_version = $3",
            scale_id,
            version,
        )
        if found is None:
            raise ScaleVersionNotFoundError(scale_id, version)

        return msgspec.json.decode(found, type=ScaleView)

    async def policy_version(
        self,
        tenant_id: str,
        objective_set_id: UUID,
        version: int,
        *,
        objective_id: UUID | None = None,
    ) -> Policy:
        """Return one version of a set's policy, or of an objective's
        override when ``objective_id`` is given."""
        found = await self._fetchval(
            tenant_id,
            f"SELECT policy FROM {self._policy_versions} "
            "WHERE tenant_id = $1 AND objective_set_id = $2 "
            "AND objective_id IS NOT DISTINCT FROM $3 AND policy_version = $4",
            objective_set_id,
            objective_id,
            version,
        )
        if found is None:
            raise PolicyVersionNotFoundError(objective_set_id, objective_id, version)

        return msgspec.json.decode(found, type=Policy)

    async def policy_in_force(
        self, tenant_id: str, objective_set_id: UUID, objective_id: UUID
    ) -> Policy | None:
        """Return the policy that scores ``objective_id`` now: its own
        override when it has one, else its set's, else ``None``."""
        found = await self._fetchval(
            tenant_id,
            f"SELECT v.policy FROM {self._policies} p "
            f"JOIN {self._policy_versions} v USING "
            "(tenant_id, objective_set_id, policy_version) "
            "WHERE p.tenant_id = $1 AND p.objective_set_id = $2 "
            "AND (p.objective_id = $3 OR p.objective_id IS NULL) "
            "AND v.objective_id IS NOT DISTINCT FROM p.objective_id "
            "ORDER BY p.objective_id NULLS LAST LIMIT 1",
            objective_set_id,
            objective_id,
        )
        if found is None:
            return None

        return msgspec.json.decode(found, type=Policy)

    async def objective(
        self, tenant_id: str, objective_id: UUID
    ) -> CatalogueObjective | None:
        """Return the objective when it exists and was not removed."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            row = await connection.fetchrow(
                "SELECT objective_id, objective_set_id, parent_id, code "
                f"FROM {self._objectives} WHERE tenant_id = $1 "
                "AND objective_id = $2 AND NOT removed",
                tenant_id,
                objective_id,
            )
        if row is None:
            return None

        return CatalogueObjective(**dict(row))

    async def knows_objective_set(
        self, connection: Connection, tenant_id: str, objective_set_id: UUID
    ) -> bool:
        """Tell whether the catalogue holds an objective of the set that was
        not removed, in the caller's transaction for ``tenant_id``."""
        found: bool = await connection.fetchval(
            f"SELECT EXISTS (SELECT FROM {self._objectives} WHERE tenant_id = $1 "
            "AND objective_set_id = $2 AND NOT removed)",
            tenant_id,
            objective_set_id,
        )
        return found

    async def _fetchval(self, tenant_id: str, query: str, *args: object) -> str | None:
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            found: str | None = await connection.fetchval(query, tenant_id, *args)

        return found


def catalogue_follower(schema: str) -> Follower:
    """Return the consumer that fills the catalogue in ``schema`` from the
    objectives service's events."""
    return Follower(
        name=CONSUMER,
        source=SOURCE,
        handler=CatalogueWriter(schema, recalculations=Recalculations(schema)),
        settings=ConsumerSettings(),
    )
