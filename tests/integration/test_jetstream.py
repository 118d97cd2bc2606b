"""Stream setup against a real NATS JetStream server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from mastery_events.jetstream import (
    StreamSettings,
    StreamSetupError,
    ensure_dead_letter_stream,
    ensure_stream,
)
from mastery_events.subjects import Subjects


@pytest.fixture
async def connection(nats_url: str) -> AsyncIterator[Client]:
    """A NATS connection to the session's server."""
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
def subjects(subject_prefix: str) -> Subjects:
    """Subjects under this test's own prefix."""
    return Subjects(prefix=subject_prefix)


async def test_service_stream_is_created_with_its_subjects(
    connection: Client, subjects: Subjects
) -> None:
    """A new service stream listens on the service's events, deduplicates
    over two minutes and keeps its messages on file."""
    js = connection.jetstream()

    info = await ensure_stream(js, "grading", subjects=subjects)

    assert info.config.name == f"{subjects.prefix.upper()}_GRADING"
    assert info.config.subjects == [f"{subjects.prefix}.grading.>"]
    assert info.config.duplicate_window == 120
    assert info.config.storage == "file"
    await js.delete_stream(subjects.stream_name("grading"))


async def test_existing_stream_is_brought_in_line_with_new_settings(
    connection: Client, subjects: Subjects
) -> None:
    """Running setup again with another window and age updates the stream
    in place, keeping the messages it already holds."""
    js = connection.jetstream()
    await ensure_stream(js, "grading", subjects=subjects)
    await js.publish(f"{subjects.prefix}.grading.district-7.AssessmentRecorded")

    info = await ensure_stream(
        js,
        "grading",
        subjects=subjects,
        settings=StreamSettings(duplicate_window=30, max_age=3600),
    )

    assert info.config.duplicate_window == 30
    assert info.config.max_age == 3600
    assert info.state.messages == 1
    await js.delete_stream(subjects.stream_name("grading"))


async def test_repeated_setup_with_same_settings_changes_nothing(
    connection: Client, subjects: Subjects
) -> None:
    """Setup that finds the stream as wanted returns it untouched."""
    js = connection.jetstream()
    first = await ensure_stream(js, "objectives", subjects=subjects)

    again = await ensure_stream(js, "objectives", subjects=subjects)

    assert again.created == first.created
    assert again.config.subjects == first.config.subjects
    await js.delete_stream(subjects.stream_name("objectives"))


async def test_storage_type_change_is_refused(
    connection: Client, subjects: Subjects
) -> None:
    """A stream kept in memory cannot be moved to file by setup: it says so."""
    js = connection.jetstream()
    await ensure_stream(
        js, "reports", subjects=subjects, settings=StreamSettings(storage="memory")
    )

    with pytest.raises(StreamSetupError) as raised:
        await ensure_stream(js, "reports", subjects=subjects)

    assert raised.value.setting == "storage"
    await js.delete_stream(subjects.stream_name("reports"))


async def test_dead_letter_stream_takes_every_consumers_dead_letters(
    connection: Client, subjects: Subjects
) -> None:
    """A message parked by any consumer lands in the one dead-letter stream."""
    js: JetStreamContext = connection.jetstream()
    await ensure_dead_letter_stream(js, subjects=subjects)

    ack = await js.publish(subjects.dead_letter("reports-projector"), b"{}")

    assert ack.stream == f"{subjects.prefix.upper()}_DEADLETTER"
    await js.delete_stream(ack.stream)
