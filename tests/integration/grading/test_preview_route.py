"""``POST /mastery/preview`` on a running grading service: a method's
result on bare scores for any signed-in user, and a named problem for a
bad request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from mastery_grading.app import create_app
from tests.tokens import TestKeys, bearer

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
async def client(
    tmp_path: Path, database_url: str, nats_url: str, subject_prefix: str
) -> AsyncIterator[tuple[AsyncTestClient[Litestar], TestKeys]]:
    """A running grading service that trusts this test's keys."""
    keys = TestKeys(tmp_path)
    settings = keys.settings(
        database_url=database_url, nats_url=nats_url, subject_prefix=subject_prefix
    )
    async with AsyncTestClient(app=create_app(settings)) as running:
        yield running, keys


async def post_preview(
    client: tuple[AsyncTestClient[Litestar], TestKeys],
    body: dict[str, Any],
    *,
    role: str = "teacher",
) -> tuple[int, dict[str, Any], str]:
    """Post ``body`` as a signed-in user of ``role``; return the status,
    the JSON answer and its content type."""
    running, keys = client
    token = keys.token("lakeside", [role])  # type: ignore[list-item]
    response = await running.post("/mastery/preview", json=body, headers=bearer(token))
    return response.status_code, response.json(), response.headers["content-type"]


async def test_a_teacher_previews_a_decaying_average(
    client: tuple[AsyncTestClient[Litestar], TestKeys],
) -> None:
    """1-5 at 0.65 on the five-level scale answers 4.47, Proficient,
    mastered, with the method, weight and scale in the explanation."""
    status, answer, _ = await post_preview(
        client,
        {
            "method": "decaying_average",
            "parameters": {"weight": 0.65},
            "scores": [1, 2, 3, 4, 5],
            "scale": "five-level",
        },
    )

    assert status == 200
    assert answer["status"] == "scored"
    assert answer["score"] == 4.47
    assert answer["level"]["label"] == "Proficient"
    assert answer["mastered"] is True
    assert answer["explanation"]["parameters"]["weight"] == 0.65
    assert answer["explanation"]["scale"]["name"] == "five-level"
    assert answer["explanation"]["scores"] == [1.0, 2.0, 3.0, 4.0, 5.0]


async def test_a_preview_on_levels_of_the_callers_own(
    client: tuple[AsyncTestClient[Litestar], TestKeys],
) -> None:
    """Levels 0, 50 and 100 cut halfway, with mastery at 75: a mode tie
    of 50 and 100 broken by recency gives 50, not yet mastered."""
    status, answer, _ = await post_preview(
        client,
        {
            "method": "mode",
            "parameters": {"tie": "recent"},
            "scores": [100, 50, 100, 50],
            "levels": [
                {"value": 0, "label": "Not yet"},
                {"value": 50, "label": "Halfway"},
                {"value": 100, "label": "There"},
            ],
            "threshold": 75,
        },
        role="auditor",
    )

    assert status == 200
    assert answer["score"] == 50.0
    assert answer["level"] == {"value": 50.0, "label": "Halfway", "cut": 25.0}
    assert answer["mastered"] is False
    assert answer["explanation"]["scale"]["mastery_threshold"] == 75.0


async def test_a_preview_cuts_its_levels_by_the_cut_points_given(
    client: tuple[AsyncTestClient[Litestar], TestKeys],
) -> None:
    """Cut points 1.75, 2.6, 3.25 on 1-4: a mean of 2.5 stays Developing,
    where the nearest-level rule would have made it Proficient."""
    levels = [
        {"value": value, "label": label}
        for value, label in [(1, "B"), (2, "D"), (3, "P"), (4, "E")]
    ]
    body = {"method": "mean", "scores": [2, 3], "levels": levels}

    _, by_cuts, _ = await post_preview(
        client, {**body, "cut_points": [1.75, 2.6, 3.25]}
    )
    _, nearest, _ = await post_preview(client, body)

    assert by_cuts["score"] == 2.5
    assert by_cuts["level"]["label"] == "D"
    assert nearest["level"]["label"] == "P"


async def test_n_times_not_reached_answers_no_score_yet(
    client: tuple[AsyncTestClient[Litestar], TestKeys],
) -> None:
    """One 4 when n_times needs two: 200 with no score and the reason."""
    status, answer, _ = await post_preview(
        client, {"method": "n_times", "parameters": {"n": 2}, "scores": [4, 1]}
    )

    assert status == 200
    assert answer["status"] == "not_enough_evidence"
    assert answer["score"] is None
    assert answer["note"].startswith("not enough evidence yet: 1 of the 2")


async def test_a_preview_without_a_token_is_refused(
    client: tuple[AsyncTestClient[Litestar], TestKeys],
) -> None:
    """No bearer token, no preview: 401 as a problem."""
    running, _ = client

    response = await running.post(
        "/mastery/preview", json={"method": "mean", "scores": [3]}
    )

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "method": "decaying_average",
                "parameters": {"weight": 0.3},
                "scores": [2],
            },
            "parameters.weight",
        ),
        (
            {
                "method": "weighted_average",
                "parameters": {"weight": 1.5},
                "scores": [2],
            },
            "parameters.weight",
        ),
        ({"method": "n_times", "parameters": {"n": 11}, "scores": [2]}, "parameters.n"),
        ({"method": "n_times", "parameters": {"n": 0}, "scores": [2]}, "parameters.n"),
        ({"method": "mean", "scores": []}, "scores"),
        ({"method": "mean", "scores": [9]}, "scores"),
        ({"method": "mean", "scores": [2], "threshold": 7}, "threshold"),
        ({"method": "mean", "scores": [2], "scale": "ten-level"}, "scale"),
        ({"method": "mean", "scores": [2], "cut_points": [2.5]}, "cut_points"),
        ({"method": "mean", "scores": [2], "rounding": "nearest"}, "cut_points"),
        (
            {"method": "mean", "scores": [2], "levels": [{"value": 2, "label": "Two"}]},
            "levels",
        ),
    ],
)
async def test_an_invalid_parameter_is_a_problem_naming_its_field(
    client: tuple[AsyncTestClient[Litestar], TestKeys],
    body: dict[str, Any],
    field: str,
) -> None:
    """Out-of-range parameters, no scores or scores off the scale answer
    400 with a problem-details body whose ``field`` names the culprit."""
    status, answer, content_type = await post_preview(client, body)

    assert status == 400
    assert content_type == PROBLEM_JSON
    assert answer["field"] == field
    assert answer["detail"].startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ({"method": "average", "scores": [2]}, "method", "'average'"),
        (
            {"method": "mean", "scores": [2], "student_id": "s-1"},
            "data",
            "unknown field `student_id`",
        ),
        (
            {"method": "mean", "scores": [2], "parameters": {"decay": 0.5}},
            "parameters",
            "unknown field `decay`",
        ),
        ({"method": "mean", "scores": "3"}, "scores", "Expected `array`"),
        (
            {
                "method": "power_law",
                "scores": [2],
                "levels": [{"value": -1e300, "label": "Abyss"}],
            },
            "levels[0].value",
            "Expected `float` >= -1000000",
        ),
    ],
)
async def test_an_unknown_method_or_field_is_a_problem_naming_it(
    client: tuple[AsyncTestClient[Litestar], TestKeys],
    body: dict[str, Any],
    key: str,
    message: str,
) -> None:
    """A method that does not exist, a field the body does not have or a
    value of the wrong type answers 400 with a problem that names it."""
    status, answer, content_type = await post_preview(client, body)

    assert status == 400
    assert content_type == PROBLEM_JSON
    [problem] = answer["extra"]
    assert problem["key"] == key
    assert message in problem["message"]


async def test_the_openapi_document_describes_the_preview(
    client: tuple[AsyncTestClient[Litestar], TestKeys],
) -> None:
    """The preview is listed as a POST whose body schema has the method,
    the scores and the parameters."""
    running, _ = client

    schema = (await running.get("/schema/openapi.json")).json()

    operation = schema["paths"]["/mastery/preview"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    reference = body["$ref"].rsplit("/", 1)[-1]
    properties = schema["components"]["schemas"][reference]["properties"]
    assert {"method", "scores", "parameters", "levels", "threshold"} <= set(properties)
    assert "200" in operation["responses"]
