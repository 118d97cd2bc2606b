"""Two relays on one grading store and two reports instances sharing the
durable consumers, each pair losing a member to SIGKILL in the middle of a
load: the survivors carry on, and every snapshot ends equal to a full
replay of the streams, with each grade in it exactly once."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import nats
import pytest

from mastery_deploy.fleet import Fleet
from mastery_events.consumer import ConsumerSettings
from mastery_events.contract import CONTRACT
from mastery_events.envelope import Envelope, Event, PendingEvent
from mastery_events.ids import uuid7
from mastery_events.keyring import SCHEMA as KEYRING_SCHEMA
from mastery_events.keyring import (
    Keyring,
    LocalKeyWrapper,
    decode_key_encryption_key,
    keyring_migrations,
)
from mastery_events.migrations import migrate
from mastery_events.relay import RelaySettings
from mastery_events.runtime import ServiceRuntime
from mastery_events.store import EventStore
from mastery_events.subjects import Subjects
from mastery_events.tenancy import tenant_transaction
from mastery_grading.projector import NAME as TIMELINES
from mastery_objectives.service import SERVICE as OBJECTIVES
from mastery_reports.facts_store import CONSUMERS
from mastery_reports.rebuild import rebuild
from mastery_reports.service import SERVICE as REPORTS
from mastery_reports.snapshot_store import Snapshots, StoredSnapshot
from tests.integration.reports.district import (
    SEPTEMBER,
    District,
    assessed,
    catalogue_events,
    new_district,
    roster_events,
)
from tests.keys import KEY_ENCRYPTION_KEY
from tests.tokens import TestKeys
from tests.waiting import eventually

DISTRICTS = 3
GRADES_PER_STUDENT = 80
# The kills land once each student has this many of their grades.
KILL_AT = 25
LABELS = ("Beginning", "Developing", "Proficient", "Exemplary")
RELAY = RelaySettings().name
# The killed instance's batch is handed out again after this long.
ACK_WAIT = ConsumerSettings().ack_wait


def evidence_titles(found: StoredSnapshot) -> Counter[str]:
    """Count each piece of evidence a snapshot shows, by its title."""
    return Counter(
        evidence.title
        for section in found.snapshot.sections
        for objective_set in section.objective_sets
        for objective in objective_set.objectives
        for evidence in objective.evidence
    )


async def append_each(
    store: EventStore, tenant: str, events: Sequence[Event]
) -> list[Envelope]:
    """Append each event to a stream of its own, as grading's writers do."""
    stored: list[Envelope] = []
    for event in events:
        pending = PendingEvent(
            payload=event,
            occurred_at=SEPTEMBER,
            actor="registrar",
            correlation_id=uuid7(),
        )
        stored += await store.append(tenant, f"stream-{uuid7()}", 0, [pending])

    return stored


async def seed(
    district: District,
    *,
    objectives: EventStore,
    grading: EventStore,
    keyring: Keyring,
) -> None:
    """Append the district's catalogue and roster, the student sealed."""
    await append_each(objectives, district.tenant, catalogue_events(district))
    async with (
        grading.pool.acquire() as connection,
        tenant_transaction(connection, district.tenant),
    ):
        personal = await keyring.seal(
            connection,
            tenant_id=district.tenant,
            key_id=district.student,
            fields={"given_name": "Ada", "family_name": "Lovelace"},
        )
    await append_each(grading, district.tenant, roster_events(district, personal))


def grade(district: District, number: int) -> list[Event]:
    """The ``number``th grade of the load: objectives and levels take
    turns, and the title names the grade so a snapshot shows each once."""
    objective = district.fractions if number % 2 else district.decimals
    level = 1 + number % 4
    return assessed(
        district,
        objective,
        level,
        days=number,
        label=LABELS[level - 1],
        mastered=level >= 3,
        title=f"Task {number}",
    )


@pytest.fixture
async def own_database(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[str]:
    """Yield the URL of an empty database of the test's own on the session's
    server, dropped afterwards. The grading processes it starts run their
    timeline projector, which follows whatever the shared grading schema
    holds, and other tests leave events there whose scales it never hears
    of: it would stall on them, and the test with it."""
    name = f"scale_out_{secrets.token_hex(4)}"
    async with pool.acquire() as connection:
        await connection.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    async with pool.acquire() as connection:
        await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def own_pool(own_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's own database."""
    async with asyncpg.create_pool(own_database, min_size=1, max_size=8) as created:
        yield created


@pytest.fixture
async def own_keyring(own_pool: asyncpg.Pool) -> Keyring:
    """The session's keyring, in the test's own database."""
    made = Keyring(LocalKeyWrapper(decode_key_encryption_key(KEY_ENCRYPTION_KEY)))
    async with own_pool.acquire() as connection:
        await migrate(connection, KEYRING_SCHEMA, keyring_migrations())
        await made.check(connection)

    return made


async def test_killing_a_relay_and_a_reports_instance_loses_and_repeats_nothing(
    tmp_path: Path,
    own_database: str,
    own_pool: asyncpg.Pool,
    own_keyring: Keyring,
    nats_url: str,
    subject_prefix: str,
) -> None:
    """Two grading processes compete for the relay of one store and two
    reports processes share its durable consumers; SIGKILL takes the
    leading relay and one reports instance while grades are appended.
    Every student's snapshot then shows each of their grades once, and a
    rebuild replaying both streams from the start gives the very same
    documents and log positions."""
    settings = TestKeys(tmp_path).settings(
        database_url=own_database,
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        relay_poll_interval=0.1,
    )
    objectives = EventStore(own_pool, OBJECTIVES.schema, registry=CONTRACT)
    grading = EventStore(own_pool, "grading", registry=CONTRACT)
    snapshots = Snapshots(own_pool, REPORTS.schema)
    districts = [new_district() for _ in range(DISTRICTS)]
    fleet = Fleet(settings, tmp_path / "logs")
    # The first grading process starts alone, so it is the relay's leader.
    leader = fleet.add("grading", "grading-a")
    follower = fleet.add("grading", "grading-b")
    doomed = fleet.add("reports", "reports-a")
    survivor = fleet.add("reports", "reports-b")
    subjects = Subjects(prefix=subject_prefix)
    bus = await nats.connect(nats_url)
    js = bus.jetstream()

    async def load() -> None:
        for number in range(1, GRADES_PER_STUDENT + 1):
            for district in districts:
                await append_each(grading, district.tenant, grade(district, number))
            if number == KILL_AT:
                await asyncio.gather(leader.kill(), doomed.kill())

    async with ServiceRuntime(OBJECTIVES, settings).running():
        try:
            await leader.start()
            await leader.ready()
            await fleet.start()
            for district in districts:
                await seed(
                    district,
                    objectives=objectives,
                    grading=grading,
                    keyring=own_keyring,
                )
            await load()

            async def caught_up() -> bool:
                # Grading announces mastery of its own after the load, so
                # its projector and relay must pass the store's end; then
                # nothing may wait or be in flight for reports, including
                # the batch the killed instance held when it died, which
                # comes back once its acknowledgement time has run out.
                async with own_pool.acquire() as connection:
                    behind = await connection.fetchval(
                        "SELECT count(*) FROM grading.checkpoints "
                        "WHERE name = ANY($1) AND position < "
                        "(SELECT max(position) FROM grading.events)",
                        [RELAY, TIMELINES],
                    )
                if behind:
                    return False
                for consumer, source in CONSUMERS.items():
                    info = await js.consumer_info(
                        subjects.stream_name(source), consumer
                    )
                    if info.num_pending or info.num_ack_pending:
                        return False
                return True

            await eventually(
                caught_up, within=ACK_WAIT + 45.0, what="the survivors catching up"
            )
            live = {
                d.tenant: await snapshots.of_student(d.tenant, d.student_id)
                for d in districts
            }
        finally:
            await fleet.stop()
            await bus.close()

        await rebuild(REPORTS, settings)
        replayed = {
            d.tenant: await snapshots.of_student(d.tenant, d.student_id)
            for d in districts
        }

    assert leader.kills == doomed.kills == 1
    assert leader.starts == doomed.starts == 1
    assert follower.kills == survivor.kills == 0
    expected = Counter(f"Task {n}" for n in range(1, GRADES_PER_STUDENT + 1))
    for district in districts:
        caught, rebuilt = live[district.tenant], replayed[district.tenant]
        assert caught is not None
        assert rebuilt is not None
        assert evidence_titles(caught) == expected
        assert rebuilt.snapshot == caught.snapshot
        assert rebuilt.positions == caught.positions
