"""Where the traditional gradebook lives: a stream per grade and per
section's letter cuts, with their read tables written in the same commit
and idempotency keys claimed in it, as for assessments."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import asyncpg
import msgspec
import structlog

from mastery_events.access import Owner, may
from mastery_events.contract.grading import GradeBridgeSet, LetterCut
from mastery_events.database import Connection
from mastery_events.envelope import Envelope, Event, PendingEvent
from mastery_events.errors import ConcurrencyError
from mastery_events.identity import Identity
from mastery_events.store import EventStore, StreamAppend
from mastery_events.tenancy import tenant_transaction
from mastery_grading.assessment_store import (
    Request,
    SchemaTables,
    section_known,
    section_students,
)
from mastery_grading.assessments import AREA
from mastery_grading.errors import ConcurrentChangeError, StudentNotFoundError
from mastery_grading.gradebook import (
    BridgedGrade,
    GradeState,
    RecordTraditionalGrade,
    SetGradeBridge,
    VoidTraditionalGrade,
    bridge,
    bridge_stream,
    decide_bridge,
    decide_grade,
    decide_grade_void,
    evolve_grade,
    grade_stream,
)
from mastery_grading.idempotency import IdempotencyKeys
from mastery_grading.scales import ScaleView

log = structlog.get_logger(__name__)


class GradeView(GradeState, frozen=True, kw_only=True):
    """A traditional grade as it stands, with when it was recorded."""

    recorded_at: datetime
    stream_version: int


class BridgeView(msgspec.Struct, frozen=True, kw_only=True):
    """A section's letter cuts, highest first, and who set them when."""

    section_id: str
    cuts: tuple[LetterCut, ...]
    set_by: str
    set_at: datetime
    stream_version: int


class SectionGrades(msgspec.Struct, frozen=True, kw_only=True):
    """One section's traditional grades of one student, the letter cuts
    the section reads mastery through when it chose some, and the
    student's current mastery there read through them (``mastery``), once
    the cuts are set and some objective of the section has a level."""

    section_id: str
    grades: tuple[GradeView, ...]
    bridge: BridgeView | None = None
    mastery: BridgedGrade | None = None


class GradebookStore:
    """Traditional grades and letter cuts of every tenant in one schema."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.pool = store.pool
        self.tables = SchemaTables(store.schema)
        self.keys = IdempotencyKeys(self.tables.keys)

    async def record_grade(
        self, command: RecordTraditionalGrade, request: Request
    ) -> GradeView:
        """Record a traditional grade, or return the answer kept for a
        retry."""
        tenant_id = request.tenant_id
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            kept = await self.keys.kept_answer(
                connection, tenant_id, request.claim, GradeView
            )
            if kept is not None:
                return kept
            students = await section_students(
                connection, self.tables, tenant_id, command.section_id
            )
            known = await section_known(
                connection, self.tables, tenant_id, command.section_id
            )
            event = decide_grade(
                command, known=known, students=students, caller=request.caller
            )
            envelope = await self._append(
                connection,
                grade_stream(command.grade_id),
                0,
                event,
                request,
                command.at,
            )
            state = evolve_grade(None, event)
            view = GradeView(
                **msgspec.structs.asdict(state),
                recorded_at=envelope.recorded_at,
                stream_version=envelope.stream_version,
            )
            await connection.execute(
                f"INSERT INTO {self.tables.traditional_grades} (tenant_id, grade_id, "
                "student_id, section_id, assessed_at, recorded_at, stream_version, "
                "state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json)",
                tenant_id,
                state.grade_id,
                state.student_id,
                state.section_id,
                state.assessed_at,
                envelope.recorded_at,
                envelope.stream_version,
                msgspec.json.encode(state).decode(),
            )
            await self.keys.keep(connection, tenant_id, request.claim, view)

        log.info(
            "traditional_grade.recorded",
            tenant=tenant_id,
            section=command.section_id,
            grade=str(command.grade_id),
            kind=command.kind,
        )
        return view

    async def void_grade(
        self, command: VoidTraditionalGrade, request: Request
    ) -> GradeView:
        """Void a traditional grade, or return the answer kept for a retry."""
        tenant_id = request.tenant_id
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            kept = await self.keys.kept_answer(
                connection, tenant_id, request.claim, GradeView
            )
            if kept is not None:
                return kept
            row = await connection.fetchrow(
                f"SELECT state, recorded_at, stream_version "
                f"FROM {self.tables.traditional_grades} "
                "WHERE tenant_id = $1 AND grade_id = $2 FOR UPDATE",
                tenant_id,
                command.grade_id,
            )
            current = grade_view(row) if row is not None else None
            state = grade_state(current) if current is not None else None
            event = decide_grade_void(state, command, caller=request.caller)
            assert current is not None
            assert state is not None
            envelope = await self._append(
                connection,
                grade_stream(command.grade_id),
                current.stream_version,
                event,
                request,
                command.at,
            )
            voided = evolve_grade(state, event)
            await connection.execute(
                f"UPDATE {self.tables.traditional_grades} SET voided = true, "
                "stream_version = $3, state = $4::json "
                "WHERE tenant_id = $1 AND grade_id = $2",
                tenant_id,
                command.grade_id,
                envelope.stream_version,
                msgspec.json.encode(voided).decode(),
            )
            view = GradeView(
                **msgspec.structs.asdict(voided),
                recorded_at=current.recorded_at,
                stream_version=envelope.stream_version,
            )
            await self.keys.keep(connection, tenant_id, request.claim, view)

        log.info(
            "traditional_grade.voided", tenant=tenant_id, grade=str(command.grade_id)
        )
        return view

    async def set_bridge(self, command: SetGradeBridge, request: Request) -> BridgeView:
        """Set a section's letter cuts, replacing the ones it had."""
        tenant_id = request.tenant_id
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            kept = await self.keys.kept_answer(
                connection, tenant_id, request.claim, BridgeView
            )
            if kept is not None:
                return kept
            known = await section_known(
                connection, self.tables, tenant_id, command.section_id
            )
            event = decide_bridge(command, known=known, caller=request.caller)
            version = await connection.fetchval(
                f"SELECT stream_version FROM {self.tables.grade_bridges} "
                "WHERE tenant_id = $1 AND section_id = $2 FOR UPDATE",
                tenant_id,
                command.section_id,
            )
            envelope = await self._append(
                connection,
                bridge_stream(command.section_id),
                version or 0,
                event,
                request,
                command.at,
            )
            view = bridge_view(event, envelope.stream_version)
            await connection.execute(
                f"""
                INSERT INTO {self.tables.grade_bridges}
                    (tenant_id, section_id, stream_version, bridge)
                VALUES ($1, $2, $3, $4::json)
                ON CONFLICT (tenant_id, section_id) DO UPDATE SET
                    stream_version = excluded.stream_version,
                    bridge = excluded.bridge
                """,
                tenant_id,
                command.section_id,
                envelope.stream_version,
                msgspec.json.encode(view).decode(),
            )
            await self.keys.keep(connection, tenant_id, request.claim, view)

        log.info(
            "grade_bridge.set",
            tenant=tenant_id,
            section=command.section_id,
            cuts=len(event.cuts),
        )
        return view

    async def _append(
        self,
        connection: Connection,
        stream: str,
        version: int,
        event: Event,
        request: Request,
        at: datetime,
    ) -> Envelope:
        pending = PendingEvent(
            payload=event,
            occurred_at=at,
            actor=request.caller.subject,
            correlation_id=request.correlation_id,
        )
        batch = StreamAppend(
            tenant_id=request.tenant_id,
            stream_id=stream,
            expected_version=version,
            events=[pending],
        )
        try:
            (envelope,) = await self.store.append_within(connection, [batch])
        except ConcurrencyError as error:
            raise ConcurrentChangeError(stream) from error

        return envelope

    async def of_student(
        self, caller: Identity, student_id: str
    ) -> list[SectionGrades]:
        """Return a student's traditional grades per section the caller may
        read, voided ones included and marked, with each section's cuts."""
        tenant_id = caller.tenant_id
        tables = self.tables
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            sections = await connection.fetch(
                f"SELECT e.section_id, s.school_id FROM {tables.enrollments} AS e "
                f"LEFT JOIN {tables.sections} AS s USING (tenant_id, section_id) "
                "WHERE e.tenant_id = $1 AND e.person_id::text = $2 "
                "AND e.role = 'student' ORDER BY e.section_id",
                tenant_id,
                student_id,
            )
            grades = await connection.fetch(
                f"SELECT g.state, g.recorded_at, g.stream_version "
                f"FROM {tables.traditional_grades} AS g "
                "WHERE g.tenant_id = $1 AND g.student_id = $2 "
                "ORDER BY g.assessed_at, g.recorded_at, g.grade_id",
                tenant_id,
                student_id,
            )
            bridges = await connection.fetch(
                f"SELECT bridge FROM {tables.grade_bridges} "
                "WHERE tenant_id = $1 AND section_id = ANY($2::text[])",
                tenant_id,
                [row["section_id"] for row in sections],
            )
            # The timelines keep each objective's current level, on the
            # scale version it was scored on, under the section of its
            # latest evidence.
            levels = await connection.fetch(
                f"SELECT t.section_id, t.level, v.view "
                f"FROM {tables.timeline_states} AS t "
                f"JOIN {tables.scale_versions} AS v USING "
                "(tenant_id, scale_id, scale_version) "
                "WHERE t.tenant_id = $1 AND t.student_id = $2 "
                "AND t.status = 'scored' AND t.level IS NOT NULL",
                tenant_id,
                student_id,
            )

        readable = [
            section_id
            for section_id, school_id in sections
            if may(
                caller,
                Owner(tenant_id=tenant_id, school_id=school_id, section_id=section_id),
                action="read",
                area=AREA,
            )
        ]
        if not readable:
            raise StudentNotFoundError(student_id)
        by_section: dict[str, list[GradeView]] = defaultdict(list)
        for row in grades:
            view = grade_view(row)
            by_section[view.section_id].append(view)
        cuts = {
            found.section_id: found
            for found in (
                msgspec.json.decode(row["bridge"], type=BridgeView) for row in bridges
            )
        }
        readings: dict[str, list[tuple[float, ScaleView]]] = defaultdict(list)
        for section_id, level, view in levels:
            scale = msgspec.json.decode(view, type=ScaleView)
            readings[section_id].append((level, scale))

        return [
            SectionGrades(
                section_id=section_id,
                grades=tuple(by_section.get(section_id, ())),
                bridge=cuts.get(section_id),
                mastery=mastery_grade(readings.get(section_id), cuts.get(section_id)),
            )
            for section_id in readable
        ]


def mastery_grade(
    readings: list[tuple[float, ScaleView]] | None, cuts: BridgeView | None
) -> BridgedGrade | None:
    """Return current mastery read through a section's cuts, or ``None``
    while the section has no cuts or the student no level there."""
    if not readings or cuts is None:
        return None

    return bridge(readings, cuts=cuts.cuts)


def bridge_view(event: GradeBridgeSet, stream_version: int) -> BridgeView:
    """Return the read table's view of a section's cuts."""
    return BridgeView(
        section_id=event.section_id,
        cuts=event.cuts,
        set_by=event.set_by,
        set_at=event.set_at,
        stream_version=stream_version,
    )


def grade_view(row: asyncpg.Record) -> GradeView:
    """Build a view from a row holding ``state``, ``recorded_at`` and
    ``stream_version``."""
    state = msgspec.json.decode(row["state"], type=GradeState)
    return GradeView(
        **msgspec.structs.asdict(state),
        recorded_at=row["recorded_at"],
        stream_version=row["stream_version"],
    )


def grade_state(view: GradeView) -> GradeState:
    """Return the folded state a view carries."""
    fields = msgspec.structs.asdict(view)
    del fields["recorded_at"], fields["stream_version"]
    return GradeState(**fields)
