"""The JSON bodies grading's write routes accept, held to what the store
keeps, and the ``Idempotency-Key`` header they share."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar.params import HeaderParameter, PathParameter

from mastery_events.contract.grading import EvidenceKind, LetterCut, TraditionalKind

# PostgreSQL text cannot hold NUL and integer columns are 32-bit: bodies
# are held to what the store keeps, so nothing valid fails there.
NO_NUL = "^[^\\x00]*$"
Text = Annotated[str, msgspec.Meta(max_length=10_000, pattern=NO_NUL)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=NO_NUL)]
SectionId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=255, pattern="^[^\\x00]+$")
]
Link = Annotated[str, msgspec.Meta(max_length=2_000, pattern="^https?://[^\\s\\x00]+$")]
Version = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
# No scale comes near; the bound keeps values exact in JSON and in jsonb.
Value = Annotated[float, msgspec.Meta(ge=-1_000_000, le=1_000_000)]
Moment = Annotated[datetime, msgspec.Meta(tz=True)]
# A school's largest assignment, every student on several objectives.
MOST_ROWS = 10_000

IdempotencyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        min_length=1,
        max_length=255,
        pattern="^[\\x21-\\x7e]+$",
        description=(
            "Any unique value per request; a retry with the same key and "
            "body gets the first answer and records nothing."
        ),
    ),
]
SectionPath = Annotated[
    str, PathParameter(min_length=1, max_length=255, pattern="^[^\\x00]+$")
]


class EvidenceBody(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """What the student did: a title, its kind, an optional weight and
    link."""

    title: Name
    kind: EvidenceKind = "unspecified"
    weight: Annotated[float, msgspec.Meta(ge=0, le=1_000)] | None = None
    link: Link | None = None


class AssessmentBody(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """One student's level or mark on one objective, in one section."""

    student_id: UUID
    section_id: SectionId
    objective_id: UUID
    scale_id: UUID
    scale_version: Version
    level: Value | None = None
    mark: Name | None = None
    assessed_at: Moment
    evidence: EvidenceBody
    comment: Text | None = None


class BatchRowBody(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """One row of a batch; ``assessed_at`` overrides the batch's."""

    student_id: UUID
    objective_id: UUID
    level: Value | None = None
    mark: Name | None = None
    assessed_at: Moment | None = None
    comment: Text | None = None


class BatchBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One piece of work graded for many students and objectives of one
    section on one scale version."""

    section_id: SectionId
    scale_id: UUID
    scale_version: Version
    assessed_at: Moment
    evidence: EvidenceBody
    rows: Annotated[
        list[BatchRowBody], msgspec.Meta(min_length=1, max_length=MOST_ROWS)
    ]


class AmendmentBody(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """A correction: a new level or mark, a new date, or both, and why."""

    level: Value | None = None
    mark: Name | None = None
    assessed_at: Moment | None = None
    reason: Name


class VoidBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Why a record is withdrawn."""

    reason: Name


class TraditionalGradeBody(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """A percent, a points score out of ``points_possible``, or pass/fail,
    for one student of the section."""

    student_id: UUID
    title: Name
    kind: TraditionalKind
    percent: Value | None = None
    points: Value | None = None
    points_possible: Value | None = None
    passed: bool | None = None
    assessed_at: Moment


class LetterCutBody(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """The lowest percent that earns a letter."""

    letter: Annotated[str, msgspec.Meta(min_length=1, max_length=20, pattern=NO_NUL)]
    min_percent: Annotated[float, msgspec.Meta(ge=0, le=100)]

    def cut(self) -> LetterCut:
        """Return the cut as the contract carries it."""
        return LetterCut(letter=self.letter, min_percent=self.min_percent)


class GradeBridgeBody(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """A section's letter cuts; one must start at 0."""

    cuts: Annotated[list[LetterCutBody], msgspec.Meta(min_length=1, max_length=30)]
