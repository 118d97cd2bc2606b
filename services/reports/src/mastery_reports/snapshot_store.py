"""Snapshots in reports' schema: built from the facts, read by the routes.

``SnapshotWriter`` runs inside a consumer's transaction: for each student
a batch of events touched it either patches the stored snapshot with the
facts of the objectives the batch graded (the pure ``patched``) or loads
all the student's facts and builds the snapshot again (``build_snapshot``),
and stores them with the log positions, per source service, that each
reflects.
``Snapshots`` reads them, one tenant at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from mastery_events.contract.roster import Sealed
from mastery_events.database import Connection
from mastery_events.keyring import Keyring, PersonalFields
from mastery_events.migrations import quote_schema
from mastery_events.subjects import check_tenant_id
from mastery_events.tenancy import tenant_read, tenant_transaction
from mastery_reports.snapshots import (
    WHOLE,
    AssessmentFact,
    Change,
    GradeFact,
    LetterCutFact,
    MasteryPointFact,
    ObjectiveFact,
    ObjectiveSetFact,
    ScaleLevelFact,
    SectionFact,
    StoredReport,
    StudentFacts,
    StudentSnapshot,
    TermFact,
    build_snapshot,
    patched,
)


class StoredSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot as stored: the report, and the log position per source
    service of the last event it reflects."""

    snapshot: StudentSnapshot
    positions: dict[str, int]
    updated_at: datetime


class SectionPlace(msgspec.Struct, frozen=True, kw_only=True):
    """Where one section of a snapshot belongs, which is all a caller's
    right to read it depends on."""

    section_id: str
    school_id: str


class StoredJson(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot as stored, left as the JSON text the database gives, with
    where each of its sections belongs: a route can decide who reads it and
    answer with it without decoding it."""

    document: str
    positions: str
    sections: tuple[SectionPlace, ...]


class SectionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A section as reports knows it: where it belongs."""

    section_id: str
    school_id: str
    title: str
    term_ids: tuple[str, ...]


class Refreshed(msgspec.Struct, frozen=True, kw_only=True):
    """How many snapshots a batch patched, and how many it built again."""

    patched: int
    rebuilt: int


class SnapshotWriter:
    """Rebuild a student's snapshot from the facts, on the caller's
    connection and inside its transaction."""

    def __init__(self, schema: str) -> None:
        self._schema = quote_schema(schema)

    def table(self, name: str) -> str:
        """Return a table of the schema, quoted for a statement."""
        return f"{self._schema}.{name}"

    async def advance(
        self, connection: Connection, tenant_id: str, *, source: str, position: int
    ) -> None:
        """Record that ``source``'s log is applied up to ``position`` for
        the tenant; a redelivered older event never moves it back."""
        await connection.execute(
            f"INSERT INTO {self.table('source_positions')} AS p (tenant_id, "
            "source, position) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, "
            "source) DO UPDATE SET position = greatest(p.position, "
            "excluded.position)",
            tenant_id,
            source,
            position,
        )

    async def refresh(
        self,
        connection: Connection,
        tenant_id: str,
        touched: Mapping[str, int],
        *,
        source: str,
        changes: Mapping[str, Change] | None = None,
    ) -> Refreshed:
        """Bring the snapshots of the students in ``touched`` up to date
        and store them in one statement.

        ``touched`` maps each student to the position in ``source``'s log of
        the last event that changed their facts. A snapshot records, for
        ``source``, that position (or the one already reached, when a
        redelivered older event touched it) and, for every other source, the
        position its consumer has reached: what a snapshot rebuilt after
        each event would record, whichever events shared a batch.

        ``changes`` says what changed of each student's facts; a student
        missing from it, or whose change is ``whole``, is built again from
        all their facts, loaded for all such students at once. The others'
        stored snapshots are patched with their changed objectives' facts,
        or built again where the patch cannot be sure.
        """
        if not touched:
            return Refreshed(patched=0, rebuilt=0)
        students = sorted(touched)
        wanted = changes or {}
        built = await self.patched_of(
            connection,
            tenant_id,
            {
                student: wanted[student]
                for student in students
                if not wanted.get(student, WHOLE).whole
            },
        )
        rebuilt = [student for student in students if student not in built]
        facts = await self.facts_of(connection, tenant_id, rebuilt)
        encoder = msgspec.json.Encoder()
        documents = {
            student: encoder.encode(report).decode()
            for student, report in built.items()
        }
        for student in rebuilt:
            documents[student] = encoder.encode(build_snapshot(facts[student])).decode()

        await connection.execute(
            f"INSERT INTO {self.table('snapshots')} AS s (tenant_id, student_id, "
            "document, positions, updated_at) SELECT $1, t.student_id, "
            "t.document::json, coalesce(reached.positions, '{}') || "
            "jsonb_build_object($5::text, greatest(t.position, "
            "(reached.positions ->> $5::text)::bigint)), now() "
            "FROM unnest($2::text[], $3::text[], $4::bigint[]) "
            "AS t(student_id, document, position) CROSS JOIN (SELECT "
            "jsonb_object_agg(source, position) AS positions "
            f"FROM {self.table('source_positions')} WHERE tenant_id = $1) "
            "AS reached ON CONFLICT (tenant_id, student_id) DO UPDATE SET "
            "document = excluded.document, positions = excluded.positions, "
            "updated_at = now()",
            tenant_id,
            students,
            [documents[student] for student in students],
            [touched[student] for student in students],
            source,
        )

        return Refreshed(patched=len(built), rebuilt=len(rebuilt))

    async def patched_of(
        self,
        connection: Connection,
        tenant_id: str,
        changes: Mapping[str, Change],
    ) -> dict[str, StoredReport]:
        """Return the stored snapshots of the students in ``changes``
        patched with the facts of the objectives each change names, loaded
        for all of them with one statement per kind of fact; a student
        without a stored snapshot, or whose patch cannot be sure, is left
        out for the caller to build again."""
        if not changes:
            return {}
        stored_documents = {
            row["student_id"]: _stored_report.decode(row["document"])
            for row in await connection.fetch(
                "SELECT student_id, document "
                f"FROM {self.table('snapshots')} "
                "WHERE tenant_id = $1 AND student_id = ANY($2)",
                tenant_id,
                sorted(changes),
            )
        }
        students = sorted(stored_documents)
        objectives = {student: changes[student].objectives for student in students}
        mastery = await self._mastery(
            connection, tenant_id, students, objectives=objectives
        )
        assessments = await self._assessments(
            connection, tenant_id, students, objectives=objectives
        )
        scales = await self._scales(connection, tenant_id, mastery, assessments)
        # A section's traditional grade can change only when a grade did,
        # or, with a bridge, when a level did; a section that shows none
        # has neither grades nor a bridge.
        graded = sorted(
            student
            for student, snapshot in stored_documents.items()
            if changes[student].grades
            or any(s.traditional is not None for s in snapshot.sections)
        )
        grades = await self._grades(connection, tenant_id, graded)
        bridges = await self._bridges(
            connection,
            tenant_id,
            sorted(
                {
                    section.section_id
                    for student in graded
                    for section in stored_documents[student].sections
                }
            ),
        )

        found = {}
        for student, snapshot in stored_documents.items():
            patch = patched(
                snapshot,
                changes[student].objectives,
                mastery=mastery[student],
                assessments=assessments[student],
                scales=scales,
                grades=grades.get(student, []) if student in graded else None,
                bridges=bridges,
            )
            if patch is not None:
                found[student] = patch

        return found

    async def _mastery(
        self,
        connection: Connection,
        tenant_id: str,
        students: Sequence[str],
        *,
        objectives: Mapping[str, frozenset[UUID]] | None = None,
    ) -> dict[str, list[MasteryPointFact]]:
        """Load the mastery points of ``students``, only of each one's
        ``objectives`` when given."""
        rows = await self._rows_of(
            connection,
            tenant_id,
            "m.student_id, m.objective_id, m.valid_from, m.position, "
            "m.status, m.level, m.level_label, m.mastered, m.scale_id, "
            "m.scale_version",
            self.table("mastery_points"),
            students=students,
            objectives=objectives,
        )

        return {
            student: [MasteryPointFact(**fields) for fields in held]
            for student, held in rows.items()
        }

    async def _assessments(
        self,
        connection: Connection,
        tenant_id: str,
        students: Sequence[str],
        *,
        objectives: Mapping[str, frozenset[UUID]] | None = None,
    ) -> dict[str, list[AssessmentFact]]:
        """Load the assessments not voided of ``students``, only of each
        one's ``objectives`` when given."""
        rows = await self._rows_of(
            connection,
            tenant_id,
            "m.student_id, m.assessment_id, m.objective_id, m.scale_id, "
            "m.scale_version, m.level, m.mark, m.assessed_at, m.evidence, "
            "m.evidence_kind, m.comment",
            self.table("assessments"),
            students=students,
            objectives=objectives,
            counted="NOT m.voided",
        )

        return {
            student: [AssessmentFact(**fields) for fields in held]
            for student, held in rows.items()
        }

    async def _rows_of(
        self,
        connection: Connection,
        tenant_id: str,
        columns: str,
        table: str,
        *,
        students: Sequence[str],
        objectives: Mapping[str, frozenset[UUID]] | None,
        counted: str = "TRUE",
    ) -> dict[str, list[dict[str, Any]]]:
        """Select ``columns`` of ``table``, aliased ``m``, for the rows of
        every student (of only their named objectives when ``objectives``
        is given) with one statement for all of them; return each student's
        rows without the student's id.

        The named pairs are looked up one at a time through the index on
        student and objective: a join the planner were free to choose could
        read every row of the tenant's and hash them, and a batch would
        then cost as much as the district's whole history. ``OFFSET 0``
        keeps the lookup a subquery the planner does not fold into a join.
        """
        found: dict[str, list[dict[str, Any]]] = {s: [] for s in students}
        if objectives is None:
            rows = await connection.fetch(
                f"SELECT {columns} FROM {table} m WHERE m.tenant_id = $1 "
                f"AND m.student_id = ANY($2) AND {counted}",
                tenant_id,
                list(students),
            )
        else:
            pairs = [
                (student, objective_id)
                for student in students
                for objective_id in sorted(objectives[student])
            ]
            rows = await connection.fetch(
                f"SELECT {columns} FROM unnest($2::text[], $3::uuid[]) "
                "AS pair(student_id, objective_id) CROSS JOIN LATERAL "
                f"(SELECT * FROM {table} m WHERE m.tenant_id = $1 "
                "AND m.student_id = pair.student_id "
                f"AND m.objective_id = pair.objective_id AND {counted} "
                "OFFSET 0) m",
                tenant_id,
                [student for student, _ in pairs],
                [objective_id for _, objective_id in pairs],
            )
        for row in rows:
            fields = dict(row)
            found[fields.pop("student_id")].append(fields)

        return found

    async def _scales(
        self,
        connection: Connection,
        tenant_id: str,
        mastery: Mapping[str, Sequence[MasteryPointFact]],
        assessments: Mapping[str, Sequence[AssessmentFact]],
    ) -> dict[tuple[UUID, int], tuple[ScaleLevelFact, ...]]:
        """Load every version of the scales ``mastery`` and ``assessments``
        were graded on."""
        scale_ids = {p.scale_id for held in mastery.values() for p in held} | {
            a.scale_id for held in assessments.values() for a in held
        }

        return {
            (row["scale_id"], row["scale_version"]): msgspec.json.decode(
                row["levels"], type=tuple[ScaleLevelFact, ...]
            )
            for row in await connection.fetch(
                "SELECT scale_id, scale_version, levels "
                f"FROM {self.table('scale_versions')} "
                "WHERE tenant_id = $1 AND scale_id = ANY($2)",
                tenant_id,
                sorted(scale_ids),
            )
        }

    async def _grades(
        self, connection: Connection, tenant_id: str, student_ids: Sequence[str]
    ) -> dict[str, list[GradeFact]]:
        """Load the traditional grades of ``student_ids`` not voided."""
        grades: dict[str, list[GradeFact]] = {s: [] for s in student_ids}
        if not student_ids:
            return grades
        for row in await connection.fetch(
            "SELECT student_id, section_id, kind, percent, points, "
            f"points_possible, passed FROM {self.table('traditional_grades')} "
            "WHERE tenant_id = $1 AND student_id = ANY($2) AND NOT voided",
            tenant_id,
            student_ids,
        ):
            fields = dict(row)
            grades[fields.pop("student_id")].append(GradeFact(**fields))

        return grades

    async def _bridges(
        self, connection: Connection, tenant_id: str, section_ids: Sequence[str]
    ) -> dict[str, tuple[LetterCutFact, ...]]:
        """Load the grade bridges of ``section_ids`` that keep one."""
        if not section_ids:
            return {}

        return {
            row["section_id"]: msgspec.json.decode(
                row["cuts"], type=tuple[LetterCutFact, ...]
            )
            for row in await connection.fetch(
                f"SELECT section_id, cuts FROM {self.table('grade_bridges')} "
                "WHERE tenant_id = $1 AND section_id = ANY($2)",
                tenant_id,
                section_ids,
            )
        }

    async def facts(
        self, connection: Connection, tenant_id: str, student_id: str
    ) -> StudentFacts:
        """Load everything reports knows that bears on one student."""
        return (await self.facts_of(connection, tenant_id, [student_id]))[student_id]

    async def facts_of(
        self, connection: Connection, tenant_id: str, student_ids: Sequence[str]
    ) -> dict[str, StudentFacts]:
        """Load everything reports knows that bears on each of
        ``student_ids``, with one statement per kind of fact for all of
        them: a batch costs as many round trips as one student."""
        wanted = sorted(set(student_ids))
        if not wanted:
            return {}
        sections: dict[str, list[SectionFact]] = {s: [] for s in wanted}
        for row in await connection.fetch(
            "SELECT e.person_id, s.section_id, s.school_id, s.title, "
            f"s.course_title, s.term_ids FROM {self.table('enrollments')} e "
            f"JOIN {self.table('sections')} s USING (tenant_id, section_id) "
            "WHERE e.tenant_id = $1 AND e.person_id = ANY($2) "
            "AND e.role = 'student' AND e.active AND NOT s.removed",
            tenant_id,
            wanted,
        ):
            sections[row["person_id"]].append(
                SectionFact(
                    section_id=row["section_id"],
                    school_id=row["school_id"],
                    title=row["title"],
                    course_title=row["course_title"],
                    term_ids=tuple(row["term_ids"]),
                )
            )
        section_ids = sorted({s.section_id for held in sections.values() for s in held})

        # Each set with every touched student's section it is linked to;
        # a student's own sections narrow it below.
        linked: list[tuple[UUID, str, frozenset[str]]] = [
            (row["objective_set_id"], row["title"] or "", frozenset(row["section_ids"]))
            for row in await connection.fetch(
                "SELECT l.objective_set_id, min(o.title) AS title, "
                "array_agg(l.section_id) AS section_ids "
                f"FROM {self.table('section_objective_sets')} l "
                f"LEFT JOIN {self.table('objective_sets')} o "
                "USING (tenant_id, objective_set_id) WHERE l.tenant_id = $1 "
                "AND l.section_id = ANY($2) AND l.linked "
                "GROUP BY l.objective_set_id",
                tenant_id,
                section_ids,
            )
        ]
        objectives: dict[UUID, list[ObjectiveFact]] = {}
        for row in await connection.fetch(
            "SELECT objective_id, objective_set_id, code, statement, "
            f"sort_order, grade_bands FROM {self.table('objectives')} "
            "WHERE tenant_id = $1 AND objective_set_id = ANY($2) "
            "AND NOT removed",
            tenant_id,
            [set_id for set_id, _, _ in linked],
        ):
            objectives.setdefault(row["objective_set_id"], []).append(
                ObjectiveFact(
                    objective_id=row["objective_id"],
                    objective_set_id=row["objective_set_id"],
                    code=row["code"],
                    statement=row["statement"],
                    sort_order=row["sort_order"],
                    grade_bands=tuple(row["grade_bands"]),
                )
            )
        mastery = await self._mastery(connection, tenant_id, wanted)
        assessments = await self._assessments(connection, tenant_id, wanted)
        scales = await self._scales(connection, tenant_id, mastery, assessments)
        grades = await self._grades(connection, tenant_id, wanted)
        bridges = await self._bridges(connection, tenant_id, section_ids)
        terms = {
            row["term_id"]: TermFact(**dict(row))
            for row in await connection.fetch(
                "SELECT term_id, title, starts_on, ends_on "
                f"FROM {self.table('terms')} "
                "WHERE tenant_id = $1 AND term_id = ANY($2)",
                tenant_id,
                sorted(
                    {t for held in sections.values() for s in held for t in s.term_ids}
                ),
            )
        }

        return {
            student: narrowed_to(
                student,
                sections=sections[student],
                linked=linked,
                objectives=objectives,
                mastery=mastery[student],
                assessments=assessments[student],
                scales=scales,
                grades=grades[student],
                bridges=bridges,
                terms=terms,
            )
            for student in wanted
        }


def narrowed_to(
    student_id: str,
    *,
    sections: Sequence[SectionFact],
    linked: Sequence[tuple[UUID, str, frozenset[str]]],
    objectives: Mapping[UUID, Sequence[ObjectiveFact]],
    mastery: Sequence[MasteryPointFact],
    assessments: Sequence[AssessmentFact],
    scales: Mapping[tuple[UUID, int], tuple[ScaleLevelFact, ...]],
    grades: Sequence[GradeFact],
    bridges: Mapping[str, tuple[LetterCutFact, ...]],
    terms: Mapping[str, TermFact],
) -> StudentFacts:
    """Return one student's facts out of those loaded for a batch of
    students: only the sets, objectives, scales, bridges and terms her own
    sections and marks reach, as loading her alone would give."""
    own_sections = {s.section_id for s in sections}
    sets = [
        ObjectiveSetFact(
            objective_set_id=set_id,
            title=title,
            section_ids=tuple(sorted(section_ids & own_sections)),
        )
        for set_id, title, section_ids in linked
        if section_ids & own_sections
    ]
    scale_ids = {p.scale_id for p in mastery} | {a.scale_id for a in assessments}
    term_ids = {t for s in sections for t in s.term_ids}

    return StudentFacts(
        student_id=student_id,
        sections=tuple(sections),
        objective_sets=tuple(sets),
        objectives=tuple(
            o for s in sets for o in objectives.get(s.objective_set_id, ())
        ),
        mastery=tuple(mastery),
        assessments=tuple(assessments),
        scales={key: levels for key, levels in scales.items() if key[0] in scale_ids},
        grades=tuple(grades),
        bridges={k: cuts for k, cuts in bridges.items() if k in own_sections},
        terms=tuple(terms[t] for t in sorted(term_ids) if t in terms),
    )


_stored_report = msgspec.json.Decoder(StoredReport)


class _Places(msgspec.Struct, frozen=True):
    """A snapshot's sections' places; decoding skips every other field."""

    sections: tuple[SectionPlace, ...] = ()


_places = msgspec.json.Decoder(_Places)


class Snapshots:
    """Reports' snapshots and sections, read one tenant at a time."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        *,
        statements: asyncpg.Pool | None = None,
    ) -> None:
        # The student's report may take a pool without the session reset
        # (``ServiceRuntime.statement_pool``); any pool answers the same.
        self.pool = pool
        self.statements = statements or pool
        self._schema = quote_schema(schema)

    def table(self, name: str) -> str:
        """Return a table of the schema, quoted for a statement."""
        return f"{self._schema}.{name}"

    async def of_student(
        self, tenant_id: str, student_id: str
    ) -> StoredSnapshot | None:
        """Return a student's snapshot, or ``None`` when reports has none."""
        rows = await self._fetch(
            tenant_id,
            "SELECT document, positions, updated_at "
            f"FROM {self.table('snapshots')} "
            "WHERE tenant_id = $1 AND student_id = $2",
            student_id,
        )
        if not rows:
            return None

        return stored(rows[0])

    async def json_of_student(
        self, tenant_id: str, student_id: str
    ) -> StoredJson | None:
        """Return a student's snapshot as its stored JSON text, or ``None``
        when reports has none, with its sections' places read from the
        text by a decoder that skips everything else.

        The most frequent read of all goes to the server as one statement,
        ``student_report``, which binds the tenant for its own transaction,
        over a connection that needs no reset afterwards: one round trip
        where a transaction around the query took four.
        """
        check_tenant_id(tenant_id)
        async with self.statements.acquire() as connection:
            rows = await connection.fetch(
                f"SELECT * FROM {self.table('student_report')}($1, $2)",
                tenant_id,
                student_id,
            )
        if not rows:
            return None
        row = rows[0]

        return StoredJson(
            document=row["document"],
            positions=row["positions"],
            sections=_places.decode(row["document"]).sections,
        )

    async def of_section(self, tenant_id: str, section_id: str) -> list[StoredSnapshot]:
        """Return the snapshots of the students enrolled in a section."""
        rows = await self._fetch(
            tenant_id,
            "SELECT s.document, s.positions, s.updated_at "
            f"FROM {self.table('snapshots')} s "
            f"JOIN {self.table('enrollments')} e ON e.tenant_id = s.tenant_id "
            "AND e.person_id = s.student_id WHERE s.tenant_id = $1 "
            "AND e.section_id = $2 AND e.role = 'student' AND e.active "
            "ORDER BY s.student_id",
            section_id,
        )

        return [stored(row) for row in rows]

    async def all(self, tenant_id: str) -> list[StoredSnapshot]:
        """Return every snapshot of the tenant, by student id."""
        rows = await self._fetch(
            tenant_id,
            "SELECT document, positions, updated_at "
            f"FROM {self.table('snapshots')} WHERE tenant_id = $1 "
            "ORDER BY student_id",
        )

        return [stored(row) for row in rows]

    async def section(self, tenant_id: str, section_id: str) -> SectionInfo | None:
        """Return a section that was rostered and not removed."""
        rows = await self._fetch(
            tenant_id,
            "SELECT section_id, school_id, title, term_ids "
            f"FROM {self.table('sections')} WHERE tenant_id = $1 "
            "AND section_id = $2 AND NOT removed",
            section_id,
        )
        if not rows:
            return None
        row = rows[0]

        return SectionInfo(
            section_id=row["section_id"],
            school_id=row["school_id"],
            title=row["title"],
            term_ids=tuple(row["term_ids"]),
        )

    async def sections(
        self, tenant_id: str, section_ids: Sequence[str]
    ) -> list[SectionInfo]:
        """Return those of ``section_ids`` that exist, in the given order."""
        found = {}
        for section_id in dict.fromkeys(section_ids):
            info = await self.section(tenant_id, section_id)
            if info is not None:
                found[section_id] = info

        return list(found.values())

    async def names(
        self, tenant_id: str, student_ids: Sequence[str], *, keyring: Keyring
    ) -> dict[str, str | None]:
        """Return each student's name as the keyring opens it from their
        sealed fields; ``None`` for a student erased, or never rostered."""
        names: dict[str, str | None] = dict.fromkeys(student_ids)
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            rows = await connection.fetch(
                f"SELECT person_id::text AS student_id, personal "
                f"FROM {self.table('people')} WHERE tenant_id = $1 "
                "AND person_id::text = ANY($2) AND personal IS NOT NULL "
                "AND NOT erased",
                tenant_id,
                list(names),
            )
            sealed = {
                row["student_id"]: msgspec.json.decode(row["personal"], type=Sealed)
                for row in rows
            }
            opened = await keyring.open_many(
                connection, tenant_id=tenant_id, sealed=sealed.values()
            )
        for student_id, value in sealed.items():
            names[student_id] = display_name(opened.get(value.key_id))

        return names

    async def _fetch(self, tenant_id: str, query: str, *args: Any) -> list[Any]:
        async with (
            self.pool.acquire() as connection,
            tenant_read(connection, tenant_id),
        ):
            rows: list[Any] = await connection.fetch(query, tenant_id, *args)

        return rows


def display_name(fields: PersonalFields | None) -> str | None:
    """Return a person's name as a report shows it, or ``None`` when their
    fields are unreadable (erased) or name nobody."""
    if fields is None:
        return None
    parts = [fields.get("given_name"), fields.get("family_name")]
    name = " ".join(part.strip() for part in parts if part and part.strip())

    return name or None


def stored(row: Any) -> StoredSnapshot:
    """Decode a row of the snapshots table."""
    return StoredSnapshot(
        snapshot=msgspec.json.decode(row["document"], type=StudentSnapshot),
        positions=msgspec.json.decode(row["positions"], type=dict[str, int]),
        updated_at=row["updated_at"],
    )
