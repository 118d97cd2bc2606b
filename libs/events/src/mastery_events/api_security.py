"""The HTTP edge's defences: bearer authentication, limits and headers.

``service_app`` wires all of it into every service, so a new route is
authenticated, size-limited and given safe headers without asking. A route
opts out of authentication only by saying so in its ``opt``::

    @get("/share/{token:str}", opt={PUBLIC: True})

a public route whose path carries a secret adds ``UNLOGGED: True`` so
the request log leaves it out, and a bulk import route takes a larger body
and a rate limit with::

    @post("/imports", opt={BULK: True}, request_max_body_size=BULK_BODY_LIMIT)

Public and bulk routes are rate limited per client address, counted
across every replica of the service (``mastery_events.rate_limits``); every
other route is authenticated, so its caller is known and accountable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from litestar import Litestar, Request
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import NotAuthorizedException
from litestar.middleware.authentication import AuthenticationResult
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token
from litestar.types import Message, Scope

from mastery_events.access import NotAllowedError, NotVisibleError
from mastery_events.identity import (
    BearerToken,
    Identity,
    InvalidClaimsError,
    VerificationKeys,
    bearer_token_class,
    identity_from_claims,
)
from mastery_events.rate_limits import RATE_LIMIT_STORE

PUBLIC = "public"
BULK = "bulk"
# A route whose path holds a secret (a share token) is left out of the
# request log, so the secret never reaches a log line.
UNLOGGED = "unlogged"
# Paths every deployment serves without a token: probes, the API's
# description and the metrics, none of which names a record or a tenant.
OPEN_PATHS = ["^/healthz$", "^/readyz$", "^/metrics$", "^/schema"]
BODY_LIMIT = 1024 * 1024
BULK_BODY_LIMIT = 20 * 1024 * 1024
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'; object-src 'none'"
    ),
}
# The API viewers under /schema load their scripts from a CDN.
VIEWER_PREFIX = "/schema"
CHALLENGE = 'Bearer realm="mastery"'

log = structlog.get_logger(__name__)


class RotatedKeysMiddleware(JWTAuthenticationMiddleware):
    """Litestar's bearer-token check, which first fetches the identity
    provider's keys again, off the event loop, when a token names a key
    not held yet: a rotation then costs the first such request a fetch,
    and no other request waits on it."""

    async def authenticate_token(
        self, encoded_token: str, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        """Refresh the keys when the token asks for it, then check it."""
        if issubclass(self.token_cls, BearerToken):
            await self.token_cls.keys.refresh_for(encoded_token)

        return await super().authenticate_token(encoded_token, connection)


def bearer_auth(keys: VerificationKeys) -> JWTAuth[Identity, Token]:
    """Return Litestar's JWT authentication, checking tokens with ``keys``
    and turning their claims into an ``Identity``."""

    async def identity_of_token(
        token: Token, _: ASGIConnection[Any, Any, Any, Any]
    ) -> Identity | None:
        try:
            return identity_from_claims(token.sub, token.extras)
        except InvalidClaimsError as error:
            log.info("auth.claims_refused", claim=error.claim)
            return None

    return JWTAuth[Identity, Token](
        retrieve_user_handler=identity_of_token,
        # Never used: the bound token class verifies with ``keys``, which
        # choose the algorithm per key. Litestar insists on a value.
        token_secret="unused-see-verification-keys",  # noqa: S106
        algorithm="HS256",
        token_cls=bearer_token_class(keys),
        exclude=OPEN_PATHS,
        exclude_opt_key=PUBLIC,
        authentication_middleware_class=RotatedKeysMiddleware,
    )


@contextlib.asynccontextmanager
async def loaded_keys(
    keys: VerificationKeys, _: Litestar
) -> AsyncIterator[VerificationKeys]:
    """Fetch the JWKS once when the server starts, off the event loop."""
    if not keys.configured:
        log.warning("auth.no_keys_configured")
    try:
        await asyncio.to_thread(keys.load)
    except (OSError, ValueError) as error:
        if not keys.fetches_url:
            raise
        # An identity provider that is down must not keep the service
        # down: tokens are refused until a later fetch succeeds.
        log.warning("auth.jwks_unavailable", error=type(error).__name__)
    yield keys


def rate_limit(per_minute: int) -> RateLimitConfig:
    """Limit public and bulk routes to ``per_minute`` requests from each
    client address, counted in the store every replica shares."""

    def is_limited(request: Request[Any, Any, Any]) -> bool:
        opt = request.scope["route_handler"].opt
        return bool(opt.get(PUBLIC) or opt.get(BULK))

    return RateLimitConfig(
        rate_limit=("minute", per_minute),
        check_throttle_handler=is_limited,
        store=RATE_LIMIT_STORE,
    )


async def add_security_headers(message: Message, scope: Scope) -> None:
    """Add headers that keep browsers from sniffing, framing or leaking
    referrers to every response, errors included: as a ``before_send`` hook
    it also sees the answers of exceptions raised in middleware."""
    if message["type"] != "http.response.start":
        return
    viewer = scope["path"].startswith(VIEWER_PREFIX)
    headers = MutableScopeHeaders.from_message(message)
    for name, value in SECURITY_HEADERS.items():
        if viewer and name == "content-security-policy":
            continue
        headers[name] = value


def unauthenticated(error: NotAuthorizedException) -> ProblemDetailsException:
    """Answer a missing or refused token with 401 and a Bearer challenge,
    without saying which check failed."""
    return ProblemDetailsException(
        status_code=401,
        title="Authentication required",
        detail="a valid bearer token is required",
        headers={"WWW-Authenticate": CHALLENGE},
    )


def not_visible(_: NotVisibleError) -> ProblemDetailsException:
    """Answer a record the caller may not see exactly like a missing one."""
    return ProblemDetailsException(
        status_code=404, title="Not found", detail="no such record"
    )


def not_allowed(error: NotAllowedError) -> ProblemDetailsException:
    """Answer a caller whose roles never allow the route with 403."""
    return ProblemDetailsException(
        status_code=403,
        title="Forbidden",
        detail=f"this route needs {error.needed}",
    )


def problem_map() -> dict[type[Exception], Any]:
    """Return the access errors and their RFC 9457 translations."""
    return {
        NotAuthorizedException: unauthenticated,
        NotVisibleError: not_visible,
        NotAllowedError: not_allowed,
    }
