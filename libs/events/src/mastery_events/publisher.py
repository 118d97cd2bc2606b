"""Pipelined publishing to one JetStream stream, in an order it must keep.

Messages are sent one after another without waiting, and their acks come
back on an inbox of the publisher's own. Each message names the stream
sequence it has to follow (``Nats-Expected-Last-Sequence``), so when one is
lost on the way (a reconnect can drop what was in the socket and then send
what was still buffered) every later one is refused instead of overtaking
it. Each message after the first also names the message it follows
(``Nats-Expected-Last-Msg-Id``): a message some other client put on the
stream meanwhile can fill the place a refused one left, and the sequence
alone would then let the rest of the run through behind the gap. The
caller keeps the confirmed prefix and sends the rest again.

The client library's own asynchronous publish is not used: it leaves the
future of a refused message unresolved, and a refusal is exactly what this
publisher relies on.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from mastery_events.errors import EventsError

EXPECTED_LAST_SEQUENCE = "Nats-Expected-Last-Sequence"
EXPECTED_LAST_MESSAGE_ID = "Nats-Expected-Last-Msg-Id"
MESSAGE_ID = "Nats-Msg-Id"
EXPECTED_STREAM = "Nats-Expected-Stream"
STATUS = "Status"
NO_RESPONDERS = "503"
WRONG_LAST_SEQUENCE = 10071
WRONG_LAST_MESSAGE_ID = 10070


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One message to publish: subject, headers and body."""

    subject: str
    headers: dict[str, str]
    body: bytes


class Ack(msgspec.Struct, frozen=True, kw_only=True):
    """JetStream's confirmation that a message is stored: ``seq`` is its
    place in the stream, or the earlier copy's when ``duplicate``."""

    stream: str
    seq: int
    duplicate: bool = False


class _ApiError(msgspec.Struct, frozen=True):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _Reply(msgspec.Struct, frozen=True):
    stream: str | None = None
    seq: int | None = None
    duplicate: bool = False
    error: _ApiError | None = None


class PublishRejectedError(EventsError):
    """Raised when JetStream refuses to store a message, for instance because
    the stream does not end at the sequence the message expected."""

    def __init__(self, *, code: int, err_code: int, description: str) -> None:
        self.code = code
        self.err_code = err_code
        self.description = description
        message = f"JetStream refused the message ({err_code}): {description}"
        super().__init__(message)

    @property
    def out_of_sequence(self) -> bool:
        """Tell whether the stream had moved on from the expected sequence
        or did not end with the expected message."""
        return self.err_code in (WRONG_LAST_SEQUENCE, WRONG_LAST_MESSAGE_ID)


class NoStreamError(EventsError):
    """Raised when no stream answers for a subject, because the stream is
    missing or JetStream is not running."""


Outcome = Ack | BaseException | None
"""What became of one message: its ack, why it failed, or no answer."""


def read_reply(headers: Mapping[str, str] | None, data: bytes) -> Ack | EventsError:
    """Return the ack or the refusal that JetStream's reply carries."""
    if headers and headers.get(STATUS) == NO_RESPONDERS:
        return NoStreamError("no JetStream stream answered the publish")
    try:
        reply = msgspec.json.decode(data, type=_Reply)
    except msgspec.DecodeError:
        return PublishRejectedError(
            code=0, err_code=0, description="the reply is not JetStream's"
        )
    if reply.error is not None:
        return PublishRejectedError(
            code=reply.error.code,
            err_code=reply.error.err_code,
            description=reply.error.description,
        )
    if reply.stream is None or reply.seq is None:
        return PublishRejectedError(
            code=0, err_code=0, description="the ack names no stream or sequence"
        )

    return Ack(stream=reply.stream, seq=reply.seq, duplicate=reply.duplicate)


def confirmed_prefix(outcomes: Sequence[Outcome]) -> int:
    """Return how many leading messages JetStream stored: a checkpoint may
    move past those and no further."""
    count = 0
    for outcome in outcomes:
        if not isinstance(outcome, Ack):
            break
        count += 1

    return count


class OrderedPublisher:
    """Publish runs of messages to ``stream`` in order, without waiting for
    each ack before sending the next."""

    def __init__(self, connection: Client, stream: str, *, ack_timeout: float) -> None:
        self.connection = connection
        self.stream = stream
        self.ack_timeout = ack_timeout
        self._inbox = ""
        self._subscription: Subscription | None = None
        self._waiting: dict[str, asyncio.Future[Ack]] = {}
        self._tokens = itertools.count()

    async def publish(
        self, messages: Sequence[Message], *, stream_last: int
    ) -> list[Outcome]:
        """Send ``messages`` as the next ones after sequence ``stream_last``
        and return each one's outcome, waiting at most ``ack_timeout``."""
        if self._subscription is None:
            self._inbox = self.connection.new_inbox()
            self._subscription = await self.connection.subscribe(
                f"{self._inbox}.*", cb=self._on_reply
            )

        futures: list[asyncio.Future[Ack]] = []
        failure: BaseException | None = None
        loop = asyncio.get_running_loop()
        previous: Message | None = None
        try:
            for offset, message in enumerate(messages):
                token = str(next(self._tokens))
                future: asyncio.Future[Ack] = loop.create_future()
                self._waiting[token] = future
                futures.append(future)
                headers = dict(message.headers)
                headers[EXPECTED_STREAM] = self.stream
                headers[EXPECTED_LAST_SEQUENCE] = str(stream_last + offset)
                if previous is not None and MESSAGE_ID in previous.headers:
                    headers[EXPECTED_LAST_MESSAGE_ID] = previous.headers[MESSAGE_ID]
                previous = message
                try:
                    await self.connection.publish(
                        message.subject,
                        message.body,
                        reply=f"{self._inbox}.{token}",
                        headers=headers,
                    )
                except (nats.errors.Error, OSError) as error:
                    # What was sent may still be acked; nothing after it is.
                    futures.pop()
                    failure = error
                    break
            if futures:
                await asyncio.wait(futures, timeout=self.ack_timeout)
        finally:
            for future in futures:
                future.cancel()
            self._waiting.clear()

        outcomes: list[Outcome] = [_outcome(future) for future in futures]
        if failure is not None:
            outcomes.append(failure)

        return outcomes

    async def close(self) -> None:
        """Stop listening for acks."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None and not self.connection.is_closed:
            await subscription.unsubscribe()

    async def _on_reply(self, message: Msg) -> None:
        token = message.subject.rsplit(".", 1)[-1]
        future = self._waiting.pop(token, None)
        if future is None or future.done():
            return
        result = read_reply(message.headers, message.data)
        if isinstance(result, Ack):
            future.set_result(result)
        else:
            future.set_exception(result)


def _outcome(future: asyncio.Future[Ack]) -> Outcome:
    if future.cancelled():
        return None
    error = future.exception()
    if error is not None:
        return error

    return future.result()
