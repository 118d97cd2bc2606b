"""The roster's read model in grading's schema: kept by one projection, read
one tenant at a time.

``RosterProjection`` turns each roster event into one statement on the
``roster_*`` tables. An import applies the events it appends in the same
transaction, so the tables never lag the log; ``rebuild`` applies a
tenant's whole log to build them again from nothing. Every query here
expects the caller's ``tenant_transaction``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from uuid import UUID

import asyncpg
import msgspec

from mastery_events.contract import CONTRACT
from mastery_events.contract.registry import event_name
from mastery_events.contract.roster import (
    ROSTER_EVENTS,
    GuardianLinked,
    GuardianUnlinked,
    ObjectiveSetLinked,
    ObjectiveSetUnlinked,
    PersonEnrolled,
    PersonErased,
    PersonRemoved,
    PersonRostered,
    PersonUnenrolled,
    RetentionPeriodSet,
    SchoolRemoved,
    SchoolRostered,
    Sealed,
    SectionRemoved,
    SectionRostered,
    TermRemoved,
    TermRostered,
)
from mastery_events.database import Connection
from mastery_events.envelope import Envelope, Event
from mastery_events.keyring import Keyring
from mastery_events.migrations import quote_schema
from mastery_events.store import ENVELOPE_COLUMNS, envelope_from_row
from mastery_grading.roster_import import (
    EnrollmentFacts,
    EnrollmentKey,
    PersonFacts,
    RosterState,
    SchoolFacts,
    SectionFacts,
    Stored,
    StoredEnrollment,
    StoredPerson,
    TermFacts,
)

ROSTER_STREAM = "roster"
ROSTER_TABLES = (
    "roster_schools",
    "roster_terms",
    "roster_sections",
    "roster_people",
    "roster_enrollments",
    "roster_guardians",
    "section_objective_sets",
    "retention_periods",
)
ROSTER_EVENT_NAMES = tuple(event_name(kind) for kind in ROSTER_EVENTS)


class SectionRow(msgspec.Struct, frozen=True, kw_only=True):
    """A section as the read model holds it, with the sets it teaches."""

    section_id: str
    title: str
    class_code: str | None
    school_id: str
    course_id: str
    course_title: str
    course_code: str | None
    term_ids: list[str]
    removed: bool
    objective_set_ids: list[UUID]


class PersonRow(msgspec.Struct, frozen=True, kw_only=True):
    """A person as the read model holds them: their fields still sealed,
    and no seal at all once erased."""

    person_id: UUID
    role: str
    enabled: bool
    removed: bool
    erased: bool
    personal: Sealed | None


Statement = tuple[str, tuple[object, ...]]


def _sql(query: str, *arguments: object) -> Statement:
    return query, arguments


class RosterProjection:
    """Apply roster events to the read model in ``schema``."""

    def __init__(self, schema: str) -> None:
        self.schema = quote_schema(schema)

    def table(self, name: str) -> str:
        """Return ``name`` qualified by the service's schema."""
        return f"{self.schema}.{name}"

    async def __call__(
        self, connection: Connection, envelope: Envelope, event: Event
    ) -> None:
        """Apply one event of ``envelope``'s tenant to the tables."""
        found = self.statement(envelope.tenant_id, event)
        if found is not None:
            query, arguments = found
            await connection.execute(query, *arguments)

    async def apply_many(
        self, connection: Connection, tenant_id: str, events: Iterable[Event]
    ) -> None:
        """Apply ``events`` of one tenant in order, sending each run of
        events that share a statement as one pipelined ``executemany``."""
        query = ""
        run: list[tuple[object, ...]] = []
        for event in events:
            found = self.statement(tenant_id, event)
            if found is None:
                continue
            if found[0] != query and run:
                await connection.executemany(query, run)
                run = []
            query = found[0]
            run.append(found[1])
        if run:
            await connection.executemany(query, run)

    def statement(self, tenant: str, event: Event) -> Statement | None:
        """Return the statement and arguments that apply ``event``, or
        ``None`` when it changes no roster table."""
        match event:
            case SchoolRostered():
                return _sql(
                    f"INSERT INTO {self.table('roster_schools')} "
                    "(tenant_id, school_id, name, identifier) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (tenant_id, school_id) DO UPDATE SET "
                    "name = excluded.name, identifier = excluded.identifier, "
                    "removed = false",
                    tenant,
                    event.school_id,
                    event.name,
                    event.identifier,
                )
            case SchoolRemoved():
                return self._removal(
                    "roster_schools", "school_id", tenant, event.school_id
                )
            case TermRostered():
                return _sql(
                    f"INSERT INTO {self.table('roster_terms')} (tenant_id, term_id, "
                    "title, kind, starts_on, ends_on, school_year, parent_id) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                    "ON CONFLICT (tenant_id, term_id) DO UPDATE SET "
                    "title = excluded.title, kind = excluded.kind, "
                    "starts_on = excluded.starts_on, ends_on = excluded.ends_on, "
                    "school_year = excluded.school_year, "
                    "parent_id = excluded.parent_id, removed = false",
                    tenant,
                    event.term_id,
                    event.title,
                    event.kind,
                    event.starts_on,
                    event.ends_on,
                    event.school_year,
                    event.parent_id,
                )
            case TermRemoved():
                return self._removal("roster_terms", "term_id", tenant, event.term_id)
            case SectionRostered():
                return _sql(
                    f"INSERT INTO {self.table('roster_sections')} (tenant_id, "
                    "section_id, title, class_code, school_id, course_id, "
                    "course_title, course_code, term_ids) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                    "ON CONFLICT (tenant_id, section_id) DO UPDATE SET "
                    "title = excluded.title, class_code = excluded.class_code, "
                    "school_id = excluded.school_id, course_id = excluded.course_id, "
                    "course_title = excluded.course_title, "
                    "course_code = excluded.course_code, "
                    "term_ids = excluded.term_ids, removed = false",
                    tenant,
                    event.section_id,
                    event.title,
                    event.class_code,
                    event.school_id,
                    event.course_id,
                    event.course_title,
                    event.course_code,
                    list(event.term_ids),
                )
            case SectionRemoved():
                return self._removal(
                    "roster_sections",
                    "section_id",
                    tenant,
                    event.section_id,
                )
            case PersonRostered():
                return self._person(tenant, event)
            case PersonRemoved():
                # When they left starts their retention period.
                return _sql(
                    f"UPDATE {self.table('roster_people')} "
                    "SET removed = true, removed_at = $3 "
                    "WHERE tenant_id = $1 AND person_id = $2",
                    tenant,
                    event.person_id,
                    event.removed_at,
                )
            case PersonErased():
                # The seal goes with the key: nothing readable, or even
                # decryptable, is left of the person here.
                return _sql(
                    f"UPDATE {self.table('roster_people')} "
                    "SET personal = NULL, erased = true "
                    "WHERE tenant_id = $1 AND person_id = $2",
                    tenant,
                    event.person_id,
                )
            case PersonEnrolled():
                return _sql(
                    f"INSERT INTO {self.table('roster_enrollments')} (tenant_id, "
                    "section_id, person_id, role, begins_on, ends_on) "
                    "VALUES ($1, $2, $3, $4, $5, $6) "
                    "ON CONFLICT (tenant_id, section_id, person_id, role) "
                    "DO UPDATE SET begins_on = excluded.begins_on, "
                    "ends_on = excluded.ends_on, active = true, ended_at = NULL",
                    tenant,
                    event.section_id,
                    event.person_id,
                    event.role,
                    event.begins_on,
                    event.ends_on,
                )
            case PersonUnenrolled():
                return _sql(
                    f"UPDATE {self.table('roster_enrollments')} "
                    "SET active = false, ended_at = $4 "
                    "WHERE tenant_id = $1 AND section_id = $2 AND person_id = $3",
                    tenant,
                    event.section_id,
                    event.person_id,
                    event.unenrolled_at,
                )
            case RetentionPeriodSet():
                return _sql(
                    f"INSERT INTO {self.table('retention_periods')} "
                    "(tenant_id, days, set_by, set_at) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (tenant_id) DO UPDATE SET days = excluded.days, "
                    "set_by = excluded.set_by, set_at = excluded.set_at",
                    tenant,
                    event.days,
                    event.set_by,
                    event.set_at,
                )
            case GuardianLinked():
                return _sql(
                    f"INSERT INTO {self.table('roster_guardians')} "
                    "(tenant_id, guardian_id, student_id) VALUES ($1, $2, $3) "
                    "ON CONFLICT DO NOTHING",
                    tenant,
                    event.guardian_id,
                    event.student_id,
                )
            case GuardianUnlinked():
                return _sql(
                    f"DELETE FROM {self.table('roster_guardians')} WHERE "
                    "tenant_id = $1 AND guardian_id = $2 AND student_id = $3",
                    tenant,
                    event.guardian_id,
                    event.student_id,
                )
            case ObjectiveSetLinked():
                return _sql(
                    f"INSERT INTO {self.table('section_objective_sets')} "
                    "(tenant_id, section_id, objective_set_id) VALUES ($1, $2, $3) "
                    "ON CONFLICT DO NOTHING",
                    tenant,
                    event.section_id,
                    event.objective_set_id,
                )
            case ObjectiveSetUnlinked():
                return _sql(
                    f"DELETE FROM {self.table('section_objective_sets')} WHERE "
                    "tenant_id = $1 AND section_id = $2 AND objective_set_id = $3",
                    tenant,
                    event.section_id,
                    event.objective_set_id,
                )
            case _:
                # The import's summary and events of other kinds change no
                # roster table.
                return None

    def _removal(self, table: str, column: str, tenant: str, key: object) -> Statement:
        return _sql(
            f"UPDATE {self.table(table)} SET removed = true "
            f"WHERE tenant_id = $1 AND {column} = $2",
            tenant,
            key,
        )

    def _person(self, tenant: str, event: PersonRostered) -> Statement:
        # An erased person's row never takes a seal again, whatever a late
        # or replayed event carries.
        return _sql(
            f"INSERT INTO {self.table('roster_people')} AS p (tenant_id, "
            "person_id, sourced_id_digest, role, school_ids, enabled, personal) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) "
            "ON CONFLICT (tenant_id, person_id) DO UPDATE SET "
            "sourced_id_digest = excluded.sourced_id_digest, "
            "role = excluded.role, school_ids = excluded.school_ids, "
            "enabled = excluded.enabled, removed = false, removed_at = NULL, "
            "personal = CASE WHEN p.erased THEN NULL ELSE excluded.personal END",
            tenant,
            event.person_id,
            event.sourced_id_digest,
            event.role,
            list(event.school_ids),
            event.enabled,
            msgspec.json.encode(event.personal).decode(),
        )

    async def rebuild(self, connection: Connection, tenant_id: str) -> int:
        """Empty the tenant's roster tables and replay its roster events in
        the log's order; return how many were applied."""
        for name in ROSTER_TABLES:
            await connection.execute(
                f"DELETE FROM {self.table(name)} WHERE tenant_id = $1", tenant_id
            )
        rows = await connection.fetch(
            f"SELECT {ENVELOPE_COLUMNS} FROM {self.schema}.events AS events "
            "WHERE tenant_id = $1 AND event_type = ANY($2::text[]) "
            "ORDER BY events.transaction_id, events.position",
            tenant_id,
            list(ROSTER_EVENT_NAMES),
        )
        events = [CONTRACT.decode(envelope_from_row(row)) for row in rows]
        await self.apply_many(connection, tenant_id, events)

        return len(events)


class RosterReader:
    """Read the roster of the tenant whose transaction the caller holds."""

    def __init__(self, schema: str) -> None:
        self.tables = RosterProjection(schema)

    async def state(
        self,
        connection: Connection,
        tenant_id: str,
        *,
        listed: Collection[str],
        keyring: Keyring,
    ) -> RosterState:
        """Return the stored roster for planning an import.

        Only the people whose digest is in ``listed`` (those the bundle
        names) are opened with ``keyring``, to compare their fields; the
        others keep ``facts`` of ``None``.
        """
        table = self.tables.table
        schools = {
            row["school_id"]: Stored(
                facts=SchoolFacts(name=row["name"], identifier=row["identifier"]),
                removed=row["removed"],
            )
            for row in await connection.fetch(
                f"SELECT * FROM {table('roster_schools')} WHERE tenant_id = $1",
                tenant_id,
            )
        }
        terms = {
            row["term_id"]: Stored(
                facts=TermFacts(
                    title=row["title"],
                    kind=row["kind"],
                    starts_on=row["starts_on"],
                    ends_on=row["ends_on"],
                    school_year=row["school_year"],
                    parent_id=row["parent_id"],
                ),
                removed=row["removed"],
            )
            for row in await connection.fetch(
                f"SELECT * FROM {table('roster_terms')} WHERE tenant_id = $1",
                tenant_id,
            )
        }
        sections = {
            row["section_id"]: Stored(
                facts=SectionFacts(
                    title=row["title"],
                    class_code=row["class_code"],
                    school_id=row["school_id"],
                    course_id=row["course_id"],
                    course_title=row["course_title"],
                    course_code=row["course_code"],
                    term_ids=tuple(row["term_ids"]),
                ),
                removed=row["removed"],
            )
            for row in await connection.fetch(
                f"SELECT * FROM {table('roster_sections')} WHERE tenant_id = $1",
                tenant_id,
            )
        }
        rows = await connection.fetch(
            "SELECT person_id, sourced_id_digest, role, school_ids, enabled, "
            f"personal, removed, erased FROM {table('roster_people')} "
            "WHERE tenant_id = $1",
            tenant_id,
        )
        wanted = set(listed)
        sealed = [
            msgspec.json.decode(row["personal"], type=Sealed)
            for row in rows
            if row["sourced_id_digest"] in wanted and row["personal"] is not None
        ]
        opened = await keyring.open_many(connection, tenant_id=tenant_id, sealed=sealed)
        people: dict[str, StoredPerson] = {}
        for row in rows:
            fields = opened.get(row["person_id"])
            facts = None
            if fields is not None:
                facts = PersonFacts(
                    role=row["role"],
                    school_ids=tuple(row["school_ids"]),
                    enabled=row["enabled"],
                    fields=fields,
                )
            people[row["sourced_id_digest"]] = StoredPerson(
                person_id=row["person_id"],
                sourced_id_digest=row["sourced_id_digest"],
                facts=facts,
                removed=row["removed"],
                erased=row["erased"],
            )
        enrollments: dict[EnrollmentKey, StoredEnrollment] = {
            (row["section_id"], row["person_id"], row["role"]): StoredEnrollment(
                facts=EnrollmentFacts(
                    begins_on=row["begins_on"], ends_on=row["ends_on"]
                ),
                active=row["active"],
            )
            for row in await connection.fetch(
                f"SELECT * FROM {table('roster_enrollments')} WHERE tenant_id = $1",
                tenant_id,
            )
        }
        links = frozenset(
            (row["guardian_id"], row["student_id"])
            for row in await connection.fetch(
                f"SELECT guardian_id, student_id FROM {table('roster_guardians')} "
                "WHERE tenant_id = $1",
                tenant_id,
            )
        )

        return RosterState(
            schools=schools,
            terms=terms,
            sections=sections,
            people=people,
            enrollments=enrollments,
            guardian_links=links,
        )

    async def people(
        self, connection: Connection, tenant_id: str, person_ids: Iterable[UUID]
    ) -> dict[UUID, PersonRow]:
        """Return the people named, by id, with their sealed fields."""
        rows = await connection.fetch(
            "SELECT person_id, role, enabled, removed, erased, personal "
            f"FROM {self.tables.table('roster_people')} "
            "WHERE tenant_id = $1 AND person_id = ANY($2::uuid[])",
            tenant_id,
            list(person_ids),
        )
        return {row["person_id"]: _person_row(row) for row in rows}

    async def person(
        self, connection: Connection, tenant_id: str, person_id: UUID
    ) -> PersonRow | None:
        """Return one person, or ``None`` when the tenant has no such one."""
        found = await self.people(connection, tenant_id, [person_id])

        return found.get(person_id)

    async def sections(
        self,
        connection: Connection,
        tenant_id: str,
        *,
        section_id: str | None = None,
    ) -> list[SectionRow]:
        """Return the tenant's sections not removed, or the one named,
        each with the objective sets linked to it."""
        table = self.tables.table
        rows = await connection.fetch(
            "SELECT s.section_id, s.title, s.class_code, s.school_id, "
            "s.course_id, s.course_title, s.course_code, s.term_ids, s.removed, "
            "coalesce(array_agg(l.objective_set_id ORDER BY l.objective_set_id) "
            "FILTER (WHERE l.objective_set_id IS NOT NULL), '{}') "
            "AS objective_set_ids "
            f"FROM {table('roster_sections')} AS s "
            f"LEFT JOIN {table('section_objective_sets')} AS l "
            "USING (tenant_id, section_id) "
            "WHERE s.tenant_id = $1 AND ($2::text IS NULL AND NOT s.removed "
            "OR s.section_id = $2) "
            "GROUP BY s.tenant_id, s.section_id ORDER BY s.section_id",
            tenant_id,
            section_id,
        )
        return [SectionRow(**dict(row)) for row in rows]

    async def students(
        self, connection: Connection, tenant_id: str, section_id: str
    ) -> list[PersonRow]:
        """Return the people enrolled in a section as students now, still
        sealed, in enrollment order of their ids."""
        table = self.tables.table
        rows = await connection.fetch(
            "SELECT p.person_id, p.role, p.enabled, p.removed, p.erased, "
            f"p.personal FROM {table('roster_enrollments')} AS e "
            f"JOIN {table('roster_people')} AS p USING (tenant_id, person_id) "
            "WHERE e.tenant_id = $1 AND e.section_id = $2 AND e.active "
            "AND e.role = 'student' AND NOT p.removed ORDER BY p.person_id",
            tenant_id,
            section_id,
        )
        return [_person_row(row) for row in rows]


def _person_row(row: asyncpg.Record) -> PersonRow:
    values = dict(row)
    personal = values.pop("personal")
    sealed = None if personal is None else msgspec.json.decode(personal, type=Sealed)

    return PersonRow(**values, personal=sealed)
