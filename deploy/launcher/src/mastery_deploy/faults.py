"""``mastery faults``: break the running system under load and count the damage.

The command starts PostgreSQL and NATS from their wheels in a folder of its
own, runs objectives, grading and reports as child processes, and appends
a district's grades to grading's store while, scenario after scenario,
something fails: a service is killed with SIGKILL and started again, NATS
stops for a while, PostgreSQL restarts, grading's relay comes back after
the stream's duplicate window has passed, a poison message lands on the
grading stream. After each scenario it waits until everything settled and
counts, against the grades the store holds, the grades each student's
snapshot lost or shows twice. At the end it stops reports, replays both
streams from the start (the ``mastery reports rebuild`` path), and counts
the snapshots that differ from the live ones.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import asyncpg
import click
import msgspec
import nats
import structlog
from nats.aio.client import Client as NatsClient

from mastery_deploy.credentials import KEY_ENCRYPTION_KEY_FILE, local_secret
from mastery_deploy.engines import EmbeddedNats, EmbeddedPostgres
from mastery_deploy.fleet import Fleet, Instance
from mastery_events.consumer import ConsumerSettings
from mastery_events.contract import CONTRACT
from mastery_events.contract.grading import (
    AssessmentRecorded,
    Evidence,
)
from mastery_events.contract.objectives import (
    ObjectiveAdded,
    ObjectiveSetCreated,
    ScaleDefined,
    ScaleLevel,
)
from mastery_events.contract.roster import (
    ObjectiveSetLinked,
    PersonEnrolled,
    PersonRostered,
    SchoolRostered,
    SectionRostered,
    TermRostered,
)
from mastery_events.envelope import Event, PendingEvent
from mastery_events.errors import ConcurrencyError
from mastery_events.ids import uuid7
from mastery_events.keyring import (
    Keyring,
    LocalKeyWrapper,
    decode_key_encryption_key,
)
from mastery_events.migrations import quote_schema
from mastery_events.relay import RelaySettings
from mastery_events.settings import Settings
from mastery_events.store import EventStore
from mastery_events.subjects import Subjects
from mastery_events.tenancy import tenant_transaction
from mastery_grading.catalogue_store import CONSUMER as CATALOGUE_CONSUMER
from mastery_grading.projector import NAME as TIMELINES
from mastery_grading.rebuild import SUFFIX as REBUILD_SUFFIX
from mastery_grading.rebuild import Rebuild
from mastery_grading.service import SERVICE as GRADING
from mastery_grading.timeline_store import REBUILT_TABLES
from mastery_reports.facts_store import CONSUMERS
from mastery_reports.rebuild import rebuild
from mastery_reports.service import SERVICE as REPORTS
from mastery_reports.snapshot_store import Snapshots, StoredSnapshot

logger = structlog.get_logger(__name__)

TENANT = "faults-district"
SECTION = "algebra-1"
SCHOOL = "north-high"
TERM = "spring-2027"
TERM_STARTS = datetime(2027, 1, 11, 8, 0, tzinfo=UTC)
LEVELS = (
    ScaleLevel(value=1, label="Beginning", short_label="B", colour="#b3261e"),
    ScaleLevel(value=2, label="Developing", short_label="D", colour="#f2c12e"),
    ScaleLevel(value=3, label="Proficient", short_label="P", colour="#2e7d32"),
    ScaleLevel(value=4, label="Exemplary", short_label="E", colour="#1a237e"),
)
# A killed consumer's batch comes back after this; settling outlasts it.
ACK_WAIT = ConsumerSettings().ack_wait
SETTLE_TIMEOUT = ACK_WAIT + 300.0
SETTLE_POLL = 0.5
APPEND_RETRY = 0.5
RESTART_PAUSE = 2.0
# Who follows each log: in the database (checkpoints per schema) and on
# the bus (durable consumer and the stream it reads).
LOG_FOLLOWERS = {
    "objectives": (RelaySettings().name,),
    "grading": (RelaySettings().name, TIMELINES),
}
BUS_FOLLOWERS = {CATALOGUE_CONSUMER: "objectives", **CONSUMERS}
DATABASE_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


class District(msgspec.Struct, frozen=True, kw_only=True):
    """The ids of the fault suite's district: one scale, one set of two
    objectives, one section of students."""

    scale_id: UUID
    set_id: UUID
    objectives: tuple[UUID, UUID]
    students: tuple[UUID, ...]

    @classmethod
    def new(cls, students: int) -> District:
        """Return a district with ``students`` students and fresh ids."""
        return cls(
            scale_id=uuid7(),
            set_id=uuid7(),
            objectives=(uuid7(), uuid7()),
            students=tuple(uuid7() for _ in range(students)),
        )


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one scenario did to the snapshots."""

    scenario: str
    grades: int
    lost: int
    applied_twice: int
    timeline_rows: int
    timeline_rows_differing: int
    settle_seconds: float
    note: str = ""


def catalogue(district: District) -> list[Event]:
    """The scale, the set and its two objectives, as objectives records them."""
    return [
        ScaleDefined(
            scale_id=district.scale_id,
            name="North four",
            levels=LEVELS,
            mastery_threshold=3.0,
            defined_by="coordinator",
            defined_at=TERM_STARTS,
        ),
        ObjectiveSetCreated(
            objective_set_id=district.set_id,
            title="Algebra 1",
            subject="Mathematics",
            owner_scope="district",
            owner_id=TENANT,
            grade_bands=("9",),
            created_by="coordinator",
            created_at=TERM_STARTS,
        ),
        *(
            ObjectiveAdded(
                objective_set_id=district.set_id,
                objective_id=objective,
                code=f"A1.{order}",
                statement=f"Algebra standard {order}",
                order=order,
                grade_bands=("9",),
                added_by="coordinator",
                added_at=TERM_STARTS,
            )
            for order, objective in enumerate(district.objectives, start=1)
        ),
    ]


async def roster(
    district: District, pool: asyncpg.Pool, keyring: Keyring
) -> list[Event]:
    """The school, term and section, and each student sealed and enrolled."""
    events: list[Event] = [
        SchoolRostered(school_id=SCHOOL, name="North High", rostered_at=TERM_STARTS),
        TermRostered(
            term_id=TERM,
            title="Spring 2027",
            kind="term",
            starts_on=date(2027, 1, 11),
            ends_on=date(2027, 5, 28),
            school_year="2026-27",
            rostered_at=TERM_STARTS,
        ),
        SectionRostered(
            section_id=SECTION,
            title="Algebra 1",
            school_id=SCHOOL,
            course_id="algebra-1",
            course_title="Algebra 1",
            term_ids=(TERM,),
            rostered_at=TERM_STARTS,
        ),
        ObjectiveSetLinked(
            section_id=SECTION,
            objective_set_id=district.set_id,
            linked_by="teacher",
            linked_at=TERM_STARTS,
        ),
    ]
    for number, student in enumerate(district.students, start=1):
        async with pool.acquire() as connection, tenant_transaction(connection, TENANT):
            personal = await keyring.seal(
                connection,
                tenant_id=TENANT,
                key_id=student,
                fields={"given_name": f"Student {number}", "family_name": "North"},
            )
        events += [
            PersonRostered(
                person_id=student,
                sourced_id_digest=secrets.token_hex(16),
                role="student",
                school_ids=(SCHOOL,),
                personal=personal,
                rostered_at=TERM_STARTS,
            ),
            PersonEnrolled(
                person_id=student,
                section_id=SECTION,
                role="student",
                enrolled_at=TERM_STARTS,
            ),
        ]

    return events


def grade(district: District, number: int) -> tuple[str, list[Event]]:
    """Return the student of grade ``number`` and the grade as a teacher
    records it; grading's projector derives the mastery it leads to. The
    evidence's title names the grade."""
    student = district.students[number % len(district.students)]
    objective = district.objectives[number % 2]
    level = 1 + number % 4
    at = TERM_STARTS + timedelta(minutes=number)
    return str(student), [
        AssessmentRecorded(
            assessment_id=uuid7(),
            student_id=str(student),
            section_id=SECTION,
            objective_id=objective,
            scale_id=district.scale_id,
            scale_version=1,
            level=level,
            assessed_at=at,
            assessed_by="teacher",
            evidence=Evidence(title=f"Grade {number}", kind="formative"),
        ),
    ]


def evidence_of(found: StoredSnapshot) -> Counter[str]:
    """Count each piece of evidence a snapshot shows, by its title."""
    return Counter(
        evidence.title
        for section in found.snapshot.sections
        for objective_set in section.objective_sets
        for objective in objective_set.objectives
        for evidence in objective.evidence
    )


class Suite:
    """The engines, the services and the load of one fault run."""

    def __init__(
        self,
        folder: Path,
        *,
        students: int,
        duplicate_window: float,
        nats_outage: float,
    ) -> None:
        self.folder = folder
        self.duplicate_window = duplicate_window
        self.nats_outage = nats_outage
        self.district = District.new(students)
        self.postgres = EmbeddedPostgres(folder / "postgres", durable=True)
        self.nats = EmbeddedNats(folder / "nats")
        self.subjects = Subjects()
        self.appended: dict[str, list[str]] = {
            str(s): [] for s in self.district.students
        }
        self.grades = 0
        self.parked = 0
        self._pool: asyncpg.Pool | None = None
        self._fleet: Fleet | None = None
        self._settings: Settings | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """The suite's own pool, as the owner."""
        assert self._pool is not None
        return self._pool

    @property
    def fleet(self) -> Fleet:
        """The service processes."""
        assert self._fleet is not None
        return self._fleet

    @property
    def settings(self) -> Settings:
        """The settings every service runs with."""
        assert self._settings is not None
        return self._settings

    def instance(self, service: str) -> Instance:
        """Return the process of ``service``."""
        return next(i for i in self.fleet.instances if i.service == service)

    async def start(self) -> None:
        """Start the engines and the services, and seed the district."""
        database_url = await asyncio.to_thread(self.postgres.start)
        nats_url = await asyncio.to_thread(self.nats.start)
        kek = local_secret(self.folder, KEY_ENCRYPTION_KEY_FILE)
        self._settings = Settings(
            database_url=database_url,
            nats_url=nats_url,
            jwt_secret=secrets.token_urlsafe(32),
            key_encryption_key=kek,
            nats_duplicate_window=self.duplicate_window,
            relay_poll_interval=0.1,
            data_dir=self.folder,
        )
        self._fleet = Fleet(self.settings, self.folder / "logs")
        for service in ("objectives", "grading", "reports"):
            self.fleet.add(service, service)
        await self.fleet.start()
        self._pool = await asyncpg.create_pool(database_url, min_size=0, max_size=8)

        keyring = Keyring(LocalKeyWrapper(decode_key_encryption_key(kek)))
        async with self.pool.acquire() as connection:
            await keyring.check(connection)
        objectives = EventStore(self.pool, "objectives", registry=CONTRACT)
        grading = EventStore(self.pool, "grading", registry=CONTRACT)
        await objectives.append(
            TENANT, f"catalogue-{uuid7()}", 0, pending(catalogue(self.district))
        )
        await grading.append(
            TENANT,
            f"roster-{uuid7()}",
            0,
            pending(await roster(self.district, self.pool, keyring)),
        )
        logger.info(
            "faults.seeded",
            students=len(self.district.students),
        )

    async def stop(self) -> None:
        """Stop the services and the engines."""
        if self._fleet is not None:
            await self.fleet.stop()
        if self._pool is not None:
            self._pool.terminate()
        await asyncio.to_thread(self.nats.stop)
        await asyncio.to_thread(self.postgres.stop)

    async def load(self, count: int, *, fault_at: asyncio.Event, at: int) -> None:
        """Append ``count`` grades, each in a stream of its own, retrying a
        grade until the store holds it; set ``fault_at`` after ``at``."""
        for done in range(count):
            if done == at:
                fault_at.set()
            self.grades += 1
            student, events = grade(self.district, self.grades)
            stream = f"assessment-{uuid7()}"
            await self._append_once(stream, events)
            self.appended[student].append(f"Grade {self.grades}")
        fault_at.set()

    async def _append_once(self, stream: str, events: list[Event]) -> None:
        # A retry after a commit whose answer was lost finds the stream at
        # version two and is refused: the grade is stored exactly once.
        store = EventStore(self.pool, "grading", registry=CONTRACT)
        while True:
            try:
                await store.append(TENANT, stream, 0, pending(events))
            except ConcurrencyError:
                return
            except DATABASE_ERRORS:
                await asyncio.sleep(APPEND_RETRY)
                continue
            return

    async def settle(self) -> float:
        """Wait until grading's projector and relay passed the store's end
        and reports has nothing waiting or in flight; return how long."""
        started = time.monotonic()
        bus: NatsClient | None = None
        try:
            while time.monotonic() - started < SETTLE_TIMEOUT:
                try:
                    if bus is None or not bus.is_connected:
                        bus = await nats.connect(self.settings.nats_url or "")
                    if await self._settled(bus):
                        return time.monotonic() - started
                except (*DATABASE_ERRORS, nats.errors.Error, TimeoutError):
                    pass
                await asyncio.sleep(SETTLE_POLL)
        finally:
            if bus is not None:
                await bus.close()
        raise FaultSuiteError("the system did not settle", SETTLE_TIMEOUT)

    async def _settled(self, bus: NatsClient) -> bool:
        async with self.pool.acquire() as connection:
            for schema, names in LOG_FOLLOWERS.items():
                behind = await connection.fetchval(
                    f"SELECT count(*) FROM {schema}.checkpoints "
                    "WHERE name = ANY($1) AND position < "
                    f"(SELECT coalesce(max(position), 0) FROM {schema}.events)",
                    list(names),
                )
                if behind:
                    return False
        js = bus.jetstream()
        for consumer, source in BUS_FOLLOWERS.items():
            info = await js.consumer_info(self.subjects.stream_name(source), consumer)
            if info.num_pending or info.num_ack_pending:
                return False

        return True

    async def timelines(self) -> tuple[int, int]:
        """Replay grading's log into the rebuild's copies of the timeline
        tables; return how many rows the live tables hold and how many
        differ from the copies' rows, either way. A settled projector has
        applied exactly what is replayed."""
        async with self.pool.acquire() as connection:
            rebuild = Rebuild(self.pool, connection, GRADING.schema)
            target, _ = await rebuild.prepare()
            await rebuild.replay(target)
            rows = differing = 0
            for table in REBUILT_TABLES:
                live = f"{quote_schema(GRADING.schema)}.{table}"
                copy = f"{live}{REBUILD_SUFFIX}"
                rows += await connection.fetchval(f"SELECT count(*) FROM {live}")
                # Whole rows as text: json columns have no equality, and
                # their text is the bytes the projector and the rebuild
                # both wrote.
                differing += await connection.fetchval(
                    f"SELECT (SELECT count(*) FROM (SELECT l::text FROM {live} l "
                    f"EXCEPT ALL SELECT c::text FROM {copy} c) AS extra) + "
                    f"(SELECT count(*) FROM (SELECT c::text FROM {copy} c "
                    f"EXCEPT ALL SELECT l::text FROM {live} l) AS missing)"
                )

        return rows, differing

    async def damage(self) -> tuple[int, int]:
        """Count the grades the snapshots lack and the ones they show
        twice, against the grades the store holds."""
        snapshots = Snapshots(self.pool, REPORTS.schema)
        lost = twice = 0
        for student, titles in self.appended.items():
            found = await snapshots.of_student(TENANT, student)
            shown = Counter() if found is None else evidence_of(found)
            wanted = Counter(titles)
            lost += sum((wanted - shown).values())
            twice += sum((shown - wanted).values())

        return lost, twice

    async def scenario(
        self, name: str, grades: int, fault: Callable[[], Awaitable[str]]
    ) -> Outcome:
        """Run ``fault`` a third of the way into ``grades`` grades, then
        settle and count the damage."""
        logger.info("faults.scenario_started", scenario=name, grades=grades)
        fault_at = asyncio.Event()
        loading = asyncio.create_task(
            self.load(grades, fault_at=fault_at, at=grades // 3)
        )
        await fault_at.wait()
        note = await fault()
        await loading
        seconds = await self.settle()
        lost, twice = await self.damage()
        rows, differing = await self.timelines()
        logger.info(
            "faults.scenario_ended",
            scenario=name,
            lost=lost,
            applied_twice=twice,
            timeline_rows_differing=differing,
        )

        return Outcome(
            scenario=name,
            grades=grades,
            lost=lost,
            applied_twice=twice,
            timeline_rows=rows,
            timeline_rows_differing=differing,
            settle_seconds=round(seconds, 1),
            note=note,
        )

    def killer(self, service: str) -> Callable[[], Awaitable[str]]:
        """Return a fault that kills ``service`` with SIGKILL and restarts it."""

        async def fault() -> str:
            instance = self.instance(service)
            await instance.kill()
            await asyncio.sleep(RESTART_PAUSE)
            await instance.start()
            seconds = await instance.ready()
            return f"ready again {seconds:.1f}s after restart"

        return fault

    async def nats_down(self) -> str:
        """Stop NATS for the outage, then start it on the same port and data."""
        await asyncio.to_thread(self.nats.stop)
        await asyncio.sleep(self.nats_outage)
        self.nats = EmbeddedNats(self.folder / "nats", port=self.nats.port)
        await asyncio.to_thread(self.nats.start)
        return f"down {self.nats_outage:.0f}s"

    async def postgres_restart(self) -> str:
        """Restart PostgreSQL, dropping every connection."""
        started = time.monotonic()
        await asyncio.to_thread(self.postgres.stop)
        await asyncio.to_thread(self.postgres.start)
        return f"down {time.monotonic() - started:.1f}s"

    async def relay_after_window(self) -> str:
        """Kill grading, whose relay leads, and start it again only after
        the stream's duplicate window has passed."""
        instance = self.instance("grading")
        await instance.kill()
        await asyncio.sleep(self.duplicate_window + 1.0)
        await instance.start()
        await instance.ready()
        return f"restarted after {self.duplicate_window + 1.0:.0f}s"

    async def poison(self) -> str:
        """Publish a message that is no event on grading's stream."""
        bus = await nats.connect(self.settings.nats_url or "")
        try:
            subject = self.subjects.event("grading", TENANT, "AssessmentRecorded")
            await bus.jetstream().publish(subject, b"not an event")
        finally:
            await bus.close()
        return "one message without CloudEvents headers"

    async def replay(self) -> Replayed:
        """Stop reports, replay its streams from the start, and compare
        every snapshot with the live one; start reports again."""
        snapshots = Snapshots(self.pool, REPORTS.schema)
        live = {s.snapshot.student_id: s for s in await snapshots.all(TENANT)}
        reports = self.instance("reports")
        await reports.stop()
        await rebuild(REPORTS, self.settings)
        replayed = {s.snapshot.student_id: s for s in await snapshots.all(TENANT)}
        await reports.start()
        await reports.ready()

        both = live.keys() & replayed.keys()
        return Replayed(
            snapshots=len(replayed),
            unmatched=len(live.keys() ^ replayed.keys()),
            documents_differing=sum(
                live[s].snapshot != replayed[s].snapshot for s in both
            ),
            positions_differing=sum(
                live[s].positions != replayed[s].positions for s in both
            ),
        )


class Replayed(msgspec.Struct, frozen=True, kw_only=True):
    """How the live snapshots compare with a full replay's: snapshots
    only one side has, and snapshots whose document or recorded log
    positions differ."""

    snapshots: int
    unmatched: int
    documents_differing: int
    positions_differing: int


class FaultSuiteError(Exception):
    """Raised when the system does not settle after a fault."""

    def __init__(self, reason: str, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"{reason} within {seconds:.0f}s")


def pending(events: list[Event]) -> list[PendingEvent]:
    """Wrap ``events`` for appending, as a district's tools would send them."""
    correlation = uuid7()
    return [
        PendingEvent(
            payload=event,
            occurred_at=TERM_STARTS,
            actor="faults",
            correlation_id=correlation,
        )
        for event in events
    ]


async def run_faults(
    folder: Path,
    *,
    grades: int,
    students: int,
    duplicate_window: float,
    nats_outage: float,
) -> tuple[list[Outcome], Replayed]:
    """Run every scenario with an even share of ``grades``; return the
    outcomes and how the snapshots compare with a full replay."""
    suite = Suite(
        folder,
        students=students,
        duplicate_window=duplicate_window,
        nats_outage=nats_outage,
    )
    scenarios: list[tuple[str, Callable[[], Awaitable[str]]]] = [
        ("kill -9 objectives", suite.killer("objectives")),
        ("kill -9 grading", suite.killer("grading")),
        ("kill -9 reports", suite.killer("reports")),
        ("NATS stopped", suite.nats_down),
        ("PostgreSQL restarted", suite.postgres_restart),
        ("relay back after duplicate window", suite.relay_after_window),
        ("poison message", suite.poison),
    ]
    share, left_over = divmod(grades, len(scenarios))
    outcomes = []
    try:
        await suite.start()
        await suite.settle()
        for number, (name, fault) in enumerate(scenarios):
            # The first scenarios take one more each, so all add up.
            count = share + (number < left_over)
            outcomes.append(await suite.scenario(name, count, fault))
        replayed = await suite.replay()
    finally:
        await suite.stop()

    return outcomes, replayed


def results_table(outcomes: list[Outcome], replayed: Replayed) -> str:
    """Return the outcomes as a Markdown table."""
    lines = [
        "| scenario | grades | lost | applied twice | timeline rows "
        "| unlike a replay | settled in | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.scenario} | {o.grades:,} | {o.lost} | {o.applied_twice} "
            f"| {o.timeline_rows:,} | {o.timeline_rows_differing} "
            f"| {o.settle_seconds:.1f} s "
            f"| {o.note} |"
        )
    lines.append(
        f"\nSnapshots after a full replay: {replayed.snapshots}; on one side "
        f"only: {replayed.unmatched}; documents differing: "
        f"{replayed.documents_differing}; recorded positions differing: "
        f"{replayed.positions_differing}"
    )

    return "\n".join(lines)


@click.command(name="faults")
@click.option("--grades", default=10_000, show_default=True, help="Grades in all.")
@click.option("--students", default=150, show_default=True)
@click.option(
    "--duplicate-window",
    default=10.0,
    show_default=True,
    help="Seconds of the streams' duplicate window, short for the run.",
)
@click.option("--nats-outage", default=30.0, show_default=True, help="Seconds.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the engines and logs [default: a temporary one].",
)
def faults(
    grades: int,
    students: int,
    duplicate_window: float,
    nats_outage: float,
    data_dir: Path | None,
) -> None:
    """Kill, stop and poison the system under a load of grades, and print
    what each fault lost or applied twice."""
    # Imported here: the command module imports this one lazily.
    from mastery_deploy.cli import configure_logging, load_settings

    configure_logging(load_settings())
    folder = data_dir or Path(tempfile.mkdtemp(prefix="mastery-faults-"))
    outcomes, replayed = asyncio.run(
        run_faults(
            folder,
            grades=grades,
            students=students,
            duplicate_window=duplicate_window,
            nats_outage=nats_outage,
        )
    )
    click.echo(results_table(outcomes, replayed))
    click.echo(f"Logs: {folder / 'logs'}")
