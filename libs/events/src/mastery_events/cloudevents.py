"""Map stored events to CloudEvents 1.0 and back.

On NATS the binary content mode is used (the CloudEvents NATS protocol
binding): attributes travel as ``ce-`` headers and the message body is the
payload's JSON exactly as stored. For export the structured JSON format is
used: one object per event, with the payload under ``data``.

The envelope's own fields travel as extension attributes, whose names the
specification limits to lower-case letters and digits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from mastery_events.envelope import Envelope
from mastery_events.errors import EventsError

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
TYPE_PATTERN = re.compile(
    r"^org\.mastery\.(?P<service>[a-z-]+)\.(?P<name>[A-Za-z]+)\.v(?P<version>\d+)$"
)


class CloudEventError(EventsError):
    """Raised when a message is not a CloudEvent of this contract."""


def cloudevent_type(service: str, event_type: str, event_version: int) -> str:
    """Return the CloudEvents ``type`` of an event type at a version."""
    return f"org.mastery.{service}.{event_type}.v{event_version}"


def cloudevent_source(service: str, tenant_id: str) -> str:
    """Return the CloudEvents ``source``: the service, within one tenant."""
    return f"/mastery/{service}/tenants/{tenant_id}"


def _attributes(envelope: Envelope, service: str) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "specversion": SPEC_VERSION,
        "id": str(envelope.event_id),
        "source": cloudevent_source(service, envelope.tenant_id),
        "type": cloudevent_type(service, envelope.event_type, envelope.event_version),
        "subject": envelope.stream_id,
        "time": envelope.occurred_at.isoformat(),
        "tenantid": envelope.tenant_id,
        "streamversion": envelope.stream_version,
        "position": envelope.position,
        "transactionid": envelope.transaction_id,
        "recordedat": envelope.recorded_at.isoformat(),
        "actor": envelope.actor,
        "correlationid": str(envelope.correlation_id),
    }
    if envelope.causation_id is not None:
        attributes["causationid"] = str(envelope.causation_id)
    return attributes


def to_nats_headers(envelope: Envelope, *, service: str) -> dict[str, str]:
    """Return the NATS headers of ``envelope`` in binary content mode,
    including ``Nats-Msg-Id`` so JetStream drops a republished event."""
    headers = {
        f"ce-{name}": str(value)
        for name, value in _attributes(envelope, service).items()
    }
    headers["Content-Type"] = CONTENT_TYPE
    headers["Nats-Msg-Id"] = str(envelope.event_id)
    return headers


def to_structured(envelope: Envelope, *, service: str) -> bytes:
    """Return ``envelope`` as one CloudEvent in structured JSON format."""
    event: dict[str, Any] = dict(_attributes(envelope, service))
    event["datacontenttype"] = CONTENT_TYPE
    event["data"] = envelope.payload
    return msgspec.json.encode(event)


def from_nats(headers: Mapping[str, str] | None, data: bytes) -> Envelope:
    """Rebuild the envelope of a message received in binary content mode."""
    if not headers or headers.get("ce-specversion") != SPEC_VERSION:
        message = "message has no CloudEvents 1.0 ce-specversion header"
        raise CloudEventError(message)
    attributes = {
        name.removeprefix("ce-"): value
        for name, value in headers.items()
        if name.startswith("ce-")
    }
    return _envelope(attributes, data)


def from_structured(document: bytes) -> Envelope:
    """Rebuild the envelope of one CloudEvent in structured JSON format."""
    attributes: dict[str, Any] = msgspec.json.decode(document)
    if attributes.get("specversion") != SPEC_VERSION:
        message = "document is not a CloudEvents 1.0 event"
        raise CloudEventError(message)
    data = msgspec.json.encode(attributes.pop("data", None))
    return _envelope(attributes, data)


def _envelope(attributes: Mapping[str, Any], data: bytes) -> Envelope:
    try:
        match = TYPE_PATTERN.match(attributes["type"])
        if match is None:
            message = f"CloudEvents type {attributes['type']!r} is not ours"
            raise CloudEventError(message)
        causation = attributes.get("causationid")
        return Envelope(
            event_id=UUID(attributes["id"]),
            event_type=match["name"],
            event_version=int(match["version"]),
            tenant_id=attributes["tenantid"],
            stream_id=attributes["subject"],
            stream_version=int(attributes["streamversion"]),
            position=int(attributes["position"]),
            transaction_id=int(attributes["transactionid"]),
            occurred_at=datetime.fromisoformat(attributes["time"]),
            recorded_at=datetime.fromisoformat(attributes["recordedat"]),
            actor=attributes["actor"],
            correlation_id=UUID(attributes["correlationid"]),
            causation_id=UUID(causation) if causation else None,
            payload=msgspec.Raw(data),
        )
    except (KeyError, ValueError) as error:
        message = f"CloudEvent lacks or garbles an attribute: {error}"
        raise CloudEventError(message) from error


def service_of(headers: Mapping[str, str]) -> str:
    """Return the service that published a message, from its ce-type."""
    match = TYPE_PATTERN.match(headers.get("ce-type", ""))
    if match is None:
        message = "message has no ce-type of this contract"
        raise CloudEventError(message)
    return match["service"]
