"""Explanations kept once: a point's result as its summary plus references
to the evidence items it lists.

A point's explanation lists every evidence item counted or left out up to
its valid time, so storing it whole made each point grow with its
timeline and wrote the same items over and over. Instead a timeline keeps
each version of each item once (``timeline_items``), named by its
assessment and the revision that first listed it, and a point keeps its
``Summary`` (the result without the two lists) and, in order, the names of
the items it counts and leaves out. Reading puts the result back together,
equal to the one computed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

import msgspec

from mastery_grading.evidence import EvidenceItem
from mastery_grading.mastery import (
    Explanation,
    MasteryResult,
    Method,
    Parameters,
    PolicyRef,
    ScaleRef,
    Status,
)
from mastery_grading.scales import Level


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """A ``MasteryResult`` without the evidence its explanation lists."""

    status: Status
    score: float | None
    unrounded_score: float | None
    level: Level | None
    mastered: bool
    note: str | None
    method: Method
    parameters: Parameters
    scale: ScaleRef
    policy: PolicyRef


summary_decoder = msgspec.json.Decoder(Summary)
item_decoder = msgspec.json.Decoder(EvidenceItem)
encoder = msgspec.json.Encoder()


class ItemVersions:
    """Every version of one timeline's evidence items stored so far.

    A version is named by its assessment and the revision that first
    listed it. An item equal to a version already stored takes that
    version's name, so the projector (which folds a timeline anew for each
    event) and the rebuild (which keeps its fold) name every item alike.
    """

    def __init__(self) -> None:
        self._versions: dict[UUID, list[tuple[EvidenceItem, int]]] = {}
        # Items named before, by identity: a fold hands back the same item
        # object until an event touches its assessment, so most lookups end
        # here. Each entry holds its item, so no other object can take
        # that identity while the entry lives.
        self._seen: dict[int, tuple[EvidenceItem, int]] = {}

    def know(self, item: EvidenceItem, revision: int) -> None:
        """Take a version already stored."""
        self._versions.setdefault(item.assessment_id, []).append((item, revision))

    def name(self, item: EvidenceItem, revision: int) -> tuple[int, bool]:
        """Return the revision naming ``item`` and whether it is new, in
        which case it is named by ``revision`` from now on."""
        seen = self._seen.get(id(item))
        if seen is not None and seen[0] is item:
            return seen[1], False
        named, new = self._named(item, revision)
        self._seen[id(item)] = (item, named)

        return named, new

    def names(
        self, items: Sequence[EvidenceItem], revision: int
    ) -> tuple[list[int], list[EvidenceItem]]:
        """Return the revisions naming ``items``, and those of them that
        are new, as ``name`` does for each."""
        seen = self._seen
        found: list[int] = []
        new: list[EvidenceItem] = []
        for item in items:
            hit = seen.get(id(item))
            if hit is not None and hit[0] is item:
                found.append(hit[1])
                continue
            named, fresh = self._named(item, revision)
            seen[id(item)] = (item, named)
            found.append(named)
            if fresh:
                new.append(item)

        return found, new

    def _named(self, item: EvidenceItem, revision: int) -> tuple[int, bool]:
        versions = self._versions.get(item.assessment_id)
        if versions is None:
            self._versions[item.assessment_id] = [(item, revision)]
            return revision, True
        for known, named in reversed(versions):
            if known == item:
                return named, False
        versions.append((item, revision))

        return revision, True

    def get(self, assessment_id: UUID, revision: int) -> EvidenceItem:
        """Return the stored version of an assessment named by ``revision``."""
        for item, named in self._versions[assessment_id]:
            if named == revision:
                return item
        raise KeyError((assessment_id, revision))


def versions_of(rows: Iterable[tuple[Any, ...]]) -> ItemVersions:
    """Decode stored item versions: (assessment, revision, item JSON)."""
    versions = ItemVersions()
    for _, revision, item in rows:
        versions.know(item_decoder.decode(item), revision)

    return versions


def summary_of(result: MasteryResult) -> Summary:
    """Return ``result`` without the evidence its explanation lists."""
    explanation = result.explanation
    return Summary(
        status=result.status,
        score=result.score,
        unrounded_score=result.unrounded_score,
        level=result.level,
        mastered=result.mastered,
        note=result.note,
        method=explanation.method,
        parameters=explanation.parameters,
        scale=explanation.scale,
        policy=explanation.policy,
    )


def assemble(
    summary: Summary,
    counted: tuple[EvidenceItem, ...],
    left_out: tuple[EvidenceItem, ...],
) -> MasteryResult:
    """Put a stored result back together from its summary and items."""
    return MasteryResult(
        status=summary.status,
        score=summary.score,
        unrounded_score=summary.unrounded_score,
        level=summary.level,
        mastered=summary.mastered,
        note=summary.note,
        explanation=Explanation(
            method=summary.method,
            parameters=summary.parameters,
            scale=summary.scale,
            policy=summary.policy,
            counted=counted,
            left_out=left_out,
        ),
    )


def listed(
    versions: ItemVersions, ids: Sequence[UUID], revisions: Sequence[int]
) -> tuple[EvidenceItem, ...]:
    """Return the items a point names, in its order."""
    return tuple(
        versions.get(assessment_id, revision)
        for assessment_id, revision in zip(ids, revisions, strict=True)
    )


def stored_result(
    summary: str,
    versions: ItemVersions,
    *,
    counted: Sequence[UUID],
    counted_revisions: Sequence[int],
    left_out: Sequence[UUID],
    left_out_revisions: Sequence[int],
) -> MasteryResult:
    """Return the result a point row stores, its items taken from
    ``versions``."""
    return assemble(
        summary_decoder.decode(summary),
        listed(versions, counted, counted_revisions),
        listed(versions, left_out, left_out_revisions),
    )
