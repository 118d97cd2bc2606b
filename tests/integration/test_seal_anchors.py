"""Seals anchored on a real NATS: a log its database owner rewrote
consistently passes every check the database alone allows, and is named
once its seals are compared with their anchors."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import asyncpg
import nats
import pytest
from click.testing import CliRunner, Result
from nats.aio.client import Client as NatsClient
from nats.js.errors import APIError

from mastery_deploy.cli import main
from mastery_events.anchors import Anchor, SealAnchors
from mastery_events.contract import CONTRACT
from mastery_events.envelope import Envelope
from mastery_events.jetstream import anchor_stream_name, ensure_anchor_stream
from mastery_events.runtime import Service, ServiceRuntime
from mastery_events.seals import Sealer, SealingWorker
from mastery_events.settings import Settings
from mastery_events.store import EventStore
from mastery_events.subjects import Subjects
from mastery_events.verification import Verdict, Verifier
from tests.integration.drafts import set_drafted
from tests.keys import KEY_ENCRYPTION_KEY
from tests.waiting import eventually

TENANT = "district-12"
MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[NatsClient]:
    """A connection to the session's NATS."""
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
async def anchors(bus: NatsClient, subject_prefix: str) -> SealAnchors:
    """The test's anchors' stream, set up as a service sets it up."""
    subjects = Subjects(prefix=subject_prefix)
    await ensure_anchor_stream(bus.jetstream(), subjects=subjects)
    return SealAnchors(bus.jetstream(), subjects)


async def stored_and_anchored(
    store: EventStore, anchors: SealAnchors, titles: list[str]
) -> list[Envelope]:
    """Append one event per title to stream ``set-a``, seal them and anchor
    the newest seal, as a service's sealing worker does."""
    stored = []
    for version, title in enumerate(titles, start=1):
        stored += await store.append(
            TENANT, "set-a", version - 1, [set_drafted(title, minute=version)]
        )
    worker = SealingWorker(
        store.pool, store.schema, interval=60, anchors=lambda: anchors
    )
    await worker.seal_all()

    return stored


async def rewrite_consistently(
    pool: asyncpg.Pool,
    schema: str,
    event_id: UUID,
    title: str,
    *,
    tenant_id: str = TENANT,
) -> None:
    """Change an event's title as the database owner, then recompute every
    chain hash after it in its stream and every seal of the tenant, so the
    log agrees with itself again."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            f"""UPDATE "{schema}".events
            SET payload =
                jsonb_set(payload::jsonb, '{{title}}', to_jsonb($2::text))::json
            WHERE event_id = $1""",
            event_id,
            title,
        )
        versions = await connection.fetch(
            f"""SELECT event_id FROM "{schema}".events
            WHERE tenant_id = $1 AND stream_id = 'set-a' ORDER BY stream_version""",
            tenant_id,
        )
        for (each,) in versions:
            await connection.execute(
                f"""UPDATE "{schema}".events AS events SET chain_hash =
                "{schema}".chained_hash(
                    coalesce((SELECT before.chain_hash FROM "{schema}".events AS before
                              WHERE before.tenant_id = events.tenant_id
                                AND before.stream_id = events.stream_id
                                AND before.stream_version = events.stream_version - 1),
                             '\\x'::bytea),
                    event_id, tenant_id, stream_id, stream_version, event_type,
                    event_version, occurred_at, recorded_at, actor,
                    correlation_id, causation_id, payload)
                WHERE event_id = $1""",
                each,
            )
        await connection.execute(
            f'DELETE FROM "{schema}".event_seals WHERE tenant_id = $1', tenant_id
        )
        await Sealer(schema).seal(connection, tenant_id)


async def verify(
    pool: asyncpg.Pool, schema: str, anchor: Anchor | None = None
) -> Verdict:
    """Verify the tenant's log as stored now, against ``anchor`` if given."""
    async with pool.acquire() as connection:
        return await Verifier(schema).verify(connection, TENANT, anchor=anchor)


async def test_a_consistent_rewrite_is_named_only_by_its_anchor(
    pool: asyncpg.Pool, store: EventStore, anchors: SealAnchors
) -> None:
    """The owner changes the second title and recomputes every hash and
    seal: the database's own checks find nothing, and the anchor names the
    seal that no longer has its anchored hash."""
    stored = await stored_and_anchored(store, anchors, ["a1", "a2", "a3"])
    anchor = await anchors.latest(store.schema, TENANT)
    assert anchor is not None
    assert (await verify(pool, store.schema, anchor)).findings == []

    await rewrite_consistently(pool, store.schema, stored[1].event_id, "A2")
    alone = await verify(pool, store.schema)
    anchored = await verify(pool, store.schema, anchor)

    assert alone.findings == []
    (finding,) = anchored.findings
    assert finding.kind == "anchor differs"
    assert (finding.event_id, finding.stream_version) == (stored[2].event_id, 3)
    assert "seal 3 no longer has the hash anchored on NATS" in finding.detail
    assert anchor.seal_number == 3


async def test_a_log_cut_back_behind_its_anchor_is_named(
    pool: asyncpg.Pool, store: EventStore, anchors: SealAnchors
) -> None:
    """Deleting the newest event with its seal leaves a log that agrees
    with itself; the anchor still names the seal that is gone."""
    stored = await stored_and_anchored(store, anchors, ["a1", "a2", "a3"])
    anchor = await anchors.latest(store.schema, TENANT)
    async with pool.acquire() as connection:
        for table in ("event_seals", "events"):
            await connection.execute(
                f'DELETE FROM "{store.schema}".{table} WHERE event_id = $1',
                stored[2].event_id,
            )

    alone = await verify(pool, store.schema)
    anchored = await verify(pool, store.schema, anchor)

    assert alone.findings == []
    (finding,) = anchored.findings
    assert (finding.kind, finding.event_id) == ("deleted", stored[2].event_id)
    assert "seal 3 was anchored on NATS" in finding.detail


async def test_anchors_cannot_be_deleted_or_purged(
    bus: NatsClient, store: EventStore, anchors: SealAnchors
) -> None:
    """The anchors' stream refuses to lose a message, whoever asks."""
    await stored_and_anchored(store, anchors, ["a1"])
    js = bus.jetstream()
    stream = anchor_stream_name(anchors.subjects)
    info = await js.stream_info(stream)

    with pytest.raises(APIError):
        await js.delete_msg(stream, info.state.last_seq)
    with pytest.raises(APIError):
        await js.purge_stream(stream)
    assert (await js.stream_info(stream)).state.messages == info.state.messages == 1


async def test_a_worker_anchors_only_what_is_new_and_once_it_can(
    bus: NatsClient, store: EventStore, anchors: SealAnchors
) -> None:
    """Before the bus is linked nothing is anchored; the next round anchors
    the newest seal, a round with nothing new adds nothing, and new events
    are anchored at their own seal."""
    linked: list[SealAnchors] = []
    worker = SealingWorker(
        store.pool,
        store.schema,
        interval=60,
        anchors=lambda: linked[0] if linked else None,
    )
    js = bus.jetstream()
    stream = anchor_stream_name(anchors.subjects)
    for version in (1, 2):
        await store.append(
            TENANT, "set-a", version - 1, [set_drafted(f"a{version}", minute=1)]
        )

    await worker.seal_all()
    before_link = await anchors.latest(store.schema, TENANT)
    linked.append(anchors)
    await worker.seal_all()
    await worker.seal_all()
    after_two_rounds = (await js.stream_info(stream)).state.messages
    await store.append(TENANT, "set-a", 2, [set_drafted("a3", minute=3)])
    await worker.seal_all()
    newest = await anchors.latest(store.schema, TENANT)

    assert before_link is None
    assert after_two_rounds == 1
    assert newest is not None
    assert newest.seal_number == 3
    assert (await js.stream_info(stream)).state.messages == 2


async def test_a_running_service_anchors_its_seals(
    pool: asyncpg.Pool,
    database_url: str,
    nats_url: str,
    subject_prefix: str,
) -> None:
    """A service started with a short seal interval seals what is stored
    and anchors its newest seal on its own."""
    service = Service(name=f"anchored_{secrets.token_hex(4)}")
    settings = Settings(
        database_url=database_url,
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        key_encryption_key=KEY_ENCRYPTION_KEY,
        seal_interval=0.1,
    )
    runtime = ServiceRuntime(service, settings)
    client = await nats.connect(nats_url)
    anchors = SealAnchors(client.jetstream(), Subjects(prefix=subject_prefix))
    try:
        async with runtime.running():
            await runtime.store.append(
                TENANT,
                "set-a",
                0,
                [set_drafted("a1", minute=1), set_drafted("a2", minute=2)],
            )

            async def anchored() -> bool:
                try:
                    anchor = await anchors.latest(service.schema, TENANT)
                except nats.js.errors.NotFoundError:
                    return False
                return anchor is not None and anchor.seal_number == 2

            await eventually(anchored, within=30.0, what="the service's anchor")
    finally:
        await client.close()
        async with pool.acquire() as connection:
            await connection.execute(f'DROP SCHEMA "{service.schema}" CASCADE')


async def mastery(
    database_url: str, nats_url: str, prefix: str, *arguments: str
) -> Result:
    """Run ``mastery`` against the session's engines, in a thread."""
    environment = {
        "MASTERY_DATABASE_URL": database_url,
        "MASTERY_NATS_URL": nats_url,
        "MASTERY_SUBJECT_PREFIX": prefix,
    }
    return await asyncio.to_thread(
        CliRunner().invoke, main, list(arguments), env=environment
    )


@pytest.fixture
async def deployment(
    pool: asyncpg.Pool, database_url: str, nats_url: str, subject_prefix: str
) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A new database migrated by ``mastery migrate``, and a pool on it;
    dropped afterwards."""
    name = f"anchors_{secrets.token_hex(4)}"
    async with pool.acquire() as connection:
        await connection.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    migrated = await mastery(url, nats_url, subject_prefix, "migrate")
    assert migrated.exit_code == 0, migrated.output
    async with asyncpg.create_pool(url, min_size=1, max_size=2) as own:
        yield url, own
    async with pool.acquire() as connection:
        await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


async def test_the_verify_command_compares_seals_with_their_anchors(
    deployment: tuple[str, asyncpg.Pool], nats_url: str, anchors: SealAnchors
) -> None:
    """In objectives' schema, a tenant's log anchored and then rewritten
    consistently: ``mastery audit verify`` says intact and anchored first,
    and then names the rewrite and exits 1; ``--no-anchors`` says it did
    not compare."""
    database_url, pool = deployment
    tenant = f"district-{secrets.token_hex(3)}"
    store = EventStore(pool, "objectives", registry=CONTRACT)
    titles = ["a1", "a2"]
    stored = []
    for version, title in enumerate(titles, start=1):
        stored += await store.append(
            tenant, "set-a", version - 1, [set_drafted(title, minute=version)]
        )
    async with pool.acquire() as connection:
        await Sealer("objectives").seal(connection, tenant)
        last = await Sealer("objectives").last(connection, tenant)
    assert last is not None
    await anchors.publish(Anchor.of("objectives", tenant, last, at=MONDAY))
    arguments = ("audit", "verify", "--tenant", tenant)
    prefix = anchors.subjects.prefix

    before = await mastery(database_url, nats_url, prefix, *arguments)
    await rewrite_consistently(
        pool, "objectives", stored[0].event_id, "A1", tenant_id=tenant
    )
    after = await mastery(database_url, nats_url, prefix, *arguments)
    unanchored = await mastery(
        database_url,
        nats_url,
        prefix,
        "audit",
        "verify",
        "--no-anchors",
        "--tenant",
        tenant,
    )

    assert before.exit_code == 0, before.output
    assert (
        f"intact: objectives {tenant}: 2 events, 2 sealed, anchored up to seal 2"
        in before.output
    )
    assert after.exit_code == 1, after.output
    assert f"TAMPERED: objectives {tenant}" in after.output
    assert f"anchor differs: event {stored[1].event_id}" in after.output
    assert unanchored.exit_code == 0, unanchored.output
    assert "anchors not compared (--no-anchors)" in unanchored.stderr
