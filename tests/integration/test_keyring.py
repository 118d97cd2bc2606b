"""The keyring on a real PostgreSQL: sealing, opening, destroying people's
data keys, tenant isolation of keys, and the start-up key checks."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import msgspec
import pytest

from mastery_events.contract.roster import Sealed
from mastery_events.ids import uuid7
from mastery_events.keyring import (
    ErasedError,
    KeyEncryptionKeyMismatchError,
    KeyEncryptionKeyMissingError,
    Keyring,
    LocalKeyWrapper,
    UnwrapError,
    decode_key_encryption_key,
    new_key_encryption_key,
)
from mastery_events.runtime import Service, ServiceRuntime
from mastery_events.settings import Settings
from mastery_events.tenancy import tenant_transaction

SPRINGFIELD = "springfield-usd"
SHELBYVILLE = "shelbyville-usd"
ERASED_ON = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
LISA = {"given_name": "Lisa", "family_name": "Simpson", "email": "lisa@example.org"}


async def sealed_for(
    pool: asyncpg.Pool, keyring: Keyring, tenant_id: str, person_id: UUID
) -> Sealed:
    """Seal Lisa's fields as ``person_id`` of ``tenant_id``."""
    async with pool.acquire() as connection, tenant_transaction(connection, tenant_id):
        return await keyring.seal(
            connection, tenant_id=tenant_id, key_id=person_id, fields=LISA
        )


async def opened(
    pool: asyncpg.Pool, keyring: Keyring, tenant_id: str, sealed: Sealed
) -> dict[str, str | None] | None:
    """Open ``sealed`` as ``tenant_id``."""
    async with pool.acquire() as connection, tenant_transaction(connection, tenant_id):
        return await keyring.open(connection, tenant_id=tenant_id, sealed=sealed)


async def destroyed(
    pool: asyncpg.Pool, keyring: Keyring, tenant_id: str, person_id: UUID
) -> bool:
    """Destroy ``person_id``'s key as a district admin would."""
    async with pool.acquire() as connection, tenant_transaction(connection, tenant_id):
        return await keyring.destroy(
            connection,
            tenant_id=tenant_id,
            key_id=person_id,
            destroyed_by="admin-chalmers",
            destroyed_at=ERASED_ON,
        )


async def test_sealed_fields_open_to_what_was_sealed(
    pool: asyncpg.Pool, keyring: Keyring
) -> None:
    """A person's fields come back whole, and the sealed bytes hold none
    of them in the clear."""
    person = uuid7()

    sealed = await sealed_for(pool, keyring, SPRINGFIELD, person)

    assert await opened(pool, keyring, SPRINGFIELD, sealed) == LISA
    encoded = msgspec.json.encode(sealed)
    assert b"Simpson" not in encoded
    assert b"lisa@" not in encoded
    assert b"Simpson" not in sealed.ciphertext


async def test_a_destroyed_key_opens_nothing_and_seals_nothing(
    pool: asyncpg.Pool, keyring: Keyring
) -> None:
    """After erasure the person's sealed fields read as None, nothing more
    can be sealed for them, and a second erasure has nothing to destroy."""
    person = uuid7()
    sealed = await sealed_for(pool, keyring, SPRINGFIELD, person)

    assert await destroyed(pool, keyring, SPRINGFIELD, person)

    assert await opened(pool, keyring, SPRINGFIELD, sealed) is None
    with pytest.raises(ErasedError):
        await sealed_for(pool, keyring, SPRINGFIELD, person)
    assert not await destroyed(pool, keyring, SPRINGFIELD, person)


async def test_the_destroyed_key_leaves_no_key_material_in_the_table(
    pool: asyncpg.Pool, keyring: Keyring
) -> None:
    """The row that stays says who erased the person and when, and holds no
    wrapped key."""
    person = uuid7()
    await sealed_for(pool, keyring, SPRINGFIELD, person)
    await destroyed(pool, keyring, SPRINGFIELD, person)

    async with pool.acquire() as connection:
        row = await connection.fetchrow(
            "SELECT wrapped, destroyed_by, destroyed_at FROM keyring.data_keys "
            "WHERE tenant_id = $1 AND key_id = $2",
            SPRINGFIELD,
            person,
        )

    assert row is not None
    assert row["wrapped"] is None
    assert (row["destroyed_by"], row["destroyed_at"]) == ("admin-chalmers", ERASED_ON)


async def test_another_tenant_cannot_open_a_persons_fields(
    pool: asyncpg.Pool, keyring: Keyring
) -> None:
    """Row-level security hides the data key from another tenant, so the
    sealed value opens to nothing there."""
    sealed = await sealed_for(pool, keyring, SPRINGFIELD, uuid7())

    assert await opened(pool, keyring, SHELBYVILLE, sealed) is None


async def test_a_sealed_value_moved_to_another_person_does_not_open(
    pool: asyncpg.Pool, keyring: Keyring
) -> None:
    """The person's id is bound into the seal: a ciphertext copied under
    another person's key id is refused, not opened with the wrong key."""
    lisa, bart = uuid7(), uuid7()
    sealed = await sealed_for(pool, keyring, SPRINGFIELD, lisa)
    await sealed_for(pool, keyring, SPRINGFIELD, bart)
    moved = msgspec.structs.replace(sealed, key_id=bart)

    with pytest.raises(UnwrapError):
        await opened(pool, keyring, SPRINGFIELD, moved)


async def test_digests_are_stable_within_a_tenant_and_differ_between_tenants(
    pool: asyncpg.Pool, keyring: Keyring
) -> None:
    """A re-import finds a person by the digest of their sourcedId; the same
    identifier in another district gives an unrelated digest."""

    async def digest(tenant_id: str, value: str) -> str:
        async with (
            pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            return await keyring.digest(connection, tenant_id=tenant_id, value=value)

    first = await digest(SPRINGFIELD, "student-0042")
    fresh_keyring_answer = await digest(SPRINGFIELD, "student-0042")

    assert first == fresh_keyring_answer
    assert first != await digest(SHELBYVILLE, "student-0042")
    assert first != await digest(SPRINGFIELD, "student-0043")
    assert "0042" not in first


async def test_a_different_key_encryption_key_is_refused_at_the_check(
    pool: asyncpg.Pool, keyring: Keyring
) -> None:
    """A process configured with another key-encryption key learns it at
    start-up, before it seals anything nobody could open."""
    stranger = Keyring(
        LocalKeyWrapper(decode_key_encryption_key(new_key_encryption_key()))
    )

    async with pool.acquire() as connection:
        with pytest.raises(KeyEncryptionKeyMismatchError):
            await stranger.check(connection)


async def test_a_service_with_personal_data_will_not_start_without_a_key(
    database_url: str, nats_url: str
) -> None:
    """No key-encryption key, no start: the error names the variable, and
    there is no unencrypted fallback."""
    runtime = ServiceRuntime(
        Service(name="roster_keyless", personal_data=True),
        Settings(database_url=database_url, nats_url=nats_url),
    )

    with pytest.raises(
        KeyEncryptionKeyMissingError, match="MASTERY_KEY_ENCRYPTION_KEY"
    ):
        await runtime.start()
