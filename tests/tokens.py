"""Signing keys and tokens for tests: an HS256 secret for the local path,
and RSA and EC key pairs published in a JWKS file for the production path."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from mastery_events.identity import Role, mint_token
from mastery_events.settings import Settings
from tests.keys import KEY_ENCRYPTION_KEY

ISSUER = "https://id.lakeside.example"
AUDIENCE = "mastery-tests"
RSA_KEY_ID = "lakeside-rsa-2026"
EC_KEY_ID = "lakeside-ec-2026"


class TestKeys:
    """One secret and two private keys, with the JWKS file of the public
    halves written where the services can read it."""

    __test__ = False

    def __init__(self, folder: Path) -> None:
        self.secret = secrets.token_urlsafe(32)
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        rsa_public: dict[str, Any] = json.loads(
            RSAAlgorithm.to_jwk(self.rsa.public_key())
        )
        ec_public: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(self.ec.public_key()))
        rsa_public |= {"kid": RSA_KEY_ID, "use": "sig", "alg": "RS256"}
        ec_public |= {"kid": EC_KEY_ID, "use": "sig", "alg": "ES256"}
        self.jwks = folder / "jwks.json"
        self.jwks.write_text(json.dumps({"keys": [rsa_public, ec_public]}))

    def settings(self, **engines: Any) -> Settings:
        """Return settings that trust these keys, plus ``engines``."""
        return Settings(
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            jwt_jwks=str(self.jwks),
            jwt_secret=self.secret,
            key_encryption_key=KEY_ENCRYPTION_KEY,
            **engines,
        )

    def token(
        self,
        tenant_id: str,
        roles: Sequence[Role],
        *,
        subject: str = "ms-frizzle",
        schools: Sequence[str] = (),
        sections: Sequence[str] = (),
        scopes: Sequence[str] = (),
    ) -> str:
        """Return a valid HS256 token for an hour."""
        return mint_token(
            self.secret,
            tenant_id=tenant_id,
            roles=roles,
            subject=subject,
            issuer=ISSUER,
            audience=AUDIENCE,
            now=datetime.now(UTC),
            ttl=timedelta(hours=1),
            schools=schools,
            sections=sections,
            scopes=scopes,
        )

    def signed(
        self, claims: dict[str, Any], *, algorithm: str = "RS256", kid: str = ""
    ) -> str:
        """Sign ``claims`` as given with the key ``algorithm`` calls for."""
        key: Any = {
            "HS256": self.secret,
            "RS256": self.rsa,
            "ES256": self.ec,
        }[algorithm]
        default_kid = {"RS256": RSA_KEY_ID, "ES256": EC_KEY_ID}.get(algorithm)
        headers = {"kid": kid or default_kid} if default_kid else None
        return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def claims(
    tenant_id: str = "lakeside",
    *,
    roles: Sequence[str] = ("teacher",),
    lifetime: timedelta = timedelta(minutes=10),
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
) -> dict[str, Any]:
    """Return a complete set of claims that tests then spoil one at a time."""
    now = datetime.now(UTC)
    return {
        "sub": "ms-frizzle",
        "iss": issuer,
        "aud": audience,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "tenant": tenant_id,
        "roles": list(roles),
        "sections": ["room-12"],
    }


def bearer(token: str) -> dict[str, str]:
    """Return the header that presents ``token``."""
    return {"Authorization": f"Bearer {token}"}
