"""Planning a roster import: which events a bundle calls for against the
roster already held, and none for what is unchanged."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
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
    SchoolRostered,
    Sealed,
    SectionRemoved,
    SectionRostered,
)
from mastery_grading.oneroster import read_bundle
from mastery_grading.roster import RosterBundle
from mastery_grading.roster_import import (
    PersonChange,
    RosterPlan,
    RosterState,
    applied,
    plan_import,
    sealed_events,
)
from tests.unit.grading.test_oneroster import (
    CLASSES,
    COURSES,
    ENROLLMENTS,
    MANIFEST,
    ORGS,
    ROLES,
    USERS,
    Rows,
    lakeside,
    with_row,
)

FIRST_IMPORT = datetime(2026, 8, 24, 7, 0, tzinfo=UTC)
SECOND_IMPORT = datetime(2026, 9, 14, 7, 0, tzinfo=UTC)


def digest(sourced_id: str) -> str:
    """Stand in for the keyring's keyed digest: stable and not the id."""
    return f"digest-of-{sourced_id}"


def ids_for(bundle: RosterBundle, state: RosterState) -> dict[str, UUID]:
    """Give each person the id stored for their digest, or a fixed new one."""
    found = {key: person.person_id for key, person in state.people.items()}
    return {
        person.sourced_id: found.get(
            digest(person.sourced_id), uuid.uuid5(uuid.NAMESPACE_URL, person.sourced_id)
        )
        for person in bundle.people
    }


def plan(bundle: RosterBundle, state: RosterState, at: datetime) -> RosterPlan:
    """Plan ``bundle`` against ``state`` with the stand-in digests."""
    digests = {person.sourced_id: digest(person.sourced_id) for person in bundle.people}
    return plan_import(
        bundle, state, digests=digests, person_ids=ids_for(bundle, state), at=at
    )


def imported(files: Mapping[str, bytes]) -> RosterState:
    """Return the roster held after importing ``files`` into an empty one."""
    bundle = read_bundle(files)
    return applied(RosterState(), plan(bundle, RosterState(), FIRST_IMPORT))


def delta(**files: Rows) -> dict[str, bytes]:
    """The Lakeside bundle with the files named in ``files`` marked delta
    and holding the rows given."""
    manifest = [
        [name, "delta" if name.removeprefix("file.") in files else value]
        for name, value in MANIFEST
    ]
    return lakeside(manifest=manifest, **files)


def kinds(found: RosterPlan) -> list[str]:
    """Name each planned event by its type, people by ``PersonChange``."""
    return [type(item).__name__ for item in found.planned]


def test_a_first_import_rosters_everything_active() -> None:
    """Lakeside adds 2 schools, 1 term, 2 sections, 6 people (Barbara is
    marked for deletion), 5 enrollments and Mary as Grace's guardian."""
    bundle = read_bundle(lakeside())

    found = plan(bundle, RosterState(), FIRST_IMPORT)

    assert found.counts["schools_added"] == 2
    assert found.counts["terms_added"] == 1
    assert found.counts["sections_added"] == 2
    assert found.counts["people_added"] == 6
    assert found.counts["enrollments_added"] == 5
    assert found.counts["guardian_links_added"] == 1
    assert sum(found.counts.values()) == 17
    algebra = next(e for e in found.planned if isinstance(e, SectionRostered))
    assert (algebra.course_title, algebra.course_code) == ("Algebra I", "MA1")


def test_reimporting_the_same_bundle_plans_nothing() -> None:
    """The second import of an unchanged bundle has no event at all."""
    state = imported(lakeside())

    again = plan(read_bundle(lakeside()), state, SECOND_IMPORT)

    assert again.changes_nothing
    assert set(again.counts.values()) == {0}


def test_a_renamed_school_and_a_new_email_are_the_only_changes() -> None:
    """Hillside renamed and Ada's new email give one school and one person."""
    state = imported(lakeside())
    orgs = with_row(ORGS, 2, "name", "Hillside Academy")
    users = with_row(USERS, 1, "email", "ada.byron@example.org")

    found = plan(read_bundle(lakeside(orgs=orgs, users=users)), state, SECOND_IMPORT)

    assert kinds(found) == ["SchoolRostered", "PersonChange"]
    school = found.planned[0]
    assert isinstance(school, SchoolRostered)
    assert school.name == "Hillside Academy"
    person = found.planned[1]
    assert isinstance(person, PersonChange)
    assert person.facts.fields["email"] == "ada.byron@example.org"
    assert found.counts["people_changed"] == 1


def test_tobedeleted_removes_the_section_and_unenrols_its_people() -> None:
    """Riverside's algebra class marked for deletion removes the section,
    and its teacher's and student's enrollments end with it."""
    state = imported(lakeside())
    classes = with_row(CLASSES, 2, "status", "tobedeleted")

    found = plan(read_bundle(lakeside(classes=classes)), state, SECOND_IMPORT)

    assert kinds(found) == ["SectionRemoved", "PersonUnenrolled", "PersonUnenrolled"]
    removed = found.planned[0]
    assert isinstance(removed, SectionRemoved)
    assert removed.section_id == "alg-r"
    assert found.counts["enrollments_removed"] == 2


def test_a_person_marked_for_deletion_is_removed_with_their_links() -> None:
    """Mary marked for deletion is removed and unlinked from Grace."""
    state = imported(lakeside())
    users = with_row(USERS, 7, "status", "tobedeleted")

    found = plan(read_bundle(lakeside(users=users)), state, SECOND_IMPORT)

    assert kinds(found) == ["PersonRemoved", "GuardianUnlinked"]
    unlinked = found.planned[1]
    assert isinstance(unlinked, GuardianUnlinked)
    mary = uuid.uuid5(uuid.NAMESPACE_URL, "g-mary")
    assert unlinked.guardian_id == mary


def test_a_bulk_file_removes_what_it_leaves_out() -> None:
    """Katherine missing from a bulk users file is removed and unenrolled."""
    state = imported(lakeside())
    users = [row for row in USERS if row[0] != "s-kath"]
    roles = [row for row in ROLES if row[3] != "s-kath"]
    enrollments = [row for row in ENROLLMENTS if row[5] != "s-kath"]

    found = plan(
        read_bundle(lakeside(users=users, roles=roles, enrollments=enrollments)),
        state,
        SECOND_IMPORT,
    )

    assert kinds(found) == ["PersonRemoved", "PersonUnenrolled"]
    removed = found.planned[0]
    assert isinstance(removed, PersonRemoved)
    assert removed.person_id == uuid.uuid5(uuid.NAMESPACE_URL, "s-kath")


def test_a_delta_file_leaves_unlisted_records_alone() -> None:
    """Delta classes and enrollments files listing only a renamed Hillside
    class change that class and remove nothing."""
    state = imported(lakeside())
    classes = [CLASSES[0], with_row(CLASSES, 1, "title", "Algebra I, period 1")[1]]

    bundle = read_bundle(delta(classes=classes, enrollments=ENROLLMENTS[:1]))

    found = plan(bundle, state, SECOND_IMPORT)

    assert kinds(found) == ["SectionRostered"]
    section = found.planned[0]
    assert isinstance(section, SectionRostered)
    assert (section.section_id, section.title) == ("alg-h", "Algebra I, period 1")


def test_a_course_renamed_in_a_delta_file_renames_its_sections() -> None:
    """Algebra I renamed in a delta courses file reaches both sections."""
    state = imported(lakeside())
    courses = with_row(COURSES, 1, "title", "Algebra One")

    found = plan(read_bundle(delta(courses=courses)), state, SECOND_IMPORT)

    titles = {
        item.section_id: item.course_title
        for item in found.planned
        if isinstance(item, SectionRostered)
    }
    assert titles == {"alg-h": "Algebra One", "alg-r": "Algebra One"}
    assert found.counts["sections_changed"] == 2


def test_a_person_returns_under_the_id_they_had() -> None:
    """Katherine, removed by a bulk file that left her out, comes back in
    the next one with her first id and her enrollment."""
    users = [row for row in USERS if row[0] != "s-kath"]
    roles = [row for row in ROLES if row[3] != "s-kath"]
    enrollments = [row for row in ENROLLMENTS if row[5] != "s-kath"]
    state = imported(lakeside())
    without = read_bundle(lakeside(users=users, roles=roles, enrollments=enrollments))
    state = applied(state, plan(without, state, FIRST_IMPORT))

    found = plan(read_bundle(lakeside()), state, SECOND_IMPORT)

    assert kinds(found) == ["PersonChange", "PersonEnrolled"]
    back = found.planned[0]
    assert isinstance(back, PersonChange)
    assert back.person_id == uuid.uuid5(uuid.NAMESPACE_URL, "s-kath")
    assert found.counts["people_added"] == 1
    assert found.counts["enrollments_added"] == 1


def test_an_erased_person_is_never_rostered_again() -> None:
    """Grace, erased, still listed by the SIS: no event names her, her
    enrollment stays, and the plan counts her as skipped."""
    state = imported(lakeside())
    grace = state.people[digest("s-grace")]
    erased = msgspec.structs.replace(grace, facts=None, erased=True)
    people = {**state.people, digest("s-grace"): erased}
    state = msgspec.structs.replace(state, people=people)
    users = with_row(USERS, 3, "username", "grace.h")

    found = plan(read_bundle(lakeside(users=users)), state, SECOND_IMPORT)

    assert found.changes_nothing
    assert found.skipped_erased == 1


def test_sealed_events_put_each_persons_seal_and_end_with_the_summary() -> None:
    """Every person event carries the seal made for that person, and the
    summary's counts are the plan's."""
    bundle = read_bundle(lakeside())
    found = plan(bundle, RosterState(), FIRST_IMPORT)
    seals = {
        change.person_id: Sealed(
            key_id=change.person_id, nonce=b"n" * 12, ciphertext=b"sealed"
        )
        for change in found.people()
    }

    events = sealed_events(
        found,
        seals,
        import_id=uuid.uuid5(uuid.NAMESPACE_URL, "import"),
        imported_by="ada",
        source_system="Lakeside SIS",
        at=FIRST_IMPORT,
    )

    people = [event for event in events if isinstance(event, PersonRostered)]
    assert len(people) == 6
    assert all(event.personal.key_id == event.person_id for event in people)
    summary = events[-1]
    assert isinstance(summary, RosterImported)
    assert summary.counts == found.counts
    assert len([e for e in events if isinstance(e, PersonEnrolled)]) == 5
    assert len([e for e in events if isinstance(e, GuardianLinked)]) == 1


def test_an_unchanged_bundle_has_no_events_not_even_a_summary() -> None:
    """Nothing to record means nothing appended."""
    state = imported(lakeside())
    found = plan(read_bundle(lakeside()), state, SECOND_IMPORT)

    events = sealed_events(
        found,
        {},
        import_id=uuid.uuid5(uuid.NAMESPACE_URL, "import"),
        imported_by="ada",
        source_system=None,
        at=SECOND_IMPORT,
    )

    assert events == []


def test_an_ended_enrollment_changes_its_dates() -> None:
    """Edsger's enrollment given an end date is planned again, as changed."""
    state = imported(lakeside())
    enrollments = with_row(ENROLLMENTS, 5, "endDate", "2026-12-18")

    found = plan(read_bundle(lakeside(enrollments=enrollments)), state, SECOND_IMPORT)

    assert kinds(found) == ["PersonEnrolled"]
    assert found.counts["enrollments_changed"] == 1


def test_an_enrollment_marked_for_deletion_unenrols() -> None:
    """Katherine's enrollment marked for deletion ends it."""
    state = imported(lakeside())
    enrollments = with_row(ENROLLMENTS, 4, "status", "tobedeleted")

    found = plan(read_bundle(lakeside(enrollments=enrollments)), state, SECOND_IMPORT)

    assert kinds(found) == ["PersonUnenrolled"]
    ended = found.planned[0]
    assert isinstance(ended, PersonUnenrolled)
    assert ended.section_id == "alg-h"
