"""The rebuild's fast replay: one timeline at a time, in memory.

The projector applies one event at a time through the database, which is
what a live log needs and far too slow for a whole one. The replay asks
PostgreSQL for the assessment events sorted by timeline, then by the
log's order, walks each timeline's events with the tenant's
``RecalculationStarted`` events merged in at their places, makes exactly
the decisions ``TimelineProjection`` makes (the same ``curve_of`` and
``revise`` that ``advance`` is made of, the same rules, the same row
values), and copies the rows into the rebuild's tables in bulk. Only one
timeline and two buffers of rows (one being copied, one filling) are held
at once, so memory stays flat however long the log is.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
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
from mastery_grading.evidence import EvidenceFold, EvidenceItem, StoredAssessmentEvent
from mastery_grading.explanations import Parts
from mastery_grading.mastery import Policy
from mastery_grading.scales import ScaleView
from mastery_grading.timeline import (
    Point,
    Revision,
    Rules,
    curve_of,
    read_on,
    reason_of,
    recalculation_reason,
    revise,
)
from mastery_grading.timeline_store import (
    ITEM_COLUMNS,
    POINT_COLUMNS,
    RULES_COLUMNS,
    Pair,
    Shift,
    TimelineState,
    choose_rules,
    revision_rows,
    shift_of,
    state_row,
    touches,
)

ASSESSMENT_TYPES = ["AssessmentRecorded", "AssessmentAmended", "AssessmentVoided"]
FLUSH_ROWS = 5000
FETCH_ROWS = 2000
# Allocations between two collections of the youngest generation while
# replaying, where Python's default is 700 (see ``rarer_collections``).
YOUNG_COLLECTION = 20_000
# Assessment events with their timeline, by timeline and then in the log's
# order; corrections find their timeline through their recording. The
# payload is ``json``, parsed anew by every operator on it, so it is parsed
# once per event into the three fields the order needs.
TIMELINE_ORDER = """
    WITH assessed AS (
        SELECT e.tenant_id, e.transaction_id::text::bigint AS txid, e.position,
               e.event_id, e.event_type, e.event_version, e.recorded_at,
               e.payload, f.assessment_id, f.student_id, f.objective_id
        FROM {events} e,
             json_to_record(e.payload)
                 AS f(assessment_id uuid, student_id text, objective_id uuid)
        WHERE e.event_type = ANY($3::text[])
          AND (e.transaction_id, e.position) <= ($1::text::xid8, $2)
    ),
    pairs AS (
        SELECT tenant_id, assessment_id, student_id, objective_id
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
    # How many shifts were put in force: rules chosen at the same count
    # still hold.
    changes: int = 0

    def put(self, shift: Shift, catalogue: Catalogue) -> None:
        """Put what ``shift`` names in force, as the projector does."""
        self.changes += 1
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
    items: list[tuple[object, ...]] = msgspec.field(default_factory=list)
    rules: list[tuple[object, ...]] = msgspec.field(default_factory=list)
    points: list[list[object]] = msgspec.field(default_factory=list)
    states: list[tuple[object, ...]] = msgspec.field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.evidence)
            + len(self.items)
            + len(self.rules)
            + len(self.points)
            + len(self.states)
        )


class TimelineReplay:
    """Replay one timeline's triggers as ``TimelineProjection`` would.

    The projector folds a timeline's evidence anew for every event, as it
    reads the evidence back from its table; the replay keeps the fold and
    adds each event to it, and keeps the rules until what chooses them
    changes. Both feed the same ``curve_of`` and ``revise``, so they reach
    the same revisions.
    """

    def __init__(self, pair: Pair, catalogue: Catalogue, rows: Rows) -> None:
        self.pair = pair
        self.catalogue = catalogue
        self.rows = rows
        self.events: list[StoredAssessmentEvent] = []
        self.points: list[Point] = []
        self.state: TimelineState | None = None
        self.rules: Rules | None = None
        self._open: dict[datetime, list[object]] = {}
        self._fold = EvidenceFold()
        self._folded_on: ScaleView | None = None
        self._newest_scale: UUID | None = None
        self._named: dict[UUID, int] = {}
        # Of the recordings, rules depend only on the newest one's scale
        # and the newest version of it they name; of the log, on what is in
        # force. They hold while none of the three moves.
        self._newest_version = 0
        self._rules_marker: tuple[int, UUID | None, int] | None = None
        self._since: dict[UUID, datetime] = {}
        self._rules_key: tuple[object, ...] | None = None
        self._parts = Parts()

    def assess(self, trigger: Trigger, in_force: InForce) -> None:
        """Apply an assessment event."""
        event = trigger.assessment
        assert event is not None
        pair = self.pair
        stored = StoredAssessmentEvent(
            event=event, recorded_at=trigger.recorded_at, position=trigger.position
        )
        self.events.append(stored)
        self._fold_in(stored)
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
        if isinstance(event, AssessmentRecorded):
            if event.section_id is not None:
                self.state.section_id = event.section_id
            self._newest_scale = event.scale_id
            named = self._named.get(event.scale_id, event.scale_version)
            named = self._named[event.scale_id] = max(named, event.scale_version)
            self._newest_version = named

        rules = self._rules(in_force)
        self._revise(
            trigger,
            rules,
            since=self._since_of(event),
            reason=reason_of(event),
        )

    def recalculate(self, trigger: Trigger, shift: Shift, in_force: InForce) -> None:
        """Apply a recalculation, when it touches this timeline."""
        started = trigger.started
        assert started is not None
        state = self.state
        if state is None or not touches(shift, state, self.pair.objective_id):
            return
        state.recalculated_by = started.job_id
        rules = self._rules(in_force)
        reason = recalculation_reason(started.reason)
        self._revise(trigger, rules, since=None, reason=reason)

    def finish(self) -> None:
        """Add the timeline's state row."""
        state, rules = self.state, self.rules
        if state is None or rules is None:
            return
        newest = self.points[-1] if self.points else None
        self.rows.states.append(state_row(self.pair, state, newest, rules))

    def _since_of(self, event: AssessmentEvent) -> datetime | None:
        """Take ``event``'s date into its assessment's earliest and return
        that: what ``since_of`` finds over all the events, kept as they
        come instead."""
        since = self._since.get(event.assessment_id)
        if (
            isinstance(event, AssessmentRecorded | AssessmentAmended)
            and event.assessed_at is not None
            and (since is None or event.assessed_at < since)
        ):
            since = self._since[event.assessment_id] = event.assessed_at

        return since

    def _fold_in(self, stored: StoredAssessmentEvent) -> None:
        """Add an event to the fold, or drop the fold when the event comes
        before one already in it, as ``_evidence`` then folds anew in
        position order."""
        scale = self._folded_on
        last = self._fold.last_position
        if scale is None or (last is not None and stored.position < last):
            self._folded_on = None
            return
        event = stored.event
        if (
            isinstance(event, AssessmentRecorded)
            and event.scale_id == scale.scale_id
            and event.scale_version < scale.version
        ):
            (stored,) = read_on((stored,), scale)
        self._fold.add(stored)

    def _evidence(self, scale: ScaleView) -> list[EvidenceItem]:
        """Return the timeline's evidence read on ``scale``, folding it
        anew only when the scale changed or an event came out of order."""
        if scale is not self._folded_on:
            self._fold = EvidenceFold()
            for stored in sorted(read_on(self.events, scale), key=by_position):
                self._fold.add(stored)
            self._folded_on = scale

        return self._fold.items(scale)

    def _rules(self, in_force: InForce) -> Rules:
        marker = (in_force.changes, self._newest_scale, self._newest_version)
        if self.rules is not None and marker == self._rules_marker:
            return self.rules
        self._rules_marker = marker
        state, newest = self.state, self._newest_scale
        assert state is not None
        assert newest is not None
        override = set_policy = None
        if state.objective_set_id is not None:
            found = in_force.policies.get(
                (state.objective_set_id, self.pair.objective_id)
            )
            override = (found[0], found[2]) if found else None
            found = in_force.policies.get((state.objective_set_id, None))
            set_policy = (found[0], found[2]) if found else None
        key = (
            newest,
            self._named[newest],
            in_force.scales.get(newest),
            override,
            set_policy,
        )
        if self.rules is not None and key == self._rules_key:
            return self.rules

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
        self.rules, self._rules_key = rules, key
        return rules

    def _revise(
        self, trigger: Trigger, rules: Rules, *, since: datetime | None, reason: str
    ) -> None:
        items = self._evidence(rules.scale)
        new = curve_of(items, rules, keep=self.points, since=since)
        revision = revise(self.points, new, rules, announce=False)
        self._record(trigger, revision, rules, reason)

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
            added = revision_rows(
                self.pair,
                revision.opened,
                revision=state.revision,
                recorded_from=recorded,
                rules=rules,
                cause_event_id=trigger.event_id,
                reason=reason,
                parts=self._parts,
            )
            self.rows.items += added.items
            self.rows.rules += added.rules
            self.rows.points += added.points
            for point, row in zip(revision.opened, added.points, strict=True):
                self._open[point.valid_from] = row
            # The projector announces one event per valid time that
            # changed; the replay announces nothing, but counts them.
            state.stream_version += len(revision.changed_at)
        # A result decodes from its stored JSON to a value equal to itself
        # (floats, datetimes and tuples all survive msgspec's round trip),
        # so comparing with these points is comparing with the projector's,
        # which it reads back from the table.
        self.points = list(revision.points)
        state.recorded_at = recorded


# Replays running in this process with collections made rarer, and the
# thresholds to put back when the last of them ends.
_rarer: list[tuple[int, int, int]] = []


@contextlib.contextmanager
def rarer_collections(young: int = YOUNG_COLLECTION) -> Iterator[None]:
    """Run Python's cyclic garbage collector less often while replaying,
    then as before.

    A replay allocates a few hundred objects per event (results, points,
    rows), nearly none of them in cycles, so reference counting frees
    them; the collector, run every 700 allocations by default, spent about
    a quarter of the replay's Python time finding nothing to collect.
    Collections still run, so the little cyclic garbage made meanwhile
    (by the event loop, say) stays bounded. Replays that overlap in one
    process share the setting, and the last to end puts back the old one.
    """
    if not _rarer:
        thresholds = gc.get_threshold()
        gc.set_threshold(max(young, thresholds[0]), *thresholds[1:])
        _rarer.append(thresholds)
    else:
        _rarer.append(_rarer[0])
    try:
        yield
    finally:
        thresholds = _rarer.pop()
        if not _rarer:
            gc.set_threshold(*thresholds)


def by_position(stored: StoredAssessmentEvent) -> int:
    """Sort key: the event's place in the log."""
    return stored.position


class RowCopier:
    """Copy the replay's rows into the rebuild's tables on a connection of
    their own, one buffer at a time.

    PostgreSQL takes in a buffer (checking each result is JSON, writing
    the heap and the indexes) while the replay computes the next one, so the
    server's work and Python's overlap instead of taking turns. At most one
    buffer is in flight and one filling, which keeps memory flat.
    """

    def __init__(self, connection: Connection, schema: str, suffix: str) -> None:
        self.connection = connection
        self._schema = schema
        self._suffix = suffix
        self._copying: asyncio.Task[None] | None = None

    async def send(self, rows: Rows) -> None:
        """Start copying ``rows`` once the previous buffer is in."""
        await self.wait()
        self._copying = asyncio.create_task(self._copy(rows))

    async def wait(self) -> None:
        """Wait until the buffer in flight is in, raising what it raised."""
        copying, self._copying = self._copying, None
        if copying is not None:
            await copying

    async def pass_turn(self) -> None:
        """Let the buffer in flight move on: the copy runs only while the
        replay awaits, and the replay computes a whole chunk between reads."""
        if self._copying is not None:
            await asyncio.sleep(0)

    async def abandon(self) -> None:
        """Stop the buffer in flight, as the replay failed and its rows
        are not wanted."""
        copying, self._copying = self._copying, None
        if copying is not None:
            copying.cancel()
            await asyncio.gather(copying, return_exceptions=True)

    async def copy(
        self, table: str, columns: Sequence[str], records: Sequence[Sequence[object]]
    ) -> None:
        """Copy ``records`` into the rebuild's copy of ``table`` now."""
        if records:
            await self.connection.copy_records_to_table(
                f"{table}{self._suffix}",
                schema_name=self._schema,
                columns=list(columns),
                records=records,
            )

    async def _copy(self, rows: Rows) -> None:
        await self.copy("timeline_evidence", EVIDENCE_COLUMNS, rows.evidence)
        await self.copy("timeline_items", ITEM_COLUMNS, rows.items)
        await self.copy("timeline_rules", RULES_COLUMNS, rows.rules)
        await self.copy("timeline_points", POINT_COLUMNS, rows.points)
        await self.copy("timeline_states", STATE_COLUMNS, rows.states)


class FastReplay:
    """Replay a log into the rebuild's tables, timeline by timeline.

    It reads on ``connection`` and writes on a second connection from
    ``pool`` (see ``RowCopier``), in a transaction of its own that commits
    once the whole log is in.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        connection: Connection,
        schema: str,
        *,
        registry: Registry,
        suffix: str,
    ) -> None:
        self.pool = pool
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

        with rarer_collections():
            return await self._run(bound, progress)

    async def _run(
        self, bound: tuple[str, int], progress: Callable[[int], None]
    ) -> int:
        async with self.pool.acquire() as writer, writer.transaction():
            copier = RowCopier(writer, self._schema, self._suffix)
            try:
                replayed = await self._replay_all(bound, copier, progress)
                await self._write_in_force(copier)
            except BaseException:
                await copier.abandon()
                raise

        return replayed

    async def _replay_all(
        self,
        bound: tuple[str, int],
        copier: RowCopier,
        progress: Callable[[int], None],
    ) -> int:
        rows = Rows()
        replayed = 0
        current: TimelineReplay | None = None

        async with self.connection.transaction():
            # The portal reads every tenant's events as the relay's role.
            await self.connection.execute(f"SET LOCAL ROLE {RELAY_ROLE}")
            cursor = await self.connection.cursor(
                TIMELINE_ORDER.format(events=f"{self._quoted}.events"),
                *bound,
                ASSESSMENT_TYPES,
            )
            await self.connection.execute("SET LOCAL ROLE NONE")
            triggers: list[Trigger] = []
            timeline: tuple[object, ...] | None = None
            while chunk := await cursor.fetch(FETCH_ROWS):
                for row in chunk:
                    # Tenant, student and objective lead each row: its
                    # timeline, compared as a plain tuple row by row.
                    key = (row[0], row[1], row[2])
                    if key != timeline:
                        if current is not None:
                            self._replay(current, triggers)
                            replayed += len(triggers)
                            progress(len(triggers))
                            triggers = []
                            if len(rows) >= FLUSH_ROWS:
                                await copier.send(rows)
                                rows = Rows()
                            await copier.pass_turn()
                        pair = Pair(
                            tenant_id=key[0], student_id=key[1], objective_id=key[2]
                        )
                        catalogue = await self._catalogue(pair.tenant_id)
                        current = TimelineReplay(pair, catalogue, rows)
                        timeline = key
                    triggers.append(self._trigger(row))
            if current is not None:
                self._replay(current, triggers)
                replayed += len(triggers)
                progress(len(triggers))

        await copier.send(rows)
        await copier.wait()
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

    async def _write_in_force(self, copier: RowCopier) -> None:
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
        await copier.copy(
            "timeline_scales", ("tenant_id", "scale_id", "scale_version"), scales
        )
        await copier.copy(
            "timeline_policies",
            (
                "tenant_id",
                "objective_set_id",
                "objective_id",
                "policy_version",
                "policy",
            ),
            policies,
        )
