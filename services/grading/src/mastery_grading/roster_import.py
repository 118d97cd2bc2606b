"""Decide which roster events a OneRoster bundle calls for, given the roster
grading already holds.

Planning is pure: the caller hands over the bundle, the stored roster
(people already opened, so their fields can be compared) and the id each
person's ``sourcedId`` maps to, and gets back the events in the order they
are to be appended. A record the bundle repeats unchanged produces no event,
so importing the same bundle twice records nothing the second time.

Each roster file is read as its manifest says. A delta file speaks only of
the records it lists. A bulk file is the whole truth: a stored record it
leaves out is removed, as if it had been marked ``tobedeleted``.

People's fields are personal, so the plan carries them as ``PersonChange``
for the caller to seal with the person's own data key before the events are
built; nothing here logs or stores them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Final
from uuid import UUID

import msgspec

from mastery_events.contract.roster import (
    GuardianLinked,
    GuardianUnlinked,
    PersonEnrolled,
    PersonRemoved,
    PersonRostered,
    PersonUnenrolled,
    RosterImported,
    RosterRole,
    SchoolRemoved,
    SchoolRostered,
    Sealed,
    SectionRemoved,
    SectionRole,
    SectionRostered,
    TermRemoved,
    TermRostered,
)
from mastery_events.envelope import Event
from mastery_grading.roster import (
    Course,
    Enrollment,
    FileMode,
    Person,
    RecordStatus,
    RosterBundle,
    School,
    Section,
    Term,
)

# The kinds of record an import counts, in the order its summary lists them.
KINDS: Final = (
    "schools",
    "terms",
    "sections",
    "people",
    "enrollments",
    "guardian_links",
)
OUTCOMES: Final = ("added", "changed", "removed")


class SchoolFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What grading keeps of a school, to compare one import with the next."""

    name: str
    identifier: str | None


class TermFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What grading keeps of a term."""

    title: str
    kind: str
    starts_on: date
    ends_on: date
    school_year: str
    parent_id: str | None


class SectionFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What grading keeps of a section, its course's title folded in."""

    title: str
    class_code: str | None
    school_id: str
    course_id: str
    course_title: str
    course_code: str | None
    term_ids: tuple[str, ...]


class PersonFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What grading keeps of a person; ``fields`` are the personal ones,
    sealed when stored."""

    role: RosterRole
    school_ids: tuple[str, ...]
    enabled: bool
    fields: dict[str, str | None]


class EnrollmentFacts(msgspec.Struct, frozen=True, kw_only=True):
    """The dates of one person's place in a section."""

    begins_on: date | None
    ends_on: date | None


class Stored(msgspec.Struct, frozen=True, kw_only=True):
    """A school, term or section as stored, and whether it was removed."""

    facts: SchoolFacts | TermFacts | SectionFacts
    removed: bool = False


class StoredPerson(msgspec.Struct, frozen=True, kw_only=True):
    """A person as stored. ``facts`` is ``None`` when their fields were not
    opened: they are not in the bundle, or they were erased."""

    person_id: UUID
    sourced_id_digest: str
    facts: PersonFacts | None
    removed: bool = False
    erased: bool = False


EnrollmentKey = tuple[str, UUID, SectionRole]


class StoredEnrollment(msgspec.Struct, frozen=True, kw_only=True):
    """An enrollment as stored, and whether it is still in force."""

    facts: EnrollmentFacts
    active: bool = True


class RosterState(msgspec.Struct, frozen=True, kw_only=True):
    """The roster one tenant holds before an import, by ``sourcedId`` for
    organisations and by digest for people."""

    schools: dict[str, Stored] = msgspec.field(default_factory=dict)
    terms: dict[str, Stored] = msgspec.field(default_factory=dict)
    sections: dict[str, Stored] = msgspec.field(default_factory=dict)
    people: dict[str, StoredPerson] = msgspec.field(default_factory=dict)
    enrollments: dict[EnrollmentKey, StoredEnrollment] = msgspec.field(
        default_factory=dict
    )
    guardian_links: frozenset[tuple[UUID, UUID]] = frozenset()


class PersonChange(msgspec.Struct, frozen=True, kw_only=True):
    """A person to record as added or changed, their fields still in the
    clear until the caller seals them."""

    person_id: UUID
    sourced_id_digest: str
    facts: PersonFacts


Planned = Event | PersonChange


class RosterPlan(msgspec.Struct, frozen=True, kw_only=True):
    """The events an import records, in order, people still unsealed, and
    how many records of each kind it adds, changes and removes."""

    planned: tuple[Planned, ...]
    counts: dict[str, int]
    skipped_erased: int = 0

    @property
    def changes_nothing(self) -> bool:
        """Tell whether the bundle matches the stored roster already."""
        return not self.planned

    def people(self) -> list[PersonChange]:
        """Return the people whose fields must be sealed."""
        return [item for item in self.planned if isinstance(item, PersonChange)]


def plan_import(
    bundle: RosterBundle,
    state: RosterState,
    *,
    digests: Mapping[str, str],
    person_ids: Mapping[str, UUID],
    at: datetime,
) -> RosterPlan:
    """Decide the events that bring ``state`` to what ``bundle`` says.

    ``digests`` gives the keyed digest of every person's ``sourcedId`` in
    the bundle, and ``person_ids`` the id each is known by: the stored one,
    or a new one for a person seen for the first time.
    """
    planner = _Planner(bundle, state, digests=digests, person_ids=person_ids, at=at)

    return planner.plan()


def sealed_events(
    plan: RosterPlan,
    sealed: Mapping[UUID, Sealed],
    *,
    import_id: UUID,
    imported_by: str,
    source_system: str | None,
    at: datetime,
) -> list[Event]:
    """Build the events to append: each person with their sealed fields,
    then the import's summary; nothing at all when the plan is empty."""
    if plan.changes_nothing:
        return []

    events: list[Event] = []
    for item in plan.planned:
        if isinstance(item, PersonChange):
            events.append(
                PersonRostered(
                    person_id=item.person_id,
                    sourced_id_digest=item.sourced_id_digest,
                    role=item.facts.role,
                    school_ids=item.facts.school_ids,
                    enabled=item.facts.enabled,
                    personal=sealed[item.person_id],
                    rostered_at=at,
                )
            )
        else:
            events.append(item)
    summary = RosterImported(
        import_id=import_id,
        source_system=source_system,
        counts=plan.counts,
        imported_by=imported_by,
        imported_at=at,
    )

    return [*events, summary]


def person_fields(person: Person) -> dict[str, str | None]:
    """Return the fields of ``person`` that name them, to be sealed."""
    return {
        "sourced_id": person.sourced_id,
        "given_name": person.given_name,
        "family_name": person.family_name,
        "email": person.email,
        "username": person.username,
    }


def school_facts(school: School) -> SchoolFacts:
    """Return what grading keeps of ``school``."""
    return SchoolFacts(name=school.name, identifier=school.identifier)


def term_facts(term: Term) -> TermFacts:
    """Return what grading keeps of ``term``."""
    return TermFacts(
        title=term.title,
        kind=term.kind,
        starts_on=term.starts_on,
        ends_on=term.ends_on,
        school_year=term.school_year,
        parent_id=term.parent_id,
    )


def section_facts(section: Section, course: Course) -> SectionFacts:
    """Return what grading keeps of ``section``, taught from ``course``."""
    return SectionFacts(
        title=section.title,
        class_code=section.class_code,
        school_id=section.school_id,
        course_id=section.course_id,
        course_title=course.title,
        course_code=course.course_code,
        term_ids=section.term_ids,
    )


def _deleted(status: RecordStatus | None) -> bool:
    return status == "tobedeleted"


class _Planner:
    """Walk the bundle kind by kind, noting events and counts."""

    def __init__(
        self,
        bundle: RosterBundle,
        state: RosterState,
        *,
        digests: Mapping[str, str],
        person_ids: Mapping[str, UUID],
        at: datetime,
    ) -> None:
        self.bundle = bundle
        self.state = state
        self.digests = digests
        self.person_ids = person_ids
        self.at = at
        self.planned: list[Planned] = []
        self.counts: Counter[str] = Counter()
        self.skipped_erased = 0
        self.unenrolled: set[tuple[str, UUID]] = set()
        # Who and what will be on the roster once the plan is applied, so
        # enrollments and links are recorded only between present records.
        self.present_sections = {
            key for key, stored in state.sections.items() if not stored.removed
        }
        # An erased person stays on the roster, anonymous.
        self.present_people = {
            person.person_id for person in state.people.values() if not person.removed
        }

    def plan(self) -> RosterPlan:
        """Plan every kind of record, organisations before people."""
        self._schools()
        self._terms()
        self._sections()
        self._people()
        self._enrollments()
        self._guardian_links()

        counts = {
            f"{kind}_{outcome}": self.counts[f"{kind}_{outcome}"]
            for kind in KINDS
            for outcome in OUTCOMES
        }
        return RosterPlan(
            planned=tuple(self.planned),
            counts=counts,
            skipped_erased=self.skipped_erased,
        )

    def _mode(self, file: str) -> FileMode:
        return self.bundle.manifest.modes.get(file, "bulk")

    def _note(self, kind: str, outcome: str, event: Planned) -> None:
        self.planned.append(event)
        self.counts[f"{kind}_{outcome}"] += 1

    def _organisation(
        self,
        kind: str,
        stored: Stored | None,
        facts: SchoolFacts | TermFacts | SectionFacts,
        rostered: Event,
    ) -> bool:
        """Note ``rostered`` when the record is new, changed or back from
        removal; tell whether it was noted."""
        if stored is None or stored.removed:
            self._note(kind, "added", rostered)
            return True
        if stored.facts != facts:
            self._note(kind, "changed", rostered)
            return True

        return False

    def _absent(
        self, file: str, stored: Mapping[str, Stored], listed: Iterable[str]
    ) -> list[str]:
        """Return the stored, unremoved ids a bulk ``file`` leaves out."""
        if self._mode(file) != "bulk":
            return []
        seen = set(listed)

        return [
            key for key, row in stored.items() if not row.removed and key not in seen
        ]

    def _schools(self) -> None:
        stored = self.state.schools
        for school in self.bundle.schools:
            found = stored.get(school.sourced_id)
            if _deleted(school.status):
                if found is not None and not found.removed:
                    self._remove_school(school.sourced_id)
                continue
            facts = school_facts(school)
            event = SchoolRostered(
                school_id=school.sourced_id,
                name=facts.name,
                identifier=facts.identifier,
                rostered_at=self.at,
            )
            self._organisation("schools", found, facts, event)
        listed = (school.sourced_id for school in self.bundle.schools)
        for school_id in self._absent("orgs.csv", stored, listed):
            self._remove_school(school_id)

    def _remove_school(self, school_id: str) -> None:
        event = SchoolRemoved(school_id=school_id, removed_at=self.at)
        self._note("schools", "removed", event)

    def _terms(self) -> None:
        stored = self.state.terms
        for term in self.bundle.terms:
            found = stored.get(term.sourced_id)
            if _deleted(term.status):
                if found is not None and not found.removed:
                    self._remove_term(term.sourced_id)
                continue
            facts = term_facts(term)
            event = TermRostered(
                term_id=term.sourced_id,
                title=facts.title,
                kind=facts.kind,
                starts_on=facts.starts_on,
                ends_on=facts.ends_on,
                school_year=facts.school_year,
                parent_id=facts.parent_id,
                rostered_at=self.at,
            )
            self._organisation("terms", found, facts, event)
        listed = (term.sourced_id for term in self.bundle.terms)
        for term_id in self._absent("academicSessions.csv", stored, listed):
            self._remove_term(term_id)

    def _remove_term(self, term_id: str) -> None:
        self._note("terms", "removed", TermRemoved(term_id=term_id, removed_at=self.at))

    def _sections(self) -> None:
        stored = self.state.sections
        courses = {course.sourced_id: course for course in self.bundle.courses}
        for section in self.bundle.sections:
            found = stored.get(section.sourced_id)
            if _deleted(section.status):
                if found is not None and not found.removed:
                    self._remove_section(section.sourced_id)
                continue
            facts = section_facts(section, courses[section.course_id])
            self._section(section.sourced_id, found, facts)
            self.present_sections.add(section.sourced_id)

        # A course renamed in a delta file renames the stored sections
        # taught from it that the bundle does not list again.
        listed = {section.sourced_id for section in self.bundle.sections}
        for section_id, found in stored.items():
            if section_id in listed or found.removed:
                continue
            assert isinstance(found.facts, SectionFacts)
            course = courses.get(found.facts.course_id)
            if course is None or _deleted(course.status):
                continue
            renamed = msgspec.structs.replace(
                found.facts,
                course_title=course.title,
                course_code=course.course_code,
            )
            self._section(section_id, found, renamed)

        for section_id in self._absent("classes.csv", stored, listed):
            self._remove_section(section_id)

    def _section(
        self, section_id: str, found: Stored | None, facts: SectionFacts
    ) -> None:
        event = SectionRostered(
            section_id=section_id,
            title=facts.title,
            class_code=facts.class_code,
            school_id=facts.school_id,
            course_id=facts.course_id,
            course_title=facts.course_title,
            course_code=facts.course_code,
            term_ids=facts.term_ids,
            rostered_at=self.at,
        )
        self._organisation("sections", found, facts, event)

    def _remove_section(self, section_id: str) -> None:
        event = SectionRemoved(section_id=section_id, removed_at=self.at)
        self._note("sections", "removed", event)
        self.present_sections.discard(section_id)

    def _known_schools(self) -> set[str]:
        """Return the schools a person may be placed in: those stored and
        those this bundle rosters."""
        known = {key for key, row in self.state.schools.items() if not row.removed}
        for school in self.bundle.schools:
            if _deleted(school.status):
                known.discard(school.sourced_id)
            else:
                known.add(school.sourced_id)
        return known

    def _people(self) -> None:
        schools = self._known_schools()
        listed: set[str] = set()
        for person in self.bundle.people:
            digest = self.digests[person.sourced_id]
            listed.add(digest)
            found = self.state.people.get(digest)
            if _deleted(person.status):
                if found is not None and not found.removed:
                    self._remove_person(found.person_id)
                continue
            if found is not None and found.erased:
                # An erased person stays erased: a student information
                # system that still lists them cannot bring the name back.
                self.skipped_erased += 1
                continue

            person_id = self.person_ids[person.sourced_id]
            facts = PersonFacts(
                role=person.role,
                school_ids=tuple(o for o in person.org_ids if o in schools),
                enabled=person.enabled,
                fields=person_fields(person),
            )
            change = PersonChange(
                person_id=person_id, sourced_id_digest=digest, facts=facts
            )
            if found is None or found.removed:
                self._note("people", "added", change)
            elif found.facts != facts:
                self._note("people", "changed", change)
            self.present_people.add(person_id)

        if self._mode("users.csv") == "bulk":
            for digest, found in self.state.people.items():
                if digest not in listed and not found.removed:
                    self._remove_person(found.person_id)

    def _remove_person(self, person_id: UUID) -> None:
        event = PersonRemoved(person_id=person_id, removed_at=self.at)
        self._note("people", "removed", event)
        self.present_people.discard(person_id)

    def _enrollments(self) -> None:
        stored = self.state.enrollments
        listed: set[EnrollmentKey] = set()
        for enrollment in self.bundle.enrollments:
            person_id = self.person_ids[enrollment.user_id]
            key: EnrollmentKey = (enrollment.section_id, person_id, enrollment.role)
            listed.add(key)
            found = stored.get(key)
            if _deleted(enrollment.status) or not self._both_present(key):
                if found is not None and found.active:
                    self._unenroll(key)
                continue
            self._enroll(key, found, enrollment)

        for key, found in stored.items():
            if key in listed or not found.active:
                continue
            gone = self._mode("enrollments.csv") == "bulk"
            if gone or not self._both_present(key):
                self._unenroll(key)

    def _both_present(self, key: EnrollmentKey) -> bool:
        section_id, person_id, _ = key
        return section_id in self.present_sections and person_id in self.present_people

    def _enroll(
        self, key: EnrollmentKey, found: StoredEnrollment | None, row: Enrollment
    ) -> None:
        section_id, person_id, role = key
        facts = EnrollmentFacts(begins_on=row.begins_on, ends_on=row.ends_on)
        event = PersonEnrolled(
            person_id=person_id,
            section_id=section_id,
            role=role,
            begins_on=facts.begins_on,
            ends_on=facts.ends_on,
            enrolled_at=self.at,
        )
        if found is None or not found.active:
            self._note("enrollments", "added", event)
        elif found.facts != facts:
            self._note("enrollments", "changed", event)

    def _unenroll(self, key: EnrollmentKey) -> None:
        section_id, person_id, _ = key
        # One event ends a person's every role in the section.
        if (section_id, person_id) in self.unenrolled:
            return
        self.unenrolled.add((section_id, person_id))
        event = PersonUnenrolled(
            person_id=person_id, section_id=section_id, unenrolled_at=self.at
        )
        self._note("enrollments", "removed", event)

    def _guardian_links(self) -> None:
        stored = self.state.guardian_links
        wanted: set[tuple[UUID, UUID]] = set()
        for link in self.bundle.guardian_links:
            pair = (
                self.person_ids[link.guardian_id],
                self.person_ids[link.student_id],
            )
            if pair[0] in self.present_people and pair[1] in self.present_people:
                wanted.add(pair)

        # A user listed in the bundle lists all of their agents, so their
        # stored links not listed again are gone; in a bulk file every
        # user is listed.
        spoken_for = {
            self.person_ids[person.sourced_id] for person in self.bundle.people
        }
        bulk = self._mode("users.csv") == "bulk"
        for pair in sorted(stored):
            guardian_id, student_id = pair
            spoken = bulk or guardian_id in spoken_for or student_id in spoken_for
            present = guardian_id in self.present_people and (
                student_id in self.present_people
            )
            if pair not in wanted and (spoken or not present):
                event = GuardianUnlinked(
                    guardian_id=guardian_id, student_id=student_id, unlinked_at=self.at
                )
                self._note("guardian_links", "removed", event)
        for pair in sorted(wanted - stored):
            guardian_id, student_id = pair
            linked = GuardianLinked(
                guardian_id=guardian_id, student_id=student_id, linked_at=self.at
            )
            self._note("guardian_links", "added", linked)


def applied(state: RosterState, plan: RosterPlan) -> RosterState:
    """Return the roster ``state`` becomes once ``plan`` is recorded: the
    pure twin of the read model's projection, for replanning."""
    schools = dict(state.schools)
    terms = dict(state.terms)
    sections = dict(state.sections)
    people = dict(state.people)
    digest_of = {person.person_id: key for key, person in people.items()}
    enrollments = dict(state.enrollments)
    links = set(state.guardian_links)
    for item in plan.planned:
        match item:
            case SchoolRostered():
                school = SchoolFacts(name=item.name, identifier=item.identifier)
                schools[item.school_id] = Stored(facts=school)
            case SchoolRemoved():
                schools[item.school_id] = _removed(schools[item.school_id])
            case TermRostered():
                terms[item.term_id] = Stored(facts=_term_facts_of(item))
            case TermRemoved():
                terms[item.term_id] = _removed(terms[item.term_id])
            case SectionRostered():
                sections[item.section_id] = Stored(facts=_section_facts_of(item))
            case SectionRemoved():
                sections[item.section_id] = _removed(sections[item.section_id])
            case PersonChange():
                digest_of[item.person_id] = item.sourced_id_digest
                people[item.sourced_id_digest] = StoredPerson(
                    person_id=item.person_id,
                    sourced_id_digest=item.sourced_id_digest,
                    facts=item.facts,
                )
            case PersonRemoved():
                digest = digest_of[item.person_id]
                people[digest] = msgspec.structs.replace(people[digest], removed=True)
            case PersonEnrolled():
                facts = EnrollmentFacts(begins_on=item.begins_on, ends_on=item.ends_on)
                key = (item.section_id, item.person_id, item.role)
                enrollments[key] = StoredEnrollment(facts=facts)
            case PersonUnenrolled():
                for key, found in enrollments.items():
                    if key[:2] == (item.section_id, item.person_id):
                        enrollments[key] = StoredEnrollment(
                            facts=found.facts, active=False
                        )
            case GuardianLinked():
                links.add((item.guardian_id, item.student_id))
            case GuardianUnlinked():
                links.discard((item.guardian_id, item.student_id))
            case _:
                pass

    return RosterState(
        schools=schools,
        terms=terms,
        sections=sections,
        people=people,
        enrollments=enrollments,
        guardian_links=frozenset(links),
    )


def _removed(stored: Stored) -> Stored:
    return Stored(facts=stored.facts, removed=True)


def _term_facts_of(event: TermRostered) -> TermFacts:
    return TermFacts(
        title=event.title,
        kind=event.kind,
        starts_on=event.starts_on,
        ends_on=event.ends_on,
        school_year=event.school_year,
        parent_id=event.parent_id,
    )


def _section_facts_of(event: SectionRostered) -> SectionFacts:
    return SectionFacts(
        title=event.title,
        class_code=event.class_code,
        school_id=event.school_id,
        course_id=event.course_id,
        course_title=event.course_title,
        course_code=event.course_code,
        term_ids=event.term_ids,
    )
