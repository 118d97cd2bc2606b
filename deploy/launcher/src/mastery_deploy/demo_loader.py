"""Load the demo district into a running stack through the services' own
routes, exactly as a district's tools would: the CASE framework and a
scale into objectives, the OneRoster bundle and a term of evidence into
grading, and a share link from reports.

Every write is safe to repeat: the framework and roster re-import to no
change, and each assessment batch carries an idempotency key, so loading
twice records each grade once.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any
from uuid import UUID

import httpx
import msgspec
import structlog

from mastery_deploy.demo_district import (
    DemoAssignment,
    DemoRoster,
    demo_assignments,
    demo_corrections,
    demo_roster,
    roster_bundle,
)

logger = structlog.get_logger(__name__)

TENANT = "lakeside"
ADMIN = "demo-admin"
FRAMEWORK = "what-standards-could-be.case.json"
# The six standards of the framework; clusters and their components are
# left to the teacher who wants them.
STANDARD_CODES = tuple(
    f"CCSS.Math.Content.{grade}.RP.A.{n}" for grade in (6, 7) for n in (1, 2, 3)
)
# Reports applies the term's 7,000 events one at a time: about a minute on
# a quiet machine, several on a busy one, before the demo gives up.
SNAPSHOT_DEADLINE = 600.0
MINIMUM_EVIDENCE = 2

Mint = Callable[..., str]


class DemoLoadError(Exception):
    """Raised when a service refuses a step of the demo, naming the step."""

    def __init__(self, step: str, status: int, detail: str) -> None:
        self.step = step
        self.status = status
        super().__init__(f"{step} was refused ({status}): {detail}")

    @classmethod
    def refused(cls, step: str, response: httpx.Response) -> DemoLoadError:
        """Return the error of a step a service answered with a failure."""
        return cls(step, response.status_code, response.text)


class DemoLinks(msgspec.Struct, frozen=True, kw_only=True):
    """What `mastery up` prints for trying the demo."""

    guardian_url: str
    teacher_token: str
    teacher_section: str
    leader_token: str

    def describe(self) -> str:
        """Return the lines that tell a person how to try the demo."""
        return "\n".join(
            [
                "Demo district loaded (tenant lakeside).",
                f"  A guardian's report: {self.guardian_url}",
                f"  Teacher of {self.teacher_section}, as a bearer token:",
                f"    {self.teacher_token}",
                "  A school leader, as a bearer token:",
                f"    {self.leader_token}",
            ]
        )


class DemoClients:
    """One HTTP client per service, each call checked."""

    def __init__(self, urls: Mapping[str, str]) -> None:
        self.clients = {
            name: httpx.AsyncClient(base_url=url, timeout=60.0)
            for name, url in urls.items()
        }

    async def call(
        self, step: str, service: str, method: str, path: str, token: str, **kwargs: Any
    ) -> Any:
        """Send one request as ``token``; return its JSON or raise."""
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        response = await self.clients[service].request(
            method, path, headers=headers, **kwargs
        )
        if not response.is_success:
            raise DemoLoadError.refused(step, response)
        return response.json() if response.content else None

    async def close(self) -> None:
        """Close every client."""
        await asyncio.gather(*(client.aclose() for client in self.clients.values()))


async def load_demo(urls: Mapping[str, str], *, mint: Mint) -> DemoLinks:
    """Load the demo district into the services at ``urls`` and return a
    guardian's link and tokens to try it with; ``mint`` signs tokens."""
    roster = demo_roster()
    admin = mint(tenant_id=TENANT, roles=["district_admin"], subject=ADMIN)
    clients = DemoClients(urls)
    try:
        scale_id, objective_ids, set_id = await import_objectives(clients, admin)
        await wait_for_catalogue(clients, admin, scale_id)
        people = await import_roster(clients, admin, roster, set_id)
        assignments = demo_assignments(roster, list(objective_ids))
        recorded = await _evidence(
            clients, admin, assignments, scale_id, objective_ids, people
        )
        await _corrections(clients, admin, assignments, recorded, people)
        section = roster.sections[2]
        shared = section.student_ids[0]
        student = people[shared]
        path = await _share_link(clients, admin, student, section.sourced_id)
        await _wait_for_report(
            clients, admin, student, evidence=_evidence_of(shared, assignments)
        )
    finally:
        await clients.close()

    logger.info(
        "demo.loaded",
        tenant=TENANT,
        sections=len(roster.sections),
        students=len(roster.students),
        assessments=len(recorded),
    )
    teacher = section.teacher_id
    return DemoLinks(
        guardian_url=urls["reports"].rstrip("/") + path,
        teacher_token=mint(
            tenant_id=TENANT,
            roles=["teacher"],
            subject=teacher,
            schools=[section.school_id],
            sections=[s.sourced_id for s in roster.sections if s.teacher_id == teacher],
        ),
        teacher_section=section.sourced_id,
        leader_token=mint(
            tenant_id=TENANT,
            roles=["school_leader"],
            subject="demo-principal",
            schools=[section.school_id],
        ),
    )


async def import_objectives(
    clients: DemoClients, admin: str
) -> tuple[UUID, dict[str, UUID], UUID]:
    """Define the four-level scale and import the framework as a published
    set with a decaying-average policy; return the scale, the standards'
    ids by code, and the set."""
    scales = await clients.call("list scales", "objectives", "GET", "/scales", admin)
    named = [s for s in scales if s.get("name") == "Four levels"]
    if named:
        scale_id = UUID(named[0]["scale_id"])
    else:
        made = await clients.call(
            "define scale", "objectives", "POST", "/scales/starter/four-levels", admin
        )
        scale_id = UUID(made["scale_id"])
        await clients.call(
            "publish scale", "objectives", "POST", f"/scales/{scale_id}/publish", admin
        )

    framework = (
        resources.files("mastery_deploy") / "demo_data" / FRAMEWORK
    ).read_bytes()
    imported = await clients.call(
        "import framework",
        "objectives",
        "POST",
        "/imports",
        admin,
        files={"file": (FRAMEWORK, framework, "application/json")},
        data={"subject": "Mathematics"},
    )
    set_id = UUID(imported["objective_set_id"])
    await clients.call(
        "set policy",
        "objectives",
        "PUT",
        f"/objective-sets/{set_id}/policy",
        admin,
        json={
            "method": "decaying_average",
            "decay": 0.65,
            "minimum_evidence": MINIMUM_EVIDENCE,
        },
    )
    found = await clients.call(
        "read set", "objectives", "GET", f"/objective-sets/{set_id}", admin
    )
    if found["status"] != "published" or found["changed_since_published"]:
        await clients.call(
            "publish set",
            "objectives",
            "POST",
            f"/objective-sets/{set_id}/publish",
            admin,
        )
    by_code = {
        objective["code"]: UUID(objective_id)
        for objective_id, objective in found["objectives"].items()
    }

    return scale_id, {code: by_code[code] for code in STANDARD_CODES}, set_id


async def wait_for_catalogue(clients: DemoClients, admin: str, scale_id: UUID) -> None:
    """Wait until grading has heard of the scale over NATS."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SNAPSHOT_DEADLINE
    while True:
        response = await clients.clients["grading"].get(
            f"/scales/{scale_id}/versions/1",
            headers={"Authorization": f"Bearer {admin}"},
        )
        if response.is_success:
            return
        if loop.time() > deadline:
            raise DemoLoadError.refused("wait for grading's catalogue", response)
        await asyncio.sleep(0.25)


async def import_roster(
    clients: DemoClients, admin: str, roster: DemoRoster, set_id: UUID
) -> dict[str, str]:
    """Import the roster, link every section to the set, and return each
    student's grading id by sourcedId."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, data in roster_bundle(roster).items():
            bundle.writestr(name, data)
    await clients.call(
        "import roster",
        "grading",
        "POST",
        "/rosters/imports",
        admin,
        files={
            "file": ("lakeside-oneroster.zip", archive.getvalue(), "application/zip")
        },
    )

    people: dict[str, str] = {}
    for section in roster.sections:
        await clients.call(
            "link objective set",
            "grading",
            "PUT",
            f"/sections/{section.sourced_id}/objective-sets/{set_id}",
            admin,
        )
        listed = await clients.call(
            "list students",
            "grading",
            "GET",
            f"/sections/{section.sourced_id}/students",
            admin,
        )
        by_name = {(s["given_name"], s["family_name"]): s["person_id"] for s in listed}
        for student_id in section.student_ids:
            person = roster.person(student_id)
            people[student_id] = by_name[(person.given_name, person.family_name)]

    return people


RecordedKey = tuple[str, str, str, str]


async def _evidence(
    clients: DemoClients,
    admin: str,
    assignments: Sequence[DemoAssignment],
    scale_id: UUID,
    objective_ids: Mapping[str, UUID],
    people: Mapping[str, str],
) -> dict[RecordedKey, str]:
    """Record each assignment as one batch; return every assessment's id
    by (assignment, section, student, objective code)."""
    recorded: dict[RecordedKey, str] = {}
    for assignment in assignments:
        rows = [
            {
                "student_id": people[score.student_id],
                "objective_id": str(objective_ids[score.objective_code]),
                "level": float(score.level_index + 1),
            }
            for score in assignment.scores
        ]
        answer = await clients.call(
            "record assignment",
            "grading",
            "POST",
            "/assessments/batch",
            admin,
            headers={
                "Idempotency-Key": "demo-"
                + f"{assignment.section_id}-{assignment.title}".replace(" ", "-")
            },
            json={
                "section_id": assignment.section_id,
                "scale_id": str(scale_id),
                "scale_version": 1,
                "assessed_at": assignment.assessed_at.isoformat(),
                "evidence": {"title": assignment.title, "kind": assignment.kind},
                "rows": rows,
            },
        )
        for row in answer["rows"]:
            score = assignment.scores[row["row"]]
            key = (
                assignment.title,
                assignment.section_id,
                score.student_id,
                score.objective_code,
            )
            recorded[key] = row["assessment_id"]

    return recorded


async def _corrections(
    clients: DemoClients,
    admin: str,
    assignments: Sequence[DemoAssignment],
    recorded: Mapping[RecordedKey, str],
    people: Mapping[str, str],
) -> None:
    """Amend and void a few assessments, as teachers do."""
    for number, correction in enumerate(demo_corrections(assignments)):
        assessment_id = recorded[
            (
                correction.assignment_title,
                correction.section_id,
                correction.student_id,
                correction.objective_code,
            )
        ]
        key = {"Idempotency-Key": f"demo-correction-{number}"}
        if correction.new_level_index is None:
            await clients.call(
                "void assessment",
                "grading",
                "POST",
                f"/assessments/{assessment_id}/void",
                admin,
                headers=key,
                json={"reason": correction.reason},
            )
        else:
            await clients.call(
                "amend assessment",
                "grading",
                "POST",
                f"/assessments/{assessment_id}/amendments",
                admin,
                headers=key,
                json={
                    "level": float(correction.new_level_index + 1),
                    "reason": correction.reason,
                },
            )


def _evidence_of(student_id: str, assignments: Sequence[DemoAssignment]) -> int:
    """Return how many pieces of evidence of ``student_id`` still count
    once the demo's corrections are made."""
    scores = sum(
        1 for a in assignments for score in a.scores if score.student_id == student_id
    )
    voided = sum(
        1
        for c in demo_corrections(assignments)
        if c.student_id == student_id and c.new_level_index is None
    )
    return scores - voided


async def _wait_for_report(
    clients: DemoClients, admin: str, student_id: str, *, evidence: int
) -> None:
    """Wait until the student's report shows all their evidence, and a level
    on every objective with enough of it, so the link printed shows the
    whole term."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SNAPSHOT_DEADLINE
    while True:
        found = await clients.call(
            "read report", "reports", "GET", f"/students/{student_id}/report", admin
        )
        objectives = [
            objective
            for section in found["report"]["sections"]
            for objective_set in section["objective_sets"]
            for objective in objective_set["objectives"]
        ]
        shown = sum(len(o["evidence"]) for o in objectives)
        levelled = all(
            o["level"] is not None
            for o in objectives
            if len(o["evidence"]) >= MINIMUM_EVIDENCE
        )
        if shown == evidence and levelled:
            return
        if loop.time() > deadline:
            detail = f"the report shows {shown} of {evidence} pieces of evidence"
            raise DemoLoadError("wait for the report", 504, detail)
        await asyncio.sleep(0.5)


async def _share_link(
    clients: DemoClients, admin: str, student_id: str, section_id: str
) -> str:
    """Share one student's report once reports has a snapshot of them;
    return the link's path."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SNAPSHOT_DEADLINE
    while True:
        try:
            made = await clients.call(
                "share report",
                "reports",
                "POST",
                f"/students/{student_id}/share-links",
                admin,
                json={"section_ids": [section_id]},
            )
        except DemoLoadError as refused:
            if refused.status != 404 or loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)
            continue
        return str(made["path"])
