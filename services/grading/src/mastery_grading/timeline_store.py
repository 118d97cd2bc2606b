"""The timeline projection's tables, and how one log event changes them.

``TimelineProjection.apply`` takes one event of grading's own log, on a
connection whose transaction is bound to the event's tenant, and updates
the timelines it touches: an assessment event revises its student's
timeline on its objective; a ``RecalculationStarted`` puts a new policy or
scale version in force and revises every timeline it affects. With
``announce`` it appends a ``MasteryChanged`` per changed valid time (and a
``RecalculationFinished`` per job) to the log in the same transaction; the
rebuild applies events without it, as they were announced already.

The tables may carry a suffix, so the rebuild can fill copies of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec
import structlog

from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentEvent,
    AssessmentRecorded,
    AssessmentVoided,
    MasteryChanged,
    RecalculationFinished,
    RecalculationStarted,
)
from mastery_events.database import Connection
from mastery_events.envelope import Envelope, Event, PendingEvent
from mastery_events.migrations import quote_schema
from mastery_events.store import EventStore, StreamAppend
from mastery_grading.errors import (
    ObjectiveNotYetKnownError,
    PolicyVersionNotFoundError,
    ScaleVersionNotFoundError,
)
from mastery_grading.evidence import EvidenceItem, StoredAssessmentEvent
from mastery_grading.explanations import (
    Parts,
    parts_of,
    stored_result,
    summary_of,
)
from mastery_grading.mastery import MasteryResult, Policy
from mastery_grading.scales import ScaleView
from mastery_grading.timeline import (
    DEFAULT_POLICY,
    Point,
    Revision,
    Rules,
    advance,
    announcement,
    reason_of,
    recalculation_reason,
    since_of,
)

REBUILT_TABLES = (
    "timeline_evidence",
    "timeline_items",
    "timeline_rules",
    "timeline_points",
    "timeline_states",
    "timeline_policies",
    "timeline_scales",
)
ACTOR = "grading-timelines"

log = structlog.get_logger(__name__)

assessment_decoder = msgspec.json.Decoder(AssessmentEvent)
encoder = msgspec.json.Encoder()
policy_decoder = msgspec.json.Decoder(Policy)
scale_decoder = msgspec.json.Decoder(ScaleView)


def mastery_stream(student_id: str, objective_id: UUID) -> str:
    """Return the log stream of one timeline's ``MasteryChanged`` events."""
    return f"mastery-{objective_id}-{student_id}"


def recalculation_stream(job_id: UUID) -> str:
    """Return the log stream of one recalculation job."""
    return f"recalculation-{job_id}"


class Pair(msgspec.Struct, frozen=True, kw_only=True):
    """One timeline: a student and an objective, in a tenant."""

    tenant_id: str
    student_id: str
    objective_id: UUID


class TimelineState(msgspec.Struct, kw_only=True):
    """What a timeline's row in ``timeline_states`` keeps besides its
    newest state: where it belongs and how far its revisions have got."""

    objective_set_id: UUID | None
    section_id: str | None
    scale_id: UUID
    revision: int
    stream_version: int
    recorded_at: datetime
    recalculated_by: UUID | None = None


class Applied(msgspec.Struct, frozen=True, kw_only=True):
    """What applying one event did: the timelines it changed, and whether
    it is done (a recalculation may need more steps)."""

    changed: int
    complete: bool = True


class Shift(msgspec.Struct, frozen=True, kw_only=True):
    """What a ``RecalculationStarted`` puts in force, read from the event."""

    scale_id: UUID | None
    scale_version: int | None
    objective_set_id: UUID | None
    objective_id: UUID | None
    policy_version: int | None


def shift_of(event: RecalculationStarted) -> Shift:
    """Return what ``event`` puts in force."""
    return Shift(
        scale_id=event.scale_id,
        scale_version=event.scale_version,
        objective_set_id=event.objective_set_id,
        objective_id=event.objective_id,
        policy_version=event.policy_version,
    )


def touches(shift: Shift, state: TimelineState, objective_id: UUID) -> bool:
    """Tell whether a timeline in ``state`` is read with what ``shift``
    changes: its scale, or its set's policy, or its objective's override."""
    if shift.scale_id is not None:
        return state.scale_id == shift.scale_id
    if shift.objective_set_id is None:
        return False
    if state.objective_set_id != shift.objective_set_id:
        return False

    return shift.objective_id is None or shift.objective_id == objective_id


# ``touches`` in SQL, for the projector to select what a job goes through.
TOUCHED = (
    "CASE WHEN $2::uuid IS NOT NULL THEN scale_id = $2 "
    "ELSE objective_set_id = $3 AND ($4::uuid IS NULL OR objective_id = $4) END"
)


def choose_rules(
    events: Sequence[StoredAssessmentEvent],
    *,
    scale_in_force: int | None,
    override: tuple[int, Policy] | None,
    set_policy: tuple[int, Policy] | None,
    scale_view: Callable[[UUID, int], ScaleView],
) -> tuple[UUID, Rules]:
    """Return the scale a timeline is read on and its rules.

    The scale is that of its newest recording, at the newest version
    either its evidence names or a recalculation put in force; the policy
    is the objective's override, else its set's, else ``DEFAULT_POLICY``.
    """
    recordings = [s.event for s in events if isinstance(s.event, AssessmentRecorded)]
    scale_id = recordings[-1].scale_id
    named = max(r.scale_version for r in recordings if r.scale_id == scale_id)
    version = max(named, scale_in_force or 0)

    chosen = override or set_policy
    policy, policy_version = DEFAULT_POLICY, None
    if chosen is not None:
        policy_version, policy = chosen

    rules = Rules(
        scale=scale_view(scale_id, version),
        policy=policy,
        policy_version=policy_version,
    )
    return scale_id, rules


class Tables:
    """The qualified names of the projection's tables, with a suffix."""

    def __init__(self, schema: str, suffix: str = "") -> None:
        quoted = quote_schema(schema)
        self.evidence = f"{quoted}.timeline_evidence{suffix}"
        self.points = f"{quoted}.timeline_points{suffix}"
        self.states = f"{quoted}.timeline_states{suffix}"
        self.policies = f"{quoted}.timeline_policies{suffix}"
        self.scales = f"{quoted}.timeline_scales{suffix}"
        self.items = f"{quoted}.timeline_items{suffix}"
        self.rules = f"{quoted}.timeline_rules{suffix}"
        self.recalculations = f"{quoted}.timeline_recalculations"
        self.catalogue_objectives = f"{quoted}.catalogue_objectives"
        self.catalogue_scale_versions = f"{quoted}.catalogue_scale_versions"
        self.catalogue_policy_versions = f"{quoted}.catalogue_policy_versions"


POINT_COLUMNS = (
    "tenant_id",
    "student_id",
    "objective_id",
    "revision",
    "valid_from",
    "recorded_from",
    "recorded_until",
    "status",
    "score",
    "level",
    "level_label",
    "mastered",
    "method",
    "scale_id",
    "scale_version",
    "policy_version",
    "rules_revision",
    "counted",
    "counted_revisions",
    "left_out",
    "left_out_revisions",
    "cause_event_id",
    "reason",
    "summary",
)
ITEM_COLUMNS = (
    "tenant_id",
    "student_id",
    "objective_id",
    "assessment_id",
    "revision",
    "item",
)


RULES_COLUMNS = ("tenant_id", "student_id", "objective_id", "revision", "header")
# The columns a point's result is put back together from.
STORED_RESULT = (
    "summary, rules_revision, counted, counted_revisions, left_out, left_out_revisions"
)


def result_of(row: asyncpg.Record, parts: Parts) -> MasteryResult:
    """Return the result a point row selected with ``STORED_RESULT`` holds."""
    return stored_result(
        row["summary"],
        parts,
        rules_revision=row["rules_revision"],
        counted=row["counted"],
        counted_revisions=row["counted_revisions"],
        left_out=row["left_out"],
        left_out_revisions=row["left_out_revisions"],
    )


async def stored_parts(
    connection: Connection, items: str, rules: str, pair: Pair
) -> Parts:
    """Read the parts one timeline's explanations are made of from the
    tables named ``items`` and ``rules``, both in one statement, as the
    projector does for every event it applies."""
    where = "WHERE tenant_id = $1 AND student_id = $2 AND objective_id = $3"
    rows = await connection.fetch(
        f"SELECT assessment_id, revision, item AS part FROM {items} {where} "
        f"UNION ALL SELECT NULL, revision, header FROM {rules} {where} "
        "ORDER BY revision, assessment_id",
        pair.tenant_id,
        pair.student_id,
        pair.objective_id,
    )

    return parts_of(
        (
            (row["assessment_id"], row["revision"], row["part"])
            for row in rows
            if row["assessment_id"] is not None
        ),
        (
            (row["revision"], row["part"])
            for row in rows
            if row["assessment_id"] is None
        ),
    )


class RevisionRows(msgspec.Struct, kw_only=True):
    """The rows one revision adds: its opened points (``POINT_COLUMNS``)
    and the item versions (``ITEM_COLUMNS``) and rules (``RULES_COLUMNS``)
    they name for the first time."""

    points: list[list[object]]
    items: list[tuple[object, ...]]
    rules: list[tuple[object, ...]]


def revision_rows(
    pair: Pair,
    opened: Sequence[Point],
    *,
    revision: int,
    recorded_from: datetime,
    rules: Rules,
    cause_event_id: UUID,
    reason: str,
    parts: Parts,
) -> RevisionRows:
    """Return the rows a revision adds: one shape for the projection and
    the rebuild alike."""
    rows = RevisionRows(points=[], items=[], rules=[])
    key = (pair.tenant_id, pair.student_id, pair.objective_id)
    new_items: list[EvidenceItem] = []
    scale = rules.scale
    for point in opened:
        result = point.result
        explanation = result.explanation
        level = result.level
        rules_revision, header = parts.rules_name(explanation, revision)
        if header is not None:
            rows.rules.append((*key, revision, encoder.encode(header).decode()))
        counted, counted_revisions, new = parts.names(explanation.counted, revision)
        new_items += new
        left_out, left_out_revisions, new = parts.names(explanation.left_out, revision)
        new_items += new
        rows.points.append(
            [
                *key,
                revision,
                point.valid_from,
                recorded_from,
                None,
                result.status,
                result.score,
                level.value if level else None,
                level.label if level else None,
                result.mastered,
                explanation.method,
                scale.scale_id,
                scale.version,
                rules.policy_version,
                rules_revision,
                counted,
                counted_revisions,
                left_out,
                left_out_revisions,
                cause_event_id,
                reason,
                encoder.encode(summary_of(result)).decode(),
            ]
        )
    if new_items:
        rows.items = [
            (*key, item.assessment_id, revision, encoder.encode(item).decode())
            for item in new_items
        ]

    return rows


class TimelineProjection:
    """Apply grading's own log events to the timeline tables."""

    def __init__(
        self,
        schema: str,
        *,
        suffix: str = "",
        store: EventStore | None = None,
        chunk: int | None = None,
    ) -> None:
        self.tables = Tables(schema, suffix)
        self.store = store
        self.chunk = chunk

    async def apply(
        self, connection: Connection, envelope: Envelope, event: Event
    ) -> Applied:
        """Apply one event, or the next part of a recalculation."""
        match event:
            case AssessmentRecorded() | AssessmentAmended() | AssessmentVoided():
                changed = await self._assess(connection, envelope, event)
                return Applied(changed=int(changed))
            case RecalculationStarted():
                return await self._recalculate(connection, envelope, event)
            case _:
                return Applied(changed=0)

    async def require_objective(
        self, connection: Connection, tenant_id: str, objective_id: UUID
    ) -> None:
        """Raise ``ObjectiveNotYetKnownError`` unless the catalogue knows
        the objective: live, an assessment is refused until it does, but
        an imported one can reach the projector before the catalogue
        hears of its objective from the objectives service."""
        known = await connection.fetchval(
            f"SELECT EXISTS (SELECT FROM {self.tables.catalogue_objectives} "
            "WHERE tenant_id = $1 AND objective_id = $2)",
            tenant_id,
            objective_id,
        )
        if not known:
            raise ObjectiveNotYetKnownError(tenant_id, objective_id)

    async def require_policy(
        self, connection: Connection, tenant_id: str, event: RecalculationStarted
    ) -> None:
        """Raise ``PolicyVersionNotFoundError`` unless the catalogue holds
        the policy version ``event`` puts in force: live, the catalogue
        plans the job as it records the version, but an imported job can
        reach the projector before the catalogue hears of its version."""
        if event.objective_set_id is None or event.policy_version is None:
            return
        known = await connection.fetchval(
            f"SELECT EXISTS (SELECT FROM {self.tables.catalogue_policy_versions} "
            "WHERE tenant_id = $1 AND objective_set_id = $2 "
            "AND objective_id IS NOT DISTINCT FROM $3 AND policy_version = $4)",
            tenant_id,
            event.objective_set_id,
            event.objective_id,
            event.policy_version,
        )
        if not known:
            raise PolicyVersionNotFoundError(
                event.objective_set_id, event.objective_id, event.policy_version
            )

    async def _assess(
        self,
        connection: Connection,
        envelope: Envelope,
        event: AssessmentEvent,
    ) -> bool:
        tenant = envelope.tenant_id
        pair = await self._pair_of(connection, tenant, event)
        if pair is None:
            # The recording routes refuse a correction of an unknown
            # assessment; one in the log anyway has nothing to correct.
            log.warning(
                "timeline.orphan_correction",
                tenant=tenant,
                event_id=str(envelope.event_id),
            )
            return False
        await connection.execute(
            f"INSERT INTO {self.tables.evidence} (tenant_id, student_id, "
            "objective_id, assessment_id, event_id, position, recorded_at, event) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json)",
            tenant,
            pair.student_id,
            pair.objective_id,
            event.assessment_id,
            envelope.event_id,
            envelope.position,
            envelope.recorded_at,
            msgspec.json.encode(event).decode(),
        )
        events = await self._events_of(connection, pair)
        state = await self._state_of(connection, pair)
        if state is None:
            objective_set = await connection.fetchval(
                f"SELECT objective_set_id FROM {self.tables.catalogue_objectives} "
                "WHERE tenant_id = $1 AND objective_id = $2",
                tenant,
                pair.objective_id,
            )
            state = TimelineState(
                objective_set_id=objective_set,
                section_id=None,
                scale_id=UUID(int=0),
                revision=0,
                stream_version=0,
                recorded_at=envelope.recorded_at,
            )
        if isinstance(event, AssessmentRecorded) and event.section_id is not None:
            state.section_id = event.section_id

        scale_id, rules = await self._rules_of(connection, pair, state, events)
        state.scale_id = scale_id
        points, parts = await self._points_of(connection, pair)
        revision = advance(
            events, points, rules, since=since_of(events, event.assessment_id)
        )
        return await self._record(
            connection,
            pair,
            state,
            revision,
            parts=parts,
            rules=rules,
            envelope=envelope,
            reason=reason_of(event),
        )

    async def _recalculate(
        self,
        connection: Connection,
        envelope: Envelope,
        event: RecalculationStarted,
    ) -> Applied:
        """Go through up to ``chunk`` timelines the job has not yet been
        through; finish the job once none is left."""
        tenant = envelope.tenant_id
        shift = shift_of(event)
        await self._put_in_force(connection, tenant, shift)

        limit = "" if self.chunk is None else f"LIMIT {int(self.chunk)}"
        rows = await connection.fetch(
            f"SELECT student_id, objective_id FROM {self.tables.states} "
            f"WHERE tenant_id = $1 AND {TOUCHED} "
            "AND recalculated_by IS DISTINCT FROM $5 "
            f"ORDER BY student_id, objective_id {limit}",
            tenant,
            shift.scale_id,
            shift.objective_set_id,
            shift.objective_id,
            event.job_id,
        )
        changed = 0
        for row in rows:
            pair = Pair(tenant_id=tenant, **dict(row))
            state = await self._state_of(connection, pair)
            assert state is not None
            state.recalculated_by = event.job_id
            events = await self._events_of(connection, pair)
            scale_id, rules = await self._rules_of(connection, pair, state, events)
            state.scale_id = scale_id
            points, parts = await self._points_of(connection, pair)
            revision = advance(events, points, rules, since=None)
            changed += await self._record(
                connection,
                pair,
                state,
                revision,
                parts=parts,
                rules=rules,
                envelope=envelope,
                reason=recalculation_reason(event.reason),
            )

        complete = self.chunk is None or len(rows) < self.chunk
        if self.store is not None:
            await self._progress(
                connection, envelope, event, len(rows), changed, complete=complete
            )
        log.info(
            "timeline.recalculated",
            tenant=tenant,
            job_id=str(event.job_id),
            timelines=len(rows),
            changed=changed,
            complete=complete,
        )
        return Applied(changed=changed, complete=complete)

    async def _progress(
        self,
        connection: Connection,
        envelope: Envelope,
        event: RecalculationStarted,
        timelines: int,
        changed: int,
        *,
        complete: bool,
    ) -> None:
        found = await connection.fetchrow(
            f"UPDATE {self.tables.recalculations} SET done = done + $3, "
            "changed = changed + $4 WHERE tenant_id = $1 AND job_id = $2 "
            "RETURNING done, changed",
            envelope.tenant_id,
            event.job_id,
            timelines,
            changed,
        )
        if complete:
            done, total = (found["done"], found["changed"]) if found else (0, 0)
            await self._finish(connection, envelope, event, done, total)

    async def _finish(
        self,
        connection: Connection,
        envelope: Envelope,
        event: RecalculationStarted,
        timelines: int,
        changed: int,
    ) -> None:
        assert self.store is not None
        # A job's end is the moment its start was applied: the projector
        # reads no clock, so a replay would say the same.
        finished = RecalculationFinished(
            job_id=event.job_id,
            timelines=timelines,
            changed=changed,
            finished_at=envelope.recorded_at,
        )
        await self.store.append_within(
            connection,
            [
                StreamAppend(
                    tenant_id=envelope.tenant_id,
                    stream_id=envelope.stream_id,
                    expected_version=envelope.stream_version,
                    events=[pending(finished, envelope)],
                )
            ],
        )
        await connection.execute(
            f"UPDATE {self.tables.recalculations} SET timelines = $3, "
            "finished_at = $4 WHERE tenant_id = $1 AND job_id = $2",
            envelope.tenant_id,
            event.job_id,
            timelines,
            envelope.recorded_at,
        )

    async def _put_in_force(
        self, connection: Connection, tenant: str, shift: Shift
    ) -> None:
        if shift.scale_id is not None and shift.scale_version is not None:
            await connection.execute(
                f"INSERT INTO {self.tables.scales} AS s "
                "(tenant_id, scale_id, scale_version) VALUES ($1, $2, $3) "
                "ON CONFLICT (tenant_id, scale_id) DO UPDATE SET "
                "scale_version = greatest(s.scale_version, excluded.scale_version)",
                tenant,
                shift.scale_id,
                shift.scale_version,
            )
        if shift.objective_set_id is None:
            return
        if shift.policy_version is None:
            await connection.execute(
                f"DELETE FROM {self.tables.policies} WHERE tenant_id = $1 "
                "AND objective_set_id = $2 AND objective_id IS NOT DISTINCT FROM $3",
                tenant,
                shift.objective_set_id,
                shift.objective_id,
            )
            return
        policy = await connection.fetchval(
            f"SELECT policy FROM {self.tables.catalogue_policy_versions} "
            "WHERE tenant_id = $1 AND objective_set_id = $2 "
            "AND objective_id IS NOT DISTINCT FROM $3 AND policy_version = $4",
            tenant,
            shift.objective_set_id,
            shift.objective_id,
            shift.policy_version,
        )
        if policy is None:
            log.warning(
                "timeline.policy_unknown",
                tenant=tenant,
                objective_set_id=str(shift.objective_set_id),
                policy_version=shift.policy_version,
            )
            return
        await connection.execute(
            f"INSERT INTO {self.tables.policies} AS p (tenant_id, objective_set_id, "
            "objective_id, policy_version, policy) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (tenant_id, objective_set_id, objective_id) DO UPDATE "
            "SET policy_version = excluded.policy_version, policy = excluded.policy",
            tenant,
            shift.objective_set_id,
            shift.objective_id,
            shift.policy_version,
            policy,
        )

    async def _record(
        self,
        connection: Connection,
        pair: Pair,
        state: TimelineState,
        revision: Revision,
        *,
        parts: Parts,
        rules: Rules,
        envelope: Envelope,
        reason: str,
    ) -> bool:
        """Store a revision and its announcements; return whether it
        changed anything."""
        changed = bool(revision.opened or revision.closed)
        # The log's order is by transaction, and a transaction's recorded
        # time is when it began: a later revision may carry an earlier
        # time, and believing it from before its predecessor would reorder
        # history.
        recorded = max(envelope.recorded_at, state.recorded_at)
        if changed:
            state.revision += 1
            await self._close(connection, pair, revision.closed, recorded)
            rows = revision_rows(
                pair,
                revision.opened,
                revision=state.revision,
                recorded_from=recorded,
                rules=rules,
                cause_event_id=envelope.event_id,
                reason=reason,
                parts=parts,
            )
            if rows.items:
                await connection.executemany(
                    f"INSERT INTO {self.tables.items} ({', '.join(ITEM_COLUMNS)}) "
                    "VALUES ($1, $2, $3, $4, $5, $6::json)",
                    rows.items,
                )
            if rows.rules:
                await connection.executemany(
                    f"INSERT INTO {self.tables.rules} ({', '.join(RULES_COLUMNS)}) "
                    "VALUES ($1, $2, $3, $4, $5::json)",
                    rows.rules,
                )
            placeholders = ", ".join(f"${n}" for n in range(1, len(POINT_COLUMNS) + 1))
            await connection.executemany(
                f"INSERT INTO {self.tables.points} ({', '.join(POINT_COLUMNS)}) "
                f"VALUES ({placeholders})",
                rows.points,
            )
            announced = [
                announcement(
                    point,
                    student_id=pair.student_id,
                    objective_id=pair.objective_id,
                    rules=rules,
                    cause_event_id=envelope.event_id,
                    reason=reason,
                )
                for point in revision.announced
            ]
            await self._announce(connection, pair, state, announced, envelope)
            state.stream_version += len(announced)
        state.recorded_at = recorded

        newest = revision.points[-1] if revision.points else None
        await self._put_state(connection, pair, state, newest, rules)
        return changed

    async def _announce(
        self,
        connection: Connection,
        pair: Pair,
        state: TimelineState,
        announced: Sequence[MasteryChanged],
        envelope: Envelope,
    ) -> None:
        if self.store is None or not announced:
            return
        await self.store.append_within(
            connection,
            [
                StreamAppend(
                    tenant_id=pair.tenant_id,
                    stream_id=mastery_stream(pair.student_id, pair.objective_id),
                    expected_version=state.stream_version,
                    events=[pending(event, envelope) for event in announced],
                )
            ],
        )

    async def _close(
        self,
        connection: Connection,
        pair: Pair,
        closed: Sequence[datetime],
        recorded: datetime,
    ) -> None:
        if not closed:
            return
        await connection.execute(
            f"UPDATE {self.tables.points} SET recorded_until = $4 "
            "WHERE tenant_id = $1 AND student_id = $2 AND objective_id = $3 "
            "AND recorded_until IS NULL AND valid_from = ANY($5::timestamptz[])",
            pair.tenant_id,
            pair.student_id,
            pair.objective_id,
            recorded,
            list(closed),
        )

    async def _put_state(
        self,
        connection: Connection,
        pair: Pair,
        state: TimelineState,
        newest: Point | None,
        rules: Rules,
    ) -> None:
        await connection.execute(
            f"""
            INSERT INTO {self.tables.states} (
                tenant_id, student_id, objective_id, objective_set_id, section_id,
                scale_id, scale_version, policy_version, method, status, score,
                level, level_label, mastered, valid_from, recorded_at, revision,
                stream_version, recalculated_by
            ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                      $14, $15, $16, $17, $18, $19)
            ON CONFLICT (tenant_id, student_id, objective_id) DO UPDATE SET
                objective_set_id = excluded.objective_set_id,
                section_id = excluded.section_id,
                scale_id = excluded.scale_id,
                scale_version = excluded.scale_version,
                policy_version = excluded.policy_version,
                method = excluded.method,
                status = excluded.status,
                score = excluded.score,
                level = excluded.level,
                level_label = excluded.level_label,
                mastered = excluded.mastered,
                valid_from = excluded.valid_from,
                recorded_at = excluded.recorded_at,
                revision = excluded.revision,
                stream_version = excluded.stream_version,
                recalculated_by = excluded.recalculated_by
            """,
            *state_row(pair, state, newest, rules),
        )

    async def _pair_of(
        self, connection: Connection, tenant: str, event: AssessmentEvent
    ) -> Pair | None:
        if isinstance(event, AssessmentRecorded):
            return Pair(
                tenant_id=tenant,
                student_id=event.student_id,
                objective_id=event.objective_id,
            )
        row = await connection.fetchrow(
            f"SELECT student_id, objective_id FROM {self.tables.evidence} "
            "WHERE tenant_id = $1 AND assessment_id = $2 LIMIT 1",
            tenant,
            event.assessment_id,
        )
        if row is None:
            return None

        return Pair(tenant_id=tenant, **dict(row))

    async def _events_of(
        self, connection: Connection, pair: Pair
    ) -> list[StoredAssessmentEvent]:
        rows = await connection.fetch(
            f"SELECT event, recorded_at, position FROM {self.tables.evidence} "
            "WHERE tenant_id = $1 AND student_id = $2 AND objective_id = $3 "
            "ORDER BY position",
            pair.tenant_id,
            pair.student_id,
            pair.objective_id,
        )
        return [
            StoredAssessmentEvent(
                event=assessment_decoder.decode(event),
                recorded_at=recorded_at,
                position=position,
            )
            for event, recorded_at, position in rows
        ]

    async def _points_of(
        self, connection: Connection, pair: Pair
    ) -> tuple[list[Point], Parts]:
        """Return a timeline's believed points and its stored parts."""
        parts = await stored_parts(
            connection, self.tables.items, self.tables.rules, pair
        )
        rows = await connection.fetch(
            f"SELECT valid_from, {STORED_RESULT} FROM {self.tables.points} "
            "WHERE tenant_id = $1 AND student_id = $2 AND objective_id = $3 "
            "AND recorded_until IS NULL ORDER BY valid_from",
            pair.tenant_id,
            pair.student_id,
            pair.objective_id,
        )
        points = [
            Point(valid_from=row["valid_from"], result=result_of(row, parts))
            for row in rows
        ]
        return points, parts

    async def _state_of(
        self, connection: Connection, pair: Pair
    ) -> TimelineState | None:
        row = await connection.fetchrow(
            "SELECT objective_set_id, section_id, scale_id, revision, "
            f"stream_version, recorded_at, recalculated_by FROM {self.tables.states} "
            "WHERE tenant_id = $1 AND student_id = $2 AND objective_id = $3",
            pair.tenant_id,
            pair.student_id,
            pair.objective_id,
        )
        if row is None:
            return None

        return TimelineState(**dict(row))

    async def _rules_of(
        self,
        connection: Connection,
        pair: Pair,
        state: TimelineState,
        events: Sequence[StoredAssessmentEvent],
    ) -> tuple[UUID, Rules]:
        tenant = pair.tenant_id
        policies = await connection.fetch(
            f"SELECT objective_id, policy_version, policy FROM {self.tables.policies} "
            "WHERE tenant_id = $1 AND objective_set_id = $2 "
            "AND (objective_id IS NULL OR objective_id = $3)",
            tenant,
            state.objective_set_id,
            pair.objective_id,
        )
        found = {
            row["objective_id"]: (
                row["policy_version"],
                policy_decoder.decode(row["policy"]),
            )
            for row in policies
        }
        recordings = [
            s.event for s in events if isinstance(s.event, AssessmentRecorded)
        ]
        newest_scale = recordings[-1].scale_id
        in_force: int | None = await connection.fetchval(
            f"SELECT scale_version FROM {self.tables.scales} "
            "WHERE tenant_id = $1 AND scale_id = $2",
            tenant,
            newest_scale,
        )
        views = {
            (row["scale_id"], row["scale_version"]): scale_decoder.decode(row["view"])
            for row in await connection.fetch(
                "SELECT scale_id, scale_version, view "
                f"FROM {self.tables.catalogue_scale_versions} "
                "WHERE tenant_id = $1 AND scale_id = $2",
                tenant,
                newest_scale,
            )
        }

        def scale_view(scale_id: UUID, version: int) -> ScaleView:
            view = views.get((scale_id, version))
            if view is None:
                raise ScaleVersionNotFoundError(scale_id, version)
            return view

        return choose_rules(
            events,
            scale_in_force=in_force,
            override=found.get(pair.objective_id),
            set_policy=found.get(None),
            scale_view=scale_view,
        )


def pending(event: Event, cause: Envelope) -> PendingEvent:
    """Wrap an event the projector decided because of ``cause``: it
    happened when the cause was recorded, in the cause's correlation."""
    return PendingEvent(
        payload=event,
        occurred_at=cause.recorded_at,
        actor=ACTOR,
        correlation_id=cause.correlation_id,
        causation_id=cause.event_id,
    )


def state_row(
    pair: Pair, state: TimelineState, newest: Point | None, rules: Rules
) -> tuple[object, ...]:
    """Return a timeline's state row, column by column as the states table
    has them: one shape for the projection and the rebuild alike."""
    result = newest.result if newest else None
    level = result.level if result else None
    return (
        pair.tenant_id,
        pair.student_id,
        pair.objective_id,
        state.objective_set_id,
        state.section_id,
        state.scale_id,
        rules.scale.version,
        rules.policy_version,
        rules.policy.method,
        result.status if result else "not_enough_evidence",
        result.score if result else None,
        level.value if level else None,
        level.label if level else None,
        result.mastered if result else False,
        newest.valid_from if newest else None,
        state.recorded_at,
        state.revision,
        state.stream_version,
        state.recalculated_by,
    )
