"""The committed AsyncAPI document: current with the code, complete for the
contract, and consistent within itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mastery_events.asyncapi import REGENERATE, build_document, main, render
from mastery_events.cloudevents import to_nats_headers
from mastery_events.contract import CONTRACT, EventType
from mastery_events.envelope import Envelope
from mastery_events.subjects import Subjects
from tests.unit.event_samples import CORRELATION_ID, sample_envelope

DOCUMENT = Path(__file__).parents[2] / "docs" / "asyncapi.json"
EVENT_TYPES = list(CONTRACT)
PLACEHOLDER = re.compile(r"\{([^}]+)\}")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The committed document, parsed."""
    parsed: dict[str, Any] = msgspec.json.decode(DOCUMENT.read_bytes())
    return parsed


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = document
    for part in ref[2:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref} runs into a non-object at {key!r}"
        assert key in node, f"{ref} does not resolve: no {key!r}"
        node = node[key]
    return node


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: value.replace("#/$defs/", "#/components/schemas/")
            if key == "$ref"
            else _rewrite_refs(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def test_the_committed_document_is_what_the_code_generates() -> None:
    """docs/asyncapi.json is byte for byte what the generator writes now, so
    an event type added or changed without regenerating fails here."""
    generated = render(build_document(CONTRACT, Subjects()))

    assert DOCUMENT.read_bytes() == generated, (
        f"docs/asyncapi.json is stale; regenerate it with: {REGENERATE}"
    )


def test_the_document_declares_asyncapi_3(document: dict[str, Any]) -> None:
    """The document says it is AsyncAPI 3.0.0, with a title and version."""
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"]
    assert document["info"]["version"]


def test_the_server_is_nats(document: dict[str, Any]) -> None:
    """Every server the document names speaks NATS."""
    protocols = {server["protocol"] for server in document["servers"].values()}

    assert protocols == {"nats"}


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda found: found.name)
def test_every_event_type_has_its_channel_message_and_operation(
    document: dict[str, Any], event_type: EventType
) -> None:
    """Each event type has a channel on its subject with the tenant as a
    parameter, a message with its versioned CloudEvents type, and a send
    operation tagged with its service."""
    name, service = event_type.name, event_type.service
    channel = document["channels"][name]
    message = _resolve(document, channel["messages"][name]["$ref"])
    operation = document["operations"][f"publish{name}"]

    assert channel["address"] == f"mastery.{service}.{{tenant}}.{name}"
    assert set(channel["parameters"]) == {"tenant"}
    assert message["x-event-version"] == event_type.version
    assert message["x-cloudevents-type"] == (
        f"org.mastery.{service}.{name}.v{event_type.version}"
    )
    assert (
        message["headers"]["properties"]["ce-type"]["const"]
        == (message["x-cloudevents-type"])
    )
    assert operation["action"] == "send"
    assert operation["channel"] == {"$ref": f"#/channels/{name}"}
    assert operation["tags"] == [{"name": service}]


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda found: found.name)
def test_every_message_payload_is_its_structs_json_schema(
    document: dict[str, Any], event_type: EventType
) -> None:
    """A message's payload schema, and every schema it refers to, is what
    msgspec.json.schema gives for the payload Struct, as JSON."""
    schema = msgspec.json.schema(event_type.payload)
    # Through JSON, as the document went: a tuple default becomes a list.
    expected = msgspec.json.decode(msgspec.json.encode(schema))
    message = document["components"]["messages"][event_type.name]
    schemas = document["components"]["schemas"]

    assert message["payload"] == _rewrite_refs({"$ref": expected["$ref"]})
    for def_name, def_schema in expected["$defs"].items():
        assert schemas[def_name] == _rewrite_refs(def_schema)


def test_assessment_recorded_is_described_at_version_2_with_its_evidence(
    document: dict[str, Any],
) -> None:
    """The upcast event appears at its current version, whose payload has
    the evidence object rather than the old title."""
    message = document["components"]["messages"]["AssessmentRecorded"]
    payload = _resolve(document, message["payload"]["$ref"])
    evidence = _resolve(document, payload["properties"]["evidence"]["$ref"])

    assert message["x-event-version"] == 2
    assert "evidence" in payload["required"]
    assert "evidence_title" not in payload["properties"]
    assert evidence["title"] == "Evidence"


def test_every_ref_in_the_document_resolves(document: dict[str, Any]) -> None:
    """Each $ref points at something that exists in the document itself."""
    refs = list(_refs(document))

    assert refs
    for ref in refs:
        _resolve(document, ref)


def test_operations_send_messages_of_the_channel_they_name(
    document: dict[str, Any],
) -> None:
    """Every operation's channel exists, and its messages are that channel's
    own, as AsyncAPI 3 requires."""
    for operation_id, operation in document["operations"].items():
        channel_ref = operation["channel"]["$ref"]
        _resolve(document, channel_ref)
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel_ref}/messages/"), operation_id
            _resolve(document, message["$ref"])


def test_every_message_and_channel_is_used(document: dict[str, Any]) -> None:
    """No channel lacks an operation and no component message lacks a
    channel, so the document has nothing left over."""
    refs = set(_refs(document))
    operated = {op["channel"]["$ref"] for op in document["operations"].values()}

    assert operated == {f"#/channels/{name}" for name in document["channels"]}
    for name in document["components"]["messages"]:
        assert f"#/components/messages/{name}" in refs


def test_channel_parameters_match_the_placeholders_of_the_address(
    document: dict[str, Any],
) -> None:
    """Each {placeholder} of an address has a parameter, and each parameter
    a placeholder."""
    for name, channel in document["channels"].items():
        placeholders = set(PLACEHOLDER.findall(channel["address"]))

        assert placeholders == set(channel.get("parameters", {})), name


def test_the_dead_letter_channel_is_described(document: dict[str, Any]) -> None:
    """Consumers park messages on mastery.deadletter.{consumer}, and the
    document says so."""
    channel = document["channels"]["DeadLetter"]

    assert channel["address"] == "mastery.deadletter.{consumer}"
    assert document["operations"]["parkDeadLetter"]["action"] == "send"


def _check_string(schema: dict[str, Any], value: str) -> None:
    if "const" in schema:
        assert value == schema["const"]
    if "pattern" in schema:
        assert re.search(schema["pattern"], value), (schema["pattern"], value)
    if schema.get("format") == "uuid":
        assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", value)
    if schema.get("format") == "date-time":
        assert datetime.fromisoformat(value).tzinfo is not None
    assert len(value) >= schema.get("minLength", 0)


@pytest.mark.parametrize(
    "envelope",
    [
        sample_envelope(),
        sample_envelope(causation_id=CORRELATION_ID, actor="Mme Ducharme"),
    ],
    ids=["uncaused", "caused"],
)
def test_the_headers_schema_describes_the_headers_written(
    document: dict[str, Any], envelope: Envelope
) -> None:
    """The headers the code writes for an AssessmentRecorded are all in its
    schema, every required one is there, and each value fits."""
    headers = to_nats_headers(envelope, service="grading")
    schema = document["components"]["messages"]["AssessmentRecorded"]["headers"]

    assert set(headers) <= set(schema["properties"])
    assert set(schema["required"]) <= set(headers)
    for name, value in headers.items():
        _check_string(schema["properties"][name], value)


def test_check_mode_tells_a_stale_file_from_a_current_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check exits 1 naming the regenerate command when the file differs,
    and 0 once the generator has written it."""
    output = tmp_path / "asyncapi.json"
    output.write_text("{}\n")

    stale = main(["--check", "--output", str(output)])
    written = main(["--output", str(output)])
    current = main(["--check", "--output", str(output)])

    assert (stale, written, current) == (1, 0, 0)
    assert REGENERATE in capsys.readouterr().err
    assert output.read_bytes() == DOCUMENT.read_bytes()
