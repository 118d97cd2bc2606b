"""Map stored events to CloudEvents 1.0 and back.

On NATS the binary content mode of the CloudEvents NATS protocol binding is
used: every attribute travels as its own ``ce-`` header, its value
percent-encoded as the binding requires, and the message body is the
payload's JSON exactly as stored. ``Content-Type: application/json`` tells a
receiver the message is in binary mode; one whose ``Content-Type`` starts
with ``application/cloudevents`` is read as structured instead.

For export the structured JSON format is used: one object per event, with the
payload under ``data``. The stored bytes are embedded as they are, and read
back as the exact bytes of the ``data`` member rather than decoded and
encoded again, so both mappings give back the stored payload byte for byte.
A document written by other software comes back with that software's bytes
for ``data``: the same JSON value, not necessarily the same spacing.

The envelope's own fields travel as extension attributes, whose names the
specification limits to lower-case letters and digits. ``position`` and
``transactionid`` are Strings, not Integers: they are 64-bit numbers, and a
CloudEvents Integer is a 32-bit one. ``traceparent``, when the append was
traced, is the attribute of the CloudEvents distributed-tracing extension.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, unquote_to_bytes
from uuid import UUID

import msgspec

from mastery_events.envelope import Envelope
from mastery_events.errors import EventsError

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
HEADER_PREFIX = "ce-"
CONTENT_TYPE_HEADER = "Content-Type"
MESSAGE_ID_HEADER = "Nats-Msg-Id"
_PREFIX_LENGTH = len(HEADER_PREFIX)
_CONTENT_TYPE_KEY = CONTENT_TYPE_HEADER.lower()
TYPE_PATTERN = re.compile(
    r"^org\.mastery\.(?P<service>[a-z-]+)\.(?P<name>[A-Za-z]+)\.v(?P<version>\d+)$"
)
EXTENSIONS = (
    "tenantid",
    "streamversion",
    "position",
    "transactionid",
    "recordedat",
    "actor",
    "correlationid",
    "causationid",
    "traceparent",
)

# The binding percent-encodes space, '"', '%' and everything outside
# printable ASCII; the rest of printable ASCII passes through.
_HEADER_SAFE = "".join(chr(code) for code in range(0x21, 0x7F) if chr(code) not in '"%')
_QUOTED_PAIR = re.compile(r"\\(.)")
_DIGITS = re.compile(r"[0-9]+")
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
_Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
_members = msgspec.json.Decoder(dict[str, msgspec.Raw])


class CloudEventError(EventsError):
    """Raised when a message is not a CloudEvent of this contract, or an
    envelope cannot be written as one."""


def cloudevent_type(service: str, event_type: str, event_version: int) -> str:
    """Return the CloudEvents ``type`` of an event type at a version."""
    return f"org.mastery.{service}.{event_type}.v{event_version}"


def cloudevent_source(service: str, tenant_id: str) -> str:
    """Return the CloudEvents ``source``: the service, within one tenant."""
    return f"/mastery/{service}/tenants/{tenant_id}"


def to_nats_headers(envelope: Envelope, *, service: str) -> dict[str, str]:
    """Return the NATS headers of ``envelope`` in binary content mode,
    including ``Nats-Msg-Id`` so JetStream drops a republished event."""
    headers = {
        f"{HEADER_PREFIX}{name}": quote(str(value), safe=_HEADER_SAFE)
        for name, value in _attributes(envelope, service).items()
    }
    headers[CONTENT_TYPE_HEADER] = CONTENT_TYPE
    headers[MESSAGE_ID_HEADER] = str(envelope.event_id)

    return headers


def to_structured(
    envelope: Envelope,
    *,
    service: str,
    extensions: Mapping[str, str] | None = None,
) -> bytes:
    """Return ``envelope`` as one CloudEvent in structured JSON format, with
    the stored payload bytes as its ``data`` and ``extensions`` among its
    attributes, after the envelope's own."""
    event: dict[str, Any] = dict(_attributes(envelope, service))
    for name, value in (extensions or {}).items():
        if name in event or _EXTENSION_NAME.fullmatch(name) is None:
            message = f"{name!r} cannot be a further extension attribute"
            raise CloudEventError(message)
        event[name] = value
    event["data"] = envelope.payload

    return msgspec.json.encode(event)


def from_nats(headers: Mapping[str, str] | None, data: bytes) -> Envelope:
    """Rebuild the envelope of a message received from NATS, in binary
    content mode or, when its ``Content-Type`` says so, structured."""
    if not headers:
        message = "message has no headers, so no CloudEvents attributes"
        raise CloudEventError(message)
    # One pass over the headers, as a consumer reads every message.
    content_type = ""
    encoded: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key.startswith(HEADER_PREFIX):
            encoded[key[_PREFIX_LENGTH:]] = value
        elif key == _CONTENT_TYPE_KEY:
            content_type = value
    if content_type.lower().startswith("application/cloudevents"):
        return from_structured(data)

    try:
        attributes = {name: _header_text(value) for name, value in encoded.items()}
    except ValueError as error:
        message = f"a ce- header is not percent-encoded UTF-8: {error}"
        raise CloudEventError(message) from error
    if attributes.get("specversion") != SPEC_VERSION:
        message = "message has no CloudEvents 1.0 ce-specversion header"
        raise CloudEventError(message)

    return _envelope(attributes, msgspec.Raw(data))


def from_structured(document: bytes) -> Envelope:
    """Rebuild the envelope of one CloudEvent in structured JSON format,
    keeping the exact bytes of its ``data`` as the payload."""
    try:
        members = _members.decode(document)
        attributes = {
            name: msgspec.json.decode(value)
            for name, value in members.items()
            if name != "data"
        }
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        message = f"document is not one JSON object: {error}"
        raise CloudEventError(message) from error
    if attributes.get("specversion") != SPEC_VERSION:
        message = "document is not a CloudEvents 1.0 event"
        raise CloudEventError(message)
    data = members.get("data")
    if data is None:
        message = "document has no JSON data, so no payload"
        raise CloudEventError(message)

    # A Raw slice keeps the whole document alive; the copy owns its bytes.
    return _envelope(attributes, data.copy())


def service_of(headers: Mapping[str, str]) -> str:
    """Return the service that published a message, from its ce-type."""
    by_name = {name.lower(): value for name, value in headers.items()}
    match = TYPE_PATTERN.fullmatch(by_name.get(f"{HEADER_PREFIX}type", ""))
    if match is None:
        message = "message has no ce-type of this contract"
        raise CloudEventError(message)
    return match["service"]


def _attributes(envelope: Envelope, service: str) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "specversion": SPEC_VERSION,
        "id": str(envelope.event_id),
        "source": cloudevent_source(service, envelope.tenant_id),
        "type": cloudevent_type(service, envelope.event_type, envelope.event_version),
        "subject": envelope.stream_id,
        "time": _timestamp(envelope.occurred_at, "occurred_at"),
        "datacontenttype": CONTENT_TYPE,
        "tenantid": envelope.tenant_id,
        "streamversion": envelope.stream_version,
        "position": str(envelope.position),
        "transactionid": str(envelope.transaction_id),
        "recordedat": _timestamp(envelope.recorded_at, "recorded_at"),
        "actor": envelope.actor,
        "correlationid": str(envelope.correlation_id),
    }
    if envelope.causation_id is not None:
        attributes["causationid"] = str(envelope.causation_id)
    if envelope.traceparent is not None:
        attributes["traceparent"] = envelope.traceparent
    return attributes


def _timestamp(moment: datetime, field: str) -> str:
    if moment.utcoffset() is None:
        message = f"{field} has no time zone, so it is no RFC 3339 timestamp"
        raise CloudEventError(message)
    return moment.isoformat()


def _header_text(value: str) -> str:
    # Printable ASCII with no '%', no '"' and no padding is its own text:
    # the usual case, as the binding percent-encodes only a few characters
    # and most attributes are ids, numbers, times and names.
    if (
        value.isascii()
        and "%" not in value
        and '"' not in value
        and value == value.strip(" \t")
    ):
        return value
    value = value.strip(" \t")
    # Older senders may quote a value instead of percent-encoding it.
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
    return unquote_to_bytes(value).decode("utf-8")


def _envelope(attributes: Mapping[str, object], payload: msgspec.Raw) -> Envelope:
    try:
        service, event_type, event_version = _type(attributes)
        tenant_id = _string(attributes, "tenantid")
        _check_source(attributes, service, tenant_id=tenant_id)
        _check_json(attributes)
        causation_id = None
        if attributes.get("causationid") is not None:
            causation_id = UUID(_string(attributes, "causationid"))
        traceparent = None
        if attributes.get("traceparent") is not None:
            traceparent = _string(attributes, "traceparent")

        return Envelope(
            event_id=UUID(_string(attributes, "id")),
            event_type=event_type,
            event_version=event_version,
            tenant_id=tenant_id,
            stream_id=_string(attributes, "subject"),
            stream_version=_integer(attributes, "streamversion"),
            position=_integer(attributes, "position"),
            transaction_id=_integer(attributes, "transactionid"),
            occurred_at=_time(attributes, "time"),
            recorded_at=_time(attributes, "recordedat"),
            actor=_string(attributes, "actor"),
            correlation_id=UUID(_string(attributes, "correlationid")),
            causation_id=causation_id,
            payload=payload,
            traceparent=traceparent,
        )
    except (KeyError, ValueError, TypeError, msgspec.ValidationError) as error:
        message = f"CloudEvent lacks or garbles an attribute: {error}"
        raise CloudEventError(message) from error


def _type(attributes: Mapping[str, object]) -> tuple[str, str, int]:
    kind = _string(attributes, "type")
    match = TYPE_PATTERN.fullmatch(kind)
    if match is None:
        message = f"CloudEvents type {kind!r} is not one of this contract's"
        raise CloudEventError(message)
    return match["service"], match["name"], int(match["version"])


def _check_source(
    attributes: Mapping[str, object], service: str, *, tenant_id: str
) -> None:
    # A source naming another tenant than tenantid means the attributes were
    # put together wrongly; trusting either could cross tenants.
    source = _string(attributes, "source")
    if source != cloudevent_source(service, tenant_id):
        message = f"source {source!r} is not {service!r} of tenant {tenant_id!r}"
        raise CloudEventError(message)


def _check_json(attributes: Mapping[str, object]) -> None:
    # An absent datacontenttype means JSON in the JSON format, and messages
    # published before the header was added lack it.
    content_type = attributes.get("datacontenttype", CONTENT_TYPE)
    media_type = str(content_type).split(";", 1)[0].strip().lower()
    if media_type != CONTENT_TYPE:
        message = f"data of content type {content_type!r} is not JSON"
        raise CloudEventError(message)


def _string(attributes: Mapping[str, object], name: str) -> str:
    value = attributes[name]
    if not isinstance(value, str):
        message = f"attribute {name!r} is not a string"
        raise TypeError(message)
    return value


def _integer(attributes: Mapping[str, object], name: str) -> int:
    value = attributes[name]
    # Headers carry every number as text; JSON carries Integers as numbers.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    message = f"attribute {name!r} is not a whole number"
    raise ValueError(message)


def _time(attributes: Mapping[str, object], name: str) -> datetime:
    return msgspec.convert(_string(attributes, name), _Timestamp)
