"""The JetStream streams of the bus, set up by code when a process starts.

Each service's events live in one stream, ``<PREFIX>_<SERVICE>``, on the
subjects ``<prefix>.<service>.>``. Messages a consumer gave up on are parked
in one dead-letter stream, ``<PREFIX>_DEADLETTER``, on
``<prefix>.deadletter.>``. Setting a stream up is safe to repeat and safe to
race: a stream that exists is left alone when its settings match, and
brought in line when they do not.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import msgspec
import structlog
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig, StreamInfo
from nats.js.errors import BadRequestError, NotFoundError

from mastery_events.errors import EventsError
from mastery_events.subjects import ANCHORS_NAME, Subjects

DEAD_LETTER = "deadletter"

logger = structlog.get_logger(__name__)


class StreamSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How a stream keeps its messages.

    ``duplicate_window`` (seconds) is how long JetStream remembers a
    ``Nats-Msg-Id``: an event republished within it, after a relay crashed
    between the publish ack and its checkpoint, is dropped as a duplicate.
    ``max_age`` (seconds) bounds how long messages are kept; ``None`` keeps
    them until the stream's other limits are reached. An ``append_only``
    stream refuses to delete or purge messages, through any client.
    """

    duplicate_window: float = 120.0
    storage: Literal["file", "memory"] = "file"
    replicas: int = 1
    max_age: float | None = None
    append_only: bool = False


class StreamSetupError(EventsError):
    """Raised when a stream exists with a setting that cannot be changed in
    place, such as its storage type, so an operator has to move it."""

    def __init__(self, stream: str, *, setting: str, found: str, wanted: str) -> None:
        self.stream = stream
        self.setting = setting
        self.found = found
        self.wanted = wanted
        message = (
            f"stream {stream!r} has {setting} {found!r}, not {wanted!r}; "
            "it cannot be changed in place"
        )
        super().__init__(message)


def dead_letter_stream_name(subjects: Subjects) -> str:
    """Return the stream that keeps every consumer's dead letters."""
    return subjects.stream_name(DEAD_LETTER)


def dead_letter_subjects(subjects: Subjects) -> str:
    """Return the wildcard subject of every consumer's dead letters."""
    return f"{subjects.prefix}.{DEAD_LETTER}.>"


def anchor_stream_name(subjects: Subjects) -> str:
    """Return the stream that keeps every service's seal anchors."""
    return subjects.stream_name(ANCHORS_NAME)


async def ensure_anchor_stream(
    js: JetStreamContext, *, subjects: Subjects, replicas: int = 1
) -> StreamInfo:
    """Create the seal anchors' stream, append-only and kept for good, or
    bring it in line, so a sealer can anchor and an auditor compare."""
    settings = StreamSettings(replicas=replicas, append_only=True)
    return await _ensure(
        js,
        anchor_stream_name(subjects),
        [f"{subjects.prefix}.{ANCHORS_NAME}.>"],
        settings=settings,
    )


async def ensure_stream(
    js: JetStreamContext,
    service: str,
    *,
    subjects: Subjects,
    settings: StreamSettings | None = None,
) -> StreamInfo:
    """Create ``service``'s event stream, or bring an existing one in line
    with ``settings``, so publishers and consumers find it ready."""
    return await _ensure(
        js,
        subjects.stream_name(service),
        [subjects.service_events(service)],
        settings=settings or StreamSettings(),
    )


async def ensure_dead_letter_stream(
    js: JetStreamContext,
    *,
    subjects: Subjects,
    settings: StreamSettings | None = None,
) -> StreamInfo:
    """Create the dead-letter stream, or bring it in line with ``settings``,
    so consumers can park messages they give up on."""
    return await _ensure(
        js,
        dead_letter_stream_name(subjects),
        [dead_letter_subjects(subjects)],
        settings=settings or StreamSettings(),
    )


async def _ensure(
    js: JetStreamContext,
    name: str,
    subject_filters: list[str],
    *,
    settings: StreamSettings,
) -> StreamInfo:
    wanted = _config(name, subject_filters, settings)
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        try:
            created = await js.add_stream(wanted)
        except BadRequestError:
            # Another process created it between our look and our create.
            info = await js.stream_info(name)
        else:
            logger.info("stream.created", stream=name, subjects=subject_filters)
            return created

    found = info.config
    if _matches(found, wanted):
        return info
    # The server answers with plain strings where the client has enums.
    storage = StorageType(found.storage or StorageType.FILE)
    if storage != wanted.storage:
        raise StreamSetupError(
            name, setting="storage", found=storage.value, wanted=settings.storage
        )

    # Keep what we do not own (descriptions, limits an operator set).
    updated = await js.update_stream(
        dataclasses.replace(
            found,
            subjects=wanted.subjects,
            duplicate_window=wanted.duplicate_window,
            num_replicas=wanted.num_replicas,
            max_age=wanted.max_age,
            deny_delete=wanted.deny_delete,
            deny_purge=wanted.deny_purge,
        )
    )
    logger.info("stream.updated", stream=name, subjects=subject_filters)

    return updated


def _config(
    name: str, subject_filters: list[str], settings: StreamSettings
) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=subject_filters,
        storage=StorageType(settings.storage),
        num_replicas=settings.replicas,
        duplicate_window=settings.duplicate_window,
        # The server reads a max age of zero as "no limit".
        max_age=settings.max_age or 0.0,
        deny_delete=settings.append_only,
        deny_purge=settings.append_only,
    )


def _matches(found: StreamConfig, wanted: StreamConfig) -> bool:
    return (
        sorted(found.subjects or []) == sorted(wanted.subjects or [])
        and StorageType(found.storage or StorageType.FILE) == wanted.storage
        and (found.num_replicas or 1) == wanted.num_replicas
        and math.isclose(found.duplicate_window, wanted.duplicate_window)
        and math.isclose(found.max_age or 0.0, wanted.max_age or 0.0)
        and bool(found.deny_delete) == bool(wanted.deny_delete)
        and bool(found.deny_purge) == bool(wanted.deny_purge)
    )
