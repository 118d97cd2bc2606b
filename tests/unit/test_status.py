"""What the launcher shows people about a stack."""

from __future__ import annotations

from mastery_deploy.status import (
    ServiceEndpoint,
    StackStatus,
    describe,
    without_password,
)


def test_a_password_in_a_url_is_masked() -> None:
    """A database password never reaches the screen or the status file."""
    assert (
        without_password("postgresql://mastery:s3cret@db.example:5433/mastery")
        == "postgresql://mastery:***@db.example:5433/mastery"
    )


def test_a_url_without_a_password_is_left_alone() -> None:
    """The embedded engines' URLs carry no password and print as they are."""
    assert (
        without_password("postgresql://postgres@127.0.0.1:6001/postgres")
        == "postgresql://postgres@127.0.0.1:6001/postgres"
    )


def test_the_description_lists_each_service_with_its_openapi_and_engines() -> None:
    """A person sees every URL they need, one service after another."""
    status = StackStatus(
        pid=4711,
        data_dir="/srv/mastery",
        database_url="postgresql://postgres@127.0.0.1:6001/postgres",
        nats_url="nats://127.0.0.1:6002",
        services=[
            ServiceEndpoint(
                name="objectives",
                url="http://127.0.0.1:6003",
                openapi_url="http://127.0.0.1:6003/schema/openapi.json",
                pid=4712,
            ),
            ServiceEndpoint(
                name="grading",
                url="http://127.0.0.1:6004",
                openapi_url="http://127.0.0.1:6004/schema/openapi.json",
                pid=4713,
            ),
        ],
    )

    assert describe(status).splitlines() == [
        "mastery stack (pid 4711), data in /srv/mastery",
        "  objectives  http://127.0.0.1:6003",
        "              OpenAPI: http://127.0.0.1:6003/schema/openapi.json",
        "  grading     http://127.0.0.1:6004",
        "              OpenAPI: http://127.0.0.1:6004/schema/openapi.json",
        "  PostgreSQL: postgresql://postgres@127.0.0.1:6001/postgres",
        "  NATS:       nats://127.0.0.1:6002",
    ]
