"""Record roster changes: an import, an erasure, a section's objective sets.

Each runs in one transaction bound to the tenant: load what is stored,
decide, seal people's fields, append the events to the tenant's ``roster``
stream, and bring the read model up to date with them, so the log and the
tables commit together or not at all. An advisory lock per tenant makes
imports and erasures of one district take turns, so a plan is never made
against a roster that changes under it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec
import structlog

from mastery_events.contract.roster import (
    ObjectiveSetLinked,
    ObjectiveSetUnlinked,
    PersonErased,
    RetentionPeriodSet,
    Sealed,
)
from mastery_events.database import Connection
from mastery_events.envelope import Event, PendingEvent
from mastery_events.ids import uuid7
from mastery_events.keyring import Keyring
from mastery_events.store import EventStore, StreamAppend
from mastery_events.tenancy import tenant_transaction
from mastery_grading.catalogue_store import Catalogue
from mastery_grading.errors import (
    PersonNotFoundError,
    RosterImportError,
    SectionNotFoundError,
    UnknownObjectiveSetError,
)
from mastery_grading.retention import RetentionPeriod
from mastery_grading.retention_store import RetentionReader
from mastery_grading.roster import RosterBundle
from mastery_grading.roster_import import (
    plan_import,
    sealed_events,
    unresolved_problems,
)
from mastery_grading.roster_store import (
    ROSTER_STREAM,
    RosterProjection,
    RosterReader,
    SectionRow,
)

log = structlog.get_logger(__name__)

Progress = Callable[[int, int], None]


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who asks for a change, when, and the request it belongs to."""

    subject: str
    at: datetime
    correlation_id: UUID = msgspec.field(default_factory=uuid7)


class ImportSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What one import recorded: ``import_id`` is ``None`` when the bundle
    matched the roster held and nothing was recorded."""

    import_id: UUID | None
    counts: dict[str, int]
    events: int
    skipped_erased: int


class ErasureSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of an erasure: ``recorded`` is false when the person was
    erased already and nothing new was written."""

    person_id: UUID
    erased: bool
    recorded: bool


class LinkSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A section's objective sets after a link or unlink, and whether it
    changed anything."""

    section_id: str
    objective_set_ids: list[UUID]
    recorded: bool


class Student(msgspec.Struct, frozen=True, kw_only=True):
    """A student of a section with their personal fields, opened; an
    erased student's fields are ``None``."""

    person_id: UUID
    fields: dict[str, str | None] | None
    erased: bool = False


class Rostering:
    """The roster's commands, on one service's pool, store and keyring."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        keyring: Keyring,
        *,
        schema: str,
    ) -> None:
        self.pool = pool
        self.store = store
        self.keyring = keyring
        self.projection = RosterProjection(schema)
        self.reader = RosterReader(schema)
        self.catalogue = Catalogue(pool, schema)
        self.retention = RetentionReader(schema)
        self._events = f"{self.projection.schema}.events"

    async def import_bundle(
        self,
        tenant_id: str,
        bundle: RosterBundle,
        *,
        actor: Actor,
        progress: Progress | None = None,
    ) -> ImportSummary:
        """Record what ``bundle`` changes in the tenant's roster, all of it
        or nothing; an unchanged bundle records nothing."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            version = await self._take_turn(connection, tenant_id)

            # Load: people are found again by the digest of their sourcedId,
            # those a delta refers to without listing them included.
            sourced_ids = [person.sourced_id for person in bundle.people]
            sourced_ids += [
                reference.sourced_id
                for reference in bundle.unresolved
                if reference.target == "users.csv"
            ]
            digests = {
                sourced_id: await self.keyring.digest(
                    connection, tenant_id=tenant_id, value=sourced_id
                )
                for sourced_id in sourced_ids
            }
            listed = [digests[person.sourced_id] for person in bundle.people]
            state = await self.reader.state(
                connection, tenant_id, listed=listed, keyring=self.keyring
            )
            problems = unresolved_problems(bundle, state, digests=digests)
            if problems:
                raise RosterImportError(tuple(problems[:50]), total=len(problems))
            person_ids = {
                sourced_id: (
                    state.people[digest].person_id
                    if digest in state.people
                    else uuid7()
                )
                for sourced_id, digest in digests.items()
            }

            # Decide.
            plan = plan_import(
                bundle, state, digests=digests, person_ids=person_ids, at=actor.at
            )
            if plan.changes_nothing:
                log.info(
                    "roster.unchanged",
                    tenant=tenant_id,
                    skipped_erased=plan.skipped_erased,
                )
                return ImportSummary(
                    import_id=None,
                    counts=plan.counts,
                    events=0,
                    skipped_erased=plan.skipped_erased,
                )

            # Seal each person's fields with their own data key.
            changes = plan.people()
            sealed: dict[UUID, Sealed] = {}
            for done, change in enumerate(changes, start=1):
                sealed[change.person_id] = await self.keyring.seal(
                    connection,
                    tenant_id=tenant_id,
                    key_id=change.person_id,
                    fields=change.facts.fields,
                )
                if progress is not None:
                    progress(done, len(changes))
            import_id = uuid7()
            events = sealed_events(
                plan,
                sealed,
                import_id=import_id,
                imported_by=actor.subject,
                source_system=bundle.manifest.source_system,
                at=actor.at,
            )

            # Append and project in the same transaction.
            await self._record(connection, tenant_id, version, events, actor=actor)

        log.info(
            "roster.imported",
            tenant=tenant_id,
            import_id=str(import_id),
            events=len(events),
            skipped_erased=plan.skipped_erased,
            **{key: value for key, value in plan.counts.items() if value},
        )
        return ImportSummary(
            import_id=import_id,
            counts=plan.counts,
            events=len(events),
            skipped_erased=plan.skipped_erased,
        )

    async def erase(
        self,
        tenant_id: str,
        person_id: UUID,
        *,
        reason: str,
        actor: Actor,
    ) -> ErasureSummary:
        """Destroy the person's data key, record ``PersonErased`` and drop
        their sealed fields from the read model, in one transaction."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            version = await self._take_turn(connection, tenant_id)
            person = await self.reader.person(connection, tenant_id, person_id)
            if person is None:
                raise PersonNotFoundError(tenant_id, person_id)
            if person.erased:
                return ErasureSummary(person_id=person_id, erased=True, recorded=False)

            await self.keyring.destroy(
                connection,
                tenant_id=tenant_id,
                key_id=person_id,
                destroyed_by=actor.subject,
                destroyed_at=actor.at,
            )
            erased = PersonErased(
                person_id=person_id,
                erased_by=actor.subject,
                erased_at=actor.at,
                reason=reason,
            )
            await self._record(connection, tenant_id, version, [erased], actor=actor)

        log.info("person.erased", tenant=tenant_id, person_id=str(person_id))
        return ErasureSummary(person_id=person_id, erased=True, recorded=True)

    async def set_retention_period(
        self, tenant_id: str, days: int, *, actor: Actor
    ) -> tuple[RetentionPeriod, bool]:
        """Record the tenant's retention period; return it, and whether
        anything was recorded (the same period again records nothing)."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            version = await self._take_turn(connection, tenant_id)
            current = await self.retention.period(connection, tenant_id)
            if current is not None and current.days == days:
                return current, False

            event = RetentionPeriodSet(days=days, set_by=actor.subject, set_at=actor.at)
            await self._record(connection, tenant_id, version, [event], actor=actor)

        log.info("retention.period_set", tenant=tenant_id, days=days)
        period = RetentionPeriod(days=days, set_by=actor.subject, set_at=actor.at)
        return period, True

    async def retention_period(self, tenant_id: str) -> RetentionPeriod | None:
        """Return the tenant's retention period, or ``None`` when unset."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            return await self.retention.period(connection, tenant_id)

    async def sections(self, tenant_id: str) -> list[SectionRow]:
        """Return the tenant's sections not removed, with their sets."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            return await self.reader.sections(connection, tenant_id)

    async def students(self, tenant_id: str, section_id: str) -> list[Student]:
        """Return a section's students with their fields opened; an erased
        student's fields are ``None``."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            rows = await self.reader.students(connection, tenant_id, section_id)
            sealed = [row.personal for row in rows if row.personal is not None]
            opened = await self.keyring.open_many(
                connection, tenant_id=tenant_id, sealed=sealed
            )

        return [
            Student(
                person_id=row.person_id,
                fields=opened.get(row.person_id),
                erased=row.erased,
            )
            for row in rows
        ]

    async def section(self, tenant_id: str, section_id: str) -> SectionRow:
        """Return a section not removed, or raise ``SectionNotFoundError``."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            return await self._section(connection, tenant_id, section_id)

    async def link(
        self,
        tenant_id: str,
        section_id: str,
        objective_set_id: UUID,
        *,
        linked: bool,
        actor: Actor,
    ) -> LinkSummary:
        """Link the set to the section (``linked``) or unlink it; a link
        already in that state records nothing."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            version = await self._take_turn(connection, tenant_id)
            section = await self._section(connection, tenant_id, section_id)
            known = await self.catalogue.knows_objective_set(
                connection, tenant_id, objective_set_id
            )
            if linked and not known:
                raise UnknownObjectiveSetError(tenant_id, objective_set_id)

            current = set(section.objective_set_ids)
            if (objective_set_id in current) == linked:
                return LinkSummary(
                    section_id=section_id,
                    objective_set_ids=sorted(current),
                    recorded=False,
                )
            event: Event
            if linked:
                event = ObjectiveSetLinked(
                    section_id=section_id,
                    objective_set_id=objective_set_id,
                    linked_by=actor.subject,
                    linked_at=actor.at,
                )
                current.add(objective_set_id)
            else:
                event = ObjectiveSetUnlinked(
                    section_id=section_id,
                    objective_set_id=objective_set_id,
                    unlinked_by=actor.subject,
                    unlinked_at=actor.at,
                )
                current.discard(objective_set_id)
            await self._record(connection, tenant_id, version, [event], actor=actor)

        log.info(
            "section.objective_set_linked"
            if linked
            else "section.objective_set_unlinked",
            tenant=tenant_id,
            section_id=section_id,
            objective_set_id=str(objective_set_id),
        )
        return LinkSummary(
            section_id=section_id, objective_set_ids=sorted(current), recorded=True
        )

    async def _section(
        self, connection: Connection, tenant_id: str, section_id: str
    ) -> SectionRow:
        found = await self.reader.sections(connection, tenant_id, section_id=section_id)
        if not found or found[0].removed:
            raise SectionNotFoundError(tenant_id, section_id)

        return found[0]

    async def _take_turn(self, connection: Connection, tenant_id: str) -> int:
        """Wait for the tenant's other roster writers to commit, then return
        the version of its roster stream."""
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"mastery.roster.{tenant_id}",
        )
        version: int = await connection.fetchval(
            f"SELECT coalesce(max(stream_version), 0) FROM {self._events} "
            "WHERE tenant_id = $1 AND stream_id = $2",
            tenant_id,
            ROSTER_STREAM,
        )
        return version

    async def _record(
        self,
        connection: Connection,
        tenant_id: str,
        version: int,
        events: Sequence[Event],
        *,
        actor: Actor,
    ) -> None:
        """Append ``events`` to the roster stream and project each one."""
        pending = [
            PendingEvent(
                payload=event,
                occurred_at=actor.at,
                actor=actor.subject,
                correlation_id=actor.correlation_id,
            )
            for event in events
        ]
        batch = StreamAppend(
            tenant_id=tenant_id,
            stream_id=ROSTER_STREAM,
            expected_version=version,
            events=pending,
        )
        await self.store.append_within(connection, [batch])
        await self.projection.apply_many(connection, tenant_id, events)
