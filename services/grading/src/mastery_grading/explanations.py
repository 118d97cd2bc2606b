"""Explanations kept once: a point's result as its outcome plus references
to the parts its explanation is made of.

A point's explanation lists every evidence item counted or left out up to
its valid time, and names the method, parameters, scale and policy it was
computed with. Stored whole, each point grew with its timeline and wrote
the same items and the same rules over and over. Instead a timeline keeps
each version of each item once (``timeline_items``, named by its
assessment and the revision that first listed it) and each set of rules
once (``timeline_rules``, named by the revision that first used it); a
point keeps its ``Summary`` (the outcome), the name of its rules and, in
order, the names of the items it counts and leaves out. Reading puts the
result back together, equal to the one computed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar
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
    """What a point's result says: score, level, mastery and why none."""

    status: Status
    score: float | None
    unrounded_score: float | None
    level: Level | None
    mastered: bool
    note: str | None


class Header(msgspec.Struct, frozen=True, kw_only=True):
    """What an explanation names besides its evidence: the method, its
    parameters, the scale and the policy."""

    method: Method
    parameters: Parameters
    scale: ScaleRef
    policy: PolicyRef


T = TypeVar("T")

summary_decoder = msgspec.json.Decoder(Summary)
header_decoder = msgspec.json.Decoder(Header)
item_decoder = msgspec.json.Decoder(EvidenceItem)


class Versions(Generic[T]):
    """Every version of one kind of part stored so far for one timeline,
    each named by the revision that first used it, grouped by ``group``
    (an item's assessment; one group for rules).

    A part equal to a version already stored takes that version's name, so
    the projector (which computes a timeline's parts anew for each event)
    and the rebuild (which keeps them) name every part alike.
    """

    def __init__(self) -> None:
        self._versions: dict[object, list[tuple[T, int]]] = {}

    def know(self, group: object, part: T, revision: int) -> None:
        """Take a version already stored."""
        self._versions.setdefault(group, []).append((part, revision))

    def name(self, group: object, part: T, revision: int) -> tuple[int, bool]:
        """Return the revision naming ``part`` and whether it is new, in
        which case it is named by ``revision`` from now on."""
        versions = self._versions.setdefault(group, [])
        named, new = revision, True
        for known, first in reversed(versions):
            if known == part:
                named, new = first, False
                break
        if new:
            versions.append((part, revision))

        return named, new

    def get(self, group: object, revision: int) -> T:
        """Return the stored version of ``group`` named by ``revision``."""
        for part, named in self._versions[group]:
            if named == revision:
                return part
        raise KeyError((group, revision))


class Parts:
    """The item versions and rules one timeline's explanations are made of."""

    def __init__(self) -> None:
        self.items: Versions[EvidenceItem] = Versions()
        self.rules: Versions[Header] = Versions()
        # Rules named before, by the identity of their parts, which the
        # points computed under one policy and scale share (``named_by``).
        self._rules_seen: dict[tuple[int, int, int], tuple[Header, int]] = {}
        # Items named before, by identity: a fold hands back the same item
        # object until an event touches its assessment, so most lookups end
        # here. Each entry holds its item, so no other object can take
        # that identity while the entry lives.
        self._seen: dict[int, tuple[EvidenceItem, int]] = {}

    def rules_name(
        self, explanation: Explanation, revision: int
    ) -> tuple[int, Header | None]:
        """Return the revision naming ``explanation``'s rules, and their
        header when it is new."""
        parameters, scale, policy = (
            explanation.parameters,
            explanation.scale,
            explanation.policy,
        )
        key = (id(parameters), id(scale), id(policy))
        hit = self._rules_seen.get(key)
        if hit is not None:
            header = hit[0]
            if (
                header.parameters is parameters
                and header.scale is scale
                and header.policy is policy
                and header.method == explanation.method
            ):
                return hit[1], None
        header = header_of(explanation)
        named, new = self.rules.name(None, header, revision)
        self._rules_seen[key] = (header, named)

        return named, header if new else None

    def names(
        self, items: Sequence[EvidenceItem], revision: int
    ) -> tuple[list[UUID], list[int], list[EvidenceItem]]:
        """Return the assessments of ``items`` and the revisions naming
        them, both in order, and those of the items that are new."""
        ids: list[UUID] = []
        found: list[int] = []
        new: list[EvidenceItem] = []
        if not items:
            return ids, found, new
        seen = self._seen
        for item in items:
            ids.append(item.assessment_id)
            hit = seen.get(id(item))
            if hit is not None and hit[0] is item:
                found.append(hit[1])
                continue
            named, fresh = self.items.name(item.assessment_id, item, revision)
            seen[id(item)] = (item, named)
            found.append(named)
            if fresh:
                new.append(item)

        return ids, found, new


def parts_of(
    items: Iterable[tuple[Any, ...]], rules: Iterable[tuple[Any, ...]]
) -> Parts:
    """Decode a timeline's stored parts: items as (assessment, revision,
    item JSON), rules as (revision, header JSON), both by revision."""
    parts = Parts()
    for assessment_id, revision, item in items:
        parts.items.know(assessment_id, item_decoder.decode(item), revision)
    for revision, header in rules:
        parts.rules.know(None, header_decoder.decode(header), revision)

    return parts


def summary_of(result: MasteryResult) -> Summary:
    """Return what ``result`` says, without its explanation."""
    return Summary(
        status=result.status,
        score=result.score,
        unrounded_score=result.unrounded_score,
        level=result.level,
        mastered=result.mastered,
        note=result.note,
    )


def header_of(explanation: Explanation) -> Header:
    """Return what ``explanation`` names besides its evidence."""
    return Header(
        method=explanation.method,
        parameters=explanation.parameters,
        scale=explanation.scale,
        policy=explanation.policy,
    )


def stored_result(
    summary: str,
    parts: Parts,
    *,
    rules_revision: int,
    counted: Sequence[UUID],
    counted_revisions: Sequence[int],
    left_out: Sequence[UUID],
    left_out_revisions: Sequence[int],
) -> MasteryResult:
    """Return the result a point row stores, its parts taken from
    ``parts``."""
    said = summary_decoder.decode(summary)
    header = parts.rules.get(None, rules_revision)

    return MasteryResult(
        status=said.status,
        score=said.score,
        unrounded_score=said.unrounded_score,
        level=said.level,
        mastered=said.mastered,
        note=said.note,
        explanation=Explanation(
            method=header.method,
            parameters=header.parameters,
            scale=header.scale,
            policy=header.policy,
            counted=listed(parts, counted, counted_revisions),
            left_out=listed(parts, left_out, left_out_revisions),
        ),
    )


def listed(
    parts: Parts, ids: Sequence[UUID], revisions: Sequence[int]
) -> tuple[EvidenceItem, ...]:
    """Return the items a point names, in its order."""
    return tuple(
        parts.items.get(assessment_id, revision)
        for assessment_id, revision in zip(ids, revisions, strict=True)
    )
