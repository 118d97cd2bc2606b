"""Reading a OneRoster 1.2 CSV bundle: what is taken and what is refused."""

from __future__ import annotations

from datetime import date

import pytest

from mastery_grading.errors import RosterImportError, RosterProblem
from mastery_grading.oneroster import read_bundle

Rows = list[list[str]]

MANIFEST: Rows = [
    ["propertyName", "value"],
    ["manifest.version", "1.0"],
    ["oneroster.version", "1.2"],
    ["file.academicSessions", "bulk"],
    ["file.classes", "bulk"],
    ["file.courses", "bulk"],
    ["file.demographics", "bulk"],
    ["file.enrollments", "bulk"],
    ["file.orgs", "bulk"],
    ["file.roles", "bulk"],
    ["file.users", "bulk"],
    ["file.lineItems", "bulk"],
    ["source.systemName", "Lakeside SIS"],
]

STAMP = "2026-08-20T09:00:00.000Z"

ORGS: Rows = [
    ["sourcedId", "status", "dateLastModified", "name", "type", "identifier",
     "parentSourcedId"],
    ["district", "active", STAMP, "Lakeside District", "district", "", ""],
    ["hillside", "active", STAMP, "Hillside High", "school", "HH", "district"],
    ["riverside", "", "", "Riverside High", "school", "RH", "district"],
]  # fmt: skip

SESSIONS: Rows = [
    ["sourcedId", "status", "dateLastModified", "title", "type", "startDate",
     "endDate", "parentSourcedId", "schoolYear"],
    ["fall-26", "active", STAMP, "Fall 2026", "term", "2026-09-01", "2027-01-22",
     "", "2027"],
]  # fmt: skip

COURSES: Rows = [
    ["sourcedId", "status", "dateLastModified", "schoolYearSourcedId", "title",
     "courseCode", "grades", "orgSourcedId", "subjects", "subjectCodes"],
    ["algebra", "active", STAMP, "", "Algebra I", "MA1", "09", "district", "", ""],
]  # fmt: skip

CLASSES: Rows = [
    ["sourcedId", "status", "dateLastModified", "title", "grades",
     "courseSourcedId", "classCode", "classType", "location", "schoolSourcedId",
     "termSourcedIds", "subjects", "subjectCodes", "periods"],
    ["alg-h", "active", STAMP, "Algebra I (Hillside)", "09", "algebra", "MA1-H",
     "scheduled", "", "hillside", "fall-26", "", "", "1"],
    ["alg-r", "active", STAMP, "Algebra I (Riverside)", "09", "algebra",
     "MA1-R", "scheduled", "", "riverside", "fall-26", "", "", "2"],
]  # fmt: skip

USERS: Rows = [
    ["sourcedId", "status", "dateLastModified", "enabledUser", "username",
     "givenName", "familyName", "email", "agentSourcedIds"],
    ["t-ada", "active", STAMP, "true", "ada", "Ada", "Byron", "ada@example.org",
     ""],
    ["t-alan", "active", STAMP, "true", "alan", "Alan", "Turing", "", ""],
    ["s-grace", "active", STAMP, "true", "grace", "Grace", "Hopper", "", "g-mary"],
    ["s-kath", "active", STAMP, "true", "kath", "Katherine", "Johnson", "", ""],
    ["s-edsger", "active", STAMP, "true", "edsger", "Edsger", "Dijkstra", "", ""],
    ["s-barbara", "tobedeleted", STAMP, "false", "barbara", "Barbara", "Liskov",
     "", ""],
    ["g-mary", "active", STAMP, "true", "mary", "Mary", "Hopper", "", "s-grace"],
]  # fmt: skip

ROLES: Rows = [
    ["sourcedId", "status", "dateLastModified", "userSourcedId", "roleType",
     "role", "beginDate", "endDate", "orgSourcedId", "userProfileSourcedId"],
    ["r1", "active", STAMP, "t-ada", "primary", "teacher", "", "", "hillside", ""],
    ["r2", "active", STAMP, "t-alan", "primary", "teacher", "", "", "riverside",
     ""],
    ["r3", "active", STAMP, "s-grace", "primary", "student", "", "", "hillside",
     ""],
    ["r4", "active", STAMP, "s-kath", "primary", "student", "", "", "hillside",
     ""],
    ["r5", "active", STAMP, "s-edsger", "primary", "student", "", "",
     "riverside", ""],
    ["r6", "active", STAMP, "s-barbara", "primary", "student", "", "",
     "riverside", ""],
    ["r7", "active", STAMP, "g-mary", "primary", "parent", "", "", "hillside",
     ""],
]  # fmt: skip

ENROLLMENTS: Rows = [
    ["sourcedId", "status", "dateLastModified", "classSourcedId",
     "schoolSourcedId", "userSourcedId", "role", "primary", "beginDate",
     "endDate"],
    ["e1", "active", STAMP, "alg-h", "hillside", "t-ada", "teacher", "true",
     "2026-09-01", ""],
    ["e2", "active", STAMP, "alg-r", "riverside", "t-alan", "teacher", "true",
     "", ""],
    ["e3", "active", STAMP, "alg-h", "hillside", "s-grace", "student", "", "",
     ""],
    ["e4", "active", STAMP, "alg-h", "hillside", "s-kath", "student", "", "", ""],
    ["e5", "active", STAMP, "alg-r", "riverside", "s-edsger", "student", "", "",
     ""],
    ["e6", "tobedeleted", STAMP, "alg-r", "riverside", "s-barbara", "student",
     "", "", "2026-10-01"],
]  # fmt: skip


def csv_bytes(rows: Rows) -> bytes:
    """Write ``rows`` as CSV the way a student information system would."""
    lines = []
    for row in rows:
        cells = [f'"{cell}"' if "," in cell else cell for cell in row]
        lines.append(",".join(cells))
    return ("\r\n".join(lines) + "\r\n").encode()


def lakeside(**changes: Rows) -> dict[str, bytes]:
    """The Lakeside bundle, with some files' rows replaced by ``changes``."""
    files = {
        "manifest.csv": MANIFEST,
        "orgs.csv": ORGS,
        "academicSessions.csv": SESSIONS,
        "courses.csv": COURSES,
        "classes.csv": CLASSES,
        "users.csv": USERS,
        "roles.csv": ROLES,
        "enrollments.csv": ENROLLMENTS,
    }
    for stem, rows in changes.items():
        files[f"{stem}.csv"] = rows
    return {name: csv_bytes(rows) for name, rows in files.items()}


def refusal(files: dict[str, bytes]) -> list[RosterProblem]:
    """Return the problems a bundle is refused for."""
    with pytest.raises(RosterImportError) as raised:
        read_bundle(files)
    return list(raised.value.problems)


def with_row(rows: Rows, index: int, column: str, value: str) -> Rows:
    """Copy ``rows`` with one cell of data row ``index`` (1 is the first) set."""
    copied = [list(row) for row in rows]
    copied[index][rows[0].index(column)] = value
    return copied


def test_a_good_bundle_is_read_whole_with_its_links() -> None:
    """Lakeside gives 2 schools, 1 term, 2 sections, 7 people, 6 enrollments."""
    bundle = read_bundle(lakeside())

    assert [school.sourced_id for school in bundle.schools] == [
        "hillside",
        "riverside",
    ]
    assert [term.starts_on for term in bundle.terms] == [date(2026, 9, 1)]
    assert {(s.sourced_id, s.school_id, s.course_id) for s in bundle.sections} == {
        ("alg-h", "hillside", "algebra"),
        ("alg-r", "riverside", "algebra"),
    }
    assert bundle.sections[0].term_ids == ("fall-26",)
    roles = [person.role for person in bundle.people]
    assert roles.count("teacher") == 2
    assert roles.count("student") == 4
    assert roles.count("guardian") == 1
    assert len(bundle.enrollments) == 6
    assert bundle.guardian_links[0].guardian_id == "g-mary"
    assert bundle.guardian_links[0].student_id == "s-grace"
    assert len(bundle.guardian_links) == 1
    assert bundle.manifest.source_system == "Lakeside SIS"


def test_a_parent_is_read_as_a_guardian_and_keeps_the_oneroster_role() -> None:
    """Mary is a parent in the bundle and a guardian to grading."""
    bundle = read_bundle(lakeside())
    mary = next(p for p in bundle.people if p.sourced_id == "g-mary")

    assert (mary.role, mary.oneroster_role) == ("guardian", "parent")


def test_tobedeleted_rows_are_kept_with_their_status() -> None:
    """Barbara and her enrollment are marked for deletion, not dropped."""
    bundle = read_bundle(lakeside())
    barbara = next(p for p in bundle.people if p.sourced_id == "s-barbara")
    leaving = next(e for e in bundle.enrollments if e.sourced_id == "e6")

    assert barbara.status == "tobedeleted"
    assert barbara.enabled is False
    assert leaving.status == "tobedeleted"
    assert leaving.ends_on == date(2026, 10, 1)


def test_blank_status_and_date_in_a_bulk_file_stay_blank() -> None:
    """Riverside's row gives neither status nor dateLastModified."""
    bundle = read_bundle(lakeside())
    riverside = next(s for s in bundle.schools if s.sourced_id == "riverside")
    hillside = next(s for s in bundle.schools if s.sourced_id == "hillside")

    assert (riverside.status, riverside.last_modified) == (None, None)
    assert hillside.last_modified is not None
    assert hillside.last_modified.year == 2026


def test_a_missing_required_column_is_named() -> None:
    """A classes file without termSourcedIds is refused at its header."""
    without_terms = [row[:10] + row[11:] for row in CLASSES]

    problems = refusal(lakeside(classes=without_terms))

    assert problems == [
        RosterProblem(
            file="classes.csv",
            line=1,
            column="termSourcedIds",
            message="required column is missing",
        )
    ]


def test_a_byte_order_mark_is_refused() -> None:
    """A users file saved with a BOM is refused at line 1."""
    files = lakeside()
    files["users.csv"] = b"\xef\xbb\xbf" + files["users.csv"]

    problems = refusal(files)

    assert [(p.file, p.line, p.column) for p in problems] == [
        ("users.csv", 1, "sourcedId")
    ]
    assert "byte order mark" in problems[0].message


def test_bytes_that_are_not_utf8_are_refused_at_their_cell() -> None:
    """Latin-1 in Katherine's family name is named by line and column."""
    files = lakeside()
    files["users.csv"] = files["users.csv"].replace(b"Johnson", b"Johns\xf6n")

    problems = refusal(files)

    assert [(p.file, p.line, p.column) for p in problems] == [
        ("users.csv", 5, "familyName")
    ]
    assert "Johns" not in problems[0].message


def test_a_repeated_sourced_id_is_refused() -> None:
    """A second e1 in enrollments is refused, pointing back at the first."""
    repeated = with_row(ENROLLMENTS, 2, "sourcedId", "e1")

    problems = refusal(lakeside(enrollments=repeated))

    assert [(p.file, p.line, p.column) for p in problems] == [
        ("enrollments.csv", 3, "sourcedId")
    ]
    assert problems[0].message == "e1 repeats line 2"


def test_an_enrollment_in_an_unknown_class_is_refused() -> None:
    """Grace enrolled in geometry, which classes.csv does not have."""
    stray = with_row(ENROLLMENTS, 3, "classSourcedId", "geometry")

    problems = refusal(lakeside(enrollments=stray))

    assert [(p.file, p.line, p.column) for p in problems] == [
        ("enrollments.csv", 4, "classSourcedId")
    ]
    assert "geometry" in problems[0].message


def test_an_unknown_role_is_refused() -> None:
    """A role of wizard is not a OneRoster role."""
    wizard = with_row(ROLES, 1, "role", "wizard")

    problems = refusal(lakeside(roles=wizard))

    assert (problems[0].file, problems[0].line, problems[0].column) == (
        "roles.csv",
        2,
        "role",
    )
    assert "'wizard'" in problems[0].message


def test_an_unknown_status_is_refused() -> None:
    """A status of archived is neither active nor tobedeleted."""
    archived = with_row(COURSES, 1, "status", "archived")

    problems = refusal(lakeside(courses=archived))

    assert [(p.file, p.line, p.column) for p in problems] == [
        ("courses.csv", 2, "status")
    ]


def test_demographics_and_gradebook_files_are_ignored() -> None:
    """Unread files, even ones that are not CSV at all, do not fail a bundle."""
    files = lakeside()
    files["demographics.csv"] = b"sourcedId,birthDate\r\nt-ada,\xff\r\n"
    files["lineItems.csv"] = b"\xef\xbb\xbfsourcedId\r\n"

    bundle = read_bundle(files)

    assert len(bundle.people) == 7


def test_several_problems_are_all_reported_and_none_name_a_person() -> None:
    """A bad role, a stray enrollment and a repeated class come back together."""
    files = lakeside(
        roles=with_row(ROLES, 2, "role", "wizard"),
        enrollments=with_row(ENROLLMENTS, 4, "userSourcedId", "s-nobody"),
        classes=with_row(CLASSES, 2, "sourcedId", "alg-h"),
    )

    with pytest.raises(RosterImportError) as raised:
        read_bundle(files)

    where = {(p.file, p.line, p.column) for p in raised.value.problems}
    assert {
        ("roles.csv", 3, "role"),
        ("enrollments.csv", 5, "userSourcedId"),
        ("classes.csv", 3, "sourcedId"),
    } <= where
    assert raised.value.total == len(raised.value.problems)
    for name in ("Ada", "Alan", "Grace", "Katherine", "Hopper", "example.org"):
        assert name not in str(raised.value)


def test_a_file_the_manifest_promises_but_the_bundle_lacks_is_refused() -> None:
    """Without roles.csv the manifest's file.roles line is named."""
    files = lakeside()
    del files["roles.csv"]

    problems = refusal(files)

    assert [(p.file, p.line, p.column) for p in problems] == [
        ("manifest.csv", 10, "value")
    ]


def test_problems_beyond_the_cap_are_counted_not_kept() -> None:
    """Sixty unknown roles give fifty problems kept and sixty counted."""
    rows = [ROLES[0]] + [
        [f"r{n}", "", "", "t-ada", "secondary", "wizard", "", "", "hillside", ""]
        for n in range(10, 70)
    ]

    with pytest.raises(RosterImportError) as raised:
        read_bundle(lakeside(roles=ROLES + rows[1:]))

    assert raised.value.total == 60
    assert len(raised.value.problems) == 50
