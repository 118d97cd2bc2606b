"""The relay's pure decisions: what JetStream's replies mean, how far a
checkpoint may move, and how long to wait before trying again."""

from __future__ import annotations

from mastery_events.publisher import (
    Ack,
    NoStreamError,
    PublishRejectedError,
    confirmed_prefix,
    read_reply,
)
from mastery_events.relay import backoff


def test_reply_with_stream_and_sequence_is_an_ack() -> None:
    """A stored message's reply names its stream and sequence."""
    reply = read_reply(None, b'{"stream":"MASTERY_GRADING","seq":42}')

    assert reply == Ack(stream="MASTERY_GRADING", seq=42)


def test_reply_for_a_known_message_id_is_a_duplicate_ack() -> None:
    """A message JetStream already holds is acked with the earlier sequence."""
    reply = read_reply(None, b'{"stream":"MASTERY_GRADING","seq":7,"duplicate":true}')

    assert reply == Ack(stream="MASTERY_GRADING", seq=7, duplicate=True)


def test_wrong_last_sequence_is_a_refusal_out_of_sequence() -> None:
    """A message whose expected sequence is not the stream's end is refused,
    and the refusal says it was out of sequence."""
    reply = read_reply(
        None,
        b'{"error":{"code":400,"err_code":10071,'
        b'"description":"wrong last sequence: 250"}}',
    )

    assert isinstance(reply, PublishRejectedError)
    assert reply.out_of_sequence
    assert reply.code == 400


def test_no_responders_status_means_no_stream() -> None:
    """A 503 status header means no stream listens on the subject."""
    reply = read_reply({"Status": "503"}, b"")

    assert isinstance(reply, NoStreamError)


def test_garbled_reply_is_a_refusal_not_an_ack() -> None:
    """A reply that is not JetStream's JSON never counts as stored."""
    reply = read_reply(None, b"+OK")

    assert isinstance(reply, PublishRejectedError)
    assert not reply.out_of_sequence


def test_checkpoint_stops_at_the_first_unconfirmed_message() -> None:
    """Acks after a failure do not count: the checkpoint may only cover the
    unbroken run of acks at the front."""
    ack = Ack(stream="S", seq=1)
    outcomes = [
        ack,
        ack,
        None,
        ack,
        PublishRejectedError(code=400, err_code=1, description="full"),
    ]

    assert confirmed_prefix(outcomes) == 2
    assert confirmed_prefix([]) == 0
    assert confirmed_prefix([TimeoutError(), ack]) == 0


def test_backoff_doubles_from_the_first_pause_up_to_the_cap() -> None:
    """Retries wait 0.1, 0.2, 0.4 ... seconds and never more than the cap."""
    pauses = [backoff(attempt, initial=0.1, maximum=1.0) for attempt in range(1, 7)]

    assert pauses == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
