"""Pipelined, order-keeping publishing against a real JetStream server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client

from mastery_events.jetstream import ensure_stream
from mastery_events.publisher import (
    Ack,
    Message,
    OrderedPublisher,
    PublishRejectedError,
)
from mastery_events.subjects import Subjects


@pytest.fixture
async def client(nats_url: str) -> AsyncIterator[Client]:
    """A connection to the session's NATS server."""
    connection = await nats.connect(nats_url)
    yield connection
    await connection.close()


def messages(subjects: Subjects, count: int) -> list[Message]:
    """Return ``count`` messages for the grading stream, with their own ids."""
    return [
        Message(
            subject=subjects.event("grading", "district-7", "AssessmentRecorded"),
            headers={"Nats-Msg-Id": f"assessment-{number}"},
            body=b'{"level":3}',
        )
        for number in range(count)
    ]


async def test_run_after_the_streams_end_is_stored_in_order(
    client: Client, subject_prefix: str
) -> None:
    """Messages sent as the next ones after the stream's end are all stored,
    one after another, in the order sent."""
    subjects = Subjects(prefix=subject_prefix)
    js = client.jetstream()
    await ensure_stream(js, "grading", subjects=subjects)
    publisher = OrderedPublisher(client, subjects.stream_name("grading"), ack_timeout=5)

    outcomes = await publisher.publish(messages(subjects, 3), stream_last=0)

    assert [outcome for outcome in outcomes if isinstance(outcome, Ack)] == outcomes
    assert [outcome.seq for outcome in outcomes if isinstance(outcome, Ack)] == [
        1,
        2,
        3,
    ]
    await publisher.close()
    await js.delete_stream(subjects.stream_name("grading"))


async def test_run_that_expects_a_lost_message_is_refused_whole(
    client: Client, subject_prefix: str
) -> None:
    """When the stream lacks a message the run expects to follow (as if it
    was lost on the way), every message of the run is refused and none is
    stored out of order."""
    subjects = Subjects(prefix=subject_prefix)
    js = client.jetstream()
    await ensure_stream(js, "grading", subjects=subjects)
    publisher = OrderedPublisher(client, subjects.stream_name("grading"), ack_timeout=5)

    outcomes = await publisher.publish(messages(subjects, 3), stream_last=1)

    assert all(isinstance(outcome, PublishRejectedError) for outcome in outcomes)
    assert all(
        outcome.out_of_sequence
        for outcome in outcomes
        if isinstance(outcome, PublishRejectedError)
    )
    info = await js.stream_info(subjects.stream_name("grading"))
    assert info.state.messages == 0
    await publisher.close()
    await js.delete_stream(subjects.stream_name("grading"))


async def test_run_behind_a_stranger_that_took_its_first_place_is_refused(
    client: Client, subject_prefix: str
) -> None:
    """When another client's message lands where the run's first message
    was to go, the first is refused and so is every later one, although
    the stranger's message fills the sequence the second expected: the
    run never lands with a hole in it."""
    subjects = Subjects(prefix=subject_prefix)
    js = client.jetstream()
    await ensure_stream(js, "grading", subjects=subjects)
    publisher = OrderedPublisher(client, subjects.stream_name("grading"), ack_timeout=5)
    run = messages(subjects, 3)
    await js.publish(run[0].subject, b"not an event")

    outcomes = await publisher.publish(run, stream_last=0)

    assert all(isinstance(outcome, PublishRejectedError) for outcome in outcomes)
    assert all(
        outcome.out_of_sequence
        for outcome in outcomes
        if isinstance(outcome, PublishRejectedError)
    )
    info = await js.stream_info(subjects.stream_name("grading"))
    assert info.state.messages == 1
    await publisher.close()
    await js.delete_stream(subjects.stream_name("grading"))
