"""Which event types exist, which service publishes each, and how an older
version of a payload becomes the current one."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec

from mastery_events.envelope import Envelope, Event
from mastery_events.errors import ContractError, UnknownEventTypeError

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class EventType(msgspec.Struct, frozen=True, kw_only=True):
    """One event type of the contract at its current version."""

    name: str
    version: int
    service: str
    stream: str
    payload: type[Event]
    summary: str


def event_name(payload: type[Event]) -> str:
    """Return the tag that names ``payload``'s type on the wire."""
    tag = payload.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


class Registry:
    """The event types of the contract, looked up by name, and the upcasters
    that carry stored payloads from their version to the current one."""

    def __init__(self) -> None:
        self._types: dict[str, EventType] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {}

    def add(
        self,
        payload: type[Event],
        *,
        service: str,
        stream: str,
    ) -> None:
        """Register ``payload`` as published by ``service`` on ``stream``."""
        name = event_name(payload)
        if name in self._types:
            message = f"event type {name!r} is registered twice"
            raise ContractError(message)
        summary = (payload.__doc__ or name).strip().splitlines()[0]
        self._types[name] = EventType(
            name=name,
            version=payload.version,
            service=service,
            stream=stream,
            payload=payload,
            summary=summary,
        )
        self._decoders[name] = msgspec.json.Decoder(payload)

    def upcaster(self, name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register the decorated function as the step that turns version
        ``from_version`` of ``name`` into the next version."""

        def register(step: Upcaster) -> Upcaster:
            if (name, from_version) in self._upcasters:
                message = (
                    f"two upcasters turn {name!r} version {from_version} "
                    "into the next version"
                )
                raise ContractError(message)
            self._upcasters[(name, from_version)] = step
            return step

        return register

    def __iter__(self) -> Iterator[EventType]:
        return iter(self._types.values())

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def get(self, name: str) -> EventType:
        """Return the event type called ``name``."""
        try:
            return self._types[name]
        except KeyError:
            raise UnknownEventTypeError(name, 0) from None

    def of(self, payload: Event) -> EventType:
        """Return the event type of a payload instance."""
        return self.get(event_name(type(payload)))

    def services(self) -> Iterable[str]:
        """Return the services that publish events, each once."""
        return sorted({event_type.service for event_type in self})

    def missing_upcasters(self) -> list[tuple[str, int]]:
        """Return each ``(name, version)`` older than its type's current
        version that no upcaster carries forward, so a start-up check or a
        test can catch the gap before a stored event does."""
        return [
            (event_type.name, version)
            for event_type in self
            for version in range(1, event_type.version)
            if (event_type.name, version) not in self._upcasters
        ]

    def decode(self, envelope: Envelope) -> Event:
        """Decode an envelope's payload at the current version of its type."""
        return self.decode_payload(
            envelope.event_type, envelope.event_version, envelope.payload
        )

    def decode_payload(self, name: str, version: int, data: bytes) -> Event:
        """Decode stored JSON ``data`` of ``name`` at ``version``, upcasting it
        step by step when it is older than the current version."""
        event_type = self._types.get(name)
        if event_type is None or version > event_type.version or version < 1:
            raise UnknownEventTypeError(name, version)
        if version == event_type.version:
            decoded: Event = self._decoders[name].decode(data)
            return decoded

        fields: dict[str, Any] = msgspec.json.decode(data)
        for step_version in range(version, event_type.version):
            step = self._upcasters.get((name, step_version))
            if step is None:
                message = (
                    f"no upcaster turns {name!r} version {step_version} "
                    f"into version {step_version + 1}"
                )
                raise ContractError(message)
            fields = step(fields)
        fields["type"] = name

        return msgspec.convert(fields, event_type.payload)
