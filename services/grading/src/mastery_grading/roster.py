"""What grading keeps of a school roster: schools, terms, sections, people.

These are the shapes a roster import produces before anything is stored.
Each record keeps the ``sourcedId`` it had in the student information
system, its ``status`` and its ``dateLastModified`` exactly as the bundle
gave them (both may be blank in a bulk file), so a later step can decide
what to add, change or remove.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import msgspec

RecordStatus = Literal["active", "tobedeleted"]
PersonRole = Literal["teacher", "student", "guardian", "administrator", "staff"]
EnrollmentRole = Literal["administrator", "proctor", "student", "teacher"]
FileMode = Literal["bulk", "delta"]


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """The bundle's control file: its OneRoster version and how each roster
    file it carries is meant, as a full snapshot (bulk) or as changes."""

    oneroster_version: str
    modes: dict[str, FileMode]
    source_system: str | None = None


class School(msgspec.Struct, frozen=True, kw_only=True):
    """An org of type school, the level grading attaches sections to."""

    sourced_id: str
    name: str
    identifier: str | None
    parent_id: str | None
    status: RecordStatus | None
    last_modified: datetime | None


class Term(msgspec.Struct, frozen=True, kw_only=True):
    """An academic session: a school year, semester, term or grading period."""

    sourced_id: str
    title: str
    kind: str
    starts_on: date
    ends_on: date
    school_year: str
    parent_id: str | None
    status: RecordStatus | None
    last_modified: datetime | None


class Course(msgspec.Struct, frozen=True, kw_only=True):
    """A course in the catalogue of an org; sections are taught from it."""

    sourced_id: str
    title: str
    course_code: str | None
    org_id: str
    status: RecordStatus | None
    last_modified: datetime | None


class Section(msgspec.Struct, frozen=True, kw_only=True):
    """A class as OneRoster calls it: one group taught a course at a school
    during one or more terms."""

    sourced_id: str
    title: str
    class_code: str | None
    class_type: str
    school_id: str
    course_id: str
    term_ids: tuple[str, ...]
    status: RecordStatus | None
    last_modified: datetime | None


class Person(msgspec.Struct, frozen=True, kw_only=True):
    """A user of the roster with the role grading cares about.

    ``role`` folds OneRoster's roles into grading's few: guardian, parent
    and relative become guardian; district, site and system administrators
    and principals become administrator; aides, counselors and proctors
    become staff. ``oneroster_role`` keeps the role as the bundle spelled
    it. Names and email are personal data: never log them or put them in
    an error, refer to the person by ``sourced_id``.
    """

    sourced_id: str
    role: PersonRole
    oneroster_role: str
    org_ids: tuple[str, ...]
    enabled: bool
    username: str | None
    given_name: str
    family_name: str
    email: str | None
    status: RecordStatus | None
    last_modified: datetime | None


class Enrollment(msgspec.Struct, frozen=True, kw_only=True):
    """A person's place in a section, as teacher, student or otherwise."""

    sourced_id: str
    user_id: str
    section_id: str
    school_id: str
    role: EnrollmentRole
    primary: bool | None
    begins_on: date | None
    ends_on: date | None
    status: RecordStatus | None
    last_modified: datetime | None


class GuardianLink(msgspec.Struct, frozen=True, kw_only=True):
    """A guardian's link to a student, from the users' ``agentSourcedIds``."""

    guardian_id: str
    student_id: str


class Reference(msgspec.Struct, frozen=True, kw_only=True):
    """A reference a delta bundle makes to a record it does not carry,
    left to be found in the roster already held: ``sourced_id`` in
    ``target``, named at ``file`` line ``line`` column ``column``."""

    file: str
    line: int
    column: str
    target: str
    sourced_id: str


class RosterBundle(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one OneRoster bundle says about the schools it covers.

    ``unresolved`` lists the references into delta files that name records
    the bundle does not carry; an import must find each in the roster held.
    """

    manifest: Manifest
    schools: tuple[School, ...]
    terms: tuple[Term, ...]
    courses: tuple[Course, ...]
    sections: tuple[Section, ...]
    people: tuple[Person, ...]
    enrollments: tuple[Enrollment, ...]
    guardian_links: tuple[GuardianLink, ...]
    unresolved: tuple[Reference, ...] = ()
