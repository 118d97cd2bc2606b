"""The consumer's pure decisions: when to retry, when to park, and the
headers a parked message carries."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import pytest

from mastery_events.consumer import (
    ConnectionLostError,
    ConsumerSettings,
    consumer_config,
    is_transient,
    next_attempt,
    retry_delay,
)
from mastery_events.dead_letters import (
    DeadLetterError,
    dead_letter_headers,
    describe,
    replay_headers,
)

SETTINGS = ConsumerSettings(max_deliver=3, backoff=(1.0, 5.0, 30.0))
EVENT_ID = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6fa2")
ORIGINAL = {
    "ce-specversion": "1.0",
    "ce-id": str(EVENT_ID),
    "ce-type": "org.mastery.grading.AssessmentRecorded.v2",
    "ce-tenantid": "district-7",
    "Content-Type": "application/json",
    "Nats-Msg-Id": str(EVENT_ID),
    "Nats-Expected-Stream": "MASTERY_GRADING",
}


def parked() -> dict[str, str]:
    """Return the headers of an event parked by the reports consumer."""
    return dead_letter_headers(
        ORIGINAL,
        consumer="reports-mastery",
        error="ProjectionBrokenError",
        deliveries=3,
        subject="mastery.grading.district-7.AssessmentRecorded",
        stream="MASTERY_GRADING",
        stream_sequence=42,
    )


def test_retry_delay_follows_the_backoff_and_repeats_its_last_step() -> None:
    """Each failed delivery waits the next step of the backoff, and the last
    step repeats once the steps run out."""
    delays = [retry_delay(delivered, SETTINGS.backoff) for delivered in range(1, 6)]

    assert delays == [1.0, 5.0, 30.0, 30.0, 30.0]


def test_retry_delay_is_zero_without_a_backoff() -> None:
    """A consumer configured without backoff redelivers at once."""
    assert retry_delay(4, ()) == 0.0


def test_handler_error_is_retried_until_its_last_delivery_then_parked() -> None:
    """A failing handler is retried on deliveries before ``max_deliver`` and
    given up on at ``max_deliver``."""
    error = ValueError("bad level")

    decisions = [next_attempt(error, n, settings=SETTINGS) for n in (1, 2, 3, 4)]

    assert decisions == [1.0, 5.0, None, None]


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "refused"),
        asyncpg.exceptions.SerializationError("could not serialize"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock"),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed mid-query"),
        asyncpg.exceptions.AdminShutdownError("terminating"),
        asyncpg.exceptions.TooManyConnectionsError("too many"),
        ConnectionLostError("reports-mastery", EVENT_ID),
        TimeoutError(),
    ],
)
def test_database_trouble_is_retried_however_often_it_was_delivered(
    error: Exception,
) -> None:
    """Failures of the surroundings never park a message: they are retried
    with the longest delay once the backoff runs out."""
    assert is_transient(error)
    assert next_attempt(error, 50, settings=SETTINGS) == 30.0


def test_errors_of_the_handlers_own_making_are_not_transient() -> None:
    """A bug or a constraint the data breaks will fail again, so it counts
    towards ``max_deliver``."""
    assert not is_transient(ValueError("bad level"))
    assert not is_transient(asyncpg.exceptions.UniqueViolationError("dup"))
    assert not is_transient(KeyError("student"))


def test_consumer_config_lets_the_consumer_enforce_max_deliver() -> None:
    """The server redelivers without limit and acks explicitly; one filter
    subject goes in ``filter_subject``, several in ``filter_subjects``."""
    one = consumer_config("reports", ["mastery.grading.>"], settings=SETTINGS)
    two = consumer_config(
        "reports", ["mastery.grading.>", "mastery.objectives.>"], settings=SETTINGS
    )

    assert one.max_deliver == -1
    assert one.durable_name == "reports"
    assert one.ack_wait == SETTINGS.ack_wait
    assert one.filter_subject == "mastery.grading.>"
    assert one.filter_subjects is None
    assert two.filter_subject is None
    assert two.filter_subjects == ["mastery.grading.>", "mastery.objectives.>"]


def test_parked_message_keeps_its_cloudevent_headers_and_says_why() -> None:
    """The parked copy carries the original CloudEvents headers, the
    consumer, error class, delivery count and origin, and none of the
    ``Nats-`` headers that would steer its new publish."""
    headers = parked()

    assert headers["ce-id"] == str(EVENT_ID)
    assert headers["ce-type"] == ORIGINAL["ce-type"]
    assert headers["Mastery-Dead-Letter-Consumer"] == "reports-mastery"
    assert headers["Mastery-Dead-Letter-Error"] == "ProjectionBrokenError"
    assert headers["Mastery-Dead-Letter-Deliveries"] == "3"
    assert headers["Mastery-Dead-Letter-Stream"] == "MASTERY_GRADING"
    assert headers["Mastery-Dead-Letter-Sequence"] == "42"
    assert "Nats-Expected-Stream" not in headers
    assert headers["Nats-Msg-Id"] == "reports-mastery.MASTERY_GRADING.42"


def test_replay_restores_the_original_headers_under_a_fresh_message_id() -> None:
    """A replay drops the dead-letter headers and publishes under an id that
    differs from the first publish's, which JetStream may still remember."""
    headers = replay_headers(parked(), sequence=7)

    assert not any(name.startswith("Mastery-Dead-Letter-") for name in headers)
    assert headers["ce-id"] == str(EVENT_ID)
    assert headers["Content-Type"] == "application/json"
    assert headers["Nats-Msg-Id"] == f"{EVENT_ID}.replay.7"


def test_describe_reads_a_parked_message_without_its_payload() -> None:
    """An operator's view of a parked message comes from its headers."""
    moment = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)

    letter = describe(9, parked(), parked_at=moment)

    assert letter.sequence == 9
    assert letter.consumer == "reports-mastery"
    assert letter.deliveries == 3
    assert letter.stream_sequence == 42
    assert letter.event_id == str(EVENT_ID)
    assert letter.tenant_id == "district-7"
    assert letter.parked_at == moment


def test_describe_refuses_a_message_without_dead_letter_headers() -> None:
    """A message somebody published by hand on the dead-letter subject is
    reported, not guessed at."""
    with pytest.raises(DeadLetterError) as raised:
        describe(9, ORIGINAL, parked_at=None)

    assert raised.value.sequence == 9
