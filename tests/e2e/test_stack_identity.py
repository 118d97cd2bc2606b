"""A local stack's identity as an operator meets it: services logged in as
the application role, and `mastery token` minting tokens they trust."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

import httpx

from mastery_deploy.credentials import TOKEN_SECRET_FILE
from tests.e2e.test_stack import (
    MASTERY,
    STOP_DEADLINE,
    RunningStack,
    ready_status,
    stack,  # noqa: F401 - the fixture, shared with the stack's own tests
)

OPEN_PATHS = {"/healthz", "/readyz"}


def protected_operation(openapi: dict[str, Any]) -> tuple[str, str] | None:
    """Return the first operation outside the probes whose path needs no
    parameter, as (method, path), or ``None`` when there is none."""
    for path, operations in openapi["paths"].items():
        if path in OPEN_PATHS or "{" in path:
            continue
        for method in operations:
            if method in {"get", "post", "put", "patch", "delete"}:
                return method.upper(), path

    return None


def test_a_local_stack_trusts_the_tokens_mastery_token_mints(
    stack: RunningStack,  # noqa: F811
) -> None:
    """The services log in as mastery_app, and each protected route they
    serve refuses a request without a token and lets a minted one through
    the authentication (whatever the route then says of the empty body)."""
    status = ready_status(stack)
    minted = subprocess.run(
        [str(MASTERY), "token", "--tenant", "lakeside", "--role", "district_admin"],
        env=stack.environment,
        capture_output=True,
        text=True,
        check=True,
    )
    token = minted.stdout.strip()

    assert status.database_url.startswith("postgresql://mastery_app:")
    assert (stack.data_dir / TOKEN_SECRET_FILE).stat().st_mode & 0o077 == 0
    assert token.count(".") == 2
    assert token not in stack.logs()
    walked = 0
    for service in status.services:
        openapi = httpx.get(service.openapi_url).json()
        found = protected_operation(openapi)
        if found is None:
            continue
        method, path = found
        url = f"{service.url}{path}"
        anonymous = httpx.request(method, url, json={})
        signed_in = httpx.request(
            method, url, json={}, headers={"Authorization": f"Bearer {token}"}
        )
        assert anonymous.status_code == 401, (service.name, path)
        assert signed_in.status_code not in {401, 403}, (
            service.name,
            path,
            signed_in.text,
        )
        walked += 1
    assert walked >= 1

    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=STOP_DEADLINE) == 0
