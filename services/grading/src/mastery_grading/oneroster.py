"""Read a OneRoster 1.2 CSV bundle into a ``RosterBundle``, or refuse it whole.

A bundle is a manifest plus one CSV file per kind of record. Every file is
checked before anything is returned: encoding, columns, enumerated values,
dates, repeated ``sourcedId`` values and references between files. All
problems found (up to a cap) are raised together in one
``RosterImportError``, each naming the file, the line and the column, so a
school can fix its export in one pass.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Final, TypeVar, cast

import msgspec

from mastery_grading.errors import RosterImportError, RosterProblem
from mastery_grading.roster import (
    Course,
    Enrollment,
    EnrollmentRole,
    FileMode,
    GuardianLink,
    Manifest,
    Person,
    PersonRole,
    RecordStatus,
    Reference,
    RosterBundle,
    School,
    Section,
    Term,
)

PROBLEM_CAP: Final = 50

MANIFEST = "manifest.csv"

# Each roster file grading reads, with the columns its header must carry;
# the columns named in _VALUE_REQUIRED must also hold a value on every row.
REQUIRED_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "orgs.csv": ("sourcedId", "status", "dateLastModified", "name", "type"),
    "academicSessions.csv": (
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "type",
        "startDate",
        "endDate",
        "schoolYear",
    ),
    "courses.csv": (
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "orgSourcedId",
    ),
    "classes.csv": (
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "courseSourcedId",
        "classType",
        "schoolSourcedId",
        "termSourcedIds",
    ),
    "users.csv": (
        "sourcedId",
        "status",
        "dateLastModified",
        "enabledUser",
        "givenName",
        "familyName",
    ),
    "roles.csv": (
        "sourcedId",
        "status",
        "dateLastModified",
        "userSourcedId",
        "roleType",
        "role",
        "orgSourcedId",
    ),
    "enrollments.csv": (
        "sourcedId",
        "status",
        "dateLastModified",
        "classSourcedId",
        "schoolSourcedId",
        "userSourcedId",
        "role",
    ),
}

# Files of OneRoster 1.2 grading has no use for yet: accepted, never read.
IGNORED_FILES: Final = frozenset(
    {
        "demographics.csv",
        "userProfiles.csv",
        "resources.csv",
        "classResources.csv",
        "courseResources.csv",
        "userResources.csv",
        "categories.csv",
        "lineItems.csv",
        "results.csv",
        "scoreScales.csv",
        "lineItemLearningObjectiveIds.csv",
        "lineItemScoreScales.csv",
        "resultLearningObjectiveIds.csv",
        "resultScoreScales.csv",
    }
)

_STATUSES: Final = ("active", "tobedeleted")
_ORG_TYPES: Final = ("department", "school", "district", "local", "state", "national")
_SESSION_TYPES: Final = ("gradingPeriod", "semester", "schoolYear", "term")
_CLASS_TYPES: Final = ("homeroom", "scheduled")
_ROLE_TYPES: Final = ("primary", "secondary")
_ENROLLMENT_ROLES: Final = ("administrator", "proctor", "student", "teacher")
_BOOLEANS: Final = ("true", "false")
_MANIFEST_MODES: Final = ("bulk", "delta", "absent")

# OneRoster's user roles, folded into the few grading distinguishes.
_PERSON_ROLES: Final[Mapping[str, PersonRole]] = {
    "teacher": "teacher",
    "student": "student",
    "guardian": "guardian",
    "parent": "guardian",
    "relative": "guardian",
    "districtAdministrator": "administrator",
    "siteAdministrator": "administrator",
    "systemAdministrator": "administrator",
    "principal": "administrator",
    "aide": "staff",
    "counselor": "staff",
    "proctor": "staff",
}

_OTHER_SIDE: Final[Mapping[str, PersonRole]] = {
    "guardian": "student",
    "student": "guardian",
}

_BOM: Final = "\ufeff"

T = TypeVar("T")


class _Problems:
    """Collect problems up to the cap while counting every one found."""

    def __init__(self) -> None:
        self.kept: list[RosterProblem] = []
        self.total = 0

    def add(
        self, file: str, line: int | None, column: str | None, message: str
    ) -> None:
        """Note one problem; keep it only while under the cap."""
        self.total += 1
        if len(self.kept) < PROBLEM_CAP:
            problem = RosterProblem(
                file=file, line=line, column=column, message=message
            )
            self.kept.append(problem)


class _Row(msgspec.Struct, frozen=True):
    """One data row of a file, by column name, with its 1-based line."""

    line: int
    values: dict[str, str]


class _Cells:
    """Read typed values from one row, noting each bad cell as a problem."""

    def __init__(self, file: str, row: _Row, problems: _Problems) -> None:
        self.file = file
        self.row = row
        self.problems = problems
        self.bad = False

    def refuse(self, column: str, message: str) -> None:
        """Note a problem with ``column`` of this row."""
        self.bad = True
        self.problems.add(self.file, self.row.line, column, message)

    def optional(self, column: str) -> str | None:
        """Return the cell's text, or ``None`` when it is blank or absent."""
        value = self.row.values.get(column, "").strip()
        return value or None

    def text(self, column: str) -> str:
        """Return the cell's text, refusing a blank one."""
        value = self.optional(column)
        if value is None:
            self.refuse(column, "a value is required")
            return ""
        return value

    def choice(self, column: str, allowed: tuple[str, ...]) -> str:
        """Return the cell's value if it is one of ``allowed``."""
        value = self.text(column)
        if value and value not in allowed:
            self.refuse(column, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def optional_choice(self, column: str, allowed: tuple[str, ...]) -> str | None:
        """Return the cell's value if it is blank or one of ``allowed``."""
        if self.optional(column) is None:
            return None
        return self.choice(column, allowed)

    def status(self, *, mode: FileMode) -> RecordStatus | None:
        """Return the record's status, which a delta file must give."""
        if mode == "delta":
            return cast(RecordStatus, self.choice("status", _STATUSES))
        return cast(RecordStatus | None, self.optional_choice("status", _STATUSES))

    def last_modified(self, *, mode: FileMode) -> datetime | None:
        """Return ``dateLastModified``, which a delta file must give."""
        value = self.text("dateLastModified") if mode == "delta" else None
        value = value or self.optional("dateLastModified")
        if value is None:
            return None
        return self._parsed("dateLastModified", value, datetime.fromisoformat)

    def day(self, column: str) -> date | None:
        """Return the cell as a calendar date, or ``None`` when blank."""
        value = self.optional(column)
        if value is None:
            return None
        return self._parsed(column, value, date.fromisoformat)

    def flag(self, column: str) -> bool | None:
        """Return the cell as a boolean, or ``None`` when blank."""
        value = self.optional_choice(column, _BOOLEANS)
        return None if value is None else value == "true"

    def ids(self, column: str) -> tuple[str, ...]:
        """Return the comma-separated ``sourcedId`` values in the cell."""
        value = self.optional(column) or ""
        return tuple(part.strip() for part in value.split(",") if part.strip())

    def _parsed(self, column: str, value: str, parse: Callable[[str], T]) -> T | None:
        try:
            return parse(value)
        except ValueError:
            self.refuse(column, f"{value!r} is not an ISO 8601 date")
            return None


def read_bundle(files: Mapping[str, bytes]) -> RosterBundle:
    """Read a bundle given as file name to contents, refusing it whole if
    anything in it is wrong.

    Files the manifest marks absent, and OneRoster files grading does not
    read yet (demographics, resources, the gradebook), are ignored.
    """
    problems = _Problems()

    # The manifest says which roster files to expect and how to read them.
    manifest = _read_manifest(files, problems)
    tables: dict[str, list[_Row] | None] = {}
    for name, columns in REQUIRED_COLUMNS.items():
        data = files.get(name)
        tables[name] = None
        if data is not None and name in manifest.modes:
            tables[name] = _read_table(name, data, columns, problems)

    # Records are built file by file, each checked against those before it.
    builder = _Builder(manifest, tables, problems)
    bundle = builder.build()

    if problems.total:
        raise RosterImportError(tuple(problems.kept), total=problems.total)
    return bundle


def read_bundle_directory(directory: Path) -> RosterBundle:
    """Read the bundle unpacked in ``directory``; see ``read_bundle``."""
    files = {path.name: path.read_bytes() for path in directory.glob("*.csv")}
    return read_bundle(files)


def _decode(name: str, data: bytes, problems: _Problems) -> list[tuple[int, list[str]]]:
    """Split a file into rows with their starting line, noting a byte order
    mark and every cell whose bytes are not UTF-8."""
    text = data.decode("utf-8", errors="surrogateescape")
    has_bom = text.startswith(_BOM)
    reader = csv.reader(io.StringIO(text.removeprefix(_BOM), newline=""))

    rows: list[tuple[int, list[str]]] = []
    next_line = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                rows.append((next_line, cells))
            next_line = reader.line_num + 1
    except csv.Error as error:
        problems.add(name, reader.line_num, None, f"is not valid CSV: {error}")

    header = rows[0][1] if rows else []
    if has_bom:
        first = header[0] if header else None
        problems.add(name, 1, first, "starts with a byte order mark; save as UTF-8")
    for line, cells in rows:
        for position, cell in enumerate(cells):
            if not _is_utf8(cell):
                column = header[position] if position < len(header) else None
                if line == 1:
                    column = f"#{position + 1}"
                problems.add(name, line, column, "holds bytes that are not UTF-8")
    return rows


def _is_utf8(cell: str) -> bool:
    """Tell whether a decoded cell came from valid UTF-8 bytes."""
    return not any("\udc80" <= char <= "\udcff" for char in cell)


def _read_table(
    name: str, data: bytes, columns: Iterable[str], problems: _Problems
) -> list[_Row] | None:
    """Return a file's data rows keyed by header, or ``None`` if its header
    lacks a required column, so nothing else is judged against it."""
    rows = _decode(name, data, problems)
    if not rows:
        problems.add(name, 1, None, "has no header row")
        return None

    header = [cell.strip() for cell in rows[0][1]]
    missing = [column for column in columns if column not in header]
    for column in missing:
        problems.add(name, 1, column, "required column is missing")
    if missing:
        return None

    table: list[_Row] = []
    for line, cells in rows[1:]:
        if len(cells) != len(header):
            column = header[min(len(cells), len(header) - 1)]
            message = f"has {len(cells)} fields where the header has {len(header)}"
            problems.add(name, line, column, message)
            continue
        table.append(_Row(line, dict(zip(header, cells, strict=True))))
    return table


def _read_manifest(files: Mapping[str, bytes], problems: _Problems) -> Manifest:
    """Read the manifest, noting every required file it does not provide."""
    data = files.get(MANIFEST)
    if data is None:
        problems.add(MANIFEST, None, None, "the bundle has no manifest")
        return Manifest(oneroster_version="", modes={})
    rows = _read_table(MANIFEST, data, ("propertyName", "value"), problems) or []

    properties: dict[str, tuple[str, int]] = {}
    for row in rows:
        key = row.values["propertyName"].strip()
        properties[key] = (row.values["value"].strip(), row.line)

    version, line = properties.get("oneroster.version", ("", 1))
    if version != "1.2":
        problems.add(MANIFEST, line, "value", "oneroster.version must be 1.2")

    modes: dict[str, FileMode] = {}
    for name in REQUIRED_COLUMNS:
        key = f"file.{name.removesuffix('.csv')}"
        if key not in properties:
            problems.add(MANIFEST, 1, "propertyName", f"{key} is not listed")
            continue
        mode, line = properties[key]
        if mode not in _MANIFEST_MODES:
            message = f"{key} is {mode!r}, not one of bulk, delta, absent"
            problems.add(MANIFEST, line, "value", message)
        elif mode == "absent":
            message = f"{key} is absent, but a roster needs {name}"
            problems.add(MANIFEST, line, "value", message)
        elif name not in files:
            message = f"{key} is {mode}, but the bundle has no {name}"
            problems.add(MANIFEST, line, "value", message)
        else:
            modes[name] = cast(FileMode, mode)

    source = properties.get("source.systemName", ("", 0))[0] or None
    return Manifest(oneroster_version=version, modes=modes, source_system=source)


class _Builder:
    """Turn checked rows into records, file by file, noting every problem.

    A file that could not be read leaves its ids unknown (``None``), so
    references into it are not reported a second time.
    """

    def __init__(
        self,
        manifest: Manifest,
        tables: Mapping[str, list[_Row] | None],
        problems: _Problems,
    ) -> None:
        self.manifest = manifest
        self.tables = tables
        self.problems = problems
        self.ids: dict[str, set[str] | None] = {}
        self.unresolved: list[Reference] = []
        role_rows = tables.get("roles.csv")
        self.role_holders = (
            None
            if role_rows is None
            else {row.values["userSourcedId"].strip() for row in role_rows}
        )

    def build(self) -> RosterBundle:
        """Build every kind of record in the order references need."""
        org_types = self._org_types()
        schools = self._each("orgs.csv", lambda c: self._school(c, org_types))
        terms = self._each("academicSessions.csv", self._term)
        courses = self._each("courses.csv", self._course)
        sections = self._each("classes.csv", lambda c: self._section(c, org_types))
        roles = self._roles()
        people = self._each("users.csv", lambda c: self._person(c, roles))
        enrollments = self._each("enrollments.csv", self._enrollment)
        links = self._guardian_links(people)

        return RosterBundle(
            manifest=self.manifest,
            schools=tuple(schools),
            terms=tuple(terms),
            courses=tuple(courses),
            sections=tuple(sections),
            people=tuple(people),
            enrollments=tuple(enrollments),
            guardian_links=links,
            unresolved=tuple(self.unresolved),
        )

    def _each(self, file: str, build: Callable[[_Cells], T | None]) -> list[T]:
        """Build one record per row of ``file``, refusing repeated ids and
        keeping the ids seen for later references."""
        rows = self.tables.get(file)
        if rows is None:
            self.ids[file] = None
            return []

        records: list[T] = []
        first_line: dict[str, int] = {}
        for row in rows:
            cells = _Cells(file, row, self.problems)
            sourced_id = cells.text("sourcedId")
            if sourced_id in first_line:
                message = f"{sourced_id} repeats line {first_line[sourced_id]}"
                cells.refuse("sourcedId", message)
            elif sourced_id:
                first_line[sourced_id] = row.line
            record = build(cells)
            if record is not None and not cells.bad:
                records.append(record)
        self.ids[file] = set(first_line)
        return records

    def _mode(self, cells: _Cells) -> FileMode:
        return self.manifest.modes.get(cells.file, "bulk")

    def _refer(self, cells: _Cells, column: str, file: str, value: str) -> None:
        """Refuse ``value`` if ``file`` was read and has no such record,
        unless ``file`` is a delta: then the record may have come in an
        earlier bundle, and the reference is left for the import to find."""
        known = self.ids.get(file)
        if not value or known is None or value in known:
            return
        if self.manifest.modes.get(file) == "delta":
            reference = Reference(
                file=cells.file,
                line=cells.row.line,
                column=column,
                target=file,
                sourced_id=value,
            )
            self.unresolved.append(reference)
            return
        cells.refuse(column, f"{value} is not a sourcedId in {file}")

    def _org_types(self) -> dict[str, str]:
        """Map each org to its type, so classes can insist on a school."""
        rows = self.tables.get("orgs.csv") or []
        return {row.values["sourcedId"].strip(): row.values["type"] for row in rows}

    def _school(self, cells: _Cells, org_types: Mapping[str, str]) -> School | None:
        kind = cells.choice("type", _ORG_TYPES)
        parent_id = cells.optional("parentSourcedId")
        # Grading keeps no district, so a delta's parent cannot be checked.
        delta = self.manifest.modes.get("orgs.csv") == "delta"
        if parent_id is not None and parent_id not in org_types and not delta:
            cells.refuse("parentSourcedId", f"{parent_id} is not a sourcedId in orgs")
        school = School(
            sourced_id=cells.text("sourcedId"),
            name=cells.text("name"),
            identifier=cells.optional("identifier"),
            parent_id=parent_id,
            status=cells.status(mode=self._mode(cells)),
            last_modified=cells.last_modified(mode=self._mode(cells)),
        )
        return school if kind == "school" else None

    def _term(self, cells: _Cells) -> Term | None:
        starts_on = cells.day("startDate") if cells.text("startDate") else None
        ends_on = cells.day("endDate") if cells.text("endDate") else None
        term = Term(
            sourced_id=cells.text("sourcedId"),
            title=cells.text("title"),
            kind=cells.choice("type", _SESSION_TYPES),
            starts_on=starts_on or date.min,
            ends_on=ends_on or date.min,
            school_year=cells.text("schoolYear"),
            parent_id=cells.optional("parentSourcedId"),
            status=cells.status(mode=self._mode(cells)),
            last_modified=cells.last_modified(mode=self._mode(cells)),
        )
        return term if starts_on and ends_on else None

    def _course(self, cells: _Cells) -> Course:
        org_id = cells.text("orgSourcedId")
        self._refer(cells, "orgSourcedId", "orgs.csv", org_id)
        return Course(
            sourced_id=cells.text("sourcedId"),
            title=cells.text("title"),
            course_code=cells.optional("courseCode"),
            org_id=org_id,
            status=cells.status(mode=self._mode(cells)),
            last_modified=cells.last_modified(mode=self._mode(cells)),
        )

    def _section(self, cells: _Cells, org_types: Mapping[str, str]) -> Section:
        school_id = cells.text("schoolSourcedId")
        self._refer(cells, "schoolSourcedId", "orgs.csv", school_id)
        if org_types.get(school_id, "school") != "school":
            cells.refuse("schoolSourcedId", f"{school_id} is not a school")
        course_id = cells.text("courseSourcedId")
        self._refer(cells, "courseSourcedId", "courses.csv", course_id)
        term_ids = cells.ids("termSourcedIds")
        if not term_ids:
            cells.refuse("termSourcedIds", "a value is required")
        for term_id in term_ids:
            self._refer(cells, "termSourcedIds", "academicSessions.csv", term_id)
        return Section(
            sourced_id=cells.text("sourcedId"),
            title=cells.text("title"),
            class_code=cells.optional("classCode"),
            class_type=cells.choice("classType", _CLASS_TYPES),
            school_id=school_id,
            course_id=course_id,
            term_ids=term_ids,
            status=cells.status(mode=self._mode(cells)),
            last_modified=cells.last_modified(mode=self._mode(cells)),
        )

    def _roles(self) -> dict[str, list[tuple[str, str, str]]]:
        """Check roles.csv and give each user's roles as (type, role, org),
        primary roles first."""
        file = "roles.csv"
        users = {
            row.values["sourcedId"].strip()
            for row in self.tables.get("users.csv") or []
        }
        users_known = self.tables.get("users.csv") is not None

        def check(cells: _Cells) -> tuple[str, str, str, str]:
            user_id = cells.text("userSourcedId")
            if users_known and user_id and user_id not in users:
                cells.refuse("userSourcedId", f"{user_id} is not a user in users.csv")
            org_id = cells.text("orgSourcedId")
            self._refer(cells, "orgSourcedId", "orgs.csv", org_id)
            cells.status(mode=self._mode(cells))
            cells.last_modified(mode=self._mode(cells))
            role_type = cells.choice("roleType", _ROLE_TYPES)
            role = cells.choice("role", tuple(_PERSON_ROLES))
            return user_id, role_type, role, org_id

        by_user: dict[str, list[tuple[str, str, str]]] = {}
        for user_id, role_type, role, org_id in self._each(file, check):
            by_user.setdefault(user_id, []).append((role_type, role, org_id))
        for roles in by_user.values():
            roles.sort(key=lambda entry: entry[0] != "primary")
        return by_user

    def _person(
        self, cells: _Cells, roles: Mapping[str, list[tuple[str, str, str]]]
    ) -> Person | None:
        sourced_id = cells.text("sourcedId")
        enabled = cells.flag("enabledUser")
        cells.text("enabledUser")
        held = roles.get(sourced_id, [])
        # A user whose only roles were refused is already reported there.
        named = self.role_holders
        if named is not None and sourced_id not in named:
            cells.refuse("sourcedId", f"{sourced_id} has no role in roles.csv")
        if not held or enabled is None:
            return None
        role = held[0][1]
        return Person(
            sourced_id=sourced_id,
            role=_PERSON_ROLES[role],
            oneroster_role=role,
            org_ids=tuple(dict.fromkeys(org_id for _, _, org_id in held)),
            enabled=enabled,
            username=cells.optional("username"),
            given_name=cells.text("givenName"),
            family_name=cells.text("familyName"),
            email=cells.optional("email"),
            status=cells.status(mode=self._mode(cells)),
            last_modified=cells.last_modified(mode=self._mode(cells)),
        )

    def _enrollment(self, cells: _Cells) -> Enrollment:
        section_id = cells.text("classSourcedId")
        self._refer(cells, "classSourcedId", "classes.csv", section_id)
        school_id = cells.text("schoolSourcedId")
        self._refer(cells, "schoolSourcedId", "orgs.csv", school_id)
        user_id = cells.text("userSourcedId")
        self._refer(cells, "userSourcedId", "users.csv", user_id)
        role = cells.choice("role", _ENROLLMENT_ROLES)
        return Enrollment(
            sourced_id=cells.text("sourcedId"),
            user_id=user_id,
            section_id=section_id,
            school_id=school_id,
            role=cast(EnrollmentRole, role),
            primary=cells.flag("primary"),
            begins_on=cells.day("beginDate"),
            ends_on=cells.day("endDate"),
            status=cells.status(mode=self._mode(cells)),
            last_modified=cells.last_modified(mode=self._mode(cells)),
        )

    def _guardian_links(self, people: list[Person]) -> tuple[GuardianLink, ...]:
        """Link guardians and students named in each other's agents, from
        whichever side the bundle lists them."""
        role_of = {person.sourced_id: person.role for person in people}
        delta = self.manifest.modes.get("users.csv") == "delta"
        links: dict[tuple[str, str], None] = {}
        for row in self.tables.get("users.csv") or []:
            cells = _Cells("users.csv", row, self.problems)
            user_id = cells.text("sourcedId")
            for agent_id in cells.ids("agentSourcedIds"):
                self._refer(cells, "agentSourcedIds", "users.csv", agent_id)
                user_role, agent_role = role_of.get(user_id), role_of.get(agent_id)
                if agent_role is None and delta:
                    # An agent the delta does not carry is taken to be of the
                    # other side; the import checks that they are held.
                    agent_role = _OTHER_SIDE.get(user_role or "")
                pair = (user_role, agent_role)
                if pair == ("guardian", "student"):
                    links[(user_id, agent_id)] = None
                elif pair == ("student", "guardian"):
                    links[(agent_id, user_id)] = None
        return tuple(
            GuardianLink(guardian_id=guardian_id, student_id=student_id)
            for guardian_id, student_id in links
        )
