"""Events of a school roster as grading keeps it: schools, terms, sections,
people, enrollments, guardians, and the objective sets a section teaches.

Schools, terms and sections are organisations, named in the clear by their
``sourcedId``. People are not: a person is known by an opaque ``person_id``
and a keyed digest of their ``sourcedId``; their names, email, username and
``sourcedId`` travel only inside ``personal``, sealed with the person's own
data key. Destroying that key (erasure) leaves the event readable and the
person anonymous.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

import msgspec

from mastery_events.envelope import Event

RosterRole = Literal["teacher", "student", "guardian", "administrator", "staff"]
SectionRole = Literal["administrator", "proctor", "student", "teacher"]


class Sealed(msgspec.Struct, frozen=True, kw_only=True):
    """Personal fields encrypted with one person's data key (AES-256-GCM).

    ``key_id`` names the data key in the keyring; the nonce is stored with
    the ciphertext, and the tenant and key id are bound in as associated
    data, so a sealed value moved to another person or tenant fails to open.
    """

    key_id: UUID
    nonce: bytes
    ciphertext: bytes


class SchoolRostered(Event, frozen=True, kw_only=True):
    """A school was added to the roster, or its details changed."""

    school_id: str
    name: str
    identifier: str | None = None
    rostered_at: datetime


class SchoolRemoved(Event, frozen=True, kw_only=True):
    """The student information system marked a school for deletion."""

    school_id: str
    removed_at: datetime


class TermRostered(Event, frozen=True, kw_only=True):
    """A school year, semester, term or grading period was added or changed."""

    term_id: str
    title: str
    kind: str
    starts_on: date
    ends_on: date
    school_year: str
    parent_id: str | None = None
    rostered_at: datetime


class TermRemoved(Event, frozen=True, kw_only=True):
    """The student information system marked a term for deletion."""

    term_id: str
    removed_at: datetime


class SectionRostered(Event, frozen=True, kw_only=True):
    """A section (a OneRoster class) was added or changed: which school
    teaches it, from which course, in which terms."""

    section_id: str
    title: str
    class_code: str | None = None
    school_id: str
    course_id: str
    course_title: str
    course_code: str | None = None
    term_ids: tuple[str, ...] = ()
    rostered_at: datetime


class SectionRemoved(Event, frozen=True, kw_only=True):
    """The student information system marked a section for deletion."""

    section_id: str
    removed_at: datetime


class PersonRostered(Event, frozen=True, kw_only=True):
    """A person was added to the roster, or their details changed.

    ``sourced_id_digest`` is a keyed digest of the person's ``sourcedId``,
    so a re-import finds the same ``person_id`` without the identifier in
    the clear. Everything that names the person is in ``personal``.
    """

    person_id: UUID
    sourced_id_digest: str
    role: RosterRole
    school_ids: tuple[str, ...] = ()
    enabled: bool = True
    personal: Sealed
    rostered_at: datetime


class PersonRemoved(Event, frozen=True, kw_only=True):
    """The student information system marked a person for deletion; their
    grades stay, they no longer appear on rosters."""

    person_id: UUID
    removed_at: datetime


class PersonEnrolled(Event, frozen=True, kw_only=True):
    """A person joined a section as student, teacher or otherwise."""

    person_id: UUID
    section_id: str
    role: SectionRole
    begins_on: date | None = None
    ends_on: date | None = None
    enrolled_at: datetime


class PersonUnenrolled(Event, frozen=True, kw_only=True):
    """A person left a section (the enrollment was marked for deletion)."""

    person_id: UUID
    section_id: str
    unenrolled_at: datetime


class GuardianLinked(Event, frozen=True, kw_only=True):
    """A guardian was linked to a student (OneRoster ``agentSourcedIds``)."""

    guardian_id: UUID
    student_id: UUID
    linked_at: datetime


class GuardianUnlinked(Event, frozen=True, kw_only=True):
    """A guardian's link to a student was removed."""

    guardian_id: UUID
    student_id: UUID
    unlinked_at: datetime


class RosterImported(Event, frozen=True, kw_only=True):
    """One OneRoster bundle was imported: how many records of each kind it
    added, changed and removed. Written in the same append as those events."""

    import_id: UUID
    source_system: str | None = None
    counts: dict[str, int]
    imported_by: str
    imported_at: datetime


class ObjectiveSetLinked(Event, frozen=True, kw_only=True):
    """A section now teaches an objective set: its students may be assessed
    on every objective in it."""

    section_id: str
    objective_set_id: UUID
    linked_by: str
    linked_at: datetime


class ObjectiveSetUnlinked(Event, frozen=True, kw_only=True):
    """A section no longer teaches an objective set; evidence already
    recorded against it stays."""

    section_id: str
    objective_set_id: UUID
    unlinked_by: str
    unlinked_at: datetime


class PersonErased(Event, frozen=True, kw_only=True):
    """A district admin erased a person: their data key was destroyed, so
    every sealed field of theirs is unreadable from now on. Grades stay,
    anonymous."""

    person_id: UUID
    erased_by: str
    erased_at: datetime
    reason: str


class RetentionPeriodSet(Event, frozen=True, kw_only=True):
    """A district admin set how long a student who left is kept: once
    ``days`` have passed since they were removed or last unenrolled, the
    retention job erases them."""

    days: int
    set_by: str
    set_at: datetime


ROSTER_EVENTS = (
    SchoolRostered,
    SchoolRemoved,
    TermRostered,
    TermRemoved,
    SectionRostered,
    SectionRemoved,
    PersonRostered,
    PersonRemoved,
    PersonEnrolled,
    PersonUnenrolled,
    GuardianLinked,
    GuardianUnlinked,
    RosterImported,
    ObjectiveSetLinked,
    ObjectiveSetUnlinked,
    PersonErased,
    RetentionPeriodSet,
)

RosterEvent = (
    SchoolRostered
    | SchoolRemoved
    | TermRostered
    | TermRemoved
    | SectionRostered
    | SectionRemoved
    | PersonRostered
    | PersonRemoved
    | PersonEnrolled
    | PersonUnenrolled
    | GuardianLinked
    | GuardianUnlinked
    | RosterImported
    | ObjectiveSetLinked
    | ObjectiveSetUnlinked
    | PersonErased
    | RetentionPeriodSet
)
