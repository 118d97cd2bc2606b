"""A teacher walks every route of every service with another teacher's
section, students and records in the path, against a district seeded
through the services' own routes and real PostgreSQL and NATS.

The routes come from each service's OpenAPI document, so a route added
later is walked without editing this file.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.engines import TestEngines
from tests.integration.test_api_surface import (
    APPS,
    Surface,
    cases,
    path_names,
)
from tests.tokens import TestKeys, bearer

FIXTURES = Path(__file__).parents[1] / "fixtures"
BUNDLE = FIXTURES / "oneroster" / "lakeside"
FRAMEWORK = FIXTURES / "case" / "what-standards-could-be.case.json"
TENANT = "lakeside"
# Hillside's Algebra I is Ada's; Riverside's is Alan's.
ADAS_SECTION, ALANS_SECTION = "alg-h", "alg-r"
ADAS_STUDENTS = {"Grace", "Katherine"}
# Path parameters that name a section, a person or a record of one.
PERSONAL_PARAMETERS = {
    "section_id",
    "student_id",
    "person_id",
    "assessment_id",
    "grade_id",
    "share_link_id",
}
SNAPSHOT_DEADLINE = 60.0
BODY_ATTEMPTS = 6


@dataclass
class District:
    """The running services and what Ada's section holds."""

    clients: dict[str, TestClient[Litestar]]
    surfaces: dict[str, Surface]
    admin: str
    ada: str
    alan: str
    records: dict[str, str]


def zipped(folder: Path) -> bytes:
    """Return the files of ``folder`` as a zip archive."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for file in sorted(folder.iterdir()):
            bundle.write(file, file.name)
    return archive.getvalue()


def ok(response: Any) -> Any:
    """Return a successful answer's JSON, or fail naming the answer."""
    assert response.is_success, (response.request.url, response.text)
    return response.json()


def poll(
    check: Callable[[], Any], *, what: str, within: float = SNAPSHOT_DEADLINE
) -> Any:
    """Return ``check``'s first truthy answer, or fail after ``within``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {within}s")


def seed(clients: dict[str, TestClient[Litestar]], keys: TestKeys) -> District:
    """Seed the district through the routes: a scale and the framework,
    the roster, the set linked to both sections, one grade for each of
    Ada's students, and a share link to one of their reports."""
    admin = keys.token(TENANT, ["district_admin"], subject="chalmers")
    ada = keys.token(TENANT, ["teacher"], subject="t-ada", sections=[ADAS_SECTION])
    alan = keys.token(TENANT, ["teacher"], subject="t-alan", sections=[ALANS_SECTION])
    objectives, grading, reports = (
        clients["objectives"],
        clients["grading"],
        clients["reports"],
    )
    as_admin = bearer(admin)

    scale = ok(objectives.post("/scales/starter/four-levels", headers=as_admin))
    scale_id = scale["scale_id"]
    ok(objectives.post(f"/scales/{scale_id}/publish", headers=as_admin))
    imported = ok(
        objectives.post(
            "/imports",
            headers=as_admin,
            files={
                "file": (FRAMEWORK.name, FRAMEWORK.read_bytes(), "application/json")
            },
        )
    )
    set_id = imported["objective_set_id"]
    ok(objectives.post(f"/objective-sets/{set_id}/publish", headers=as_admin))
    found = ok(objectives.get(f"/objective-sets/{set_id}", headers=as_admin))
    objective_id = next(iter(found["objectives"]))

    ok(
        grading.post(
            "/rosters/imports",
            headers=as_admin,
            files={"file": ("lakeside.zip", zipped(BUNDLE), "application/zip")},
        )
    )
    poll(
        lambda: (
            grading.get(f"/scales/{scale_id}/versions/1", headers=as_admin).is_success
        ),
        what="grading hearing of the scale",
    )
    for section in (ADAS_SECTION, ALANS_SECTION):
        ok(
            grading.put(
                f"/sections/{section}/objective-sets/{set_id}", headers=as_admin
            )
        )
    students = ok(
        grading.get(f"/sections/{ADAS_SECTION}/students", headers=bearer(ada))
    )
    recorded = ok(
        grading.post(
            "/assessments/batch",
            headers=bearer(ada),
            json={
                "section_id": ADAS_SECTION,
                "scale_id": scale_id,
                "scale_version": 1,
                "assessed_at": "2026-09-14T10:00:00Z",
                "evidence": {"title": "Ratio tables", "kind": "formative"},
                "rows": [
                    {
                        "student_id": s["person_id"],
                        "objective_id": objective_id,
                        "level": 3.0,
                    }
                    for s in students
                ],
            },
        )
    )
    student_id = students[0]["person_id"]
    poll(
        lambda: (
            reports.get(f"/students/{student_id}/report", headers=as_admin).is_success
        ),
        what="reports building the student's snapshot",
    )
    link = ok(
        reports.post(
            f"/students/{student_id}/share-links",
            headers=bearer(ada),
            json={"section_ids": [ADAS_SECTION]},
        )
    )

    return District(
        clients=clients,
        surfaces={},
        admin=admin,
        ada=ada,
        alan=alan,
        records={
            "section_id": ADAS_SECTION,
            "student_id": student_id,
            "person_id": student_id,
            "assessment_id": recorded["rows"][0]["assessment_id"],
            "share_link_id": link["share_link"]["share_link_id"],
        },
    )


@pytest.fixture(scope="module")
def district(
    tmp_path_factory: pytest.TempPathFactory,
    engines: TestEngines,
) -> Iterator[District]:
    """The three services on the session's engines, seeded once."""
    keys = TestKeys(tmp_path_factory.mktemp("keys"))
    settings = keys.settings(
        database_url=engines.database_url,
        nats_url=engines.nats_url,
        subject_prefix=f"walk{time.monotonic_ns() % 10**8}",
        relay_poll_interval=0.2,
    )
    with ExitStack() as running:
        clients = {
            name: running.enter_context(TestClient(create(settings)))
            for name, create in APPS.items()
        }
        seeded = seed(clients, keys)
        seeded.surfaces = {name: Surface(c, keys) for name, c in clients.items()}
        yield seeded


@pytest.mark.parametrize("service", list(APPS))
def test_a_teacher_reaches_nothing_of_another_teachers_section(
    district: District, service: str
) -> None:
    """Alan, teacher of Riverside's section, calls every protected route
    with Ada's section, her students and their records in the path: each
    route naming one of them answers 403 or 404, and no answer of any
    route names Ada's students or holds their ids."""
    surface = district.surfaces[service]
    hers = {district.records["student_id"], *ADAS_STUDENTS}
    walked = refused = 0

    for operation in surface.operations():
        if surface.is_public(operation):
            continue
        names = path_names(operation)
        filled = {name: district.records.get(name, _unknown(name)) for name in names}
        response = answer_with_a_valid_body(surface, operation, filled, district.alan)
        label = f"{operation.label} {filled}"

        sent = {str(value) for value in filled.values()}
        leaked = {value for value in hers - sent if value in response.text}
        assert leaked == set(), label
        if PERSONAL_PARAMETERS & set(names):
            assert response.status_code in {403, 404}, (label, response.text)
            refused += 1
        walked += 1

    assert walked > 0
    if service != "objectives":
        # Grading and reports name sections and students; the walk must
        # have reached some, or it proves nothing.
        assert refused >= 3, refused


def test_ada_herself_reads_what_alan_is_refused(district: District) -> None:
    """The refusals above are about who asks: Ada, teacher of the section,
    reads her students and their report with the same ids."""
    grading = district.clients["grading"]
    reports = district.clients["reports"]
    student_id = district.records["student_id"]

    students = ok(
        grading.get(f"/sections/{ADAS_SECTION}/students", headers=bearer(district.ada))
    )
    report = reports.get(f"/students/{student_id}/report", headers=bearer(district.ada))

    assert {s["given_name"] for s in students} == ADAS_STUDENTS
    assert report.status_code == 200
    refused = grading.get(
        f"/sections/{ADAS_SECTION}/students", headers=bearer(district.alan)
    )
    assert refused.status_code in {403, 404}


def answer_with_a_valid_body(
    surface: Surface, operation: Any, filled: dict[str, str], token: str
) -> Any:
    """Call ``operation`` as ``token``, drawing cases until one gets past
    body validation: a 400 about the body says nothing of who may act."""
    drawn = cases(operation, BODY_ATTEMPTS, path_parameters=filled)
    response = None
    for case in drawn:
        response = surface.call(case, token)
        if response.status_code != 400:
            break
    assert response is not None

    return response


def _unknown(name: str) -> str:
    """Return a value for a path parameter that names nothing of Ada's."""
    return "1" if "version" in name else "00000000-0000-7000-8000-000000000000"
