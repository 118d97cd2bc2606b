"""Reading timelines: now, as of a valid date, as known at a past moment,
and per student or per section.

Every read runs in a transaction bound to the caller's tenant. A point is
believed at ``known_at`` when it was recorded at or before it and not yet
replaced then; the state at ``as_of`` is the last believed point whose
valid time is at or before it.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec

from mastery_events.migrations import quote_schema
from mastery_events.tenancy import tenant_transaction
from mastery_grading.errors import TimelineNotFoundError
from mastery_grading.explanations import Parts
from mastery_grading.mastery import MasteryResult
from mastery_grading.timeline_store import STORED_RESULT, Pair, result_of, stored_parts


class PointView(msgspec.Struct, frozen=True, kw_only=True):
    """One change point as a reader sees it: valid from ``valid_from``,
    believed from ``recorded_from`` (until ``recorded_until`` when a later
    event replaced it), and why it is there."""

    valid_from: datetime
    recorded_from: datetime
    recorded_until: datetime | None
    status: str
    score: float | None
    level: float | None
    level_label: str | None
    mastered: bool
    cause_event_id: UUID
    reason: str
    result: MasteryResult


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    """A timeline as believed at ``known_at`` (now when ``None``): all its
    points, and the state at ``as_of`` (the newest when ``None``)."""

    student_id: str
    objective_id: UUID
    section_id: str | None
    as_of: datetime | None
    known_at: datetime | None
    state: PointView | None
    points: tuple[PointView, ...]


class MasteryCell(msgspec.Struct, frozen=True, kw_only=True):
    """A timeline's newest state, for summaries and matrices."""

    student_id: str
    objective_id: UUID
    section_id: str | None
    status: str
    score: float | None
    level: float | None
    level_label: str | None
    mastered: bool
    valid_from: datetime | None
    method: str
    scale_version: int
    policy_version: int | None


POINT_FIELDS = (
    "valid_from, recorded_from, recorded_until, status, score, level, "
    f"level_label, mastered, cause_event_id, reason, {STORED_RESULT}"
)
VIEW_FIELDS = (
    "valid_from",
    "recorded_from",
    "recorded_until",
    "status",
    "score",
    "level",
    "level_label",
    "mastered",
    "cause_event_id",
    "reason",
)
CELL_FIELDS = (
    "student_id, objective_id, section_id, status, score, level, level_label, "
    "mastered, valid_from, method, scale_version, policy_version"
)


def point_of(row: asyncpg.Record, parts: Parts) -> PointView:
    """Build a point from a row selected with ``POINT_FIELDS``, its
    explanation's parts taken from ``parts``."""
    fields = {name: row[name] for name in VIEW_FIELDS}
    return PointView(**fields, result=result_of(row, parts))


class TimelineReader:
    """Read the timeline tables of one service's schema, one tenant at a
    time."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        quoted = quote_schema(schema)
        self._points = f"{quoted}.timeline_points"
        self._items = f"{quoted}.timeline_items"
        self._rules = f"{quoted}.timeline_rules"
        self._states = f"{quoted}.timeline_states"
        self._enrollments = f"{quoted}.roster_enrollments"
        self._section_sets = f"{quoted}.section_objective_sets"

    async def section_of(
        self, tenant_id: str, student_id: str, objective_id: UUID
    ) -> str | None:
        """Return the section a timeline belongs to, or raise
        ``TimelineNotFoundError`` when the tenant has no such timeline."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            row = await connection.fetchrow(
                f"SELECT section_id FROM {self._states} WHERE tenant_id = $1 "
                "AND student_id = $2 AND objective_id = $3",
                tenant_id,
                student_id,
                objective_id,
            )
        if row is None:
            raise TimelineNotFoundError(student_id, objective_id)

        section: str | None = row["section_id"]
        return section

    async def timeline(
        self,
        tenant_id: str,
        student_id: str,
        objective_id: UUID,
        *,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
    ) -> Timeline:
        """Return a timeline as believed at ``known_at``, with its state at
        ``as_of``."""
        believed = believed_at(known_at, points="")
        arguments: list[object] = [tenant_id, student_id, objective_id]
        if known_at is not None:
            arguments.append(known_at)
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            section = await connection.fetchval(
                f"SELECT section_id FROM {self._states} WHERE tenant_id = $1 "
                "AND student_id = $2 AND objective_id = $3",
                tenant_id,
                student_id,
                objective_id,
            )
            rows = await connection.fetch(
                f"SELECT {POINT_FIELDS} FROM {self._points} WHERE tenant_id = $1 "
                f"AND student_id = $2 AND objective_id = $3 AND {believed} "
                "ORDER BY valid_from",
                *arguments,
            )
            parts = await stored_parts(
                connection,
                self._items,
                self._rules,
                Pair(
                    tenant_id=tenant_id,
                    student_id=student_id,
                    objective_id=objective_id,
                ),
            )

        points = tuple(point_of(row, parts) for row in rows)
        in_force = [p for p in points if as_of is None or p.valid_from <= as_of]
        return Timeline(
            student_id=student_id,
            objective_id=objective_id,
            section_id=section,
            as_of=as_of,
            known_at=known_at,
            state=in_force[-1] if in_force else None,
            points=points,
        )

    async def student(self, tenant_id: str, student_id: str) -> list[MasteryCell]:
        """Return the newest state of each of a student's timelines."""
        return await self._cells(
            tenant_id, "student_id = $2 ORDER BY objective_id", student_id
        )

    async def summary(
        self,
        tenant_id: str,
        student_id: str,
        *,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
    ) -> list[MasteryCell]:
        """Return a student's mastery on every objective: the newest states
        when no moment is asked about, else the states at ``as_of`` as
        believed at ``known_at``."""
        if as_of is None and known_at is None:
            return await self.student(tenant_id, student_id)

        return await self.student_as(
            tenant_id, student_id, as_of=as_of, known_at=known_at
        )

    async def student_as(
        self,
        tenant_id: str,
        student_id: str,
        *,
        as_of: datetime | None,
        known_at: datetime | None,
    ) -> list[MasteryCell]:
        """Return the state of each of a student's timelines at ``as_of``
        (the newest when ``None``) as believed at ``known_at`` (now when
        ``None``); a timeline with no point then is left out."""
        believed = believed_at(known_at, points="p.")
        arguments: list[object] = [tenant_id, student_id, as_of]
        if known_at is not None:
            arguments.append(known_at)
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            rows = await connection.fetch(
                "SELECT DISTINCT ON (p.objective_id) p.student_id, "
                "p.objective_id, s.section_id, p.status, p.score, p.level, "
                "p.level_label, p.mastered, p.valid_from, p.method, "
                "p.scale_version, p.policy_version "
                f"FROM {self._points} p JOIN {self._states} s "
                "ON s.tenant_id = p.tenant_id AND s.student_id = p.student_id "
                "AND s.objective_id = p.objective_id "
                f"WHERE p.tenant_id = $1 AND p.student_id = $2 AND {believed} "
                "AND ($3::timestamptz IS NULL OR p.valid_from <= $3) "
                "ORDER BY p.objective_id, p.valid_from DESC, p.revision DESC",
                *arguments,
            )

        return [MasteryCell(**dict(row)) for row in rows]

    async def section(self, tenant_id: str, section_id: str) -> list[MasteryCell]:
        """Return a section's matrix, by student then objective: the
        newest state of each timeline recorded in the section, and of each
        timeline of a student the roster enrolls in it on an objective of
        a set linked to it."""
        enrolled = (
            "section_id = $2 OR (student_id IN ("
            f"SELECT person_id::text FROM {self._enrollments} "
            "WHERE tenant_id = $1 AND section_id = $2 AND role = 'student' "
            "AND active) AND objective_set_id IN ("
            f"SELECT objective_set_id FROM {self._section_sets} "
            "WHERE tenant_id = $1 AND section_id = $2))"
        )
        return await self._cells(
            tenant_id, f"({enrolled}) ORDER BY student_id, objective_id", section_id
        )

    async def _cells(self, tenant_id: str, where: str, value: str) -> list[MasteryCell]:
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            rows = await connection.fetch(
                f"SELECT {CELL_FIELDS} FROM {self._states} "
                f"WHERE tenant_id = $1 AND {where}",
                tenant_id,
                value,
            )

        return [MasteryCell(**dict(row)) for row in rows]


def believed_at(known_at: datetime | None, *, points: str) -> str:
    """Return the condition that keeps the points believed at ``known_at``
    (bound as ``$4``), or the points believed now when it is ``None``;
    ``points`` prefixes the columns (``"p."``, or ``""`` for none)."""
    if known_at is None:
        return f"{points}recorded_until IS NULL"

    return (
        f"{points}recorded_from <= $4 AND ({points}recorded_until IS NULL "
        f"OR {points}recorded_until > $4)"
    )
