"""Who is calling: bearer tokens verified, and the identity they carry.

Every request but the probes, the API description and routes marked public
carries a JWT. Its signature is checked with the key its header names (RS256
or ES256 public keys from a JWKS document; HS256 only with a secret set for a
local stack), then its issuer, audience, expiry and subject, then the claims
this project adds: ``tenant``, ``roles``, ``schools``, ``sections`` and
``scope``. What comes out is an ``Identity``, the only thing guards and
handlers look at.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

import jwt
import msgspec
from litestar.security.jwt import Token

from mastery_events.errors import EventsError
from mastery_events.settings import Settings
from mastery_events.subjects import TENANT_ID

Role = Literal["district_admin", "school_leader", "teacher", "auditor", "service"]
ROLES: tuple[Role, ...] = (
    "district_admin",
    "school_leader",
    "teacher",
    "auditor",
    "service",
)
PUBLIC_KEY_ALGORITHMS = frozenset({"RS256", "ES256"})
HMAC_ALGORITHM = "HS256"
# Registered claims no token may leave out.
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
# Clocks of the issuer and of the services disagree a little.
LEEWAY = timedelta(seconds=30)
# A token naming an unknown key refetches the JWKS URL at most this often.
JWKS_REFRESH_INTERVAL = 60.0
JWKS_FETCH_TIMEOUT = 5.0
CLAIM_PATH = re.compile(r"\$\.(\w+)")


class IdentityError(EventsError):
    """Raised when a bearer token cannot be trusted; the HTTP edge answers
    401 and says no more than that."""


class KeysNotConfiguredError(IdentityError):
    """Raised when a token arrives for an algorithm no key is configured
    for, which is every token when no key is configured at all."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        super().__init__(f"no key is configured for {algorithm} tokens")


class UnknownKeyError(IdentityError):
    """Raised when a token's header names a key the JWKS does not hold."""

    def __init__(self, key_id: str | None) -> None:
        self.key_id = key_id
        super().__init__(f"no public key with id {key_id!r} is known")


class InvalidClaimsError(IdentityError):
    """Raised when a verified token lacks this project's claims or holds
    values of the wrong shape; ``claim`` names the first at fault."""

    def __init__(self, claim: str) -> None:
        self.claim = claim
        super().__init__(f"the token's {claim!r} claim is missing or malformed")


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """The caller as the guards see it: one tenant, what it may act as, and
    the schools, sections and service scopes it is limited to."""

    subject: str
    tenant_id: str
    roles: frozenset[Role]
    schools: frozenset[str] = frozenset()
    sections: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()

    def has_role(self, *roles: Role) -> bool:
        """Tell whether the caller holds any of ``roles``."""
        return not self.roles.isdisjoint(roles)


class Claims(msgspec.Struct, frozen=True, kw_only=True):
    """The private claims a token carries besides the registered ones."""

    tenant: str
    roles: list[Role]
    schools: list[str] = []
    sections: list[str] = []
    scope: str = ""


def identity_from_claims(subject: str, claims: Mapping[str, Any]) -> Identity:
    """Build the caller's identity from verified claims, or raise
    ``InvalidClaimsError`` naming the first claim at fault."""
    if "tenant" not in claims:
        raise InvalidClaimsError("tenant")
    try:
        found = msgspec.convert(dict(claims), Claims)
    except msgspec.ValidationError as error:
        # msgspec ends its message with the path, as in "at `$.roles[0]`".
        named = CLAIM_PATH.search(str(error))
        raise InvalidClaimsError(named[1] if named else "claims") from None
    if TENANT_ID.fullmatch(found.tenant) is None:
        raise InvalidClaimsError("tenant")
    if not found.roles:
        raise InvalidClaimsError("roles")

    return Identity(
        subject=subject,
        tenant_id=found.tenant,
        roles=frozenset(found.roles),
        schools=frozenset(found.schools),
        sections=frozenset(found.sections),
        scopes=frozenset(found.scope.split()),
    )


class VerificationKeys:
    """The keys tokens are checked with, and the rules that go with them.

    Public keys come from a JWKS file or URL; each accepts only the one
    algorithm its type allows. The shared secret accepts only HS256. A
    token's header picks between them, and a header asking for anything
    else, ``none`` included, is refused before any check runs.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: str | None = None,
        secret: str | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self._secret = secret
        self._public: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = -JWKS_REFRESH_INTERVAL
        self._refreshing = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> VerificationKeys:
        """Return the keys ``settings`` configure; call ``load`` before use
        when they name a JWKS."""
        return cls(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            jwks=settings.jwt_jwks,
            secret=settings.jwt_secret,
        )

    @property
    def configured(self) -> bool:
        """Tell whether any key is configured at all."""
        return self.jwks is not None or self._secret is not None

    @property
    def fetches_url(self) -> bool:
        """Tell whether the keys come from a URL rather than a file."""
        return self.jwks is not None and self.jwks.startswith(("https://", "http://"))

    def load(self) -> None:
        """Read the JWKS file, or fetch the JWKS URL, and keep its RS256 and
        ES256 keys; this blocks, so call it from a thread in async code."""
        if self.jwks is None:
            return
        if self.fetches_url:
            request = urllib.request.Request(  # noqa: S310 - scheme checked in settings
                self.jwks, headers={"Accept": "application/json"}
            )
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=JWKS_FETCH_TIMEOUT
            ) as answer:
                document = json.loads(answer.read())
        else:
            document = json.loads(Path(self.jwks).read_text(encoding="utf-8"))
        self._fetched_at = time.monotonic()
        self._public = public_keys(document)

    def verify(self, encoded: str) -> dict[str, Any]:
        """Return the token's claims once its signature, algorithm, issuer,
        audience, expiry and subject check out; raise a ``jwt`` error or an
        ``IdentityError`` otherwise."""
        header = jwt.get_unverified_header(encoded)
        algorithm = header.get("alg")
        key: Any
        if algorithm == HMAC_ALGORITHM:
            if self._secret is None:
                raise KeysNotConfiguredError(algorithm)
            key = self._secret
        elif algorithm in PUBLIC_KEY_ALGORITHMS:
            found = self._public_key(header.get("kid"), algorithm)
            key = found.key
        else:
            raise jwt.InvalidAlgorithmError(f"tokens signed {algorithm!r} are refused")

        claims: dict[str, Any] = jwt.decode(
            encoded,
            key,
            algorithms=[algorithm],
            audience=self.audience,
            issuer=self.issuer,
            leeway=LEEWAY,
            options={"require": REQUIRED_CLAIMS, "verify_signature": True},
        )
        return claims

    async def refresh_for(self, encoded: str) -> None:
        """Fetch the JWKS URL again, in a thread, when ``encoded`` names a
        key not held and the last fetch is a minute old: the price of
        picking up rotated keys, paid by this request alone while others
        go on. A fetch that fails leaves the keys as they were."""
        try:
            header = jwt.get_unverified_header(encoded)
        except jwt.PyJWTError:
            # Not a token at all: ``verify`` says so.
            return
        algorithm = header.get("alg")
        if algorithm not in PUBLIC_KEY_ALGORITHMS:
            return
        if self._match(header.get("kid"), algorithm) is not None:
            return
        async with self._refreshing:
            # Requests that waited here find the keys fetched already.
            if not self._may_refresh():
                return
            try:
                await asyncio.to_thread(self.load)
            except (OSError, ValueError):
                self._fetched_at = time.monotonic()

    def _public_key(self, key_id: str | None, algorithm: str) -> jwt.PyJWK:
        if self.jwks is None:
            raise KeysNotConfiguredError(algorithm)
        found = self._match(key_id, algorithm)
        if found is None:
            raise UnknownKeyError(key_id)

        return found

    def _match(self, key_id: str | None, algorithm: str) -> jwt.PyJWK | None:
        if key_id is not None:
            key = self._public.get(key_id)
        elif len(self._public) == 1:
            # A JWKS of one key may leave out key ids altogether.
            (key,) = self._public.values()
        else:
            key = None
        if key is None or key.algorithm_name != algorithm:
            return None

        return key

    def _may_refresh(self) -> bool:
        # Only a URL changes under us, and an unknown key id must not let
        # callers make the service hammer the identity provider.
        return (
            self.fetches_url
            and time.monotonic() - self._fetched_at >= JWKS_REFRESH_INTERVAL
        )


def public_keys(document: Mapping[str, Any]) -> dict[str | None, jwt.PyJWK]:
    """Return the RS256 and ES256 signing keys of a JWKS document by id."""
    found: dict[str | None, jwt.PyJWK] = {}
    for entry in document.get("keys", []):
        if entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWKError:
            continue
        if key.algorithm_name in PUBLIC_KEY_ALGORITHMS:
            found[key.key_id] = key

    return found


class BearerToken(Token):
    """Litestar's token, decoded by one application's ``VerificationKeys``
    rather than by a single secret and algorithm."""

    keys: ClassVar[VerificationKeys]

    @classmethod
    def decode_payload(
        cls,
        encoded_token: str,
        secret: str,
        algorithms: list[str],
        issuer: str | Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
        options: Any = None,
    ) -> Any:
        """Verify ``encoded_token`` with this class's keys; the secret and
        algorithm Litestar passes along are not used."""
        try:
            return cls.keys.verify(encoded_token)
        except IdentityError as error:
            # Litestar turns this family of errors into a plain 401.
            raise jwt.InvalidTokenError(type(error).__name__) from error


def bearer_token_class(keys: VerificationKeys) -> type[BearerToken]:
    """Return a token class bound to ``keys``, one per application."""
    return type("BoundBearerToken", (BearerToken,), {"keys": keys})


def mint_token(
    secret: str,
    *,
    tenant_id: str,
    roles: Sequence[Role],
    subject: str,
    issuer: str,
    audience: str,
    now: datetime,
    ttl: timedelta,
    schools: Sequence[str] = (),
    sections: Sequence[str] = (),
    scopes: Sequence[str] = (),
) -> str:
    """Sign an HS256 token for a local stack; real deployments get theirs
    from the district's identity provider."""
    claims: dict[str, Any] = {
        "sub": subject,
        "iss": issuer,
        "aud": audience,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "tenant": tenant_id,
        "roles": list(roles),
    }
    if schools:
        claims["schools"] = list(schools)
    if sections:
        claims["sections"] = list(sections)
    if scopes:
        claims["scope"] = " ".join(scopes)

    return jwt.encode(claims, secret, algorithm=HMAC_ALGORITHM)
