"""Where objective sets and scales live: their event streams, and the read
models kept beside them in the same commit.

A change loads the aggregate from its stream, lets the domain decide, then
appends the events with the version it loaded (so a concurrent writer is
caught) and updates the read models, all in one transaction scoped to one
tenant. The read models can be dropped and rebuilt from the events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
import structlog

from mastery_events.contract.objectives import (
    ObjectiveSetEvent,
    ObjectiveSetPublished,
    ScaleEvent,
)
from mastery_events.database import Connection
from mastery_events.envelope import Envelope, Event, PendingEvent
from mastery_events.errors import ConcurrencyError
from mastery_events.migrations import quote_schema
from mastery_events.store import (
    ENVELOPE_COLUMNS,
    EventStore,
    StreamAppend,
    envelope_from_row,
)
from mastery_objectives.errors import (
    ConcurrentChangeError,
    ObjectiveSetNotFoundError,
    ScaleNotFoundError,
    SetVersionNotFoundError,
)
from mastery_objectives.objective_sets import ObjectiveSet, evolve
from mastery_objectives.scales import Scale, ScaleRecord, evolve_scale

# A large import is appended in slices of this many events, in one
# transaction, so a caller can show progress between them.
APPEND_SLICE = 500
TENANT_SETTING = "mastery.tenant_id"

State = TypeVar("State")
log = structlog.get_logger(__name__)


def set_stream(objective_set_id: UUID) -> str:
    """Return the stream id of one objective set."""
    return f"objective-set-{objective_set_id}"


def scale_stream(scale_id: UUID) -> str:
    """Return the stream id of one scale."""
    return f"scale-{scale_id}"


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who causes a change, when, and the request it belongs to."""

    actor: str
    at: datetime
    correlation_id: UUID


class SetSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a list of sets."""

    objective_set_id: UUID
    title: str
    subject: str
    owner_scope: str
    owner_id: str
    grade_bands: list[str]
    status: str
    published_version: int
    objective_count: int


class FoundObjective(msgspec.Struct, frozen=True, kw_only=True):
    """An objective found by a search, with the set it belongs to."""

    objective_set_id: UUID
    objective_id: UUID
    parent_id: UUID | None
    code: str | None
    statement: str
    label: str | None


class ScaleSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a list of scales."""

    scale_id: UUID
    name: str
    status: str
    latest_version: int
    published_version: int | None


ProgressCallback = Callable[[int, int], None]
"""Told how many of an append's events are written, and how many in all."""


class ObjectivesRepository:
    """The objectives service's streams and read models in one schema."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.pool = store.pool
        self.registry = store.registry
        schema = quote_schema(store.schema)
        self._events = f"{schema}.events"
        self._sets = f"{schema}.objective_sets"
        self._objectives = f"{schema}.objectives"
        self._versions = f"{schema}.objective_set_versions"
        self._scales = f"{schema}.scales"
        self._scale_versions = f"{schema}.scale_versions"

    # Changes ---------------------------------------------------------------

    async def change_set(
        self,
        tenant_id: str,
        objective_set_id: UUID,
        *,
        decision: Callable[[ObjectiveSet | None], Sequence[ObjectiveSetEvent]],
        actor: Actor,
        progress: ProgressCallback | None = None,
    ) -> tuple[ObjectiveSet | None, list[Envelope]]:
        """Apply ``decision`` to the set and store what it decides; return
        the set as it now is and the stored events."""
        stream = set_stream(objective_set_id)
        async with self.pool.acquire() as connection, connection.transaction():
            await _bind_tenant(connection, tenant_id)
            state, version = await self._load(connection, tenant_id, stream, evolve)
            events = list(decision(state))
            stored = await self._append(
                connection, tenant_id, stream, version, events, actor, progress
            )
            if stored:
                state = await self._project_set(
                    connection, tenant_id, state, events, stored
                )
        if stored:
            log.info(
                "objective_set.changed",
                tenant=tenant_id,
                objective_set=str(objective_set_id),
                events=len(stored),
                stream_version=stored[-1].stream_version,
            )

        return state, stored

    async def change_scale(
        self,
        tenant_id: str,
        scale_id: UUID,
        *,
        decision: Callable[[ScaleRecord | None], Sequence[ScaleEvent]],
        actor: Actor,
    ) -> tuple[ScaleRecord | None, list[Envelope]]:
        """Apply ``decision`` to the scale and store what it decides."""
        stream = scale_stream(scale_id)
        async with self.pool.acquire() as connection, connection.transaction():
            await _bind_tenant(connection, tenant_id)
            record, version = await self._load(
                connection, tenant_id, stream, evolve_scale
            )
            events = list(decision(record))
            stored = await self._append(
                connection, tenant_id, stream, version, events, actor, None
            )
            for event in events:
                record = evolve_scale(record, event)
            if stored and record is not None:
                await self._project_scale(
                    connection, tenant_id, record, stored[-1].stream_version
                )
        if stored:
            log.info(
                "scale.changed",
                tenant=tenant_id,
                scale=str(scale_id),
                events=len(stored),
                stream_version=stored[-1].stream_version,
            )

        return record, stored

    async def _load(
        self,
        connection: Connection,
        tenant_id: str,
        stream: str,
        step: Callable[[Any, Any], State],
    ) -> tuple[State | None, int]:
        rows = await connection.fetch(
            f"""
            SELECT event_type, event_version, payload, stream_version
            FROM {self._events}
            WHERE tenant_id = $1 AND stream_id = $2
            ORDER BY stream_version
            """,
            tenant_id,
            stream,
        )
        state: State | None = None
        for row in rows:
            event = self.registry.decode_payload(
                row["event_type"], row["event_version"], row["payload"].encode()
            )
            state = step(state, event)

        return state, rows[-1]["stream_version"] if rows else 0

    async def _append(
        self,
        connection: Connection,
        tenant_id: str,
        stream: str,
        version: int,
        events: Sequence[Event],
        actor: Actor,
        progress: ProgressCallback | None,
    ) -> list[Envelope]:
        stored: list[Envelope] = []
        try:
            for start in range(0, len(events), APPEND_SLICE):
                pending = [
                    PendingEvent(
                        payload=event,
                        occurred_at=actor.at,
                        actor=actor.actor,
                        correlation_id=actor.correlation_id,
                    )
                    for event in events[start : start + APPEND_SLICE]
                ]
                batch = StreamAppend(
                    tenant_id=tenant_id,
                    stream_id=stream,
                    expected_version=version + len(stored),
                    events=pending,
                )
                stored.extend(await self.store.append_within(connection, [batch]))
                if progress is not None:
                    progress(len(stored), len(events))
        except ConcurrencyError as error:
            raise ConcurrentChangeError(stream) from error

        return stored

    # Read models -------------------------------------------------------------

    async def _project_set(
        self,
        connection: Connection,
        tenant_id: str,
        state: ObjectiveSet | None,
        events: Sequence[ObjectiveSetEvent],
        stored: Sequence[Envelope],
    ) -> ObjectiveSet:
        for event, envelope in zip(events, stored, strict=True):
            state = evolve(state, event)
            if isinstance(event, ObjectiveSetPublished):
                await self._write_version(
                    connection, tenant_id, state, event, envelope.occurred_at
                )
        assert state is not None
        await self._write_set(connection, tenant_id, state, stored[-1].stream_version)

        return state

    async def _write_version(
        self,
        connection: Connection,
        tenant_id: str,
        state: ObjectiveSet,
        event: ObjectiveSetPublished,
        published_at: datetime,
    ) -> None:
        await connection.execute(
            f"""
            INSERT INTO {self._versions}
                (tenant_id, objective_set_id, set_version, published_at, state)
            VALUES ($1, $2, $3, $4, $5::jsonb)
            ON CONFLICT (tenant_id, objective_set_id, set_version) DO NOTHING
            """,
            tenant_id,
            state.objective_set_id,
            event.set_version,
            published_at,
            msgspec.json.encode(state).decode(),
        )

    async def _write_set(
        self,
        connection: Connection,
        tenant_id: str,
        state: ObjectiveSet,
        stream_version: int,
    ) -> None:
        set_id = state.objective_set_id
        await connection.execute(
            f"""
            INSERT INTO {self._sets} (
                tenant_id, objective_set_id, title, subject, owner_scope,
                owner_id, grade_bands, status, published_version,
                case_identifier, stream_version, state
            )
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)
            ON CONFLICT (tenant_id, objective_set_id) DO UPDATE SET
                title = excluded.title,
                subject = excluded.subject,
                grade_bands = excluded.grade_bands,
                status = excluded.status,
                published_version = excluded.published_version,
                stream_version = excluded.stream_version,
                state = excluded.state
            """,
            tenant_id,
            set_id,
            state.title,
            state.subject,
            state.owner_scope,
            state.owner_id,
            list(state.grade_bands),
            state.status,
            state.published_version,
            state.case_identifier,
            stream_version,
            msgspec.json.encode(state).decode(),
        )
        await connection.execute(
            f"DELETE FROM {self._objectives} "
            "WHERE tenant_id = $1 AND objective_set_id = $2",
            tenant_id,
            set_id,
        )
        objectives = list(state.objectives.values())
        # COPY is refused on tables under row-level security; one INSERT
        # of unnested arrays costs a single round trip all the same.
        await connection.execute(
            f"""
            INSERT INTO {self._objectives} (
                tenant_id, objective_set_id, objective_id, parent_id, code,
                statement, label, sort_order, item_type, grade_bands,
                case_identifier, case_uri
            )
            SELECT $1, $2, o.objective_id, o.parent_id, o.code, o.statement,
                   o.label, o.sort_order, o.item_type,
                   ARRAY(SELECT json_array_elements_text(o.grade_bands)),
                   o.case_identifier, o.case_uri
            FROM unnest(
                $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[],
                $8::int[], $9::text[], $10::json[], $11::text[], $12::text[]
            ) AS o(
                objective_id, parent_id, code, statement, label, sort_order,
                item_type, grade_bands, case_identifier, case_uri
            )
            """,
            tenant_id,
            set_id,
            [o.objective_id for o in objectives],
            [o.parent_id for o in objectives],
            [o.code for o in objectives],
            [o.statement for o in objectives],
            [o.label for o in objectives],
            [o.order for o in objectives],
            [o.item_type for o in objectives],
            [msgspec.json.encode(o.grade_bands).decode() for o in objectives],
            [o.case_identifier for o in objectives],
            [o.case_uri for o in objectives],
        )

    async def _project_scale(
        self,
        connection: Connection,
        tenant_id: str,
        record: ScaleRecord,
        stream_version: int,
    ) -> None:
        await connection.execute(
            f"""
            INSERT INTO {self._scales} (
                tenant_id, scale_id, name, status, latest_version,
                published_version, stream_version
            )
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (tenant_id, scale_id) DO UPDATE SET
                name = excluded.name,
                status = excluded.status,
                latest_version = excluded.latest_version,
                published_version = excluded.published_version,
                stream_version = excluded.stream_version
            """,
            tenant_id,
            record.scale_id,
            record.latest.name,
            record.status,
            record.latest_version,
            record.published_version,
            stream_version,
        )
        await connection.executemany(
            f"""
            INSERT INTO {self._scale_versions}
                (tenant_id, scale_id, scale_version, scale)
            VALUES ($1, $2, $3, $4::jsonb)
            ON CONFLICT (tenant_id, scale_id, scale_version) DO NOTHING
            """,
            [
                (
                    tenant_id,
                    record.scale_id,
                    number,
                    msgspec.json.encode(scale).decode(),
                )
                for number, scale in record.versions.items()
            ],
        )

    async def rebuild(self, tenant_id: str) -> int:
        """Drop one tenant's read models and build them again from its
        events; return how many events were read."""
        async with self.pool.acquire() as connection, connection.transaction():
            await _bind_tenant(connection, tenant_id)
            for table in (
                self._sets,
                self._objectives,
                self._versions,
                self._scales,
                self._scale_versions,
            ):
                await connection.execute(
                    f"DELETE FROM {table} WHERE tenant_id = $1", tenant_id
                )
            rows = await connection.fetch(
                f"""
                SELECT {ENVELOPE_COLUMNS} FROM {self._events}
                WHERE tenant_id = $1
                ORDER BY transaction_id, position
                """,
                tenant_id,
            )
            sets: dict[str, tuple[list[ObjectiveSetEvent], list[Envelope]]] = {}
            scales: dict[str, tuple[ScaleRecord | None, int]] = {}
            for row in rows:
                envelope = envelope_from_row(row)
                event = self.registry.decode(envelope)
                if envelope.stream_id.startswith("objective-set-"):
                    events, envelopes = sets.setdefault(envelope.stream_id, ([], []))
                    events.append(event)  # type: ignore[arg-type]
                    envelopes.append(envelope)
                elif envelope.stream_id.startswith("scale-"):
                    record, _ = scales.get(envelope.stream_id, (None, 0))
                    record = evolve_scale(record, event)  # type: ignore[arg-type]
                    scales[envelope.stream_id] = (record, envelope.stream_version)
            for events, envelopes in sets.values():
                await self._project_set(connection, tenant_id, None, events, envelopes)
            for record, version in scales.values():
                assert record is not None
                await self._project_scale(connection, tenant_id, record, version)
        log.info("read_models.rebuilt", tenant=tenant_id, events=len(rows))

        return len(rows)

    # Queries -----------------------------------------------------------------

    async def get_set(self, tenant_id: str, objective_set_id: UUID) -> ObjectiveSet:
        """Return a set as it now stands, draft changes included."""
        state = await self._fetch_json(
            f"SELECT state FROM {self._sets} "
            "WHERE tenant_id = $1 AND objective_set_id = $2",
            tenant_id,
            objective_set_id,
        )
        if state is None:
            raise ObjectiveSetNotFoundError(objective_set_id)

        return msgspec.json.decode(state, type=ObjectiveSet)

    async def get_set_version(
        self, tenant_id: str, objective_set_id: UUID, *, set_version: int
    ) -> ObjectiveSet:
        """Return a set exactly as it was published at ``set_version``."""
        state = await self._fetch_json(
            f"SELECT state FROM {self._versions} "
            "WHERE tenant_id = $1 AND objective_set_id = $2 AND set_version = $3",
            tenant_id,
            objective_set_id,
            set_version,
        )
        if state is None:
            await self.get_set(tenant_id, objective_set_id)
            raise SetVersionNotFoundError(objective_set_id, set_version)

        return msgspec.json.decode(state, type=ObjectiveSet)

    async def find_set_by_case_identifier(
        self, tenant_id: str, case_identifier: str
    ) -> UUID | None:
        """Return the set imported from a CASE document, if any."""
        async with self.pool.acquire() as connection, connection.transaction():
            await _bind_tenant(connection, tenant_id)
            found: UUID | None = await connection.fetchval(
                f"SELECT objective_set_id FROM {self._sets} "
                "WHERE tenant_id = $1 AND case_identifier = $2 "
                "AND status <> 'archived' LIMIT 1",
                tenant_id,
                case_identifier,
            )

        return found

    async def list_sets(
        self, tenant_id: str, *, status: str | None = None
    ) -> list[SetSummary]:
        """Return the tenant's sets, by title."""
        async with self.pool.acquire() as connection, connection.transaction():
            await _bind_tenant(connection, tenant_id)
            rows = await connection.fetch(
                f"""
                SELECT s.objective_set_id, s.title, s.subject, s.owner_scope,
                       s.owner_id, s.grade_bands, s.status, s.published_version,
                       (SELECT count(*) FROM {self._objectives} AS o
                        WHERE o.tenant_id = s.tenant_id
                          AND o.objective_set_id = s.objective_set_id)
                           AS objective_count
                FROM {self._sets} AS s
                WHERE s.tenant_id = $1 AND ($2::text IS NULL OR s.status = $2)
                ORDER BY s.title, s.objective_set_id
                """,
                tenant_id,
                status,
            )

        return [SetSummary(**dict(row)) for row in rows]

    async def search_objectives(
        self, tenant_id: str, text: str, *, limit: int = 50
    ) -> list[FoundObjective]:
        """Return objectives whose code starts with ``text`` or whose
        statement or label contains it, codes first."""
        pattern = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        async with self.pool.acquire() as connection, connection.transaction():
            await _bind_tenant(connection, tenant_id)
            rows = await connection.fetch(
                f"""
                SELECT objective_set_id, objective_id, parent_id, code,
                       statement, label
                FROM {self._objectives}
                WHERE tenant_id = $1
                  AND (lower(code) LIKE lower($2) || '%'
                       OR statement ILIKE '%' || $2 || '%'
                       OR label ILIKE '%' || $2 || '%')
                ORDER BY (lower(code) LIKE lower($2) || '%') DESC, code, statement
                LIMIT $3
                """,
                tenant_id,
                pattern,
                limit,
            )

        return [FoundObjective(**dict(row)) for row in rows]

    async def get_scale(self, tenant_id: str, scale_id: UUID) -> ScaleRecord:
        """Return a scale with every version it has had."""
        async with self.pool.acquire() as connection, connection.transaction():
            await _bind_tenant(connection, tenant_id)
            head = await connection.fetchrow(
                f"SELECT status, published_version FROM {self._scales} "
                "WHERE tenant_id = $1 AND scale_id = $2",
                tenant_id,
                scale_id,
            )
            rows = await connection.fetch(
                f"SELECT scale_version, scale FROM {self._scale_versions} "
                "WHERE tenant_id = $1 AND scale_id = $2",
                tenant_id,
                scale_id,
            )
        if head is None:
            raise ScaleNotFoundError(scale_id)

        return ScaleRecord(
            scale_id=scale_id,
            status=head["status"],
            published_version=head["published_version"],
            versions={
                row["scale_version"]: msgspec.json.decode(row["scale"], type=Scale)
                for row in rows
            },
        )

    async def list_scales(self, tenant_id: str) -> list[ScaleSummary]:
        """Return the tenant's scales, by name."""
        async with self.pool.acquire() as connection, connection.transaction():
            await _bind_tenant(connection, tenant_id)
            rows = await connection.fetch(
                f"""
                SELECT scale_id, name, status, latest_version, published_version
                FROM {self._scales} WHERE tenant_id = $1
                ORDER BY name, scale_id
                """,
                tenant_id,
            )

        return [ScaleSummary(**dict(row)) for row in rows]

    async def _fetch_json(self, query: str, tenant_id: str, *args: object) -> Any:
        async with self.pool.acquire() as connection, connection.transaction():
            await _bind_tenant(connection, tenant_id)
            return await connection.fetchval(query, tenant_id, *args)


async def _bind_tenant(connection: Connection, tenant_id: str) -> None:
    # Row-level security reads this setting; it ends with the transaction.
    await connection.execute(
        "SELECT set_config($1, $2, true)", TENANT_SETTING, tenant_id
    )
