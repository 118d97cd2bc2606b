"""Tamper with a stored log directly in PostgreSQL, as its owner could, and
see verification name the exact event each time."""

from __future__ import annotations

import secrets
from uuid import UUID

import asyncpg
import msgspec
import pytest

from mastery_events.contract import CONTRACT
from mastery_events.envelope import Envelope, PendingEvent
from mastery_events.migrations import event_store_migrations, migrate
from mastery_events.seals import Sealer
from mastery_events.store import EventStore, StreamAppend
from mastery_events.tenancy import tenant_transaction
from mastery_events.verification import Verdict, Verifier
from tests.integration.drafts import set_drafted

TENANT = "district-9"
OTHER_TENANT = "district-10"


async def append_unchained(
    pool: asyncpg.Pool, schema: str, stream_id: str, events: list[PendingEvent]
) -> None:
    """Store ``events`` as a new stream the way a store of the first two
    migrations did, with only the columns those had."""
    async with pool.acquire() as connection, tenant_transaction(connection, TENANT):
        for version, event in enumerate(events, start=1):
            event_type = CONTRACT.of(event.payload)
            await connection.execute(
                f"""
                INSERT INTO "{schema}".events (
                    event_id, tenant_id, stream_id, stream_version, event_type,
                    event_version, occurred_at, actor, correlation_id, payload
                )
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                """,
                event.event_id,
                TENANT,
                stream_id,
                version,
                event_type.name,
                event_type.version,
                event.occurred_at,
                event.actor,
                event.correlation_id,
                msgspec.json.encode(event.payload).decode(),
            )


class History(msgspec.Struct, frozen=True, kw_only=True):
    """The events of a small log, by ``<stream><version>`` (``a2``)."""

    events: dict[str, Envelope]

    def __getitem__(self, name: str) -> Envelope:
        return self.events[name]


async def write(
    store: EventStore, tenant_id: str, *appends: tuple[str, int]
) -> dict[str, Envelope]:
    """Append one event to each named stream at its version, in one
    transaction, and return them by name."""
    batches = [
        StreamAppend(
            tenant_id=tenant_id,
            stream_id=f"set-{stream}",
            expected_version=version - 1,
            events=[set_drafted(f"{stream}{version}", minute=version)],
        )
        for stream, version in appends
    ]
    stored = await store.append_many(batches)
    return {
        f"{stream}{version}": event
        for (stream, version), event in zip(appends, stored, strict=True)
    }


@pytest.fixture
async def history(store: EventStore, pool: asyncpg.Pool) -> History:
    """Eight events in three streams over six transactions; the first six
    sealed, the last two not, and another tenant's events alongside."""
    events: dict[str, Envelope] = {}
    for appends in (
        [("a", 1), ("b", 1)],
        [("a", 2)],
        [("c", 1), ("a", 3)],
        [("b", 2)],
    ):
        events |= await write(store, TENANT, *appends)
        await write(store, OTHER_TENANT, *appends)
    async with pool.acquire() as connection:
        await Sealer(store.schema).seal(connection, TENANT)
    events |= await write(store, TENANT, ("a", 4))
    events |= await write(store, TENANT, ("c", 2))

    return History(events=events)


async def verify(pool: asyncpg.Pool, schema: str) -> Verdict:
    """Verify the tenant's log as it is stored now."""
    async with pool.acquire() as connection:
        return await Verifier(schema).verify(connection, TENANT)


async def tamper(pool: asyncpg.Pool, statement: str, *arguments: object) -> None:
    """Run ``statement`` as the database's owner, past every policy."""
    async with pool.acquire() as connection:
        await connection.execute(statement, *arguments)


async def test_an_untouched_log_passes_sealed_and_unsealed(
    pool: asyncpg.Pool, schema: str, history: History
) -> None:
    """Six events sealed, two not, and nothing found."""
    verdict = await verify(pool, schema)

    assert verdict.findings == []
    assert (verdict.events, verdict.sealed) == (8, 6)


async def test_an_edited_payload_is_named(
    pool: asyncpg.Pool, schema: str, history: History
) -> None:
    """Changing the title inside a sealed event's payload names that event."""
    await tamper(
        pool,
        f"""UPDATE "{schema}".events
        SET payload = replace(payload::text, '"a2"', '"A2"')::json
        WHERE event_id = $1""",
        history["a2"].event_id,
    )

    findings = (await verify(pool, schema)).findings
    first = findings[0]

    assert len(findings) == 1
    assert (first.kind, first.event_id) == ("changed", history["a2"].event_id)
    assert (first.stream_id, first.stream_version) == ("set-a", 2)
    assert first.position == history["a2"].position


async def test_of_two_edits_the_earlier_in_the_global_order_is_named_first(
    pool: asyncpg.Pool, schema: str, history: History
) -> None:
    """An edited actor on an unsealed event and on a sealed one: the sealed,
    earlier one comes first, and both are found."""
    for name in ("c2", "b1"):
        await tamper(
            pool,
            f"""UPDATE "{schema}".events SET actor = 'teacher-eve'
            WHERE event_id = $1""",
            history[name].event_id,
        )

    findings = (await verify(pool, schema)).findings

    assert [(f.kind, f.event_id) for f in findings] == [
        ("changed", history["b1"].event_id),
        ("changed", history["c2"].event_id),
    ]


async def test_an_edit_whose_chain_hash_was_recomputed_is_named_by_its_seal(
    pool: asyncpg.Pool, schema: str, history: History
) -> None:
    """An editor who recomputes the edited event's chain hash still breaks
    its seal, and the event is named, not the one after it."""
    await tamper(
        pool,
        f"""UPDATE "{schema}".events
        SET occurred_at = occurred_at + interval '1 day',
            chain_hash = "{schema}".chained_hash(
                (SELECT chain_hash FROM "{schema}".events
                 WHERE event_id = $2),
                event_id, tenant_id, stream_id, stream_version, event_type,
                event_version, occurred_at + interval '1 day', recorded_at,
                actor, correlation_id, causation_id, payload)
        WHERE event_id = $1""",
        history["a2"].event_id,
        history["a1"].event_id,
    )

    first = (await verify(pool, schema)).findings[0]

    assert (first.kind, first.event_id) == ("changed", history["a2"].event_id)


async def test_a_deleted_sealed_event_is_named_by_id(
    pool: asyncpg.Pool, schema: str, history: History
) -> None:
    """Deleting a sealed event from the middle of its stream names it by id,
    stream, version and position."""
    await tamper(
        pool,
        f'DELETE FROM "{schema}".events WHERE event_id = $1',
        history["a2"].event_id,
    )

    findings = (await verify(pool, schema)).findings
    first = findings[0]

    assert len(findings) == 1
    assert (first.kind, first.event_id) == ("deleted", history["a2"].event_id)
    assert (first.stream_id, first.stream_version) == ("set-a", 2)
    assert first.position == history["a2"].position


async def test_a_deleted_last_event_of_a_stream_is_named_by_its_seal(
    pool: asyncpg.Pool, schema: str, history: History
) -> None:
    """The last event of stream b leaves no gap in its chain; its seal still
    names it."""
    await tamper(
        pool,
        f'DELETE FROM "{schema}".events WHERE event_id = $1',
        history["b2"].event_id,
    )

    findings = (await verify(pool, schema)).findings

    assert [(f.kind, f.event_id) for f in findings] == [
        ("deleted", history["b2"].event_id)
    ]


async def test_a_deleted_unsealed_event_is_named_by_stream_and_version(
    pool: asyncpg.Pool, schema: str, history: History
) -> None:
    """Before sealing only the stream's chain knows the event: the gap names
    its stream and version."""
    await write(store_of(schema, pool), TENANT, ("a", 5))
    await tamper(
        pool,
        f'DELETE FROM "{schema}".events WHERE event_id = $1',
        history["a4"].event_id,
    )

    findings = (await verify(pool, schema)).findings

    assert len(findings) == 1
    assert (findings[0].kind, findings[0].event_id) == ("deleted", None)
    assert (findings[0].stream_id, findings[0].stream_version) == ("set-a", 4)


async def test_events_swapped_within_a_stream_are_named_as_reordered(
    pool: asyncpg.Pool, schema: str, history: History
) -> None:
    """Swapping versions 2 and 3 of stream a names version 2's event, the
    first of the two in the global order."""
    swap = f"""UPDATE "{schema}".events SET stream_version = $2
        WHERE event_id = $1"""
    await tamper(pool, swap, history["a2"].event_id, 99)
    await tamper(pool, swap, history["a3"].event_id, 2)
    await tamper(pool, swap, history["a2"].event_id, 3)

    first = (await verify(pool, schema)).findings[0]

    assert (first.kind, first.event_id) == ("reordered", history["a2"].event_id)
    assert (first.stream_id, first.stream_version) == ("set-a", 2)


async def test_events_of_two_streams_swapped_in_the_global_order_are_named(
    pool: asyncpg.Pool, schema: str, history: History
) -> None:
    """Swapping the transactions of a2 and b2, which no stream chain covers,
    names a2, the earlier of the two as sealed."""
    a2, b2 = history["a2"], history["b2"]
    swap = f"""UPDATE "{schema}".events
        SET transaction_id = $2::text::xid8 WHERE event_id = $1"""
    await tamper(pool, swap, a2.event_id, str(b2.transaction_id))
    await tamper(pool, swap, b2.event_id, str(a2.transaction_id))

    findings = (await verify(pool, schema)).findings

    assert [(f.kind, f.event_id) for f in findings] == [
        ("reordered", a2.event_id),
        ("reordered", b2.event_id),
    ]


async def test_an_edited_seal_is_named(
    pool: asyncpg.Pool, schema: str, history: History
) -> None:
    """A seal rewritten to match an edit breaks the seals' own chain."""
    await tamper(
        pool,
        f"""UPDATE "{schema}".event_seals SET stream_id = 'set-z'
        WHERE event_id = $1""",
        history["c1"].event_id,
    )

    first = (await verify(pool, schema)).findings[0]

    assert (first.kind, first.event_id) == ("seal broken", history["c1"].event_id)


async def test_sealing_again_seals_only_what_is_new(
    pool: asyncpg.Pool, schema: str, history: History
) -> None:
    """A second run seals the two later events, and the log still passes."""
    async with pool.acquire() as connection:
        sealed = await Sealer(schema).seal(connection, TENANT)
        again = await Sealer(schema).seal(connection, TENANT)

    verdict = await verify(pool, schema)
    assert (sealed, again) == (2, 0)
    assert (verdict.events, verdict.sealed, verdict.findings) == (8, 8, [])


def store_of(schema: str, pool: asyncpg.Pool) -> EventStore:
    """Return the event store on ``schema``."""
    return EventStore(pool, schema, registry=CONTRACT)


async def test_events_appended_together_to_one_stream_chain_in_order(
    store: EventStore, pool: asyncpg.Pool, schema: str
) -> None:
    """Three events of one stream in one statement each chain to the one
    before: the log verifies, and an edit of the middle one is named."""
    events = [set_drafted(f"d{version}", minute=version) for version in (1, 2, 3)]
    stored = await store.append(TENANT, "set-d", 0, events)
    intact = await verify(pool, schema)

    await tamper(
        pool,
        f"""UPDATE "{schema}".events SET correlation_id = $2
        WHERE event_id = $1""",
        stored[1].event_id,
        UUID(int=7),
    )

    findings = (await verify(pool, schema)).findings
    assert (intact.events, intact.findings) == (3, [])
    assert [(f.kind, f.event_id) for f in findings] == [("changed", stored[1].event_id)]


async def test_events_stored_before_the_chain_came_in_are_chained_by_it(
    pool: asyncpg.Pool,
) -> None:
    """A schema with events from before migration 3 gets them chained, and
    a later append continues their streams' chains: the log verifies."""
    name = f"test_backfill_{secrets.token_hex(4)}"
    migrations = event_store_migrations()
    async with pool.acquire() as connection:
        await migrate(connection, name, migrations[:2])
    store = store_of(name, pool)
    try:
        await append_unchained(
            pool,
            name,
            "set-a",
            [set_drafted("a1", minute=1), set_drafted("a2", minute=2)],
        )
        await append_unchained(pool, name, "set-b", [set_drafted("b1", minute=3)])
        async with pool.acquire() as connection:
            await migrate(connection, name, migrations)
        await store.append(TENANT, "set-a", 2, [set_drafted("a3", minute=4)])
        async with pool.acquire() as connection:
            await Sealer(name).seal(connection, TENANT)

        verdict = await verify(pool, name)
    finally:
        async with pool.acquire() as connection:
            await connection.execute(f'DROP SCHEMA "{name}" CASCADE')

    assert (verdict.events, verdict.sealed, verdict.findings) == (4, 4, [])
