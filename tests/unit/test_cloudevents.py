"""Stored events as CloudEvents 1.0: binary mode on NATS, structured JSON for
export, and back to the same envelope."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mastery_events.cloudevents import (
    EXTENSIONS,
    CloudEventError,
    from_nats,
    from_structured,
    service_of,
    to_nats_headers,
    to_structured,
)
from mastery_events.contract import CONTRACT
from mastery_events.envelope import Envelope
from tests.unit.event_samples import (
    CORRELATION_ID,
    EVENT_ID,
    FRACTIONS_QUIZ,
    MONDAY_MORNING,
    sample_envelope,
)

EVENTS_DOC = Path(__file__).parents[2] / "docs" / "events.md"
CORE_ATTRIBUTES = {
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
}
ATTRIBUTE_NAME = re.compile(r"[a-z0-9]{1,20}")
CAUSED = sample_envelope(
    causation_id=UUID("0190a5c4-1e00-7000-8000-0000000ca5e0"),
    occurred_at=datetime(
        2026, 1, 5, 11, 30, 0, 250, tzinfo=timezone(timedelta(hours=2))
    ),
    transaction_id=2**40,
    position=2**33,
    traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
)
UNUSUAL_TEXT = sample_envelope(
    actor='Mme "Édith" Ducharme 100%',
    stream_id="assessment with spaces/and/slashes",
)


def _binary(envelope: Envelope) -> tuple[dict[str, str], bytes]:
    return to_nats_headers(envelope, service="grading"), bytes(envelope.payload)


def test_binary_headers_carry_the_cloudevents_attributes() -> None:
    """The headers name the spec version, id, source, versioned type,
    subject and time of the event, as the NATS binding maps them."""
    headers, _ = _binary(sample_envelope())

    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-id"] == str(EVENT_ID)
    assert headers["ce-source"] == "/mastery/grading/tenants/springfield-usd"
    assert headers["ce-type"] == "org.mastery.grading.AssessmentRecorded.v2"
    assert headers["ce-subject"] == "assessment-0190a5c4-1e00-7000-8000-00000000a55e"
    assert datetime.fromisoformat(headers["ce-time"]) == MONDAY_MORNING
    assert headers["ce-datacontenttype"] == "application/json"
    assert headers["ce-correlationid"] == str(CORRELATION_ID)


def test_binary_headers_mark_binary_mode_and_deduplicate_by_event_id() -> None:
    """Content-Type is plain JSON, which a receiver reads as binary mode,
    and Nats-Msg-Id is the event id, so JetStream drops a republish."""
    headers, _ = _binary(sample_envelope())

    assert headers["Content-Type"] == "application/json"
    assert headers["Nats-Msg-Id"] == str(EVENT_ID)


def test_extension_names_follow_the_cloudevents_naming_rules() -> None:
    """Every attribute beyond the core ones is lower-case letters and digits,
    at most 20 characters, and is one of the documented extensions."""
    headers, _ = _binary(CAUSED)
    attributes = {
        name.removeprefix("ce-") for name in headers if name.startswith("ce-")
    }
    extensions = attributes - CORE_ATTRIBUTES

    assert all(ATTRIBUTE_NAME.fullmatch(name) for name in attributes)
    assert extensions == set(EXTENSIONS)


def test_causation_is_left_out_when_there_is_none() -> None:
    """An event nothing caused has no ce-causationid header at all, rather
    than an empty one."""
    headers, _ = _binary(sample_envelope())

    assert "ce-causationid" not in headers


def test_header_values_are_percent_encoded_as_the_binding_asks() -> None:
    """Space, double quote, percent and non-ASCII characters are encoded as
    UTF-8 bytes in upper-case hex; other printable ASCII is left alone."""
    headers, _ = _binary(UNUSUAL_TEXT)

    assert headers["ce-actor"] == "Mme%20%22%C3%89dith%22%20Ducharme%20100%25"
    assert headers["ce-subject"] == "assessment%20with%20spaces/and/slashes"
    for value in headers.values():
        assert all("!" <= character <= "~" for character in value)
        assert '"' not in value


def test_the_bindings_own_example_value_decodes() -> None:
    """The NATS binding's example, "Euro %E2%82%AC ..." with an emoji,
    decodes to the text it stands for."""
    headers, body = _binary(sample_envelope())
    headers["ce-actor"] = "Euro%20%E2%82%AC%20%F0%9F%98%80"

    assert from_nats(headers, body).actor == "Euro \u20ac \U0001f600"


@pytest.mark.parametrize(
    "envelope",
    [sample_envelope(), CAUSED, UNUSUAL_TEXT],
    ids=["plain", "caused-64-bit", "unusual-text"],
)
def test_envelope_survives_binary_mode_exactly(envelope: Envelope) -> None:
    """Envelope to headers and body and back gives an equal envelope, with
    the payload bytes unchanged and the time zone offset kept."""
    headers, body = _binary(envelope)

    received = from_nats(headers, body)

    assert received == envelope
    assert bytes(received.payload) == bytes(envelope.payload)
    assert received.occurred_at.utcoffset() == envelope.occurred_at.utcoffset()


@given(actor=st.text(min_size=1))
def test_any_actor_survives_binary_mode(actor: str) -> None:
    """Whatever text names the actor (padding, quotes, percent signs,
    control characters, any script) reads back as that text."""
    headers, body = _binary(sample_envelope(actor=actor))

    assert from_nats(headers, body).actor == actor


def test_padding_around_a_header_value_is_not_part_of_it() -> None:
    """Spaces and tabs a sender put around a value are not the value."""
    headers, body = _binary(sample_envelope())
    headers["ce-actor"] = " \tms-frizzle \t"

    assert from_nats(headers, body).actor == "ms-frizzle"


def test_header_names_are_read_case_insensitively() -> None:
    """The binding says NATS header names are case-insensitive, so
    CE-TYPE is read like ce-type."""
    headers, body = _binary(sample_envelope())
    shouted = {name.upper(): value for name, value in headers.items()}

    assert from_nats(shouted, body) == sample_envelope()


def test_quoted_header_values_from_older_senders_are_unquoted() -> None:
    """A double-quoted value with a backslash escape, as older versions of
    the binding allowed, is read as the text inside the quotes."""
    headers, body = _binary(sample_envelope())
    headers["ce-actor"] = '"Mme \\"Edith\\" Ducharme"'

    assert from_nats(headers, body).actor == 'Mme "Edith" Ducharme'


@pytest.mark.parametrize(
    "envelope",
    [sample_envelope(), CAUSED, UNUSUAL_TEXT],
    ids=["plain", "caused-64-bit", "unusual-text"],
)
def test_envelope_survives_structured_mode_exactly(envelope: Envelope) -> None:
    """Envelope to structured JSON and back gives an equal envelope whose
    payload is the stored bytes, not a re-encoding of them."""
    document = to_structured(envelope, service="grading")

    received = from_structured(document)

    assert received == envelope
    assert bytes(received.payload) == bytes(envelope.payload)


def test_structured_mode_keeps_payload_bytes_that_a_re_encoding_would_change() -> None:
    """Spacing and escapes that decoding and encoding again would drop stay
    in the payload byte for byte."""
    stored = b'{ "type" : "ReportViewed", "note" : "caf\\u00e9",\n  "n": 1E2 }'
    envelope = sample_envelope(payload=msgspec.Raw(stored))

    received = from_structured(to_structured(envelope, service="grading"))

    assert bytes(received.payload) == stored


def test_structured_document_from_elsewhere_keeps_its_own_data_bytes() -> None:
    """An indented export gives back the bytes of its data member, the same
    JSON as the stored payload but not the same spacing; both decode to the
    same event."""
    compact = to_structured(sample_envelope(), service="grading")
    indented = msgspec.json.format(compact, indent=2)

    received = from_structured(indented)

    assert bytes(received.payload) != bytes(sample_envelope().payload)
    assert msgspec.json.decode(received.payload) == msgspec.json.decode(
        sample_envelope().payload
    )
    assert CONTRACT.decode(received) == FRACTIONS_QUIZ


def test_structured_numbers_beyond_32_bits_travel_as_strings() -> None:
    """Position and transaction id are Strings in JSON, since a CloudEvents
    Integer is 32-bit; the stream version stays an Integer."""
    document = msgspec.json.decode(to_structured(CAUSED, service="grading"))

    assert document["transactionid"] == "1099511627776"
    assert document["position"] == "8589934592"
    assert document["streamversion"] == 1


def test_structured_message_on_nats_is_read_as_structured() -> None:
    """A NATS message whose Content-Type is application/cloudevents+json is
    read from its body, as the binding says a receiver must."""
    document = to_structured(CAUSED, service="grading")
    headers = {"Content-Type": "application/cloudevents+json; charset=utf-8"}

    assert from_nats(headers, document) == CAUSED


def test_service_is_read_from_the_type_header() -> None:
    """The publishing service is the one the ce-type names."""
    headers, _ = _binary(sample_envelope())

    assert service_of(headers) == "grading"
    with pytest.raises(CloudEventError):
        service_of({"ce-type": "com.example.Other.v1"})


def test_an_envelope_without_a_time_zone_cannot_be_written() -> None:
    """A naive time is no RFC 3339 timestamp, so writing it raises instead of
    sending a time a reader would misplace."""
    naive = sample_envelope(occurred_at=datetime(2026, 1, 5, 9, 30))

    with pytest.raises(CloudEventError, match="time zone"):
        to_nats_headers(naive, service="grading")
    with pytest.raises(CloudEventError, match="time zone"):
        to_structured(naive, service="grading")


def _garbled(name: str, value: str | None) -> dict[str, str]:
    headers, _ = _binary(sample_envelope())
    if value is None:
        del headers[name]
    else:
        headers[name] = value
    return headers


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ce-specversion", None),
        ("ce-specversion", "0.3"),
        ("ce-id", None),
        ("ce-id", "not-a-uuid"),
        ("ce-type", "com.example.AssessmentRecorded.v2"),
        ("ce-type", "org.mastery.grading.AssessmentRecorded"),
        ("ce-type", "org.mastery.grading.AssessmentRecorded.v2\n"),
        ("ce-time", "yesterday"),
        ("ce-time", "2026-01-05T09:30:00"),
        ("ce-recordedat", None),
        ("ce-position", "forty-two"),
        ("ce-position", "-42"),
        ("ce-tenantid", None),
        ("ce-source", "/mastery/grading/tenants/shelbyville"),
        ("ce-datacontenttype", "text/plain"),
        ("ce-actor", "%C0%A0"),
        ("ce-correlationid", None),
    ],
)
def test_malformed_binary_message_raises_cloud_event_error(
    name: str, value: str | None
) -> None:
    """A missing, garbled or inconsistent header raises CloudEventError, not
    whatever the parser underneath happens to raise."""
    headers = _garbled(name, value)

    with pytest.raises(CloudEventError):
        from_nats(headers, bytes(sample_envelope().payload))


def test_message_without_headers_raises_cloud_event_error() -> None:
    """A message with no headers at all is no binary-mode CloudEvent."""
    with pytest.raises(CloudEventError):
        from_nats(None, b"{}")


def _structured(**changes: object) -> bytes:
    document = msgspec.json.decode(to_structured(sample_envelope(), service="grading"))
    for name, value in changes.items():
        if value is None:
            del document[name]
        else:
            document[name] = value
    return msgspec.json.encode(document)


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"{",
        b"[1, 2, 3]",
        b'"an event"',
        _structured(specversion=None),
        _structured(specversion="0.3"),
        _structured(data=None),
        _structured(type=42),
        _structured(id=["0190a5c4-1e00-7abc-8def-000000000001"]),
        _structured(streamversion=True),
        _structured(streamversion=1.5),
        _structured(time="2026-01-05"),
        _structured(tenantid="shelbyville"),
    ],
    ids=lambda document: document.decode()[:60] or "empty",
)
def test_malformed_structured_document_raises_cloud_event_error(
    document: bytes,
) -> None:
    """Broken JSON, a non-object, a missing attribute or one of the wrong
    type raises CloudEventError."""
    with pytest.raises(CloudEventError):
        from_structured(document)


def _example(name: str) -> str:
    text = EVENTS_DOC.read_text()
    found = re.search(
        rf"<!-- example: {name} -->\n```\w+\n(?P<body>.*?)\n```", text, re.DOTALL
    )
    assert found is not None, f"docs/events.md has no example {name!r}"
    return found["body"]


def test_the_binary_example_in_the_docs_is_what_the_code_writes() -> None:
    """The headers and body shown in docs/events.md are exactly those of the
    sample envelope, and read back into it."""
    shown = dict(
        line.split(": ", 1) for line in _example("binary-headers").splitlines()
    )
    body = _example("binary-body").encode()

    assert shown == to_nats_headers(sample_envelope(), service="grading")
    assert from_nats(shown, body) == sample_envelope()


def test_the_structured_example_in_the_docs_reads_back() -> None:
    """The indented structured event in docs/events.md reads back into the
    sample envelope's attributes and the same event."""
    received = from_structured(_example("structured").encode())

    assert msgspec.structs.replace(received, payload=msgspec.Raw(b"{}")) == (
        msgspec.structs.replace(sample_envelope(), payload=msgspec.Raw(b"{}"))
    )
    assert CONTRACT.decode(received) == FRACTIONS_QUIZ


def test_utc_times_keep_their_instant_whatever_the_zone() -> None:
    """A time written with an offset and read back names the same instant
    as the UTC one the store returned."""
    shifted = sample_envelope(
        recorded_at=datetime(2026, 1, 5, 4, 30, tzinfo=timezone(timedelta(hours=-5)))
    )
    headers, body = _binary(shifted)

    assert from_nats(headers, body).recorded_at == datetime(
        2026, 1, 5, 9, 30, tzinfo=UTC
    )


def test_a_structured_event_carries_further_extensions_and_reads_back() -> None:
    """A chain hash given as an extension is one more attribute of the
    document, and the envelope read back is unchanged by it."""
    envelope = sample_envelope()

    document = to_structured(
        envelope, service="grading", extensions={"chainhash": "9f2c"}
    )

    assert msgspec.json.decode(document)["chainhash"] == "9f2c"
    assert from_structured(document) == envelope


@pytest.mark.parametrize("name", ["position", "chain_hash", "ChainHash", ""])
def test_an_extension_that_clashes_or_is_misnamed_is_refused(name: str) -> None:
    """An extension may not replace an attribute of the envelope, nor break
    the specification's rule of lower-case letters and digits."""
    with pytest.raises(CloudEventError, match="further extension"):
        to_structured(sample_envelope(), service="grading", extensions={name: "x"})
