"""A corpus of bad inputs through the running service: each is refused with
a 4xx problem naming the place at fault, and nothing is stored."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog
import structlog.testing
from litestar import Litestar
from litestar.testing import AsyncTestClient

from mastery_objectives.app import create_app
from mastery_objectives.import_plan import MAX_IMPORT_BYTES
from tests.integration.objectives.conftest import FIXTURES
from tests.tokens import TestKeys, bearer

PROBLEM_JSON = "application/problem+json"
GOOD_CSV = b"code,statement\n6.RP,Ratios\n"


def smart_level(change: Callable[[dict[str, Any]], None]) -> bytes:
    """Return the SmartLevel package with ``change`` made to it."""
    package: dict[str, Any] = json.loads(
        (FIXTURES / "smart-level.case.json").read_bytes()
    )
    change(package)

    return json.dumps(package, indent=2).encode()


def make_cycle(package: dict[str, Any]) -> None:
    """Make items 1 and 2 each other's parent."""
    first, second = (item["identifier"] for item in package["CFItems"][:2])
    package["CFAssociations"] = [
        {
            "identifier": f"loop-{origin}",
            "associationType": "isChildOf",
            "originNodeURI": {"identifier": origin},
            "destinationNodeURI": {"identifier": parent},
        }
        for origin, parent in ((first, second), (second, first))
    ]


def duplicate_codes(package: dict[str, Any]) -> None:
    """Give items 0 and 3 the same human code."""
    package["CFItems"][0]["humanCodingScheme"] = "M.F"
    package["CFItems"][3]["humanCodingScheme"] = "M.F"


def unknown_parent(package: dict[str, Any]) -> None:
    """Point association 2 at an item that does not exist."""
    package["CFAssociations"][2]["destinationNodeURI"] = {"identifier": "ghost"}


UPLOADS: dict[str, tuple[str, bytes, int, str]] = {
    "malformed JSON": (
        "broken.json",
        b'{\n  "CFDocument": {}\n  "CFItems": []\n}',
        422,
        "line 3, column 3",
    ),
    "an isChildOf cycle": (
        "loop.json",
        smart_level(make_cycle),
        422,
        "$.CFAssociations[0].destinationNodeURI",
    ),
    "duplicate human codes": (
        "twins.json",
        smart_level(duplicate_codes),
        422,
        "$.CFItems[3]",
    ),
    "an association to an unknown item": (
        "ghost.json",
        smart_level(unknown_parent),
        422,
        "$.CFAssociations[2].destinationNodeURI.identifier",
    ),
    "a CSV missing a required column": (
        "short.csv",
        b"code,label\n6.RP,Ratios\n",
        422,
        "line 1",
    ),
    "a byte-order mark": ("bom.csv", b"\xef\xbb\xbf" + GOOD_CSV, 422, "line 1"),
    "non-UTF-8 bytes": (
        "latin1.csv",
        b"code,statement\n6.RP,Caf\xe9 ratios\n",
        422,
        "line 2",
    ),
    "an empty file": ("empty.csv", b"", 422, "whole file"),
    "a file over the limit": (
        "huge.csv",
        GOOD_CSV + b"#" * MAX_IMPORT_BYTES,
        413,
        "whole file",
    ),
}


@pytest.fixture
def tenant() -> str:
    """A district of this test's own, in the shared objectives schema."""
    return f"district-{secrets.token_hex(4)}"


@pytest.fixture
async def admin(
    tmp_path: Path,
    database_url: str,
    nats_url: str,
    subject_prefix: str,
    tenant: str,
) -> AsyncIterator[tuple[AsyncTestClient[Litestar], dict[str, str]]]:
    """The objectives service, and the headers of the district's admin."""
    keys = TestKeys(tmp_path)
    settings = keys.settings(
        database_url=database_url, nats_url=nats_url, subject_prefix=subject_prefix
    )
    headers = bearer(keys.token(tenant, ["district_admin"], subject="admin-skinner"))
    async with AsyncTestClient(create_app(settings)) as client:
        yield client, headers


async def stored(pool: asyncpg.Pool, tenant: str) -> tuple[int, int, int]:
    """Count a tenant's events, sets and objectives."""
    row = await pool.fetchrow(
        """
        SELECT (SELECT count(*) FROM objectives.events WHERE tenant_id = $1),
               (SELECT count(*) FROM objectives.objective_sets
                WHERE tenant_id = $1),
               (SELECT count(*) FROM objectives.objectives WHERE tenant_id = $1)
        """,
        tenant,
    )
    assert row is not None

    return row[0], row[1], row[2]


def assert_problem(response: Any, status: int, location: str) -> dict[str, Any]:
    """Check a problem answer's status, media type and location."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem: dict[str, Any] = response.json()
    assert problem["location"] == location
    assert problem["status"] == status

    return problem


@pytest.mark.parametrize("case", list(UPLOADS))
async def test_a_bad_upload_is_refused_where_it_is_wrong_and_stores_nothing(
    admin: tuple[AsyncTestClient[Litestar], dict[str, str]],
    pool: asyncpg.Pool,
    tenant: str,
    case: str,
) -> None:
    """The problem names the file and the line or JSON path at fault."""
    client, headers = admin
    file_name, data, status, location = UPLOADS[case]

    response = await client.post(
        "/imports", headers=headers, files={"file": (file_name, data)}
    )

    problem = assert_problem(response, status, location)
    assert problem["file"] == file_name
    assert await stored(pool, tenant) == (0, 0, 0)


async def test_a_scale_whose_threshold_lies_outside_its_levels_is_refused(
    admin: tuple[AsyncTestClient[Litestar], dict[str, str]],
    pool: asyncpg.Pool,
    tenant: str,
) -> None:
    """A threshold of 5 on a 1-4 scale names ``mastery_threshold``."""
    client, headers = admin
    starter = (await client.get("/scales/starter", headers=headers)).json()
    scale = starter["four-levels"] | {"mastery_threshold": 5}

    response = await client.post("/scales", headers=headers, json=scale)

    assert_problem(response, 422, "mastery_threshold")
    assert await stored(pool, tenant) == (0, 0, 0)


async def test_a_policy_parameter_out_of_range_is_refused(
    admin: tuple[AsyncTestClient[Litestar], dict[str, str]],
    pool: asyncpg.Pool,
    tenant: str,
) -> None:
    """A decay of 0.3 lies below 0.5 and stores nothing on the set."""
    client, headers = admin
    created = await client.post(
        "/objective-sets",
        headers=headers,
        json={"title": "Grade 6 ratios", "subject": "mathematics"},
    )
    set_id = created.json()["objective_set_id"]
    before = await stored(pool, tenant)

    response = await client.put(
        f"/objective-sets/{set_id}/policy",
        headers=headers,
        json={"method": "decaying_average", "decay": 0.3},
    )

    assert_problem(response, 422, "decay")
    assert await stored(pool, tenant) == before


async def test_an_unknown_field_in_a_body_is_refused(
    admin: tuple[AsyncTestClient[Litestar], dict[str, str]],
    pool: asyncpg.Pool,
    tenant: str,
) -> None:
    """Incoming bodies forbid fields they do not know."""
    client, headers = admin

    response = await client.post(
        "/objective-sets",
        headers=headers,
        json={"title": "Art", "subject": "art", "colour": "teal"},
    )

    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert await stored(pool, tenant) == (0, 0, 0)


async def test_a_version_beyond_any_stored_one_is_not_found(
    admin: tuple[AsyncTestClient[Litestar], dict[str, str]],
) -> None:
    """A version past the store's 32-bit range is simply not there."""
    client, headers = admin
    created = await client.post(
        "/objective-sets",
        headers=headers,
        json={"title": "Grade 6 ratios", "subject": "mathematics"},
    )
    set_id = created.json()["objective_set_id"]

    response = await client.get(
        f"/objective-sets/{set_id}/versions/99999999999", headers=headers
    )

    assert response.status_code == 404
    assert response.json()["detail"] == "no such record"


async def test_a_title_holding_a_nul_character_is_refused(
    admin: tuple[AsyncTestClient[Litestar], dict[str, str]],
    pool: asyncpg.Pool,
    tenant: str,
) -> None:
    """Bodies are held to what PostgreSQL text can keep."""
    client, headers = admin

    response = await client.post(
        "/objective-sets",
        headers=headers,
        json={"title": "Ratios\u0000", "subject": "mathematics"},
    )

    assert response.status_code == 400
    assert await stored(pool, tenant) == (0, 0, 0)


async def test_a_file_sent_as_a_text_field_that_is_not_utf8_is_refused(
    admin: tuple[AsyncTestClient[Litestar], dict[str, str]],
    pool: asyncpg.Pool,
    tenant: str,
) -> None:
    """Binary bytes in a plain form field are the client's mistake: 400."""
    client, headers = admin
    raw = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="file"\r\n\r\n'
        b"GIF87a\xff\xfe\r\n--b0undary--\r\n"
    )
    unreadable = await client.post(
        "/imports",
        headers=headers | {"content-type": "multipart/form-data; boundary=b0undary"},
        content=raw,
    )

    assert unreadable.status_code == 400
    assert unreadable.json()["location"] == "multipart form"
    assert await stored(pool, tenant) == (0, 0, 0)


async def test_a_form_title_holding_a_nul_character_is_refused(
    admin: tuple[AsyncTestClient[Litestar], dict[str, str]],
    pool: asyncpg.Pool,
    tenant: str,
) -> None:
    """The import form's text fields are held to what the store can keep."""
    client, headers = admin

    response = await client.post(
        "/imports",
        headers=headers,
        data={"title": "Ratios\x00"},
        files={"file": ("ratios.csv", GOOD_CSV)},
    )

    assert_problem(response, 422, "form field 'title'")
    assert await stored(pool, tenant) == (0, 0, 0)


async def test_a_refusal_is_logged_without_a_stack_trace(
    admin: tuple[AsyncTestClient[Litestar], dict[str, str]],
) -> None:
    """A caller's mistake is not a server fault: its answer is logged, and
    no exception or traceback comes with it."""
    client, headers = admin
    starter = (await client.get("/scales/starter", headers=headers)).json()
    scale = starter["four-levels"] | {"mastery_threshold": 5}

    with structlog.testing.capture_logs() as entries:
        response = await client.post("/scales", headers=headers, json=scale)

    assert response.status_code == 422
    responses = [entry for entry in entries if entry["event"] == "http.response"]
    assert [entry["status_code"] for entry in responses] == [422]
    assert not [entry for entry in entries if {"exc_info", "exception"} & set(entry)]
