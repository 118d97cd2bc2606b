"""Bearer tokens at the HTTP edge of a real service: which are trusted,
which are refused with 401, and what guards make of the identity."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from hashlib import sha256
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import structlog
import structlog.testing
import uvicorn
from cryptography.hazmat.primitives import serialization
from litestar import Litestar, MediaType, get, post
from litestar.params import FromPath, JSONBody
from litestar.testing import AsyncTestClient

from mastery_deploy.engines import free_port
from mastery_events.access import Caller, Owner, authorize, writes
from mastery_events.api_security import (
    BODY_LIMIT,
    BULK,
    BULK_BODY_LIMIT,
    PUBLIC,
    SECURITY_HEADERS,
)
from mastery_events.identity import UnknownKeyError, VerificationKeys
from mastery_events.runtime import Service, ServiceRuntime
from mastery_events.service_app import service_app
from mastery_events.settings import Settings
from tests.tokens import AUDIENCE, ISSUER, RSA_KEY_ID, TestKeys, bearer, claims
from tests.waiting import eventually

PROBLEM_JSON = "application/problem+json"


@get("/whoami", sync_to_thread=False)
def whoami(identity: Caller) -> dict[str, Any]:
    """Echo who the caller is, as the guards see it."""
    return {
        "tenant": identity.tenant_id,
        "roles": sorted(identity.roles),
        "sections": sorted(identity.sections),
    }


@get("/notices", opt={PUBLIC: True}, sync_to_thread=False)
def notices() -> dict[str, str]:
    """Answer anybody, as a share-link view will."""
    return {"notice": "school is closed for snow"}


@post("/sections/{section_id:str}/notes", guards=[writes("grading")])
async def add_note(identity: Caller, section_id: FromPath[str]) -> dict[str, str]:
    """Accept a note for a section of tenant ``lakeside`` from whoever may
    write there."""
    authorize(
        identity,
        Owner(tenant_id="lakeside", section_id=section_id),
        action="write",
        area="grading",
    )
    return {"section": section_id}


@post("/comments", sync_to_thread=False)
def comment(data: JSONBody[dict[str, str]]) -> dict[str, int]:
    """Accept a comment, to measure what body sizes pass."""
    return {"length": len(data.get("text", ""))}


@post(
    "/imports",
    opt={BULK: True},
    request_max_body_size=BULK_BODY_LIMIT,
    sync_to_thread=False,
)
def bulk_import(data: JSONBody[dict[str, str]]) -> dict[str, int]:
    """Accept a large import, as a roster upload will."""
    return {"length": len(data.get("text", ""))}


@get("/share/page", opt={PUBLIC: True}, media_type=MediaType.HTML)
async def share_page() -> str:
    """Answer an HTML page to anybody, as a share-link view will."""
    return "<html><body><p>Reading: proficient</p></body></html>"


@pytest.fixture
def keys(tmp_path: Path) -> TestKeys:
    """Fresh keys and a JWKS file for this test."""
    return TestKeys(tmp_path)


@pytest.fixture
async def client(
    keys: TestKeys,
    database_url: str,
    nats_url: str,
    subject_prefix: str,
    pool: asyncpg.Pool,
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A running service of this test's own that trusts ``keys``."""
    service = Service(name=f"identity_{secrets.token_hex(4)}")
    settings = keys.settings(
        database_url=database_url, nats_url=nats_url, subject_prefix=subject_prefix
    )
    app = service_app(
        ServiceRuntime(service, settings),
        distribution="mastery-events",
        route_handlers=[whoami, notices, add_note, comment, bulk_import, share_page],
    )
    async with AsyncTestClient(app) as started:
        yield started
    async with pool.acquire() as connection:
        await connection.execute(f'DROP SCHEMA "{service.schema}" CASCADE')


def tampered(token: str) -> str:
    """Return ``token`` with its payload rewritten and the signature kept."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    decoded["roles"] = ["district_admin"]
    forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=")
    return f"{header}.{forged.decode()}.{signature}"


def part(value: dict[str, Any]) -> str:
    """Return ``value`` as one base64url segment of a token."""
    encoded = base64.urlsafe_b64encode(json.dumps(value).encode())
    return encoded.rstrip(b"=").decode()


def unsigned(payload: dict[str, Any]) -> str:
    """Return a token that claims ``alg: none`` and has no signature."""
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


async def test_a_valid_token_of_each_key_type_is_trusted(
    client: AsyncTestClient[Litestar], keys: TestKeys
) -> None:
    """HS256 with the local secret, RS256 and ES256 from the JWKS all pass
    and carry the tenant, roles and sections into the identity."""
    for algorithm in ("HS256", "RS256", "ES256"):
        token = keys.signed(claims("lakeside"), algorithm=algorithm)
        response = await client.get("/whoami", headers=bearer(token))

        assert response.status_code == 200, (algorithm, response.text)
        assert response.json() == {
            "tenant": "lakeside",
            "roles": ["teacher"],
            "sections": ["room-12"],
        }


def refused_tokens(keys: TestKeys) -> dict[str, str]:
    """Return one token per way a token can be wrong."""
    without_tenant = claims()
    del without_tenant["tenant"]
    without_exp = claims()
    del without_exp["exp"]
    bad_roles = claims(roles=["headmaster"])
    return {
        "expired": keys.signed(claims(lifetime=timedelta(minutes=-5))),
        "wrong audience": keys.signed(claims(audience="payroll")),
        "wrong issuer": keys.signed(claims(issuer="https://id.evil.example")),
        "alg none": unsigned(claims()),
        "tampered signature": tampered(keys.signed(claims())),
        "missing tenant": keys.signed(without_tenant),
        "missing exp": keys.signed(without_exp),
        "unknown role": keys.signed(bad_roles),
        "unknown key id": keys.signed(claims(), kid="retired-2019"),
        # The RSA public key used as an HMAC secret: the classic confusion.
        "public key as hmac secret": confused(keys),
        "garbage": "not-a-token",
    }


def confused(keys: TestKeys) -> str:
    """Return a token HMAC-signed with the RSA public key's PEM text."""
    pem = keys.rsa.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )

    signing_input = (
        f"{part({'alg': 'HS256', 'kid': 'lakeside-rsa-2026'})}.{part(claims())}"
    )
    digest = hmac.new(pem, signing_input.encode(), sha256).digest()
    signature = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return f"{signing_input}.{signature}"


async def test_every_bad_token_is_refused_with_a_bearer_challenge(
    client: AsyncTestClient[Litestar], keys: TestKeys
) -> None:
    """Expired, wrong audience or issuer, alg none, tampered, missing tenant
    or exp, an unknown role or key, key confusion: each one is 401 with a
    problem body and a Bearer challenge, and names none of its claims."""
    for reason, token in refused_tokens(keys).items():
        response = await client.get("/whoami", headers=bearer(token))

        assert response.status_code == 401, (reason, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON, reason
        assert response.headers["www-authenticate"].startswith("Bearer"), reason
        assert "lakeside" not in response.text, reason


async def test_a_request_without_a_token_is_refused_but_probes_are_open(
    client: AsyncTestClient[Litestar],
) -> None:
    """No Authorization header is 401 on a protected route, while the probes,
    the OpenAPI document and a route marked public answer anybody."""
    refused = await client.get("/whoami")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")

    for path in ("/healthz", "/schema/openapi.json", "/notices"):
        answer = await client.get(path)
        assert answer.status_code == 200, path


async def test_an_auditor_reads_but_may_not_write(
    client: AsyncTestClient[Litestar], keys: TestKeys
) -> None:
    """The write guard refuses an auditor with 403 before the handler runs."""
    token = keys.token("lakeside", ["auditor"])

    read = await client.get("/whoami", headers=bearer(token))
    write = await client.post("/sections/room-12/notes", headers=bearer(token))

    assert read.status_code == 200
    assert write.status_code == 403
    assert write.headers["content-type"] == PROBLEM_JSON


async def test_a_record_out_of_reach_looks_exactly_like_a_missing_one(
    client: AsyncTestClient[Litestar], keys: TestKeys
) -> None:
    """A teacher of room 12 writes there; room 14's record and any record of
    another tenant answer 404, never 403, so their existence stays hidden."""
    own = keys.token("lakeside", ["teacher"], sections=["room-12"])
    other_tenant = keys.token("riverside", ["district_admin"])

    mine = await client.post("/sections/room-12/notes", headers=bearer(own))
    neighbours = await client.post("/sections/room-14/notes", headers=bearer(own))
    foreign = await client.post("/sections/room-12/notes", headers=bearer(other_tenant))

    assert mine.status_code == 201
    assert neighbours.status_code == 404
    assert foreign.status_code == 404
    assert "room-12" not in foreign.text


async def test_a_body_over_the_limit_is_refused_unless_the_route_is_bulk(
    client: AsyncTestClient[Litestar], keys: TestKeys
) -> None:
    """Two megabytes are too much for an ordinary route (413) and fine for
    a bulk import; a small body passes everywhere."""
    headers = bearer(keys.token("lakeside", ["district_admin"]))
    large = {"text": "a" * (2 * BODY_LIMIT)}

    small_answer = await client.post("/comments", json={"text": "hi"}, headers=headers)
    large_answer = await client.post("/comments", json=large, headers=headers)
    bulk_answer = await client.post("/imports", json=large, headers=headers)

    assert small_answer.status_code == 201
    assert large_answer.status_code == 413
    assert bulk_answer.status_code == 201
    assert bulk_answer.json() == {"length": 2 * BODY_LIMIT}


async def test_public_routes_are_rate_limited_and_others_are_not(
    client: AsyncTestClient[Litestar], keys: TestKeys
) -> None:
    """A client gets the default limit of public answers a minute, then
    429, while an authenticated route keeps answering."""
    limit = Settings().rate_limit
    headers = bearer(keys.token("lakeside", ["teacher"]))
    answers = [(await client.get("/notices")).status_code for _ in range(limit)]
    over = await client.get("/notices")
    authenticated = [
        (await client.get("/whoami", headers=headers)).status_code
        for _ in range(limit + 1)
    ]

    assert set(answers) == {200}
    assert over.status_code == 429
    assert set(authenticated) == {200}


async def test_every_answer_carries_the_security_headers(
    client: AsyncTestClient[Litestar],
) -> None:
    """An HTML page, a JSON answer and a 401 problem all carry the headers
    that stop sniffing, framing and referrer leaks."""
    for path in ("/share/page", "/healthz", "/whoami"):
        response = await client.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (path, name)


async def test_tokens_and_secrets_never_reach_the_logs(
    client: AsyncTestClient[Litestar],
    keys: TestKeys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Requests with good and bad tokens are logged by method, path and
    status only: neither token, nor the secret, nor a claim value appears
    in structlog's entries or the standard library's records."""
    good = keys.token("lakeside", ["teacher"], subject="ms-frizzle-7f3a")
    bad = tampered(good)

    with structlog.testing.capture_logs() as entries:
        await client.get("/whoami", headers=bearer(good))
        await client.get("/whoami", headers=bearer(bad))
        await client.post("/comments", json={"text": "x"}, headers=bearer(bad))
    logs = repr(entries) + caplog.text

    assert "http.response" in logs
    for forbidden in (good, bad, good.split(".")[2], keys.secret, "ms-frizzle-7f3a"):
        assert forbidden not in logs


@pytest.fixture
def jwks_url(keys: TestKeys) -> Iterator[str]:
    """Serve the test keys' JWKS over HTTP on loopback, as a provider does."""
    folder = str(keys.jwks.parent)

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=folder, **kwargs)

        def log_message(self, *_: Any) -> None:
            """Keep the test's output clean."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{keys.jwks.name}"
    server.shutdown()
    server.server_close()


def test_keys_fetched_from_a_jwks_url_verify_tokens(
    keys: TestKeys, jwks_url: str
) -> None:
    """An RS256 token verifies against keys fetched from the provider."""
    verifier = VerificationKeys(issuer=ISSUER, audience=AUDIENCE, jwks=jwks_url)

    verifier.load()
    found = verifier.verify(keys.signed(claims("lakeside")))

    assert found["tenant"] == "lakeside"


async def test_an_unreachable_jwks_url_refuses_tokens_without_failing(
    keys: TestKeys,
) -> None:
    """With the provider away, the refetch a new key asks for fails quietly
    and the token is refused as unknown, not a crash."""
    verifier = VerificationKeys(
        issuer=ISSUER, audience=AUDIENCE, jwks="http://127.0.0.1:9/jwks.json"
    )
    token = keys.signed(claims("lakeside"))

    await verifier.refresh_for(token)

    with pytest.raises(UnknownKeyError):
        verifier.verify(token)


class GatedProvider:
    """An identity provider whose JWKS answers only once the test opens
    the gate, so a test can see what a service does while it waits."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.asked = threading.Event()
        self.gate = threading.Event()
        provider = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                """Answer the JWKS, after the gate opens when it is shut."""
                provider.asked.set()
                provider.gate.wait(timeout=30)
                body = json.dumps(provider.document).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                """Keep the test's output clean."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop answering."""
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


async def test_a_rotated_key_is_fetched_while_other_requests_go_on(
    keys: TestKeys,
    database_url: str,
    nats_url: str,
    subject_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The provider rotates to a new key id. A token signed under it makes
    the service, served over a real socket, fetch the keys again; while
    the provider is slow to answer, another request is answered; once it
    answers, the token is accepted."""
    published = json.loads(keys.jwks.read_text())
    provider = GatedProvider(published)
    provider.gate.set()
    monkeypatch.setattr("mastery_events.identity.JWKS_REFRESH_INTERVAL", 0.0)
    settings = keys.settings(
        database_url=database_url, nats_url=nats_url, subject_prefix=subject_prefix
    )
    app = service_app(
        ServiceRuntime(
            Service(name=f"identity_{secrets.token_hex(4)}"),
            msgspec.structs.replace(settings, jwt_jwks=provider.url),
        ),
        distribution="mastery-events",
        route_handlers=[whoami, notices],
    )
    rotated = [key | {"kid": f"{key['kid']}-next"} for key in published["keys"]]
    token = keys.signed(claims("lakeside"), kid=f"{RSA_KEY_ID}-next")

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None)
    )
    serving = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def ready() -> bool:
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, within=30.0, what="the served app")
            provider.document = {"keys": rotated}
            provider.gate.clear()
            provider.asked.clear()
            pending = asyncio.create_task(client.get("/whoami", headers=bearer(token)))
            await asyncio.to_thread(provider.asked.wait, 10)
            meanwhile = await asyncio.wait_for(client.get("/notices"), timeout=10)
            provider.gate.set()
            accepted = await pending
    finally:
        provider.close()
        server.should_exit = True
        await serving

    assert meanwhile.status_code == 200
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["tenant"] == "lakeside"
