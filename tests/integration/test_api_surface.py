"""Every route each service describes in its OpenAPI document, walked as an
outsider and fuzzed as an insider, against real PostgreSQL and NATS.

Both tests read the routes from ``/schema/openapi.json``, so a route added
later is covered without editing this file.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from litestar import Litestar
from litestar.testing import TestClient
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from mastery_events.settings import Settings
from mastery_grading.app import create_app as create_grading
from mastery_objectives.app import create_app as create_objectives
from mastery_reports.app import create_app as create_reports
from tests.tokens import TestKeys, bearer

# Seconds a service may take to set up its streams before it is walked.
READY_WITHIN = 30.0

APPS: dict[str, Callable[[Settings], Litestar]] = {
    "objectives": create_objectives,
    "grading": create_grading,
    "reports": create_reports,
}
TENANT_A = "lakeside"
TENANT_B = "riverside"
REFUSED = {401, 403, 404}
WRITES = {"POST", "PUT", "PATCH"}
# Bodies drawn per creating route while seeding tenant A, and cases per
# route when fuzzing: enough to reach each route's paths, few enough to keep
# all three services well under a minute.
SEED_EXAMPLES = 3
# Distinct records of tenant A whose ids fill the paths of each route.
MOST_RECORDS = 8
FUZZ_EXAMPLES = 4


class Surface:
    """One running service, its OpenAPI document as schemathesis reads it,
    and tokens for the people who call it."""

    def __init__(self, client: TestClient[Litestar], keys: TestKeys) -> None:
        self.client = client
        self._public: dict[str, bool] = {}
        document = client.get("/schema/openapi.json").json()
        self.schema = schemathesis.openapi.from_dict(document)
        self.admin_a = keys.token(TENANT_A, ["district_admin"], subject="ada")
        self.admin_b = keys.token(TENANT_B, ["district_admin"], subject="mallory")

    def operations(self) -> list[Any]:
        """Return every operation the document describes."""
        found = []
        for result in self.schema.get_all_operations():
            # A route the document describes badly fails the test here.
            assert isinstance(result, Ok), result
            found.append(result.ok())
        return found

    def call(self, case: Case[Any], token: str | None) -> httpx.Response:
        """Send ``case`` to the service, as the holder of ``token``."""
        headers = dict(case.headers or {})
        headers.pop("Authorization", None)
        if token is not None:
            headers |= bearer(token)
        kwargs = case.as_transport_kwargs(base_url=str(self.client.base_url))
        kwargs["headers"] = headers
        # Generated cookies would only be ignored: the API reads none.
        kwargs.pop("cookies", None)
        if "data" in kwargs and isinstance(kwargs["data"], bytes | str):
            kwargs["content"] = kwargs.pop("data")
        if kwargs.get("files"):
            kwargs["files"] = [as_upload(part) for part in kwargs["files"]]
        request = self.client.build_request(**kwargs)
        # A multipart upload streams; schemathesis reads the request back.
        request.read()
        return self.client.send(request)

    def is_public(self, operation: Any) -> bool:
        """Tell whether ``operation`` answers a caller with no token."""
        if operation.label not in self._public:
            case = first_case(operation, path_parameters=None)
            answer = self.call(case, None).status_code
            self._public[operation.label] = answer != 401
        return self._public[operation.label]


def as_upload(part: tuple[str, Any]) -> tuple[str, Any]:
    """Return a multipart part httpx can send: schemathesis may give a
    field's value as a number, where httpx wants text or bytes."""
    name, spec = part
    if isinstance(spec, tuple) and not isinstance(spec[1], bytes | str):
        spec = (spec[0], str(spec[1]), *spec[2:])
    elif not isinstance(spec, tuple | bytes | str):
        spec = str(spec)
    return name, spec


def cases(
    operation: Any, count: int, *, path_parameters: dict[str, Any] | None
) -> list[Case[Any]]:
    """Draw up to ``count`` schema-valid cases of ``operation``."""
    found: list[Case[Any]] = []

    @hypothesis.settings(
        max_examples=count,
        database=None,
        # The same cases every run: a failure here is reproducible.
        derandomize=True,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=path_parameters)
    )
    def collect(case: Case[Any]) -> None:
        found.append(case)

    collect()
    return found


def first_case(operation: Any, *, path_parameters: dict[str, Any] | None) -> Case[Any]:
    """Draw one schema-valid case of ``operation``."""
    return cases(operation, 1, path_parameters=path_parameters)[0]


def path_names(operation: Any) -> list[str]:
    """Return the names of ``operation``'s path parameters."""
    return [
        parameter.name
        for parameter in operation.iter_parameters()
        if parameter.location == "path"
    ]


def flattened(value: Any) -> Iterator[dict[str, Any]]:
    """Yield every JSON object inside ``value``, nested ones included."""
    if isinstance(value, dict):
        yield value
        for inner in value.values():
            yield from flattened(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from flattened(inner)


def identifiers(records: list[dict[str, Any]]) -> set[str]:
    """Return every UUID-shaped string the records hold."""
    found = set()
    for record in records:
        for value in record.values():
            if isinstance(value, str):
                try:
                    found.add(str(uuid.UUID(value)))
                except ValueError:
                    continue
    return found


def fill(names: list[str], record: dict[str, Any]) -> dict[str, Any]:
    """Fill path parameters from a record of tenant A: by name, then its
    ``id``, then a random id nobody has."""
    filled: dict[str, Any] = {}
    for name in names:
        if name in record:
            filled[name] = record[name]
        elif name.endswith("_id") and "id" in record:
            filled[name] = record["id"]
        elif "version" in name:
            filled[name] = 1
        else:
            filled[name] = str(uuid.uuid4())
    return filled


def seed_tenant_a(surface: Surface) -> list[dict[str, Any]]:
    """Create what tenant A's routes without ids can create, then read what
    its list routes show; return every object tenant A's answers held."""
    records: list[dict[str, Any]] = []
    operations = [op for op in surface.operations() if not path_names(op)]
    for operation in sorted(operations, key=lambda op: op.method != "post"):
        count = SEED_EXAMPLES if operation.method.upper() in WRITES else 1
        for case in cases(operation, count, path_parameters=None):
            response = surface.call(case, surface.admin_a)
            if response.is_success and "json" in response.headers.get(
                "content-type", ""
            ):
                records.extend(flattened(response.json()))
    return distinct(records)[:MOST_RECORDS]


def distinct(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the records that hold ids, each set of ids once."""
    seen: set[frozenset[tuple[str, str]]] = set()
    kept = []
    for record in records:
        ids = frozenset(
            (key, value)
            for key, value in record.items()
            if isinstance(value, str) and (key == "id" or key.endswith("_id"))
        )
        if ids and ids not in seen:
            seen.add(ids)
            kept.append(record)
    return kept


@pytest.fixture(params=list(APPS))
def surface(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database_url: str,
    nats_url: str,
    subject_prefix: str,
) -> Iterator[Surface]:
    """One service, running on the session's engines, trusting test keys,
    and ready: its streams are set up, so `/readyz` answers 200 and a 503
    from it during the walk would be a fault."""
    keys = TestKeys(tmp_path)
    settings = keys.settings(
        database_url=database_url, nats_url=nats_url, subject_prefix=subject_prefix
    )
    with TestClient(APPS[request.param](settings)) as client:
        deadline = time.monotonic() + READY_WITHIN
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, f"{request.param} never got ready"
            time.sleep(0.05)
        yield Surface(client, keys)


def test_tenant_b_reaches_none_of_tenant_a_records_through_any_route(
    surface: Surface,
) -> None:
    """Seed tenant A through the API, then call every protected route with
    tenant B's district admin, path ids filled from A's records: each route
    with an id answers 401, 403 or 404, exactly as it answers for ids
    nobody has (so existence never leaks), and no answer of any route holds
    an id of A's beyond those the request itself sent. Public routes and
    probes are skipped: they show nobody's records."""
    records = seed_tenant_a(surface)
    secrets_of_a = identifiers(records)
    walked = 0

    for operation in surface.operations():
        if surface.is_public(operation):
            continue
        names = path_names(operation)
        unknown = first_case(operation, path_parameters=fill(names, {}))
        baseline = surface.call(unknown, surface.admin_b)
        for record in records if names else [{}]:
            filled = fill(names, record)
            case = first_case(operation, path_parameters=filled)
            response = surface.call(case, surface.admin_b)
            label = f"{operation.label} {filled}"
            sent = {str(value) for value in filled.values()}

            leaked = {value for value in secrets_of_a - sent if value in response.text}
            assert leaked == set(), label
            if names:
                assert response.status_code in REFUSED, (label, response.text)
                assert response.status_code == baseline.status_code, label
                assert masked(response.text, filled) == masked(
                    baseline.text, unknown.path_parameters or {}
                ), label
        walked += 1

    protected = [op for op in surface.operations() if not surface.is_public(op)]
    assert walked == len(protected)


def masked(text: str, filled: dict[str, Any]) -> str:
    """Return ``text`` with each path value replaced by its parameter's
    name, so answers for different ids can be compared."""
    for name, value in filled.items():
        text = text.replace(str(value), f"<{name}>")
    return text


def test_fuzzed_requests_never_fail_on_the_server_nor_break_the_schema(
    surface: Surface,
) -> None:
    """schemathesis draws requests for every route from the document and
    sends them as tenant A's district admin: no answer is a 5xx, and every
    documented answer matches its schema."""
    checked = 0
    for operation in surface.operations():
        for case in cases(operation, FUZZ_EXAMPLES, path_parameters=None):
            response = surface.call(case, surface.admin_a)
            case.validate_response(
                response,
                checks=[not_a_server_error, response_schema_conformance],
                headers=bearer(surface.admin_a),
            )
            checked += 1

    assert checked >= len(surface.operations())
