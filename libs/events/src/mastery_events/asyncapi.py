"""Describe the event bus as an AsyncAPI 3.0 document, built from the code.

The document is generated from the contract's registry and the bus's subject
scheme, never written by hand, so it cannot drift from what the services
publish. Regenerate the committed copy from the repository root with::

    uv run python -m mastery_events.asyncapi

and check it is current with ``--check``. The document is JSON, written with
msgspec: AsyncAPI reads JSON as well as YAML, msgspec is already a runtime
dependency while PyYAML is only a development one, and one fixed rendering
keeps the committed file byte-identical wherever it is generated.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import msgspec

from mastery_events.anchors import Anchor
from mastery_events.cloudevents import (
    CONTENT_TYPE,
    CONTENT_TYPE_HEADER,
    HEADER_PREFIX,
    MESSAGE_ID_HEADER,
    SPEC_VERSION,
    cloudevent_source,
    cloudevent_type,
)
from mastery_events.contract import CONTRACT, EventType, Registry
from mastery_events.subjects import TENANT_ID, Subjects

ASYNCAPI_VERSION = "3.0.0"
DOCUMENT_PATH = Path("docs/asyncapi.json")
REGENERATE = "uv run python -m mastery_events.asyncapi"
SCHEMAS = "#/components/schemas/"
DEAD_LETTER = "DeadLetter"
SEAL_ANCHOR = "SealAnchor"

_UUID: dict[str, Any] = {"type": "string", "format": "uuid"}
_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_COUNT: dict[str, Any] = {"type": "string", "pattern": "^[1-9][0-9]*$"}
_TEXT: dict[str, Any] = {"type": "string", "minLength": 1}
_TRACEPARENT: dict[str, Any] = {
    "type": "string",
    "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
}


def build_document(registry: Registry, subjects: Subjects) -> dict[str, Any]:
    """Return the AsyncAPI document of every event type in ``registry``, on
    the subjects ``subjects`` builds."""
    event_types = list(registry)
    payloads = [event_type.payload for event_type in event_types]
    _, schemas = msgspec.json.schema_components(
        [*payloads, Anchor], ref_template=SCHEMAS + "{name}"
    )

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type in event_types:
        name = event_type.name
        channels[name] = _event_channel(event_type, subjects)
        operations[f"publish{name}"] = _publish_operation(event_type)
        messages[name] = _event_message(event_type)
    channels[DEAD_LETTER] = _dead_letter_channel(subjects)
    operations[f"park{DEAD_LETTER}"] = _park_operation()
    messages[DEAD_LETTER] = _dead_letter_message()
    channels[SEAL_ANCHOR] = _anchor_channel(subjects)
    operations[f"anchor{SEAL_ANCHOR}"] = _anchor_operation()
    messages[SEAL_ANCHOR] = _anchor_message()

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": _info(registry, subjects),
        "defaultContentType": CONTENT_TYPE,
        "servers": _servers(),
        "channels": channels,
        "operations": operations,
        "components": {
            "parameters": _parameters(),
            "correlationIds": _correlation_ids(),
            "messages": messages,
            "schemas": dict(sorted(schemas.items())),
        },
    }


def render(document: dict[str, Any]) -> bytes:
    """Return ``document`` as indented JSON with a final newline, the form
    the committed file has."""
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the document to ``docs/asyncapi.json``, or with ``--check``
    report whether the committed file is current, so CI can refuse a stale
    one."""
    parser = argparse.ArgumentParser(
        prog="python -m mastery_events.asyncapi",
        description="Generate the AsyncAPI document of the mastery event bus.",
    )
    parser.add_argument("--output", type=Path, default=DOCUMENT_PATH)
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the file differs from what would be written",
    )
    arguments = parser.parse_args(argv)
    output: Path = arguments.output
    rendered = render(build_document(CONTRACT, Subjects()))

    if arguments.check:
        current = output.read_bytes() if output.exists() else b""
        if current != rendered:
            sys.stderr.write(f"{output} is stale; regenerate it with: {REGENERATE}\n")
            return 1
        return 0
    if not output.parent.is_dir():
        sys.stderr.write(f"{output.parent} does not exist; run from the repo root\n")
        return 2
    output.write_bytes(rendered)

    return 0


def _info(registry: Registry, subjects: Subjects) -> dict[str, Any]:
    services = list(registry.services())
    description = (
        "Every event the mastery services publish, as CloudEvents 1.0 in "
        "binary content mode: the attributes travel as `ce-` headers and the "
        "message body is the event's JSON payload exactly as stored. Events "
        f"are published on `{subjects.prefix}.<service>.<tenant>.<EventType>`, "
        "shown here with the default subject prefix; a deployment may set "
        "another. Each service's events are kept in a JetStream stream of "
        f"its own, such as `{subjects.stream_name(services[0])}`. Operations "
        "are written from the side of the service that publishes: the one "
        "named in their tag."
    )
    return {
        "title": "Mastery event bus",
        "version": package_version("mastery-events"),
        "description": description,
        "license": {
            "name": "Apache-2.0",
            "url": "https://www.apache.org/licenses/LICENSE-2.0",
        },
        "tags": [
            {"name": service, "description": f"Published by the {service} service."}
            for service in services
        ],
    }


def _servers() -> dict[str, Any]:
    return {
        "nats": {
            "host": "{host}",
            "protocol": "nats",
            "title": "NATS with JetStream",
            "description": (
                "The deployment's NATS server. Messages carry headers, so it "
                "must be NATS 2.2 or later; JetStream keeps each service's "
                "events and drops a republished event by its `Nats-Msg-Id`."
            ),
            "variables": {
                "host": {
                    "default": "localhost:4222",
                    "description": "Host and port of the NATS server.",
                }
            },
        }
    }


def _parameters() -> dict[str, Any]:
    return {
        "tenant": {
            "description": (
                "The tenant (school district) the event belongs to: 1-63 "
                "characters of a-z, 0-9 and '-', starting with a letter or "
                "digit. Consumers check it equals the `ce-tenantid` header."
            ),
            "examples": ["springfield-usd"],
        },
        "consumer": {
            "description": "The consumer that gave the message up.",
            "examples": ["reports-projector"],
        },
        "schema": {
            "description": "The service whose log the seal belongs to.",
            "examples": ["grading"],
        },
    }


def _correlation_ids() -> dict[str, Any]:
    return {
        "correlation": {
            "description": (
                "Shared by every event one request or command caused, across services."
            ),
            "location": f"$message.header#/{HEADER_PREFIX}correlationid",
        }
    }


def _event_channel(event_type: EventType, subjects: Subjects) -> dict[str, Any]:
    name = event_type.name
    return {
        "address": subjects.event_address(event_type.service, name),
        "title": name,
        "summary": event_type.summary,
        "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        "parameters": {"tenant": {"$ref": "#/components/parameters/tenant"}},
        "tags": [{"name": event_type.service}],
    }


def _publish_operation(event_type: EventType) -> dict[str, Any]:
    name = event_type.name
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{name}"},
        "messages": [{"$ref": f"#/channels/{name}/messages/{name}"}],
        "title": f"Publish {name}",
        "summary": (
            f"The {event_type.service} service publishes {name} from its "
            "outbox once the event is stored."
        ),
        "tags": [{"name": event_type.service}],
    }


def _event_message(event_type: EventType) -> dict[str, Any]:
    kind = cloudevent_type(event_type.service, event_type.name, event_type.version)
    return {
        "name": event_type.name,
        "title": f"{event_type.name} v{event_type.version}",
        "summary": event_type.summary,
        "contentType": CONTENT_TYPE,
        "correlationId": {"$ref": "#/components/correlationIds/correlation"},
        "headers": _headers(
            {"const": kind},
            source={"type": "string", "pattern": _source_pattern(event_type.service)},
            message_id=(
                "The event's id when the outbox publishes it, so JetStream "
                "drops a republished event within its duplicate window; a "
                "replay from the dead letters carries an id of its own."
            ),
        ),
        "payload": {"$ref": f"{SCHEMAS}{event_type.name}"},
        "tags": [{"name": event_type.service}],
        "x-cloudevents-type": kind,
        "x-event-version": event_type.version,
        "x-stream": event_type.stream,
    }


def _dead_letter_channel(subjects: Subjects) -> dict[str, Any]:
    return {
        "address": subjects.dead_letter_address(),
        "title": "Dead letters",
        "summary": "Messages a consumer gave up on, parked for an operator.",
        "messages": {DEAD_LETTER: {"$ref": f"#/components/messages/{DEAD_LETTER}"}},
        "parameters": {"consumer": {"$ref": "#/components/parameters/consumer"}},
    }


def _park_operation() -> dict[str, Any]:
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{DEAD_LETTER}"},
        "messages": [{"$ref": f"#/channels/{DEAD_LETTER}/messages/{DEAD_LETTER}"}],
        "title": "Park a message",
        "summary": (
            "A consumer parks a message it cannot apply, after its retries or "
            "at once when reading it fails, so its stream can move on."
        ),
    }


def _dead_letter_message() -> dict[str, Any]:
    any_type = r"^org\.mastery\.[a-z-]+\.[A-Za-z]+\.v[0-9]+$"
    return {
        "name": DEAD_LETTER,
        "title": "Dead letter",
        "summary": "A message a consumer gave up on.",
        "description": (
            "The original message's body and `ce-` headers, unchanged, plus "
            "headers the consumer adds to say who gave up, why, after how "
            "many deliveries and where the message came from."
        ),
        "contentType": CONTENT_TYPE,
        "correlationId": {"$ref": "#/components/correlationIds/correlation"},
        "headers": _headers(
            {"type": "string", "pattern": any_type},
            source={"type": "string", "pattern": _source_pattern("[a-z-]+")},
            message_id=(
                "Set by the consumer from where the message came from, so "
                "parking the same message twice keeps one copy."
            ),
        ),
        "payload": {
            "description": (
                "The payload of any event type, in the version it was "
                "published in; each event's own message has its current schema."
            )
        },
    }


def _anchor_channel(subjects: Subjects) -> dict[str, Any]:
    return {
        "address": subjects.anchor_address(),
        "title": "Seal anchors",
        "summary": (
            "Each tenant's newest seal, kept on a stream that refuses deletes "
            "and purges, for `mastery audit verify` to compare the log with."
        ),
        "messages": {SEAL_ANCHOR: {"$ref": f"#/components/messages/{SEAL_ANCHOR}"}},
        "parameters": {
            "schema": {"$ref": "#/components/parameters/schema"},
            "tenant": {"$ref": "#/components/parameters/tenant"},
        },
    }


def _anchor_operation() -> dict[str, Any]:
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{SEAL_ANCHOR}"},
        "messages": [{"$ref": f"#/channels/{SEAL_ANCHOR}/messages/{SEAL_ANCHOR}"}],
        "title": "Anchor a seal",
        "summary": (
            "Each service's sealer publishes a tenant's newest seal after "
            "sealing new events, so a log rewritten later, however "
            "consistently, no longer matches it."
        ),
    }


def _anchor_message() -> dict[str, Any]:
    return {
        "name": SEAL_ANCHOR,
        "title": "Seal anchor",
        "summary": "A tenant's newest seal in one service's log.",
        "contentType": CONTENT_TYPE,
        "headers": {
            "type": "object",
            "properties": {
                "Nats-Msg-Id": _described(
                    _TEXT,
                    "`<schema>.<tenant>.<seal number>`, so anchoring a seal "
                    "twice keeps one copy.",
                )
            },
        },
        "payload": {"$ref": f"{SCHEMAS}{Anchor.__name__}"},
    }


def _source_pattern(service: str) -> str:
    # ``service`` may itself be a pattern; the rest of a source is literal.
    tenant = TENANT_ID.pattern.removeprefix("^").removesuffix("$")
    return "^" + cloudevent_source(service, tenant) + "$"


def _headers(
    event_type: dict[str, Any],
    *,
    source: dict[str, Any],
    message_id: str,
) -> dict[str, Any]:
    """Return the schema of the headers ``cloudevents.to_nats_headers``
    writes, with the ``ce-type`` and ``ce-source`` schemas given; other
    headers, such as tracing ones, may come along."""
    ce = HEADER_PREFIX
    tenant = {"type": "string", "pattern": TENANT_ID.pattern}
    properties: dict[str, Any] = {
        f"{ce}specversion": _described({"const": SPEC_VERSION}, "CloudEvents version."),
        f"{ce}id": _described(_UUID, "The event's id, a UUIDv7."),
        f"{ce}source": _described(source, "The publishing service, in one tenant."),
        f"{ce}type": _described(event_type, "The event type and its version."),
        f"{ce}subject": _described(
            _TEXT, "The stream the event belongs to, percent-encoded."
        ),
        f"{ce}time": _described(_TIME, "When it happened: the envelope's occurred_at."),
        f"{ce}datacontenttype": _described(
            {"const": CONTENT_TYPE}, "The body is the payload's JSON."
        ),
        f"{ce}tenantid": _described(tenant, "The tenant; the subject names it too."),
        f"{ce}streamversion": _described(
            _COUNT, "The event's version within its stream, from 1."
        ),
        f"{ce}position": _described(
            _COUNT, "The event's place in its service's log, a 64-bit number."
        ),
        f"{ce}transactionid": _described(
            _COUNT,
            "The id of the transaction that stored it: the log's global order "
            "is (transactionid, position).",
        ),
        f"{ce}recordedat": _described(_TIME, "When the event store stored it."),
        f"{ce}actor": _described(
            _TEXT, "Who or what caused it, as an id, percent-encoded."
        ),
        f"{ce}correlationid": _described(_UUID, "Shared by one request's events."),
        f"{ce}causationid": _described(
            _UUID, "The event or command that caused this one, when known."
        ),
        f"{ce}traceparent": _described(
            _TRACEPARENT,
            "W3C trace context of the append, when it was traced "
            "(CloudEvents distributed-tracing extension).",
        ),
        CONTENT_TYPE_HEADER: _described(
            {"const": CONTENT_TYPE}, "Marks the message as binary content mode."
        ),
        MESSAGE_ID_HEADER: _described(_TEXT, message_id),
    }
    optional = {f"{ce}causationid", f"{ce}traceparent"}
    required = [name for name in properties if name not in optional]

    return {"type": "object", "properties": properties, "required": required}


def _described(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {**schema, "description": description}


if __name__ == "__main__":
    sys.exit(main())
