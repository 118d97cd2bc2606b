"""The secrets a local stack makes for itself, kept in its data folder.

Migrations create the database role ``mastery_app`` without a login, since
only the operator knows how it should authenticate. A local stack gives it a
password of its own and hands the services a URL naming it, while migrations
keep running as the owner. When no token keys are configured, the stack also
makes an HS256 secret, which the services trust and ``mastery token`` signs
with. Both files are readable by their owner only.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from mastery_events.tenancy import APP_ROLE

PASSWORD_FILE = "app-password"  # noqa: S105 - a file name, not a password
TOKEN_SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name, not a secret
KEY_ENCRYPTION_KEY_FILE = "key-encryption-key"


def local_secret(data_dir: Path, name: str) -> str:
    """Return the stack's secret kept in ``name``, creating it (readable by
    its owner only) on first use."""
    path = data_dir / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32), encoding="utf-8")

    return path.read_text(encoding="utf-8").strip()


def as_role(owner_url: str, role: str, password: str) -> str:
    """Return ``owner_url`` with its user and password replaced."""
    parts = urlsplit(owner_url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"

    return urlunsplit(parts._replace(netloc=netloc))


async def enable_app_login(owner_url: str, password: str) -> str:
    """Let ``mastery_app`` log in with ``password``; return its URL.

    Run after migrations, which create the role."""
    connection = await asyncpg.connect(owner_url)
    try:
        # ALTER ROLE takes no parameters: the server quotes the literal.
        statement = await connection.fetchval(
            "SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)",
            APP_ROLE,
            password,
        )
        await connection.execute(statement)
    finally:
        await connection.close()

    return as_role(owner_url, APP_ROLE, password)
