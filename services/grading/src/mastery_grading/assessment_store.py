"""Where assessments live: one stream per assessment, and the read table
of their current state kept beside the streams in the same commit.

A request runs in one transaction bound to its tenant: it claims its
idempotency key, loads the facts the decision needs (catalogue and roster
tables), lets the pure domain decide, appends every event in one
statement, writes the read table and keeps the answer for the key. Any
refusal rolls all of it back, so nothing of a refused request is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec
import structlog

from mastery_events.access import Owner, may
from mastery_events.contract import CONTRACT
from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentEvent,
    AssessmentRecorded,
    AssessmentVoided,
)
from mastery_events.contract.registry import event_name
from mastery_events.database import Connection
from mastery_events.envelope import Envelope, PendingEvent
from mastery_events.errors import ConcurrencyError
from mastery_events.identity import Identity
from mastery_events.migrations import quote_schema
from mastery_events.store import (
    ENVELOPE_COLUMNS,
    EventStore,
    StreamAppend,
    envelope_from_row,
)
from mastery_events.tenancy import tenant_transaction
from mastery_grading.assessments import (
    AREA,
    AmendAssessment,
    AssessmentState,
    GradingFacts,
    RecordAssessment,
    RecordBatch,
    SectionFacts,
    VoidAssessment,
    assessment_stream,
    decide_amend,
    decide_batch,
    decide_record,
    decide_void,
    evolve,
)
from mastery_grading.errors import (
    AssessmentNotFoundError,
    ConcurrentChangeError,
    StudentNotFoundError,
)
from mastery_grading.idempotency import IdempotencyClaim, IdempotencyKeys
from mastery_grading.scales import ScaleView

ASSESSMENT_EVENTS = (AssessmentRecorded, AssessmentAmended, AssessmentVoided)
ASSESSMENT_EVENT_NAMES = tuple(event_name(kind) for kind in ASSESSMENT_EVENTS)

log = structlog.get_logger(__name__)


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """Who asks, on behalf of which tenant, within which correlation, and
    the idempotency key the request came with, if any."""

    caller: Identity
    correlation_id: UUID
    claim: IdempotencyClaim | None = None

    @property
    def tenant_id(self) -> str:
        """The tenant every read and write of the request is bound to."""
        return self.caller.tenant_id


class AssessmentView(AssessmentState, frozen=True, kw_only=True):
    """An assessment as it stands, with when it was first recorded and how
    many events its stream holds."""

    recorded_at: datetime
    stream_version: int


class RecordedRow(msgspec.Struct, frozen=True, kw_only=True):
    """Which assessment one row of a batch became."""

    row: int
    assessment_id: UUID
    student_id: str
    objective_id: UUID


class BatchRecorded(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a batch: how many were recorded, and each row's id."""

    section_id: str
    recorded: int
    recorded_at: datetime
    rows: tuple[RecordedRow, ...]


def view_of(
    state: AssessmentState, envelope: Envelope, recorded_at: datetime
) -> AssessmentView:
    """Return ``state`` as the read table shows it after ``envelope``."""
    return AssessmentView(
        **msgspec.structs.asdict(state),
        recorded_at=recorded_at,
        stream_version=envelope.stream_version,
    )


class SchemaTables:
    """The quoted names of grading's tables in one schema."""

    def __init__(self, schema: str) -> None:
        quoted = quote_schema(schema)
        self.assessments = f"{quoted}.assessments"
        self.traditional_grades = f"{quoted}.traditional_grades"
        self.grade_bridges = f"{quoted}.grade_bridges"
        self.keys = f"{quoted}.idempotency_keys"
        self.scale_versions = f"{quoted}.catalogue_scale_versions"
        self.objectives = f"{quoted}.catalogue_objectives"
        self.section_sets = f"{quoted}.section_objective_sets"
        self.enrollments = f"{quoted}.roster_enrollments"
        self.sections = f"{quoted}.roster_sections"
        self.timeline_states = f"{quoted}.timeline_states"


async def scale_view(
    connection: Connection,
    tables: SchemaTables,
    tenant_id: str,
    scale: tuple[UUID, int],
) -> ScaleView | None:
    """Return a scale version from the catalogue, or ``None``."""
    found = await connection.fetchval(
        f"SELECT view FROM {tables.scale_versions} "
        "WHERE tenant_id = $1 AND scale_id = $2 AND scale_version = $3",
        tenant_id,
        *scale,
    )
    if found is None:
        return None

    return msgspec.json.decode(found, type=ScaleView)


async def section_students(
    connection: Connection, tables: SchemaTables, tenant_id: str, section_id: str
) -> frozenset[str]:
    """Return the students actively enrolled in a section."""
    rows = await connection.fetch(
        f"SELECT person_id::text FROM {tables.enrollments} "
        "WHERE tenant_id = $1 AND section_id = $2 AND role = 'student' AND active",
        tenant_id,
        section_id,
    )
    return frozenset(row[0] for row in rows)


async def section_known(
    connection: Connection, tables: SchemaTables, tenant_id: str, section_id: str
) -> bool:
    """Tell whether the roster holds ``section_id`` and has not removed it."""
    known: bool = await connection.fetchval(
        f"SELECT EXISTS (SELECT FROM {tables.sections} "
        "WHERE tenant_id = $1 AND section_id = $2 AND NOT removed)",
        tenant_id,
        section_id,
    )
    return known


class AssessmentStore:
    """Assessments of every tenant in one service schema."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.pool = store.pool
        self.tables = SchemaTables(store.schema)
        self.keys = IdempotencyKeys(self.tables.keys)

    # Recording ---------------------------------------------------------------

    async def record(
        self, command: RecordAssessment, request: Request
    ) -> AssessmentView:
        """Record one assessment, or return the answer kept for a retry."""
        tenant_id = request.tenant_id
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            kept = await self.keys.kept_answer(
                connection, tenant_id, request.claim, AssessmentView
            )
            if kept is not None:
                return kept

            facts = await self._facts(
                connection,
                tenant_id,
                section_id=command.section_id,
                scale=(command.scale_id, command.scale_version),
                objectives=[command.objective_id],
            )
            event = decide_record(command, facts, caller=request.caller)
            (envelope,) = await self._append_new(
                connection, [event], request, at=command.at
            )
            (view,) = await self._insert([event], [envelope], connection, tenant_id)
            await self.keys.keep(connection, tenant_id, request.claim, view)

        log.info(
            "assessment.recorded",
            tenant=tenant_id,
            section=command.section_id,
            assessment=str(command.assessment_id),
        )
        return view

    async def record_batch(self, batch: RecordBatch, request: Request) -> BatchRecorded:
        """Record every row of ``batch`` in one commit, or none of them."""
        tenant_id = request.tenant_id
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            kept = await self.keys.kept_answer(
                connection, tenant_id, request.claim, BatchRecorded
            )
            if kept is not None:
                return kept

            facts = await self._facts(
                connection,
                tenant_id,
                section_id=batch.section_id,
                scale=(batch.scale_id, batch.scale_version),
                objectives=list({row.objective_id for row in batch.rows}),
            )
            events = decide_batch(batch, facts, caller=request.caller)
            envelopes = await self._append_new(connection, events, request, at=batch.at)
            await self._insert(events, envelopes, connection, tenant_id)
            answer = BatchRecorded(
                section_id=batch.section_id,
                recorded=len(events),
                recorded_at=envelopes[0].recorded_at,
                rows=tuple(
                    RecordedRow(
                        row=index,
                        assessment_id=event.assessment_id,
                        student_id=event.student_id,
                        objective_id=event.objective_id,
                    )
                    for index, event in enumerate(events)
                ),
            )
            await self.keys.keep(connection, tenant_id, request.claim, answer)

        log.info(
            "assessment_batch.recorded",
            tenant=tenant_id,
            section=batch.section_id,
            assessments=len(events),
        )
        return answer

    async def _facts(
        self,
        connection: Connection,
        tenant_id: str,
        *,
        section_id: str,
        scale: tuple[UUID, int],
        objectives: Sequence[UUID],
    ) -> GradingFacts:
        tables = self.tables
        view = await scale_view(connection, tables, tenant_id, scale)
        objective_rows = await connection.fetch(
            f"SELECT objective_id, objective_set_id FROM {tables.objectives} "
            "WHERE tenant_id = $1 AND objective_id = ANY($2::uuid[]) AND NOT removed",
            tenant_id,
            objectives,
        )
        set_rows = await connection.fetch(
            f"SELECT objective_set_id FROM {tables.section_sets} "
            "WHERE tenant_id = $1 AND section_id = $2",
            tenant_id,
            section_id,
        )
        students = await section_students(connection, tables, tenant_id, section_id)
        known = await section_known(connection, tables, tenant_id, section_id)

        return GradingFacts(
            scales={scale: view} if view is not None else {},
            objective_sets={row[0]: row[1] for row in objective_rows},
            section=SectionFacts(
                section_id=section_id,
                known=known,
                objective_sets=frozenset(row[0] for row in set_rows),
                students=students,
            ),
        )

    async def _append_new(
        self,
        connection: Connection,
        events: Sequence[AssessmentRecorded],
        request: Request,
        *,
        at: datetime,
    ) -> list[Envelope]:
        batches = [
            StreamAppend(
                tenant_id=request.tenant_id,
                stream_id=assessment_stream(event.assessment_id),
                expected_version=0,
                events=[
                    PendingEvent(
                        payload=event,
                        occurred_at=at,
                        actor=request.caller.subject,
                        correlation_id=request.correlation_id,
                    )
                ],
            )
            for event in events
        ]
        try:
            return await self.store.append_within(connection, batches)
        except ConcurrencyError as error:
            raise ConcurrentChangeError(error.stream_id) from error

    async def _insert(
        self,
        events: Sequence[AssessmentRecorded],
        envelopes: Sequence[Envelope],
        connection: Connection,
        tenant_id: str,
    ) -> list[AssessmentView]:
        views = [
            view_of(evolve(None, event), envelope, envelope.recorded_at)
            for event, envelope in zip(events, envelopes, strict=True)
        ]
        # One INSERT of unnested arrays: a single round trip for a whole
        # batch (COPY is refused on tables under row-level security).
        await connection.execute(
            f"""
            INSERT INTO {self.tables.assessments} (
                tenant_id, assessment_id, student_id, section_id, objective_id,
                assessed_at, recorded_at, position, stream_version, state
            )
            SELECT $1, a.assessment_id, a.student_id, a.section_id,
                   a.objective_id, a.assessed_at, a.recorded_at, a.position, 1,
                   a.state
            FROM unnest(
                $2::uuid[], $3::text[], $4::text[], $5::uuid[],
                $6::timestamptz[], $7::timestamptz[], $8::bigint[], $9::json[]
            ) AS a(
                assessment_id, student_id, section_id, objective_id,
                assessed_at, recorded_at, position, state
            )
            """,
            tenant_id,
            [view.assessment_id for view in views],
            [view.student_id for view in views],
            [view.section_id for view in views],
            [view.objective_id for view in views],
            [view.assessed_at for view in views],
            [view.recorded_at for view in views],
            [envelope.position for envelope in envelopes],
            [msgspec.json.encode(state_of(view)).decode() for view in views],
        )

        return views

    # Corrections -------------------------------------------------------------

    async def amend(self, command: AmendAssessment, request: Request) -> AssessmentView:
        """Amend an assessment, or return the answer kept for a retry."""
        return await self._correct(command, request)

    async def void(self, command: VoidAssessment, request: Request) -> AssessmentView:
        """Void an assessment, or return the answer kept for a retry."""
        return await self._correct(command, request)

    async def _correct(
        self, command: AmendAssessment | VoidAssessment, request: Request
    ) -> AssessmentView:
        tenant_id = request.tenant_id
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            kept = await self.keys.kept_answer(
                connection, tenant_id, request.claim, AssessmentView
            )
            if kept is not None:
                return kept

            # The row lock makes a second correction of the same assessment
            # wait for this one, then decide on what this one left.
            current = await self._load(connection, tenant_id, command.assessment_id)
            state = state_of(current) if current is not None else None
            event: AssessmentEvent
            if isinstance(command, AmendAssessment):
                scale = None
                if state is not None:
                    key = (state.scale_id, state.scale_version)
                    scale = await scale_view(connection, self.tables, tenant_id, key)
                event = decide_amend(state, command, scale=scale, caller=request.caller)
            else:
                event = decide_void(state, command, caller=request.caller)
            assert current is not None
            view = await self._append_correction(
                connection, current, event, request, at=command.at
            )
            await self.keys.keep(connection, tenant_id, request.claim, view)

        log.info(
            "assessment.corrected",
            tenant=tenant_id,
            assessment=str(command.assessment_id),
            event_type=type(event).__name__,
            stream_version=view.stream_version,
        )
        return view

    async def _load(
        self, connection: Connection, tenant_id: str, assessment_id: UUID
    ) -> AssessmentView | None:
        row = await connection.fetchrow(
            f"SELECT state, recorded_at, stream_version FROM {self.tables.assessments} "
            "WHERE tenant_id = $1 AND assessment_id = $2 FOR UPDATE",
            tenant_id,
            assessment_id,
        )
        if row is None:
            return None

        return row_view(row)

    async def _append_correction(
        self,
        connection: Connection,
        current: AssessmentView,
        event: AssessmentEvent,
        request: Request,
        *,
        at: datetime,
    ) -> AssessmentView:
        stream = assessment_stream(current.assessment_id)
        pending = PendingEvent(
            payload=event,
            occurred_at=at,
            actor=request.caller.subject,
            correlation_id=request.correlation_id,
        )
        batch = StreamAppend(
            tenant_id=request.tenant_id,
            stream_id=stream,
            expected_version=current.stream_version,
            events=[pending],
        )
        try:
            (envelope,) = await self.store.append_within(connection, [batch])
        except ConcurrencyError as error:
            raise ConcurrentChangeError(stream) from error
        state = evolve(state_of(current), event)
        await connection.execute(
            f"UPDATE {self.tables.assessments} SET assessed_at = $3, voided = $4, "
            "stream_version = $5, state = $6::json "
            "WHERE tenant_id = $1 AND assessment_id = $2",
            request.tenant_id,
            current.assessment_id,
            state.assessed_at,
            state.voided is not None,
            envelope.stream_version,
            msgspec.json.encode(state).decode(),
        )

        return view_of(state, envelope, current.recorded_at)

    # Reading -----------------------------------------------------------------

    async def get(self, caller: Identity, assessment_id: UUID) -> AssessmentView:
        """Return one assessment the caller may read."""
        tenant_id = caller.tenant_id
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            row = await connection.fetchrow(
                f"SELECT a.state, a.recorded_at, a.stream_version, s.school_id "
                f"FROM {self.tables.assessments} AS a "
                f"LEFT JOIN {self.tables.sections} AS s USING (tenant_id, section_id) "
                "WHERE a.tenant_id = $1 AND a.assessment_id = $2",
                tenant_id,
                assessment_id,
            )
        if row is None:
            raise AssessmentNotFoundError(assessment_id)
        view = row_view(row)
        owner = Owner(
            tenant_id=tenant_id, school_id=row["school_id"], section_id=view.section_id
        )
        if not may(caller, owner, action="read", area=AREA):
            raise AssessmentNotFoundError(assessment_id)

        return view

    async def of_student(
        self, caller: Identity, student_id: str
    ) -> list[AssessmentView]:
        """Return a student's assessments the caller may read, oldest
        evidence first; raise ``StudentNotFoundError`` when the caller sees
        neither the student's sections nor any of their assessments."""
        tenant_id = caller.tenant_id
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            rows = await connection.fetch(
                f"SELECT a.state, a.recorded_at, a.stream_version, s.school_id "
                f"FROM {self.tables.assessments} AS a "
                f"LEFT JOIN {self.tables.sections} AS s USING (tenant_id, section_id) "
                "WHERE a.tenant_id = $1 AND a.student_id = $2 "
                "ORDER BY a.assessed_at, a.recorded_at, a.position",
                tenant_id,
                student_id,
            )
            sections = await connection.fetch(
                f"SELECT e.section_id, s.school_id FROM {self.tables.enrollments} AS e "
                f"LEFT JOIN {self.tables.sections} AS s USING (tenant_id, section_id) "
                "WHERE e.tenant_id = $1 AND e.person_id::text = $2 "
                "AND e.role = 'student'",
                tenant_id,
                student_id,
            )

        def readable(section_id: str | None, school_id: str | None) -> bool:
            owner = Owner(
                tenant_id=tenant_id, school_id=school_id, section_id=section_id
            )
            return may(caller, owner, action="read", area=AREA)

        views = [
            view
            for view, row in ((row_view(row), row) for row in rows)
            if readable(view.section_id, row["school_id"])
        ]
        if not views and not any(readable(*section) for section in sections):
            raise StudentNotFoundError(student_id)

        return views


def state_of(view: AssessmentView) -> AssessmentState:
    """Return the folded state a view carries, without the read table's
    own columns."""
    fields = msgspec.structs.asdict(view)
    del fields["recorded_at"], fields["stream_version"]
    return AssessmentState(**fields)


def row_view(row: asyncpg.Record) -> AssessmentView:
    """Build a view from a row holding ``state``, ``recorded_at`` and
    ``stream_version``."""
    state = msgspec.json.decode(row["state"], type=AssessmentState)
    return AssessmentView(
        **msgspec.structs.asdict(state),
        recorded_at=row["recorded_at"],
        stream_version=row["stream_version"],
    )


async def refill_assessments(
    connection: Connection, schema: str, tenant_id: str
) -> int:
    """Replace the tenant's assessment rows with the fold of its assessment
    events in the log's order, inside the caller's transaction bound to
    the tenant; return how many assessments there are.

    The rows are written where an assessment command appends its events,
    not by a follower of the log: a log stored by other means (an audit
    import) has none until this runs.
    """
    tables = SchemaTables(schema)
    await connection.execute(
        f"DELETE FROM {tables.assessments} WHERE tenant_id = $1", tenant_id
    )
    rows = await connection.fetch(
        f"SELECT {ENVELOPE_COLUMNS} FROM {quote_schema(schema)}.events AS events "
        "WHERE tenant_id = $1 AND event_type = ANY($2::text[]) "
        "ORDER BY events.transaction_id, events.position",
        tenant_id,
        list(ASSESSMENT_EVENT_NAMES),
    )
    # Each assessment's state, first envelope (its recording) and last.
    folded: dict[UUID, tuple[AssessmentState, Envelope, Envelope]] = {}
    for row in rows:
        envelope = envelope_from_row(row)
        event = CONTRACT.decode(envelope)
        assert isinstance(event, ASSESSMENT_EVENTS)
        found = folded.get(event.assessment_id)
        state = evolve(found[0] if found else None, event)
        folded[event.assessment_id] = (state, found[1] if found else envelope, envelope)

    await connection.executemany(
        f"INSERT INTO {tables.assessments} (tenant_id, assessment_id, "
        "student_id, section_id, objective_id, assessed_at, recorded_at, "
        "position, voided, stream_version, state) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::json)",
        [
            (
                tenant_id,
                state.assessment_id,
                state.student_id,
                state.section_id,
                state.objective_id,
                state.assessed_at,
                first.recorded_at,
                first.position,
                state.voided is not None,
                last.stream_version,
                msgspec.json.encode(state).decode(),
            )
            for state, first, last in folded.values()
        ],
    )

    return len(folded)
