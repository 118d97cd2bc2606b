"""The consumers that keep reports' facts and snapshots from other services'
events: ``reports-objectives`` on the objectives stream and
``reports-grading`` on the grading stream (roster, assessments, mastery and
gradebook).

A fetched batch is applied in one of the consumer's transactions per
tenant: each event's fact is written in stream order, then the snapshot of
every student the batch touched is brought up to date once, patched where
the batch only graded some objectives or changed traditional grades and
built again from all the facts otherwise. The consumer records the events
in ``processed_events`` in the same transaction, so a redelivered event
has no second effect; writes that replace a row also compare the stream
version, so an older event arriving late does not undo a newer one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

import asyncpg
import msgspec
import structlog

from mastery_events.consumer import ConsumerSettings
from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentRecorded,
    AssessmentVoided,
    GradeBridgeSet,
    MasteryChanged,
    TraditionalGradeRecorded,
    TraditionalGradeVoided,
)
from mastery_events.contract.objectives import (
    ObjectiveAdded,
    ObjectiveChanged,
    ObjectiveRemoved,
    ObjectiveSetCreated,
    ObjectiveSetEdited,
    ScaleDefined,
    ScaleRevised,
)
from mastery_events.contract.roster import (
    ObjectiveSetLinked,
    ObjectiveSetUnlinked,
    PersonEnrolled,
    PersonErased,
    PersonRostered,
    PersonUnenrolled,
    SchoolRostered,
    SectionRemoved,
    SectionRostered,
    TermRostered,
)
from mastery_events.database import Connection
from mastery_events.envelope import Envelope, Event
from mastery_events.migrations import quote_schema
from mastery_events.runtime import Follower
from mastery_events.store import EventStore
from mastery_reports.share_link_store import ShareLinks
from mastery_reports.snapshot_store import SnapshotWriter
from mastery_reports.snapshots import WHOLE, Change, ScaleLevelFact

OBJECTIVES_CONSUMER = "reports-objectives"
GRADING_CONSUMER = "reports-grading"
CONSUMERS = {OBJECTIVES_CONSUMER: "objectives", GRADING_CONSUMER: "grading"}

# Who revokes an erased student's share links, and why, in the events.
ERASURE_ACTOR = "system:erasure"
ERASURE_REASON = "the student was erased"

# A batch is applied in one transaction and costs about as many statements
# as one event, so larger batches spread that cost over more grades; a
# batch of this size takes well under a second, far inside ``ack_wait``.
REPORTS_CONSUMER = ConsumerSettings(batch_size=250)

log = structlog.get_logger(__name__)


class Appended(msgspec.Struct, frozen=True, kw_only=True):
    """A row an event adds to reports' facts, and whose snapshot it
    changes."""

    statement: str
    arguments: tuple[object, ...]
    student_id: str
    change: Change


# The students an event touches, each with what it changed of their facts.
Touches = list[tuple[str, Change]]


def wholly(students: Iterable[str]) -> Touches:
    """Return ``students`` as touched in ways only a rebuild can show."""
    return [(student, WHOLE) for student in students]


class FactsWriter:
    """The consumers' handler: applies one event to reports' facts in
    ``schema`` and rebuilds the snapshots it touches."""

    def __init__(
        self, schema: str, *, source: str, links: ShareLinks | None = None
    ) -> None:
        self.source = source
        self.schema = schema
        self._schema = quote_schema(schema)
        self._snapshots = SnapshotWriter(schema)
        # Revokes an erased student's share links; without it (a rebuild,
        # which replays facts only) the links are left as they are.
        self._links = links

    def recording(self, store: EventStore) -> FactsWriter:
        """Return this writer able to record share link events in
        ``store``, reports' own log, as the running service needs."""
        return FactsWriter(
            self.schema, source=self.source, links=ShareLinks(store.pool, store)
        )

    def table(self, name: str) -> str:
        """Return a table of the schema, quoted for a statement."""
        return f"{self._schema}.{name}"

    async def __call__(
        self, connection: Connection, envelope: Envelope, event: Event
    ) -> None:
        """Apply one event and rebuild the snapshots of its students."""
        await self.apply_batch(connection, [(envelope, event)])

    async def apply_batch(
        self, connection: Connection, events: Sequence[tuple[Envelope, Event]]
    ) -> None:
        """Apply one tenant's events in stream order, then rebuild each
        student's snapshot they touched once, however many of them did."""
        if not events:
            return
        tenant = events[0][0].tenant_id
        # The two consumers write facts that each other's snapshots read.
        # Running at once, each would rebuild a student from facts without
        # the other's uncommitted ones, and the later commit would keep a
        # snapshot that misses them; one tenant's batches take turns.
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"{self.schema}/{tenant}",
        )
        touched: dict[str, int] = {}
        changes: dict[str, Change] = {}
        # Rows only added wait here and go in one round trip per table,
        # before any other event, which may change them, is applied.
        waiting: dict[str, list[tuple[object, ...]]] = {}
        for envelope, event in events:
            appended = self.appended(envelope, event)
            if appended is None:
                await self._write(connection, waiting)
                students = await self.apply(connection, envelope, event)
            else:
                rows = waiting.setdefault(appended.statement, [])
                rows.append(appended.arguments)
                students = [(appended.student_id, appended.change)]
            for student_id, change in students or ():
                touched[student_id] = max(envelope.position, touched.get(student_id, 0))
                changes[student_id] = changes.get(student_id, Change()).merged(change)
        await self._write(connection, waiting)

        refreshed = await self._snapshots.refresh(
            connection, tenant, touched, source=self.source, changes=changes
        )
        # After the snapshots, which read the positions reached before
        # this batch for their own source.
        await self._snapshots.advance(
            connection,
            tenant,
            source=self.source,
            position=max(envelope.position for envelope, _ in events),
        )
        log.info(
            "snapshots.applied",
            tenant=tenant,
            source=self.source,
            events=len(events),
            first_position=events[0][0].position,
            last_position=events[-1][0].position,
            snapshots=len(touched),
            patched=refreshed.patched,
        )

    def appended(self, envelope: Envelope, event: Event) -> Appended | None:
        """Return the row a grade's event adds, when it only adds one and
        changes none: such rows can be written many in one go."""
        tenant = envelope.tenant_id
        match event:
            case AssessmentRecorded():
                return Appended(
                    statement=f"INSERT INTO {self.table('assessments')} "
                    "(tenant_id, assessment_id, student_id, section_id, "
                    "objective_id, scale_id, scale_version, level, mark, "
                    "assessed_at, evidence, evidence_kind, comment) VALUES ($1, "
                    "$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
                    "ON CONFLICT DO NOTHING",
                    arguments=(
                        tenant,
                        event.assessment_id,
                        event.student_id,
                        event.section_id,
                        event.objective_id,
                        event.scale_id,
                        event.scale_version,
                        event.level,
                        event.mark,
                        event.assessed_at,
                        event.evidence.title,
                        event.evidence.kind,
                        event.comment,
                    ),
                    student_id=event.student_id,
                    change=Change(objectives=frozenset({event.objective_id})),
                )
            case MasteryChanged():
                return Appended(
                    statement=f"INSERT INTO {self.table('mastery_points')} "
                    "(tenant_id, event_id, student_id, objective_id, valid_from, "
                    "position, status, level, level_label, mastered, scale_id, "
                    "scale_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
                    "$10, $11, $12) ON CONFLICT DO NOTHING",
                    arguments=(
                        tenant,
                        envelope.event_id,
                        event.student_id,
                        event.objective_id,
                        event.valid_from,
                        envelope.position,
                        event.status,
                        event.level,
                        event.level_label,
                        event.mastered,
                        event.scale_id,
                        event.scale_version,
                    ),
                    student_id=event.student_id,
                    change=Change(objectives=frozenset({event.objective_id})),
                )
            case TraditionalGradeRecorded():
                return Appended(
                    statement=f"INSERT INTO {self.table('traditional_grades')} "
                    "(tenant_id, grade_id, section_id, student_id, title, kind, "
                    "percent, points, points_possible, passed, assessed_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                    "ON CONFLICT DO NOTHING",
                    arguments=(
                        tenant,
                        event.grade_id,
                        event.section_id,
                        event.student_id,
                        event.title,
                        event.kind,
                        event.percent,
                        event.points,
                        event.points_possible,
                        event.passed,
                        event.assessed_at,
                    ),
                    student_id=event.student_id,
                    change=Change(grades=True),
                )
            case _:
                return None

    async def apply(
        self, connection: Connection, envelope: Envelope, event: Event
    ) -> Touches | None:
        """Write the fact ``event`` brings; return the students whose
        snapshots it changes, each with what it changed of their facts, or
        ``None`` when reports keeps nothing of it."""
        appended = self.appended(envelope, event)
        if appended is not None:
            await connection.execute(appended.statement, *appended.arguments)
            return [(appended.student_id, appended.change)]
        tenant = envelope.tenant_id
        match event:
            case ObjectiveSetCreated() | ObjectiveSetEdited():
                await connection.execute(
                    f"INSERT INTO {self.table('objective_sets')} "
                    "(tenant_id, objective_set_id, title, grade_bands) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, "
                    "objective_set_id) DO UPDATE SET title = excluded.title, "
                    "grade_bands = excluded.grade_bands",
                    tenant,
                    event.objective_set_id,
                    event.title,
                    list(event.grade_bands),
                )
                return await self._students_of_set(
                    connection, tenant, event.objective_set_id
                )
            case ObjectiveAdded() | ObjectiveChanged():
                await connection.execute(
                    f"INSERT INTO {self.table('objectives')} AS o (tenant_id, "
                    "objective_id, objective_set_id, code, statement, sort_order, "
                    "grade_bands, stream_version) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                    "ON CONFLICT (tenant_id, objective_id) DO UPDATE SET "
                    "code = excluded.code, statement = excluded.statement, "
                    "sort_order = excluded.sort_order, "
                    "grade_bands = excluded.grade_bands, "
                    "stream_version = excluded.stream_version "
                    "WHERE o.stream_version < excluded.stream_version",
                    tenant,
                    event.objective_id,
                    event.objective_set_id,
                    event.code,
                    event.statement,
                    event.order,
                    list(event.grade_bands),
                    envelope.stream_version,
                )
                return await self._students_of_set(
                    connection, tenant, event.objective_set_id
                )
            case ObjectiveRemoved():
                await connection.execute(
                    f"UPDATE {self.table('objectives')} SET removed = true, "
                    "stream_version = $3 WHERE tenant_id = $1 "
                    "AND objective_id = $2 AND stream_version < $3",
                    tenant,
                    event.objective_id,
                    envelope.stream_version,
                )
                return await self._students_of_set(
                    connection, tenant, event.objective_set_id
                )
            case ScaleDefined() | ScaleRevised():
                levels = [
                    ScaleLevelFact(
                        value=level.value,
                        label=level.label,
                        short_label=level.short_label,
                        colour=level.colour,
                    )
                    for level in event.levels
                ]
                await connection.execute(
                    f"INSERT INTO {self.table('scale_versions')} "
                    "(tenant_id, scale_id, scale_version, levels) "
                    "VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING",
                    tenant,
                    event.scale_id,
                    event.scale_version,
                    msgspec.json.encode(levels).decode(),
                )
                return await self._students_of_scale(
                    connection, tenant, event.scale_id, event.scale_version
                )
            case _:
                return await self._apply_roster(connection, envelope, event)

    async def _apply_roster(
        self, connection: Connection, envelope: Envelope, event: Event
    ) -> Touches | None:
        tenant = envelope.tenant_id
        match event:
            case SchoolRostered():
                await connection.execute(
                    f"INSERT INTO {self.table('schools')} (tenant_id, school_id, "
                    "name) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, school_id) "
                    "DO UPDATE SET name = excluded.name",
                    tenant,
                    event.school_id,
                    event.name,
                )
                return []
            case TermRostered():
                await connection.execute(
                    f"INSERT INTO {self.table('terms')} (tenant_id, term_id, "
                    "title, starts_on, ends_on) VALUES ($1, $2, $3, $4, $5) "
                    "ON CONFLICT (tenant_id, term_id) DO UPDATE SET "
                    "title = excluded.title, starts_on = excluded.starts_on, "
                    "ends_on = excluded.ends_on",
                    tenant,
                    event.term_id,
                    event.title,
                    event.starts_on,
                    event.ends_on,
                )
                rows = await connection.fetch(
                    f"SELECT e.person_id FROM {self.table('enrollments')} e "
                    f"JOIN {self.table('sections')} s USING (tenant_id, "
                    "section_id) WHERE e.tenant_id = $1 AND $2 = ANY(s.term_ids) "
                    "AND e.role = 'student'",
                    tenant,
                    event.term_id,
                )
                return wholly(row["person_id"] for row in rows)
            case SectionRostered():
                await connection.execute(
                    f"INSERT INTO {self.table('sections')} (tenant_id, "
                    "section_id, school_id, title, course_title, term_ids) "
                    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, "
                    "section_id) DO UPDATE SET school_id = excluded.school_id, "
                    "title = excluded.title, course_title = excluded.course_title, "
                    "term_ids = excluded.term_ids, removed = false",
                    tenant,
                    event.section_id,
                    event.school_id,
                    event.title,
                    event.course_title,
                    list(event.term_ids),
                )
                return await self._students_of_section(
                    connection, tenant, event.section_id
                )
            case SectionRemoved():
                await connection.execute(
                    f"UPDATE {self.table('sections')} SET removed = true "
                    "WHERE tenant_id = $1 AND section_id = $2",
                    tenant,
                    event.section_id,
                )
                return await self._students_of_section(
                    connection, tenant, event.section_id
                )
            case PersonRostered():
                # A person erased stays unreadable: a later roster row of
                # theirs carries fields sealed with the destroyed key.
                await connection.execute(
                    f"INSERT INTO {self.table('people')} AS p (tenant_id, "
                    "person_id, role, personal) VALUES ($1, $2, $3, $4::jsonb) "
                    "ON CONFLICT (tenant_id, person_id) DO UPDATE SET "
                    "role = excluded.role, personal = CASE WHEN p.erased "
                    "THEN NULL ELSE excluded.personal END",
                    tenant,
                    event.person_id,
                    event.role,
                    msgspec.json.encode(event.personal).decode(),
                )
                return []
            case PersonErased():
                await connection.execute(
                    f"UPDATE {self.table('people')} SET erased = true, "
                    "personal = NULL WHERE tenant_id = $1 AND person_id = $2",
                    tenant,
                    event.person_id,
                )
                if self._links is not None:
                    revoked = await self._links.revoke_student_within(
                        connection,
                        tenant,
                        str(event.person_id),
                        by=ERASURE_ACTOR,
                        at=event.erased_at,
                        reason=ERASURE_REASON,
                    )
                    log.info(
                        "share_links.revoked_on_erasure",
                        tenant=tenant,
                        person_id=str(event.person_id),
                        revoked=revoked,
                    )
                return wholly([str(event.person_id)])
            case PersonEnrolled():
                await connection.execute(
                    f"INSERT INTO {self.table('enrollments')} (tenant_id, "
                    "person_id, section_id, role) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (tenant_id, person_id, section_id) DO UPDATE SET "
                    "role = excluded.role, active = true",
                    tenant,
                    str(event.person_id),
                    event.section_id,
                    event.role,
                )
                return wholly([str(event.person_id)] if event.role == "student" else [])
            case PersonUnenrolled():
                await connection.execute(
                    f"UPDATE {self.table('enrollments')} SET active = false "
                    "WHERE tenant_id = $1 AND person_id = $2 AND section_id = $3",
                    tenant,
                    str(event.person_id),
                    event.section_id,
                )
                return wholly([str(event.person_id)])
            case ObjectiveSetLinked() | ObjectiveSetUnlinked():
                await connection.execute(
                    f"INSERT INTO {self.table('section_objective_sets')} "
                    "(tenant_id, section_id, objective_set_id, linked) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, section_id, "
                    "objective_set_id) DO UPDATE SET linked = excluded.linked",
                    tenant,
                    event.section_id,
                    event.objective_set_id,
                    isinstance(event, ObjectiveSetLinked),
                )
                return await self._students_of_section(
                    connection, tenant, event.section_id
                )
            case _:
                return await self._apply_grading(connection, envelope, event)

    async def _apply_grading(
        self, connection: Connection, envelope: Envelope, event: Event
    ) -> Touches | None:
        tenant = envelope.tenant_id
        match event:
            case AssessmentAmended():
                # An amendment naming neither a level nor a mark moves the
                # date only; one naming either replaces both.
                regraded = event.level is not None or event.mark is not None
                row = await connection.fetchrow(
                    f"UPDATE {self.table('assessments')} SET "
                    "level = CASE WHEN $6 THEN $3 ELSE level END, "
                    "mark = CASE WHEN $6 THEN $4 ELSE mark END, "
                    "assessed_at = coalesce($5, assessed_at) "
                    "WHERE tenant_id = $1 AND assessment_id = $2 "
                    "RETURNING student_id, objective_id",
                    tenant,
                    event.assessment_id,
                    event.level,
                    event.mark,
                    event.assessed_at,
                    regraded,
                )
                return graded_objective(row)
            case AssessmentVoided():
                row = await connection.fetchrow(
                    f"UPDATE {self.table('assessments')} SET voided = true "
                    "WHERE tenant_id = $1 AND assessment_id = $2 "
                    "RETURNING student_id, objective_id",
                    tenant,
                    event.assessment_id,
                )
                return graded_objective(row)
            case TraditionalGradeVoided():
                student = await connection.fetchval(
                    f"UPDATE {self.table('traditional_grades')} SET voided = true "
                    "WHERE tenant_id = $1 AND grade_id = $2 RETURNING student_id",
                    tenant,
                    event.grade_id,
                )
                return [] if student is None else [(student, Change(grades=True))]
            case GradeBridgeSet():
                await connection.execute(
                    f"INSERT INTO {self.table('grade_bridges')} (tenant_id, "
                    "section_id, cuts) VALUES ($1, $2, $3::jsonb) "
                    "ON CONFLICT (tenant_id, section_id) DO UPDATE SET "
                    "cuts = excluded.cuts",
                    tenant,
                    event.section_id,
                    msgspec.json.encode(event.cuts).decode(),
                )
                return await self._students_of_section(
                    connection, tenant, event.section_id
                )
            case _:
                # Recalculation progress, imports and the rest change no
                # report: their effects arrive as the events above.
                return None

    @staticmethod
    async def _write(
        connection: Connection, waiting: dict[str, list[tuple[object, ...]]]
    ) -> None:
        for statement, rows in waiting.items():
            await connection.executemany(statement, rows)
        waiting.clear()

    async def _students_of_section(
        self, connection: Connection, tenant: str, section_id: str
    ) -> Touches:
        """The students of a section, each to be built again whole."""
        rows = await connection.fetch(
            f"SELECT person_id FROM {self.table('enrollments')} "
            "WHERE tenant_id = $1 AND section_id = $2 AND role = 'student'",
            tenant,
            section_id,
        )
        return wholly(row["person_id"] for row in rows)

    async def _students_of_set(
        self, connection: Connection, tenant: str, objective_set_id: UUID
    ) -> Touches:
        """The students of every section that teaches a set, each to be
        built again whole."""
        rows = await connection.fetch(
            f"SELECT DISTINCT e.person_id FROM "
            f"{self.table('section_objective_sets')} l "
            f"JOIN {self.table('enrollments')} e USING (tenant_id, section_id) "
            "WHERE l.tenant_id = $1 AND l.objective_set_id = $2 "
            "AND e.role = 'student'",
            tenant,
            objective_set_id,
        )
        return wholly(row["person_id"] for row in rows)

    async def _students_of_scale(
        self, connection: Connection, tenant: str, scale_id: UUID, version: int
    ) -> Touches:
        """The students graded on a scale version, each to be built again
        whole."""
        rows = await connection.fetch(
            f"SELECT student_id FROM {self.table('mastery_points')} "
            "WHERE tenant_id = $1 AND scale_id = $2 AND scale_version = $3 "
            f"UNION SELECT student_id FROM {self.table('assessments')} "
            "WHERE tenant_id = $1 AND scale_id = $2 AND scale_version = $3",
            tenant,
            scale_id,
            version,
        )
        return wholly(row["student_id"] for row in rows)


def graded_objective(row: asyncpg.Record | None) -> Touches:
    """Return the student of an assessment row an event changed, with its
    objective as the change; nobody when the event found no row."""
    if row is None:
        return []

    return [(row["student_id"], Change(objectives=frozenset({row["objective_id"]})))]


def report_followers(schema: str) -> tuple[Follower, ...]:
    """Return the consumers that fill reports' facts in ``schema`` from the
    objectives and grading services' events."""
    followers = []
    for name, source in CONSUMERS.items():
        writer = FactsWriter(schema, source=source)
        followers.append(
            Follower(
                name=name,
                source=source,
                handler=writer,
                bind=writer.recording,
                settings=REPORTS_CONSUMER,
            )
        )
    return tuple(followers)
