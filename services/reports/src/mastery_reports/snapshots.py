"""A student's report as one snapshot, built from the facts reports keeps.

``build_snapshot`` is pure: given what is known of one student (sections,
objective sets, objectives, mastery points, assessments, scales, grades) it
returns the whole report, so a rebuild from the same facts gives the same
snapshot every time. ``patched`` gives the same report from a stored one
and the facts of the few objectives a batch of grades changed, so a grade
costs one objective's history rather than the student's whole record.
``narrowed`` cuts a snapshot down to what one share link covers.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Protocol, TypeVar
from uuid import UUID

import msgspec

from mastery_reports.colours import NEUTRAL, readable_text_on


class ScaleLevelFact(msgspec.Struct, frozen=True, kw_only=True):
    """One level of one scale version, as the objectives service gave it."""

    value: float
    label: str
    short_label: str
    colour: str


class SectionFact(msgspec.Struct, frozen=True, kw_only=True):
    """A section the student is enrolled in."""

    section_id: str
    school_id: str
    title: str
    course_title: str
    term_ids: tuple[str, ...] = ()


class ObjectiveSetFact(msgspec.Struct, frozen=True, kw_only=True):
    """An objective set, and the sections that teach it."""

    objective_set_id: UUID
    title: str
    section_ids: tuple[str, ...]


class ObjectiveFact(msgspec.Struct, frozen=True, kw_only=True):
    """An objective of a set, as it reads now."""

    objective_id: UUID
    objective_set_id: UUID
    code: str | None
    statement: str
    sort_order: int = 0
    grade_bands: tuple[str, ...] = ()


class MasteryPointFact(msgspec.Struct, frozen=True, kw_only=True):
    """One MasteryChanged of the student: a point of a timeline."""

    objective_id: UUID
    valid_from: datetime
    position: int
    status: str
    level: float | None
    level_label: str | None
    mastered: bool
    scale_id: UUID
    scale_version: int


class AssessmentFact(msgspec.Struct, frozen=True, kw_only=True):
    """An assessment of the student that still counts as evidence."""

    assessment_id: UUID
    objective_id: UUID
    scale_id: UUID
    scale_version: int
    level: float | None
    mark: str | None
    assessed_at: datetime
    evidence: str
    evidence_kind: str
    comment: str | None


class GradeFact(msgspec.Struct, frozen=True, kw_only=True):
    """A traditional grade the student has in a section, not voided."""

    section_id: str
    kind: str
    percent: float | None = None
    points: float | None = None
    points_possible: float | None = None
    passed: bool | None = None


class LetterCutFact(msgspec.Struct, frozen=True, kw_only=True):
    """The lowest percent that earns a letter in a section's bridge."""

    letter: str
    min_percent: float


class TermFact(msgspec.Struct, frozen=True, kw_only=True):
    """A term a section runs in."""

    term_id: str
    title: str
    starts_on: date
    ends_on: date


class StudentFacts(msgspec.Struct, frozen=True, kw_only=True):
    """Everything reports knows that bears on one student's report."""

    student_id: str
    sections: tuple[SectionFact, ...] = ()
    objective_sets: tuple[ObjectiveSetFact, ...] = ()
    objectives: tuple[ObjectiveFact, ...] = ()
    mastery: tuple[MasteryPointFact, ...] = ()
    assessments: tuple[AssessmentFact, ...] = ()
    scales: Mapping[tuple[UUID, int], tuple[ScaleLevelFact, ...]] = {}
    grades: tuple[GradeFact, ...] = ()
    bridges: Mapping[str, tuple[LetterCutFact, ...]] = {}
    terms: tuple[TermFact, ...] = ()


Fact = TypeVar("Fact", MasteryPointFact, AssessmentFact)


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """What a batch of events changed of one student's facts: the mastery
    points and evidence of some objectives, their traditional grades, or
    anything else, which only a whole rebuild can be sure to show."""

    objectives: frozenset[UUID] = frozenset()
    grades: bool = False
    whole: bool = False

    def merged(self, other: Change) -> Change:
        """Return the change made by this one and ``other`` together."""
        if self.whole or other.whole:
            return WHOLE

        return Change(
            objectives=self.objectives | other.objectives,
            grades=self.grades or other.grades,
        )


WHOLE = Change(whole=True)


class Level(msgspec.Struct, frozen=True, kw_only=True):
    """A level as a report shows it: its words, its colour with a text
    colour readable on it, and its rank (1 is the lowest) so a reader who
    cannot tell colours apart still sees how far along it is."""

    value: float
    label: str
    short_label: str
    colour: str
    text_colour: str
    rank: int | None = None
    ranks: int | None = None


class Point(msgspec.Struct, frozen=True, kw_only=True):
    """A point of a timeline: the level from ``at`` on."""

    at: datetime
    level: float
    mastered: bool


class EvidenceItem(msgspec.Struct, frozen=True, kw_only=True):
    """One piece of evidence and what it showed."""

    title: str
    kind: str
    at: datetime
    level: Level | None = None
    mark: str | None = None
    comment: str | None = None


class ObjectiveReport(msgspec.Struct, frozen=True, kw_only=True):
    """One objective on a student's report."""

    objective_id: UUID
    code: str | None
    statement: str
    grade_bands: tuple[str, ...] = ()
    level: Level | None = None
    lowest: float | None = None
    highest: float | None = None
    mastered: bool = False
    mastered_since: datetime | None = None
    timeline: tuple[Point, ...] = ()
    evidence: tuple[EvidenceItem, ...] = ()


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    """How many objectives of a set there are, have evidence, are mastered."""

    objectives: int
    assessed: int
    mastered: int


class SetReport(msgspec.Struct, frozen=True, kw_only=True):
    """One objective set a section teaches, with its objectives."""

    objective_set_id: UUID
    title: str
    totals: Totals
    objectives: tuple[ObjectiveReport, ...]


class TraditionalGrade(msgspec.Struct, frozen=True, kw_only=True):
    """What a section that keeps traditional grades makes of them: the
    mean percent of its scored grades, and a letter when it bridges."""

    grades: int
    percent: float | None = None
    letter: str | None = None


class SectionReport(msgspec.Struct, frozen=True, kw_only=True):
    """One section on a student's report."""

    section_id: str
    school_id: str
    title: str
    course_title: str
    term_ids: tuple[str, ...]
    objective_sets: tuple[SetReport, ...]
    traditional: TraditionalGrade | None = None


class TermReport(msgspec.Struct, frozen=True, kw_only=True):
    """A term one of the sections runs in."""

    term_id: str
    title: str
    starts_on: date
    ends_on: date


class StudentSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A student's whole report, as one document."""

    student_id: str
    sections: tuple[SectionReport, ...] = ()
    terms: tuple[TermReport, ...] = ()


class ReportedObjective(msgspec.Struct, frozen=True, kw_only=True):
    """An objective of a stored report read without its timeline and
    evidence: what a patch needs to count the totals and a bridged grade,
    or to show the objective again with new progress."""

    objective_id: UUID
    code: str | None
    statement: str
    grade_bands: tuple[str, ...] = ()
    level: Level | None = None
    lowest: float | None = None
    highest: float | None = None
    mastered: bool = False


class StoredSet(msgspec.Struct, frozen=True, kw_only=True):
    """A ``SetReport`` as stored, each objective left as its JSON."""

    objective_set_id: UUID
    title: str
    totals: Totals
    objectives: tuple[msgspec.Raw, ...]


class StoredSection(msgspec.Struct, frozen=True, kw_only=True):
    """A ``SectionReport`` as stored, its sets' objectives left as JSON."""

    section_id: str
    school_id: str
    title: str
    course_title: str
    term_ids: tuple[str, ...]
    objective_sets: tuple[StoredSet, ...]
    traditional: TraditionalGrade | None = None


class StoredReport(msgspec.Struct, frozen=True, kw_only=True):
    """A ``StudentSnapshot`` as stored, with every objective and term left
    as its JSON: a patch decodes and writes again only the objectives it
    changes, so its cost does not grow with the student's history. Its
    fields mirror the snapshot's, which a unit test holds them to."""

    student_id: str
    sections: tuple[StoredSection, ...] = ()
    terms: tuple[msgspec.Raw, ...] = ()


def build_snapshot(facts: StudentFacts) -> StudentSnapshot:
    """Return the report ``facts`` describe, sections and objectives in a
    stable order."""
    objectives_by_set: dict[UUID, list[ObjectiveFact]] = {}
    for objective in facts.objectives:
        objectives_by_set.setdefault(objective.objective_set_id, []).append(objective)
    points = group_by_objective(facts.mastery)
    evidence = group_by_objective(facts.assessments)
    reports = {
        objective.objective_id: objective_report(
            objective,
            points.get(objective.objective_id, []),
            evidence.get(objective.objective_id, []),
            scales=facts.scales,
        )
        for objective in facts.objectives
    }

    sections = []
    for section in sorted(facts.sections, key=lambda s: (s.title, s.section_id)):
        sets = [
            set_report(
                objective_set,
                [
                    reports[o.objective_id]
                    for o in sorted(
                        objectives_by_set.get(objective_set.objective_set_id, []),
                        key=objective_order,
                    )
                ],
            )
            for objective_set in sorted(
                facts.objective_sets, key=lambda s: (s.title, s.objective_set_id)
            )
            if section.section_id in objective_set.section_ids
        ]
        grades = [g for g in facts.grades if g.section_id == section.section_id]
        cuts = facts.bridges.get(section.section_id)
        sections.append(
            SectionReport(
                section_id=section.section_id,
                school_id=section.school_id,
                title=section.title,
                course_title=section.course_title,
                term_ids=section.term_ids,
                objective_sets=tuple(sets),
                traditional=traditional_grade(
                    grades, [o for s in sets for o in s.objectives], cuts
                ),
            )
        )
    term_ids = {term_id for s in facts.sections for term_id in s.term_ids}
    terms = [
        TermReport(
            term_id=t.term_id, title=t.title, starts_on=t.starts_on, ends_on=t.ends_on
        )
        for t in sorted(facts.terms, key=lambda t: (t.starts_on, t.term_id))
        if t.term_id in term_ids
    ]

    return StudentSnapshot(
        student_id=facts.student_id, sections=tuple(sections), terms=tuple(terms)
    )


def group_by_objective(facts: Iterable[Fact]) -> dict[UUID, list[Fact]]:
    """Return ``facts`` grouped by the objective each is about."""
    grouped: dict[UUID, list[Fact]] = {}
    for fact in facts:
        grouped.setdefault(fact.objective_id, []).append(fact)

    return grouped


def objective_order(objective: ObjectiveFact) -> tuple[int, str, str]:
    """Order objectives as their set does, then by code."""
    return (objective.sort_order, objective.code or "", str(objective.objective_id))


def objective_report(
    objective: ObjectiveFact,
    points: Sequence[MasteryPointFact],
    assessments: Sequence[AssessmentFact],
    *,
    scales: Mapping[tuple[UUID, int], tuple[ScaleLevelFact, ...]],
) -> ObjectiveReport:
    """Return one objective's current level, timeline and evidence."""
    heading = ObjectiveReport(
        objective_id=objective.objective_id,
        code=objective.code,
        statement=objective.statement,
        grade_bands=objective.grade_bands,
    )

    return progressed(heading, points, assessments, scales=scales)


def progressed(
    heading: ObjectiveReport,
    points: Sequence[MasteryPointFact],
    assessments: Sequence[AssessmentFact],
    *,
    scales: Mapping[tuple[UUID, int], tuple[ScaleLevelFact, ...]],
) -> ObjectiveReport:
    """Return the objective ``heading`` names with the level, timeline and
    evidence that ``points`` and ``assessments`` give it; whatever progress
    ``heading`` showed before is dropped."""
    history = timeline(points)
    current = history[-1] if history else None
    level = None
    lowest = highest = None
    if current is not None and current.level is not None:
        levels = scales.get((current.scale_id, current.scale_version), ())
        level = level_of(current.level, current.level_label, levels)
        if levels:
            lowest = min(lvl.value for lvl in levels)
            highest = max(lvl.value for lvl in levels)
    items = tuple(
        EvidenceItem(
            title=a.evidence,
            kind=a.evidence_kind,
            at=a.assessed_at,
            level=None
            if a.level is None
            else level_of(a.level, None, scales.get((a.scale_id, a.scale_version), ())),
            mark=a.mark,
            comment=a.comment,
        )
        for a in sorted(assessments, key=lambda a: (a.assessed_at, a.assessment_id))
    )

    return ObjectiveReport(
        objective_id=heading.objective_id,
        code=heading.code,
        statement=heading.statement,
        grade_bands=heading.grade_bands,
        level=level,
        lowest=lowest,
        highest=highest,
        mastered=current is not None and current.mastered,
        mastered_since=mastered_since(history),
        timeline=tuple(
            Point(at=p.valid_from, level=p.level, mastered=p.mastered)
            for p in history
            if p.level is not None
        ),
        evidence=items,
    )


def timeline(points: Iterable[MasteryPointFact]) -> list[MasteryPointFact]:
    """Return one point per moment, oldest first: of several changes valid
    from the same moment, the one recorded last stands."""
    latest: dict[datetime, MasteryPointFact] = {}
    for point in sorted(points, key=lambda p: p.position):
        latest[point.valid_from] = point

    return [latest[moment] for moment in sorted(latest)]


def mastered_since(history: Sequence[MasteryPointFact]) -> datetime | None:
    """Return when the student's current run of mastery began, or ``None``
    when the latest point is not mastered."""
    since = None
    for point in history:
        if not point.mastered:
            since = None
        elif since is None:
            since = point.valid_from

    return since


# Every piece of evidence asks again for one of a scale's few levels, and a
# Level is frozen, so each is made once and shared.
@functools.lru_cache(maxsize=4096)
def level_of(
    value: float, label: str | None, levels: tuple[ScaleLevelFact, ...]
) -> Level:
    """Return how a report shows ``value`` on ``levels``: the level with
    that value, else the highest level at or below it; the label grading
    gave wins over the scale's."""
    ordered = sorted(levels, key=lambda lvl: lvl.value)
    found = None
    for rank, candidate in enumerate(ordered, start=1):
        if candidate.value <= value:
            found = (rank, candidate)
    if found is None:
        text = label or format_value(value)
        return Level(
            value=value,
            label=text,
            short_label=text[:3],
            colour=NEUTRAL,
            text_colour=readable_text_on(NEUTRAL),
        )

    rank, scale_level = found

    return Level(
        value=value,
        label=label or scale_level.label,
        short_label=scale_level.short_label,
        colour=scale_level.colour,
        text_colour=readable_text_on(scale_level.colour),
        rank=rank,
        ranks=len(ordered),
    )


def format_value(value: float) -> str:
    """Write a level's value without a needless ``.0``."""
    return f"{value:g}"


def set_report(
    objective_set: ObjectiveSetFact, objectives: Sequence[ObjectiveReport]
) -> SetReport:
    """Return a set's objectives with their totals."""
    return SetReport(
        objective_set_id=objective_set.objective_set_id,
        title=objective_set.title,
        totals=totals_of(objectives),
        objectives=tuple(objectives),
    )


def totals_of(objectives: Sequence[ObjectiveReport | ReportedObjective]) -> Totals:
    """Count a set's objectives, those with a level and those mastered."""
    return Totals(
        objectives=len(objectives),
        assessed=sum(1 for o in objectives if o.level is not None),
        mastered=sum(1 for o in objectives if o.mastered),
    )


class Placed(Protocol):
    """An objective's level with the ends of its scale, which is all a
    bridged traditional grade reads of it."""

    @property
    def level(self) -> Level | None:
        """The current level, if any."""

    @property
    def lowest(self) -> float | None:
        """The lowest value of the current level's scale."""

    @property
    def highest(self) -> float | None:
        """The highest value of the current level's scale."""


def traditional_grade(
    grades: Sequence[GradeFact],
    objectives: Iterable[Placed],
    cuts: Sequence[LetterCutFact] | None,
) -> TraditionalGrade | None:
    """Return a section's traditional grade: the mean percent of its scored
    grades; or, where it bridges mastery, the mean level's place between
    each scale's lowest and highest value (over ``objectives``, those of
    every set the section teaches) and the letter its cuts give. ``None``
    when the section keeps neither."""
    if cuts is not None:
        places = [
            (o.level.value - o.lowest) / (o.highest - o.lowest) * 100
            for o in objectives
            if o.level is not None
            and o.lowest is not None
            and o.highest is not None
            and o.highest > o.lowest
        ]
        if not places:
            return TraditionalGrade(grades=len(grades))
        percent = round(sum(places) / len(places), 1)
        return TraditionalGrade(
            grades=len(grades), percent=percent, letter=letter_for(percent, cuts)
        )
    if not grades:
        return None

    scored = [percent_of(grade) for grade in grades]
    percents = [p for p in scored if p is not None]
    if not percents:
        return TraditionalGrade(grades=len(grades))

    return TraditionalGrade(
        grades=len(grades), percent=round(sum(percents) / len(percents), 1)
    )


def percent_of(grade: GradeFact) -> float | None:
    """Return a grade as a percent; pass/fail has none."""
    if grade.kind == "percent":
        return grade.percent
    if grade.kind == "points" and grade.points is not None and grade.points_possible:
        return grade.points / grade.points_possible * 100

    return None


def letter_for(percent: float, cuts: Sequence[LetterCutFact]) -> str | None:
    """Return the letter of the highest cut ``percent`` reaches."""
    reached = [cut for cut in cuts if percent >= cut.min_percent]
    if not reached:
        return None

    return max(reached, key=lambda cut: cut.min_percent).letter


def patched(
    stored: StoredReport,
    objectives: frozenset[UUID],
    *,
    mastery: Iterable[MasteryPointFact],
    assessments: Iterable[AssessmentFact],
    scales: Mapping[tuple[UUID, int], tuple[ScaleLevelFact, ...]],
    grades: Sequence[GradeFact] | None,
    bridges: Mapping[str, tuple[LetterCutFact, ...]],
) -> StoredReport | None:
    """Return ``stored`` with ``objectives`` shown as ``mastery`` and
    ``assessments`` (all of the student's facts on them) now give them,
    the totals of their sets counted again and, when ``grades`` holds the
    student's grades, each section's traditional grade worked out again.

    ``stored`` must be what ``build_snapshot`` made of the student's facts
    before the change, and the change must have touched nothing but those
    objectives' points and evidence and the student's grades; then the
    answer is what ``build_snapshot`` makes of the facts after it.
    ``grades`` may be ``None`` only when no grade changed and no section
    shows a traditional grade. ``None`` is returned when an objective is
    not on the report: only a rebuild can tell whether it should be.
    """
    points = group_by_objective(mastery)
    evidence = group_by_objective(assessments)
    encoder = msgspec.json.Encoder()
    # Each objective's report, made once though several sections show it.
    made: dict[UUID, tuple[ReportedObjective, msgspec.Raw]] = {}

    def shown(raw: msgspec.Raw) -> tuple[ReportedObjective, msgspec.Raw]:
        summary = _reported.decode(raw)
        key = summary.objective_id
        if key not in objectives:
            return summary, raw
        if key not in made:
            heading = ObjectiveReport(
                objective_id=key,
                code=summary.code,
                statement=summary.statement,
                grade_bands=summary.grade_bands,
            )
            report = progressed(
                heading, points.get(key, ()), evidence.get(key, ()), scales=scales
            )
            encoded = encoder.encode(report)
            made[key] = (_reported.decode(encoded), msgspec.Raw(encoded))
        return made[key]

    sections = []
    for section in stored.sections:
        sets = []
        placed: list[ReportedObjective] = []
        for group in section.objective_sets:
            read = [shown(raw) for raw in group.objectives]
            summaries = [summary for summary, _ in read]
            sets.append(
                msgspec.structs.replace(
                    group,
                    totals=totals_of(summaries),
                    objectives=tuple(raw for _, raw in read),
                )
            )
            placed += summaries
        traditional = section.traditional
        if grades is not None:
            traditional = traditional_grade(
                [g for g in grades if g.section_id == section.section_id],
                placed,
                bridges.get(section.section_id),
            )
        sections.append(
            msgspec.structs.replace(
                section, objective_sets=tuple(sets), traditional=traditional
            )
        )
    if set(made) != objectives:
        return None

    return msgspec.structs.replace(stored, sections=tuple(sections))


_reported = msgspec.json.Decoder(ReportedObjective)


def narrowed(
    snapshot: StudentSnapshot,
    section_ids: Iterable[str],
    *,
    term_id: str | None = None,
) -> StudentSnapshot:
    """Return only the sections a share link covers, and of them only those
    that run in ``term_id`` when one is given."""
    wanted = set(section_ids)
    sections = tuple(
        s
        for s in snapshot.sections
        if s.section_id in wanted and (term_id is None or term_id in s.term_ids)
    )
    kept_terms = {t for s in sections for t in s.term_ids}
    terms = tuple(
        t
        for t in snapshot.terms
        if t.term_id in kept_terms and (term_id is None or t.term_id == term_id)
    )

    return StudentSnapshot(
        student_id=snapshot.student_id, sections=sections, terms=terms
    )
