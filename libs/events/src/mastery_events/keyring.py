"""Seal each person's personal fields with a key of their own, so erasing
a person means destroying one key.

Envelope encryption: every person has a random data key (AES-256-GCM) that
seals their names, email and identifiers inside roster events. The data key
is stored only wrapped by the key-encryption key, which comes from the
configuration or from an external key manager through ``KeyWrapper``. The
log itself never changes: once a data key is destroyed, the sealed fields in
it are noise, while the grades that refer to the person by opaque id stay.

Keys live in the ``keyring`` schema that every service migrates, and every
service reads them only through this module. Data keys are not cached, so a
key destroyed by one process is gone for every process at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from importlib import resources
from typing import Protocol
from uuid import UUID

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mastery_events.contract.roster import Sealed
from mastery_events.database import Connection
from mastery_events.errors import EventsError
from mastery_events.migrations import Migration, load_migrations

SCHEMA = "keyring"
KEY_BYTES = 32
NONCE_BYTES = 12
# The tenant's own key for digests of identifiers: never destroyed, since
# a digest names nobody once the person's sealed fields are unreadable.
LOOKUP_KEY_ID = UUID(int=0)
CHECK_CONTEXT = b"mastery keyring check"

PersonalFields = dict[str, str | None]


class KeyringError(EventsError):
    """Root of the keyring's errors."""


class KeyEncryptionKeyMissingError(KeyringError):
    """Raised when a process that handles personal data starts without a
    key-encryption key: it must not seal anything it could not open again."""

    def __init__(self, variable: str) -> None:
        self.variable = variable
        super().__init__(
            f"{variable} is not set: personal data is sealed with a "
            "key-encryption key, and there is no unencrypted fallback "
            "(`mastery up` makes one for a local stack)"
        )


class KeyEncryptionKeyMismatchError(KeyringError):
    """Raised when the configured key-encryption key is not the one the
    keyring's keys were wrapped with."""

    def __init__(self) -> None:
        super().__init__(
            "the configured key-encryption key does not open this database's "
            "keyring: it is not the key the data keys were wrapped with"
        )


class UnwrapError(KeyringError):
    """Raised when a wrapped key or a sealed value does not open with the
    key and context given: a wrong key, or bytes changed or moved."""


class ErasedError(KeyringError):
    """Raised when asked to seal fields of a person who was erased."""

    def __init__(self, tenant_id: str, key_id: UUID) -> None:
        self.tenant_id = tenant_id
        self.key_id = key_id
        super().__init__(
            f"person {key_id} of tenant {tenant_id!r} was erased; "
            "nothing more can be sealed for them"
        )


class KeyWrapper(Protocol):
    """Wraps and unwraps data keys with the key-encryption key.

    ``context`` is bound to the wrapped key, so a key copied to another
    person or tenant does not unwrap. An external key manager (a cloud KMS,
    Vault's transit engine) fits here by calling its encrypt and decrypt
    operations with ``context`` as the associated data.
    """

    async def wrap(self, key: bytes, *, context: bytes) -> bytes:
        """Return ``key`` encrypted under the key-encryption key."""
        ...

    async def unwrap(self, wrapped: bytes, *, context: bytes) -> bytes:
        """Return the key ``wrapped`` holds, or raise ``UnwrapError``."""
        ...


class LocalKeyWrapper:
    """Wraps data keys with a key-encryption key held in this process."""

    def __init__(self, key_encryption_key: bytes) -> None:
        self._cipher = AESGCM(key_encryption_key)

    async def wrap(self, key: bytes, *, context: bytes) -> bytes:
        """Return ``key`` sealed with the key-encryption key."""
        return seal_bytes(self._cipher, key, context=context)

    async def unwrap(self, wrapped: bytes, *, context: bytes) -> bytes:
        """Return the key ``wrapped`` holds, or raise ``UnwrapError``."""
        return open_bytes(self._cipher, wrapped, context=context)


def seal_bytes(cipher: AESGCM, plain: bytes, *, context: bytes) -> bytes:
    """Return a fresh nonce followed by ``plain`` encrypted under ``cipher``."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + cipher.encrypt(nonce, plain, context)


def open_bytes(cipher: AESGCM, sealed: bytes, *, context: bytes) -> bytes:
    """Return what ``seal_bytes`` sealed, or raise ``UnwrapError``."""
    try:
        return cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context)
    except InvalidTag:
        raise UnwrapError("the value does not open with this key") from None


def decode_key_encryption_key(encoded: str) -> bytes:
    """Return the 32-byte key that ``encoded`` (URL-safe base64) spells, or
    raise ``ValueError`` without echoing it."""
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        key = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError("must be URL-safe base64") from None
    if len(key) != KEY_BYTES:
        message = f"must encode {KEY_BYTES} bytes (AES-256), not {len(key)}"
        raise ValueError(message)
    return key


def new_key_encryption_key() -> str:
    """Return a new random key-encryption key, encoded for configuration."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def keyring_migrations() -> list[Migration]:
    """Return the migrations of the ``keyring`` schema."""
    folder = resources.files("mastery_events") / "keyring_sql"
    return load_migrations("keyring", folder)


def key_context(tenant_id: str, key_id: UUID) -> bytes:
    """Return the associated data that binds a key or value to its owner."""
    return f"{tenant_id}/{key_id}".encode()


class Keyring:
    """Seals, opens and destroys people's data keys in the ``keyring``
    schema, on a connection whose transaction is bound to the tenant."""

    def __init__(self, wrapper: KeyWrapper) -> None:
        self._wrapper = wrapper
        self._lookup_keys: dict[str, bytes] = {}

    async def check(self, connection: Connection) -> None:
        """Make sure the configured key-encryption key is the keyring's own,
        recording it on first use; raise when it is another."""
        wrapped = await connection.fetchval(f"SELECT wrapped FROM {SCHEMA}.key_check")
        if wrapped is None:
            await connection.execute(
                f"INSERT INTO {SCHEMA}.key_check (wrapped) VALUES ($1) "
                "ON CONFLICT DO NOTHING",
                await self._wrapper.wrap(CHECK_CONTEXT, context=CHECK_CONTEXT),
            )
            wrapped = await connection.fetchval(
                f"SELECT wrapped FROM {SCHEMA}.key_check"
            )

        try:
            await self._wrapper.unwrap(wrapped, context=CHECK_CONTEXT)
        except UnwrapError:
            raise KeyEncryptionKeyMismatchError from None

    async def seal(
        self,
        connection: Connection,
        *,
        tenant_id: str,
        key_id: UUID,
        fields: Mapping[str, str | None],
    ) -> Sealed:
        """Return ``fields`` sealed with the data key ``key_id``, which is
        made on first use; raise ``ErasedError`` once it was destroyed."""
        key = await self._data_key(connection, tenant_id=tenant_id, key_id=key_id)
        if key is None:
            raise ErasedError(tenant_id, key_id)

        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(key).encrypt(
            nonce, msgspec.json.encode(dict(fields)), key_context(tenant_id, key_id)
        )
        return Sealed(key_id=key_id, nonce=nonce, ciphertext=ciphertext)

    async def open(
        self, connection: Connection, *, tenant_id: str, sealed: Sealed
    ) -> PersonalFields | None:
        """Return the fields ``sealed`` holds, or ``None`` when its key was
        destroyed; raise ``UnwrapError`` when it does not open."""
        opened = await self.open_many(connection, tenant_id=tenant_id, sealed=[sealed])
        return opened[sealed.key_id]

    async def open_many(
        self, connection: Connection, *, tenant_id: str, sealed: Iterable[Sealed]
    ) -> dict[UUID, PersonalFields | None]:
        """Open many sealed values with one read of their keys, keyed by
        key id; an erased person's value opens to ``None``."""
        values = list(sealed)
        rows = await connection.fetch(
            f"SELECT key_id, wrapped FROM {SCHEMA}.data_keys "
            "WHERE tenant_id = $1 AND key_id = ANY($2::uuid[])",
            tenant_id,
            list({value.key_id for value in values}),
        )
        keys: dict[UUID, bytes | None] = {}
        for row in rows:
            wrapped = row["wrapped"]
            keys[row["key_id"]] = (
                None
                if wrapped is None
                else await self._wrapper.unwrap(
                    wrapped, context=key_context(tenant_id, row["key_id"])
                )
            )

        opened: dict[UUID, PersonalFields | None] = {}
        for value in values:
            key = keys.get(value.key_id)
            if key is None:
                # No key at all, or a destroyed one: either way, unreadable.
                opened[value.key_id] = None
                continue
            plain = open_bytes(
                AESGCM(key),
                value.nonce + value.ciphertext,
                context=key_context(tenant_id, value.key_id),
            )
            opened[value.key_id] = msgspec.json.decode(plain, type=PersonalFields)

        return opened

    async def digest(
        self, connection: Connection, *, tenant_id: str, value: str
    ) -> str:
        """Return a keyed digest of ``value`` (an identifier such as a
        ``sourcedId``): stable within the tenant, and no help to anyone
        without the tenant's key."""
        key = self._lookup_keys.get(tenant_id)
        if key is None:
            key = await self._data_key(
                connection, tenant_id=tenant_id, key_id=LOOKUP_KEY_ID
            )
            if key is None:
                raise ErasedError(tenant_id, LOOKUP_KEY_ID)
            self._lookup_keys[tenant_id] = key

        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

    async def destroy(
        self,
        connection: Connection,
        *,
        tenant_id: str,
        key_id: UUID,
        destroyed_by: str,
        destroyed_at: datetime,
    ) -> bool:
        """Destroy the data key ``key_id`` for good; return whether there
        was a live key to destroy.

        A person never sealed before gets a destroyed row all the same, so
        nothing can be sealed for them later.
        """
        if key_id == LOOKUP_KEY_ID:
            raise ValueError("the tenant's lookup key is not a person's key")
        status = await connection.execute(
            f"""
            INSERT INTO {SCHEMA}.data_keys
                (tenant_id, key_id, wrapped, destroyed_at, destroyed_by)
            VALUES ($1, $2, NULL, $3, $4)
            ON CONFLICT (tenant_id, key_id) DO UPDATE
                SET wrapped = NULL,
                    destroyed_at = EXCLUDED.destroyed_at,
                    destroyed_by = EXCLUDED.destroyed_by
                WHERE data_keys.wrapped IS NOT NULL
            """,
            tenant_id,
            key_id,
            destroyed_at,
            destroyed_by,
        )
        return status.endswith(" 1")

    async def _data_key(
        self, connection: Connection, *, tenant_id: str, key_id: UUID
    ) -> bytes | None:
        """Return the data key ``key_id``, making it on first use, or
        ``None`` when it was destroyed."""
        context = key_context(tenant_id, key_id)
        row = await connection.fetchrow(
            f"SELECT wrapped FROM {SCHEMA}.data_keys "
            "WHERE tenant_id = $1 AND key_id = $2",
            tenant_id,
            key_id,
        )
        if row is None:
            wrapped = await self._wrapper.wrap(
                secrets.token_bytes(KEY_BYTES), context=context
            )
            # Two writers may make the same person's key at once: the first
            # wins, and both use what was stored.
            row = await connection.fetchrow(
                f"""
                WITH made AS (
                    INSERT INTO {SCHEMA}.data_keys (tenant_id, key_id, wrapped)
                    VALUES ($1, $2, $3)
                    ON CONFLICT (tenant_id, key_id) DO NOTHING
                    RETURNING wrapped
                )
                SELECT wrapped FROM made
                UNION ALL
                SELECT wrapped FROM {SCHEMA}.data_keys
                WHERE tenant_id = $1 AND key_id = $2
                LIMIT 1
                """,
                tenant_id,
                key_id,
                wrapped,
            )
        if row is None or row["wrapped"] is None:
            return None

        return await self._wrapper.unwrap(row["wrapped"], context=context)
