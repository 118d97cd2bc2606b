"""The counted-evidence view: one student's assessments on one objective.

An assessment is recorded once and may later be amended or voided; those
corrections are new events, never edits. Folding them gives each
assessment's current reading (level or mark, and ``assessed_at``), whether
it counts as evidence and why, and what each amend changed, so the
explanation can show the history instead of hiding it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from mastery_events.contract.grading import (
    AssessmentAmended,
    AssessmentEvent,
    AssessmentRecorded,
    AssessmentVoided,
    EvidenceKind,
)
from mastery_grading.errors import MixedEvidenceError, OrphanCorrectionError
from mastery_grading.scales import ScaleView

Standing = Literal[
    "counted",
    "missing_counted_as_lowest",
    "voided",
    "excused",
    "insufficient_evidence",
    "missing",
    "unknown_mark",
    "no_level",
    "outside_scale",
    "other_scale",
]
"""Why an item counts (the first two) or is left out (the rest)."""

COUNTED: frozenset[Standing] = frozenset({"counted", "missing_counted_as_lowest"})


class StoredAssessmentEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An assessment event with what the store knows of it: when it was
    recorded and its position in the service's log."""

    event: AssessmentEvent
    recorded_at: datetime
    position: int


class Reading(msgspec.Struct, frozen=True, kw_only=True):
    """What an assessment says at one moment: a level or a mark, and when
    the evidence happened."""

    level: float | None
    mark: str | None
    assessed_at: datetime


class Amendment(msgspec.Struct, frozen=True, kw_only=True):
    """One amend as the explanation shows it: who, when, why, and the
    reading before and after."""

    amended_by: str
    amended_at: datetime
    reason: str
    changed: tuple[str, ...]
    before: Reading
    after: Reading


class Voiding(msgspec.Struct, frozen=True, kw_only=True):
    """Who withdrew an assessment from the evidence, when and why."""

    voided_by: str
    voided_at: datetime
    reason: str


class EvidenceItem(msgspec.Struct, frozen=True, kw_only=True):
    """One assessment as it stands now, and whether it counts.

    ``value`` is the score it counts as: its level, or the scale's lowest
    value for a ``missing`` mark the scale counts; ``None`` when left out.
    """

    assessment_id: UUID
    title: str
    kind: EvidenceKind
    assessed_by: str
    reading: Reading
    recorded_at: datetime
    position: int
    standing: Standing
    value: float | None
    amendments: tuple[Amendment, ...] = ()
    voided: Voiding | None = None

    @property
    def counted(self) -> bool:
        """Say whether the item is part of the evidence a method sees."""
        return self.standing in COUNTED

    def order(self) -> tuple[datetime, datetime, int]:
        """Sort key: when the evidence happened, then when it was recorded,
        then its place in the log for recordings in the same instant."""
        return (self.reading.assessed_at, self.recorded_at, self.position)


class _Draft(msgspec.Struct, kw_only=True):
    """An assessment while its events are being folded."""

    recorded: AssessmentRecorded
    recorded_at: datetime
    position: int
    reading: Reading
    amendments: list[Amendment]
    voided: Voiding | None = None


def fold_evidence(
    events: Iterable[StoredAssessmentEvent], scale: ScaleView
) -> list[EvidenceItem]:
    """Fold one student's assessment events on one objective into their
    evidence items, ordered by ``assessed_at`` then recorded time.

    Events are applied in log order whatever order they arrive in, so the
    same events always fold to the same list.
    """
    fold = EvidenceFold()
    for stored in sorted(events, key=lambda stored: stored.position):
        fold.add(stored)

    return fold.items(scale)


class EvidenceFold:
    """One timeline's assessments folded so far, ready for the next event.

    ``fold_evidence`` folds a whole list at once; the rebuild keeps one
    fold per timeline and adds each event as the log brings it, so a
    revision costs one event's work instead of the whole timeline's. Each
    assessment's item is settled once per scale and kept until an event
    touches that assessment again.
    """

    def __init__(self) -> None:
        self._drafts: dict[UUID, _Draft] = {}
        self._pair: tuple[str, UUID] | None = None
        self._settled: dict[UUID, EvidenceItem] = {}
        # Assessments touched since their item was last settled.
        self._unsettled: set[UUID] = set()
        self._scale: ScaleView | None = None
        self.last_position: int | None = None

    def add(self, stored: StoredAssessmentEvent) -> None:
        """Apply the event after the last one added, in log order."""
        event = stored.event
        self.last_position = stored.position
        self._settled.pop(event.assessment_id, None)
        self._unsettled.add(event.assessment_id)
        if isinstance(event, AssessmentRecorded):
            pair = (event.student_id, event.objective_id)
            self._pair = self._pair or pair
            if pair != self._pair:
                raise MixedEvidenceError(
                    event.assessment_id,
                    student_id=event.student_id,
                    objective_id=event.objective_id,
                )
            self._drafts[event.assessment_id] = _Draft(
                recorded=event,
                recorded_at=stored.recorded_at,
                position=stored.position,
                reading=Reading(
                    level=event.level, mark=event.mark, assessed_at=event.assessed_at
                ),
                amendments=[],
            )
            return

        draft = self._drafts.get(event.assessment_id)
        if draft is None:
            raise OrphanCorrectionError(event.assessment_id)
        if isinstance(event, AssessmentAmended):
            amend(draft, event)
        else:
            void(draft, event)

    def items(self, scale: ScaleView) -> list[EvidenceItem]:
        """Return the evidence items on ``scale``, ordered as
        ``fold_evidence`` orders them."""
        settled = self._settled
        if scale is not self._scale:
            settled.clear()
            self._unsettled.update(self._drafts)
            self._scale = scale
        for assessment_id in self._unsettled:
            draft = self._drafts.get(assessment_id)
            if draft is not None:
                settled[assessment_id] = settle(draft, scale)
        self._unsettled.clear()

        return sorted(settled.values(), key=EvidenceItem.order)


def amend(draft: _Draft, event: AssessmentAmended) -> None:
    """Apply an amend to ``draft`` and keep what it changed.

    A new level clears a mark and a new mark clears a level, since an
    assessment says one or the other; a new date alone keeps the level.
    """
    before = draft.reading
    level, mark = before.level, before.mark
    if event.level is not None or event.mark is not None:
        level, mark = event.level, event.mark
    after = Reading(
        level=level, mark=mark, assessed_at=event.assessed_at or before.assessed_at
    )
    changed = tuple(
        field
        for field in ("level", "mark", "assessed_at")
        if getattr(before, field) != getattr(after, field)
    )
    draft.amendments.append(
        Amendment(
            amended_by=event.amended_by,
            amended_at=event.amended_at,
            reason=event.reason,
            changed=changed,
            before=before,
            after=after,
        )
    )
    draft.reading = after


def void(draft: _Draft, event: AssessmentVoided) -> None:
    """Withdraw ``draft`` from the evidence; the first void is the one that
    counts, as a later one withdraws nothing more."""
    if draft.voided is None:
        draft.voided = Voiding(
            voided_by=event.voided_by, voided_at=event.voided_at, reason=event.reason
        )


def settle(draft: _Draft, scale: ScaleView) -> EvidenceItem:
    """Turn a folded draft into an item, deciding whether it counts."""
    standing, value = standing_of(draft, scale)
    recorded = draft.recorded

    return EvidenceItem(
        assessment_id=recorded.assessment_id,
        title=recorded.evidence.title,
        kind=recorded.evidence.kind,
        assessed_by=recorded.assessed_by,
        reading=draft.reading,
        recorded_at=draft.recorded_at,
        position=draft.position,
        standing=standing,
        value=value,
        amendments=tuple(draft.amendments),
        voided=draft.voided,
    )


def standing_of(draft: _Draft, scale: ScaleView) -> tuple[Standing, float | None]:
    """Decide whether an assessment counts, and as which score."""
    recorded, reading = draft.recorded, draft.reading
    if draft.voided is not None:
        return "voided", None
    if scale.scale_id is not None and (recorded.scale_id, recorded.scale_version) != (
        scale.scale_id,
        scale.version,
    ):
        return "other_scale", None
    if reading.mark is not None:
        return standing_of_mark(reading.mark, scale)
    if reading.level is None:
        return "no_level", None
    if not scale.holds(reading.level):
        return "outside_scale", None

    return "counted", reading.level


def standing_of_mark(code: str, scale: ScaleView) -> tuple[Standing, float | None]:
    """Decide what a mark counts as: only a missing mark may count, as the
    lowest level, and only when the scale says so."""
    mark = scale.mark(code)
    if mark is None:
        return "unknown_mark", None
    if mark.meaning == "missing" and mark.counts_as_lowest:
        return "missing_counted_as_lowest", scale.low

    return mark.meaning, None
