"""The rebuild's fast replay: one timeline at a time, in memory.

The projector applies one event at a time through the database, which is
what a live log needs and far too slow for a whole one. The replay asks
PostgreSQL for the assessment events sorted by timeline, then by the
log's order, walks each timeline's events with the tenant's
``RecalculationStarted`` events merged in at their places, makes exactly
the decisions ``TimelineProjection`` makes (the same ``advance``, the same
rules, the same row values), and copies the rows into the rebuild's tables
in bulk. Only one timeline and a buffer of rows are held at once, so
memory stays flat however long the log is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from mastery_events.contract import Registry
from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentEvent,
    AssessmentRecorded,
    AssessmentVoided,
    RecalculationStarted,
)
from mastery_events.database import Connection
from mastery_events.migrations import quote_schema
from mastery_events.store import Checkpoint
from mastery_events.tenancy import RELAY_ROLE, set_tenant
from mastery_grading.errors import ScaleVersionNotFoundError
from mastery_grading.evidence import StoredAssessmentEvent
from mastery_grading.mastery import MasteryResult, Policy
from mastery_grading.scales import ScaleView
from mastery_grading.timeline import (
    Point,
    Revision,
    Rules,
    advance,
    reason_of,
    recalculation_reason,
    since_of,
)
from mastery_grading.timeline_store import (
    POINT_COLUMNS,
    Pair,
    Shift,
    TimelineState,
    choose_rules,
    point_row,
    shift_of,
    touches,
)

ASSESSMENT_TYPES = ["AssessmentRecorded", "AssessmentAmended", "AssessmentVoided"]
FLUSH_ROWS = 5000
FETCH_ROWS = 2000
# Assessment events with their timeline, by timeline and then in the log's
# order; corrections find their timeline through their recording.
TIMELINE_ORDER = """
    WITH assessed AS (
        SELECT tenant_id, transaction_id::text::bigint AS txid, position,
               event_id, event_type, event_version, recorded_at, payload,
               (payload->>'assessment_id')::uuid AS assessment_id
        FROM {events}
        WHERE event_type = ANY($3::text[])
          AND (transaction_id, position) <= ($1::text::xid8, $2)
    ),
    pairs AS (
        SELECT tenant_id, assessment_id,
               payload->>'student_id' AS student_id,
               (payload->>'objective_id')::uuid AS objective_id
        FROM assessed WHERE event_type = 'AssessmentRecorded'
    )
    SELECT a.tenant_id, p.student_id, p.objective_id, a.txid, a.position,
           a.event_id, a.event_type, a.event_version, a.recorded_at, a.payload
    FROM assessed a JOIN pairs p USING (tenant_id, assessment_id)
    ORDER BY a.tenant_id, p.student_id, p.objective_id, a.txid, a.position
"""
RECORDED_UNTIL = POINT_COLUMNS.index("recorded_until")
STATE_COLUMNS = (
    "tenant_id",
    "student_id",
    "objective_id",
    "objective_set_id",
    "section_id",
    "scale_id",
    "scale_version",
    "policy_version",
    "method",
    "status",
    "score",
    "level",
    "level_label",
    "mastered",
    "valid_from",
    "recorded_at",
    "revision",
    "stream_version",
    "recalculated_by",
)
EVIDENCE_COLUMNS = (
    "tenant_id",
    "student_id",
    "objective_id",
    "assessment_id",
    "event_id",
    "position",
    "recorded_at",
    "event",
)

result_decoder = msgspec.json.Decoder(MasteryResult)
policy_decoder = msgspec.json.Decoder(Policy)
scale_decoder = msgspec.json.Decoder(ScaleView)


class Trigger(msgspec.Struct, frozen=True, kw_only=True):
    """One event that may revise a timeline, at its place in the log."""

    order: tuple[int, int]
    event_id: UUID
    recorded_at: datetime
    position: int
    assessment: AssessmentEvent | None = None
    started: RecalculationStarted | None = None


class Catalogue(msgspec.Struct, kw_only=True):
    """One tenant's catalogue, whole: it is small beside the log."""

    sets: dict[UUID, UUID]
    scales: dict[tuple[UUID, int], ScaleView]
    policies: dict[tuple[UUID, UUID | None, int], tuple[str, Policy]]


class InForce(msgspec.Struct, kw_only=True):
    """The scale versions and policies in force at a place in the log."""

    scales: dict[UUID, int] = msgspec.field(default_factory=dict)
    policies: dict[tuple[UUID, UUID | None], tuple[int, str, Policy]] = msgspec.field(
        default_factory=dict
    )

    def put(self, shift: Shift, catalogue: Catalogue) -> None:
        """Put what ``shift`` names in force, as the projector does."""
        if shift.scale_id is not None and shift.scale_version is not None:
            known = self.scales.get(shift.scale_id, shift.scale_version)
            self.scales[shift.scale_id] = max(known, shift.scale_version)
        if shift.objective_set_id is None:
            return
        key = (shift.objective_set_id, shift.objective_id)
        if shift.policy_version is None:
            self.policies.pop(key, None)
            return
        found = catalogue.policies.get((*key, shift.policy_version))
        if found is not None:
            self.policies[key] = (shift.policy_version, *found)


class Rows(msgspec.Struct, kw_only=True):
    """Rows waiting to be copied into the rebuild's tables."""

    evidence: list[tuple[object, ...]] = msgspec.field(default_factory=list)
    points: list[list[object]] = msgspec.field(default_factory=list)
    states: list[tuple[object, ...]] = msgspec.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.evidence) + len(self.points) + len(self.states)


class TimelineReplay:
    """Replay one timeline's triggers as ``TimelineProjection`` would."""

    def __init__(self, pair: Pair, catalogue: Catalogue, rows: Rows) -> None:
        self.pair = pair
        self.catalogue = catalogue
        self.rows = rows
        self.events: list[StoredAssessmentEvent] = []
        self.points: list[Point] = []
        self.state: TimelineState | None = None
        self.rules: Rules | None = None
        self._open: dict[datetime, list[object]] = {}

    def assess(self, trigger: Trigger, in_force: InForce) -> None:
        """Apply an assessment event."""
        event = trigger.assessment
        assert event is not None
        pair = self.pair
        self.events.append(
            StoredAssessmentEvent(
                event=event, recorded_at=trigger.recorded_at, position=trigger.position
            )
        )
        self.rows.evidence.append(
            (
                pair.tenant_id,
                pair.student_id,
                pair.objective_id,
                event.assessment_id,
                trigger.event_id,
                trigger.position,
                trigger.recorded_at,
                msgspec.json.encode(event).decode(),
            )
        )
        if self.state is None:
            self.state = TimelineState(
                objective_set_id=self.catalogue.sets.get(pair.objective_id),
                section_id=None,
                scale_id=UUID(int=0),
                revision=0,
                stream_version=0,
                recorded_at=trigger.recorded_at,
            )
        if isinstance(event, AssessmentRecorded) and event.section_id is not None:
            self.state.section_id = event.section_id

        rules = self._rules(in_force)
        revision = advance(
            self.events,
            self.points,
            rules,
            since=since_of(self.events, event.assessment_id),
        )
        self._record(trigger, revision, rules, reason_of(event))

    def recalculate(self, trigger: Trigger, shift: Shift, in_force: InForce) -> None:
        """Apply a recalculation, when it touches this timeline."""
        started = trigger.started
        assert started is not None
        state = self.state
        if state is None or not touches(shift, state, self.pair.objective_id):
            return
        state.recalculated_by = started.job_id
        rules = self._rules(in_force)
        revision = advance(self.events, self.points, rules, since=None)
        self._record(trigger, revision, rules, recalculation_reason(started.reason))

    def finish(self) -> None:
        """Add the timeline's state row."""
        state, rules = self.state, self.rules
        if state is None or rules is None:
            return
        newest = self.points[-1] if self.points else None
        result = newest.result if newest else None
        level = result.level if result else None
        pair = self.pair
        self.rows.states.append(
            (
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
        )

    def _rules(self, in_force: InForce) -> Rules:
        state = self.state
        assert state is not None
        newest = next(
            s.event.scale_id
            for s in reversed(self.events)
            if isinstance(s.event, AssessmentRecorded)
        )
        override = set_policy = None
        if state.objective_set_id is not None:
            found = in_force.policies.get(
                (state.objective_set_id, self.pair.objective_id)
            )
            override = (found[0], found[2]) if found else None
            found = in_force.policies.get((state.objective_set_id, None))
            set_policy = (found[0], found[2]) if found else None

        def scale_view(scale_id: UUID, version: int) -> ScaleView:
            view = self.catalogue.scales.get((scale_id, version))
            if view is None:
                raise ScaleVersionNotFoundError(scale_id, version)
            return view

        scale_id, rules = choose_rules(
            self.events,
            scale_in_force=in_force.scales.get(newest),
            override=override,
            set_policy=set_policy,
            scale_view=scale_view,
        )
        state.scale_id = scale_id
        self.rules = rules
        return rules

    def _record(
        self, trigger: Trigger, revision: Revision, rules: Rules, reason: str
    ) -> None:
        state = self.state
        assert state is not None
        recorded = max(trigger.recorded_at, state.recorded_at)
        if revision.opened or revision.closed:
            state.revision += 1
            for moment in revision.closed:
                row = self._open.pop(moment, None)
                if row is not None:
                    row[RECORDED_UNTIL] = recorded
            reread = {}
            for point in revision.opened:
                row = list(
                    point_row(
                        self.pair,
                        point,
                        revision=state.revision,
                        recorded_from=recorded,
                        rules=rules,
                        cause_event_id=trigger.event_id,
                        reason=reason,
                    )
                )
                self.rows.points.append(row)
                self._open[point.valid_from] = row
                # The projector compares with points read back from the
                # table; reading this one back the same way keeps the
                # replay's comparisons the projector's.
                reread[point.valid_from] = Point(
                    valid_from=point.valid_from,
                    result=result_decoder.decode(str(row[-1])),
                )
            self.points = [reread.get(p.valid_from, p) for p in revision.points]
            state.stream_version += len(revision.announced)
        else:
            self.points = list(revision.points)
        state.recorded_at = recorded


class FastReplay:
    """Replay a log into the rebuild's tables, timeline by timeline."""

    def __init__(
        self,
        connection: Connection,
        schema: str,
        *,
        registry: Registry,
        suffix: str,
    ) -> None:
        self.connection = connection
        self.registry = registry
        self._quoted = quote_schema(schema)
        self._schema = schema
        self._suffix = suffix
        self._catalogues: dict[str, Catalogue] = {}
        self._shifts: dict[str, list[Trigger]] = {}

    async def run(self, target: Checkpoint, *, progress: Callable[[int], None]) -> int:
        """Replay every event up to ``target``; return how many."""
        bound = (str(target.transaction_id), target.position)
        await self._load_shifts(bound)
        rows = Rows()
        replayed = 0
        current: TimelineReplay | None = None

        async with self.connection.transaction():
            # The portal reads every tenant's events as the relay's role;
            # the rest of the transaction writes as the owner.
            await self.connection.execute(f"SET LOCAL ROLE {RELAY_ROLE}")
            cursor = await self.connection.cursor(
                TIMELINE_ORDER.format(events=f"{self._quoted}.events"),
                *bound,
                ASSESSMENT_TYPES,
            )
            await self.connection.execute("SET LOCAL ROLE NONE")
            triggers: list[Trigger] = []
            while chunk := await cursor.fetch(FETCH_ROWS):
                for row in chunk:
                    pair = Pair(
                        tenant_id=row["tenant_id"],
                        student_id=row["student_id"],
                        objective_id=row["objective_id"],
                    )
                    if current is not None and current.pair != pair:
                        self._replay(current, triggers)
                        replayed += len(triggers)
                        progress(len(triggers))
                        triggers = []
                        if len(rows) >= FLUSH_ROWS:
                            await self._flush(rows)
                            rows = Rows()
                    if current is None or current.pair != pair:
                        catalogue = await self._catalogue(pair.tenant_id)
                        current = TimelineReplay(pair, catalogue, rows)
                    triggers.append(self._trigger(row))
            if current is not None:
                self._replay(current, triggers)
                replayed += len(triggers)
                progress(len(triggers))

            await self._flush(rows)
            await self._write_in_force()
        return replayed

    def _trigger(self, row: Any) -> Trigger:
        event = self.registry.decode_payload(
            row["event_type"], row["event_version"], row["payload"].encode()
        )
        if not isinstance(
            event, AssessmentRecorded | AssessmentAmended | AssessmentVoided
        ):
            raise TypeError(row["event_type"])
        return Trigger(
            order=(row["txid"], row["position"]),
            event_id=row["event_id"],
            recorded_at=row["recorded_at"],
            position=row["position"],
            assessment=event,
        )

    def _replay(self, timeline: TimelineReplay, triggers: Sequence[Trigger]) -> None:
        tenant = timeline.pair.tenant_id
        shifts = self._shifts.get(tenant, [])
        in_force = InForce()
        merged = sorted([*triggers, *shifts], key=lambda t: t.order)
        for trigger in merged:
            if trigger.started is not None:
                shift = shift_of(trigger.started)
                in_force.put(shift, timeline.catalogue)
                timeline.recalculate(trigger, shift, in_force)
            else:
                timeline.assess(trigger, in_force)
        timeline.finish()

    async def _load_shifts(self, bound: tuple[str, int]) -> None:
        async with self.connection.transaction():
            await self.connection.execute(f"SET LOCAL ROLE {RELAY_ROLE}")
            rows = await self.connection.fetch(
                f"""
            SELECT tenant_id, transaction_id::text::bigint AS txid, position,
                   event_id, event_version, recorded_at, payload
            FROM {self._quoted}.events
            WHERE event_type = 'RecalculationStarted'
              AND (transaction_id, position) <= ($1::text::xid8, $2)
            ORDER BY transaction_id, position
            """,
                *bound,
            )
        for row in rows:
            started = self.registry.decode_payload(
                "RecalculationStarted", row["event_version"], row["payload"].encode()
            )
            assert isinstance(started, RecalculationStarted)
            self._shifts.setdefault(row["tenant_id"], []).append(
                Trigger(
                    order=(row["txid"], row["position"]),
                    event_id=row["event_id"],
                    recorded_at=row["recorded_at"],
                    position=row["position"],
                    started=started,
                )
            )

    async def _catalogue(self, tenant: str) -> Catalogue:
        found = self._catalogues.get(tenant)
        if found is not None:
            return found
        async with self.connection.transaction():
            await set_tenant(self.connection, tenant)
            sets = await self.connection.fetch(
                "SELECT objective_id, objective_set_id "
                f"FROM {self._quoted}.catalogue_objectives WHERE tenant_id = $1",
                tenant,
            )
            scales = await self.connection.fetch(
                "SELECT scale_id, scale_version, view "
                f"FROM {self._quoted}.catalogue_scale_versions WHERE tenant_id = $1",
                tenant,
            )
            policies = await self.connection.fetch(
                "SELECT objective_set_id, objective_id, policy_version, policy "
                f"FROM {self._quoted}.catalogue_policy_versions WHERE tenant_id = $1",
                tenant,
            )
        found = Catalogue(
            sets={row[0]: row[1] for row in sets},
            scales={(r[0], r[1]): scale_decoder.decode(r[2]) for r in scales},
            policies={
                (r[0], r[1], r[2]): (r[3], policy_decoder.decode(r[3]))
                for r in policies
            },
        )
        self._catalogues[tenant] = found
        return found

    async def _flush(self, rows: Rows) -> None:
        for table, columns, records in (
            ("timeline_evidence", EVIDENCE_COLUMNS, rows.evidence),
            ("timeline_points", POINT_COLUMNS, rows.points),
            ("timeline_states", STATE_COLUMNS, rows.states),
        ):
            if records:
                await self.connection.copy_records_to_table(
                    f"{table}{self._suffix}",
                    schema_name=self._schema,
                    columns=list(columns),
                    records=records,
                )

    async def _write_in_force(self) -> None:
        """Write what every tenant's recalculations left in force."""
        in_force = {}
        for tenant, shifts in self._shifts.items():
            catalogue = await self._catalogue(tenant)
            found = in_force[tenant] = InForce()
            for trigger in shifts:
                assert trigger.started is not None
                found.put(shift_of(trigger.started), catalogue)
        scales = [
            (tenant, scale_id, version)
            for tenant, found in in_force.items()
            for scale_id, version in found.scales.items()
        ]
        policies = [
            (tenant, set_id, objective_id, version, text)
            for tenant, found in in_force.items()
            for (set_id, objective_id), (version, text, _) in found.policies.items()
        ]
        if scales:
            await self.connection.copy_records_to_table(
                f"timeline_scales{self._suffix}",
                schema_name=self._schema,
                columns=["tenant_id", "scale_id", "scale_version"],
                records=scales,
            )
        if policies:
            await self.connection.copy_records_to_table(
                f"timeline_policies{self._suffix}",
                schema_name=self._schema,
                columns=[
                    "tenant_id",
                    "objective_set_id",
                    "objective_id",
                    "policy_version",
                    "policy",
                ],
                records=policies,
            )
