"""Routes for staff: a student's report, a section's matrix and the
leaders' roll-ups, as JSON and as CSV."""

from __future__ import annotations

import csv
import io
from typing import Annotated

import msgspec
from litestar import MediaType, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter

from mastery_events.access import Caller, NotVisibleError, reads
from mastery_events.identity import Identity
from mastery_events.keyring import Keyring
from mastery_reports.errors import SectionNotFoundError, StudentNotFoundError
from mastery_reports.matrix import (
    Matrix,
    Rollup,
    matrix_rows,
    roll_up,
    rollup_rows,
    section_matrix,
)
from mastery_reports.routes.callers import AREA, reads_section
from mastery_reports.routes.dependencies import People, SnapshotReader
from mastery_reports.snapshot_store import Snapshots
from mastery_reports.snapshots import SectionReport, StudentSnapshot

CSV = "text/csv; charset=utf-8"


class StudentReport(msgspec.Struct, frozen=True, kw_only=True):
    """A student's report as staff read it: the sections they may see, and
    the log positions the snapshot reflects."""

    report: StudentSnapshot
    positions: dict[str, int]


def csv_text(rows: list[list[str]]) -> str:
    """Write rows as CSV text."""
    out = io.StringIO()
    csv.writer(out).writerows(rows)

    return out.getvalue()


@get(
    "/students/{student_id:str}/report",
    guards=[reads(AREA)],
    responses={
        200: ResponseSpec(
            data_container=StudentReport,
            description="The report and the log positions it reflects.",
        )
    },
)
async def student_report(
    identity: Caller, snapshots: SnapshotReader, student_id: FromPath[str]
) -> Response[bytes]:
    """Return a student's report, cut to the sections the caller reads.

    A caller who reads every section gets the stored JSON as it is, never
    decoded and encoded again: that is most reads, and the largest part of
    their cost.
    """
    stored = await snapshots.json_of_student(identity.tenant_id, student_id)
    if stored is None:
        raise StudentNotFoundError(student_id)
    readable = [reads_section(identity, s) for s in stored.sections]
    if not any(readable):
        raise NotVisibleError(
            identity.subject, tenant_id=identity.tenant_id, action="read"
        )
    if all(readable):
        body = b"".join(
            (
                b'{"report":',
                stored.document.encode(),
                b',"positions":',
                stored.positions.encode(),
                b"}",
            )
        )
        return Response(body, media_type=MediaType.JSON)

    snapshot = msgspec.json.decode(stored.document, type=StudentSnapshot)
    sections = tuple(s for s in snapshot.sections if reads_section(identity, s))
    report = StudentReport(
        report=msgspec.structs.replace(snapshot, sections=sections),
        positions=msgspec.json.decode(stored.positions, type=dict[str, int]),
    )

    return Response(msgspec.json.encode(report), media_type=MediaType.JSON)


async def matrix_of(
    snapshots: Snapshots, keyring: Keyring, identity: Identity, section_id: str
) -> Matrix:
    """Return a section's matrix, once the caller may read the section."""
    section = await snapshots.section(identity.tenant_id, section_id)
    if section is None:
        raise SectionNotFoundError(section_id)
    if not reads_section(identity, section):
        raise NotVisibleError(
            identity.subject, tenant_id=identity.tenant_id, action="read"
        )
    students = [
        s.snapshot for s in await snapshots.of_section(identity.tenant_id, section_id)
    ]
    names = await snapshots.names(
        identity.tenant_id, [s.student_id for s in students], keyring=keyring
    )

    return section_matrix(section_id, section.title, students, names=names)


@get("/sections/{section_id:str}/matrix", guards=[reads(AREA)])
async def matrix(
    identity: Caller,
    snapshots: SnapshotReader,
    keyring: People,
    section_id: FromPath[str],
) -> Matrix:
    """Return a section's students by objectives, the level in each cell."""
    return await matrix_of(snapshots, keyring, identity, section_id)


@get(
    "/sections/{section_id:str}/matrix.csv",
    guards=[reads(AREA)],
    media_type=CSV,
    response_description="One row per student, one column per objective.",
)
async def matrix_csv(
    identity: Caller,
    snapshots: SnapshotReader,
    keyring: People,
    section_id: FromPath[str],
) -> Response[str]:
    """Return a section's matrix as CSV for a spreadsheet."""
    found = await matrix_of(snapshots, keyring, identity, section_id)

    return Response(csv_text(matrix_rows(found)), media_type=CSV)


async def rollup_of(
    snapshots: Snapshots,
    identity: Identity,
    *,
    school_id: str | None,
    grade_band: str | None,
) -> Rollup:
    """Return the roll-up over the sections the caller reads, narrowed to
    one school or grade band when asked."""

    def visible(section: SectionReport) -> bool:
        if school_id is not None and section.school_id != school_id:
            return False
        return reads_section(identity, section)

    stored = await snapshots.all(identity.tenant_id)
    rollup = roll_up([s.snapshot for s in stored], visible=visible)
    if grade_band is None:
        return rollup

    return msgspec.structs.replace(
        rollup, grade_bands=tuple(b for b in rollup.grade_bands if b.key == grade_band)
    )


SchoolFilter = Annotated[str | None, QueryParameter(max_length=200)]
BandFilter = Annotated[str | None, QueryParameter(max_length=50)]


@get("/rollups", guards=[reads(AREA)])
async def rollups(
    identity: Caller,
    snapshots: SnapshotReader,
    school_id: SchoolFilter = None,
    grade_band: BandFilter = None,
) -> Rollup:
    """Return the share of students at mastery per objective, section,
    school and grade band, over the sections the caller reads."""
    return await rollup_of(
        snapshots, identity, school_id=school_id, grade_band=grade_band
    )


@get(
    "/rollups.csv",
    guards=[reads(AREA)],
    media_type=CSV,
    response_description="One row per group: its pairs, mastered and share.",
)
async def rollups_csv(
    identity: Caller,
    snapshots: SnapshotReader,
    school_id: SchoolFilter = None,
    grade_band: BandFilter = None,
) -> Response[str]:
    """Return the roll-ups as CSV for a spreadsheet."""
    found = await rollup_of(
        snapshots, identity, school_id=school_id, grade_band=grade_band
    )

    return Response(csv_text(rollup_rows(found)), media_type=CSV)
