"""The contract's registry: decoding stored payloads, upcasting older
versions, and refusing what the code does not know."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
import pytest

from mastery_events.contract import CONTRACT, Registry
from mastery_events.contract.grading import AssessmentRecorded, Evidence
from mastery_events.envelope import Event
from mastery_events.errors import ContractError, UnknownEventTypeError
from tests.unit.event_samples import (
    ASSESSMENT_ID,
    FRACTIONS_QUIZ,
    MONDAY_MORNING,
    OBJECTIVE_ID,
    SCALE_ID,
    sample_envelope,
    sample_events,
)

# As the grading service stored it before evidence had a kind.
STORED_V1_ASSESSMENT = b"""{
  "type": "AssessmentRecorded",
  "assessment_id": "0190a5c4-1e00-7000-8000-00000000a55e",
  "student_id": "student-ada",
  "objective_id": "0190a5c4-1e00-7000-8000-0000000000b1",
  "scale_id": "0190a5c4-1e00-7000-8000-00000000005c",
  "scale_version": 1,
  "level": 3.0,
  "mark": null,
  "assessed_at": "2026-01-05T09:30:00Z",
  "assessed_by": "teacher-krabappel",
  "evidence_title": "Fractions exit ticket",
  "comment": "Shown on the board"
}"""


class LessonPlanned(Event, frozen=True, kw_only=True):
    """A lesson was planned: a made-up event at version 3, for registries of
    the tests' own."""

    version: ClassVar[int] = 3

    topic: str
    minutes: int
    steps: tuple[str, ...] = ()


def _lesson_registry() -> Registry:
    registry = Registry()
    registry.add(LessonPlanned, service="planning", stream="lesson")
    return registry


def test_stored_v1_assessment_decodes_to_v2_with_evidence_from_its_title() -> None:
    """A version 1 AssessmentRecorded comes out as the version 2 Struct, its
    old title now the title of an evidence of unspecified kind."""
    decoded = CONTRACT.decode_payload("AssessmentRecorded", 1, STORED_V1_ASSESSMENT)

    assert decoded == AssessmentRecorded(
        assessment_id=ASSESSMENT_ID,
        student_id="student-ada",
        objective_id=OBJECTIVE_ID,
        scale_id=SCALE_ID,
        scale_version=1,
        level=3.0,
        assessed_at=MONDAY_MORNING,
        assessed_by="teacher-krabappel",
        evidence=Evidence(title="Fractions exit ticket", kind="unspecified"),
        comment="Shown on the board",
    )


def test_decode_reads_type_and_version_from_the_envelope() -> None:
    """Decoding an envelope upcasts by the version the envelope records, not
    by the payload's shape."""
    envelope = sample_envelope(
        event_version=1, payload=msgspec.Raw(STORED_V1_ASSESSMENT)
    )

    decoded = CONTRACT.decode(envelope)

    assert isinstance(decoded, AssessmentRecorded)
    assert decoded.evidence == Evidence(title="Fractions exit ticket")


@pytest.mark.parametrize(
    "event", sample_events(), ids=lambda event: type(event).__name__
)
def test_current_version_payload_round_trips(event: Event) -> None:
    """A payload stored at its type's current version decodes to an equal
    event."""
    event_type = CONTRACT.of(event)
    stored = msgspec.json.encode(event)

    decoded = CONTRACT.decode_payload(event_type.name, event_type.version, stored)

    assert decoded == event


def test_samples_cover_every_event_type_of_the_contract() -> None:
    """The round-trip test above has one sample of every registered type, so
    a new type cannot go untested."""
    sampled = {CONTRACT.of(event).name for event in sample_events()}

    assert sampled == {event_type.name for event_type in CONTRACT}


def test_unknown_event_type_is_refused() -> None:
    """A stored type the contract has never heard of raises
    UnknownEventTypeError naming it."""
    with pytest.raises(UnknownEventTypeError) as raised:
        CONTRACT.decode_payload("HomeworkEaten", 1, b'{"type":"HomeworkEaten"}')

    assert raised.value.event_type == "HomeworkEaten"
    assert raised.value.event_version == 1


@pytest.mark.parametrize("version", [3, 0])
def test_version_the_code_cannot_know_is_refused(version: int) -> None:
    """A version newer than the code (written by a newer producer), or below
    1, raises UnknownEventTypeError rather than guessing."""
    stored = msgspec.json.encode(FRACTIONS_QUIZ)

    with pytest.raises(UnknownEventTypeError) as raised:
        CONTRACT.decode_payload("AssessmentRecorded", version, stored)

    assert raised.value.event_version == version


def test_missing_upcaster_step_raises_contract_error() -> None:
    """With a step from 1 to 2 but none from 2 to 3, a version 1 payload
    raises ContractError naming the missing step."""
    registry = _lesson_registry()

    @registry.upcaster("LessonPlanned", from_version=1)
    def _minutes_from_hours(fields: dict[str, Any]) -> dict[str, Any]:
        fields["minutes"] = fields.pop("hours") * 60
        return fields

    with pytest.raises(ContractError, match="version 2 into version 3"):
        registry.decode_payload("LessonPlanned", 1, b'{"topic":"Tides","hours":1}')
    assert registry.missing_upcasters() == [("LessonPlanned", 2)]


def test_upcasters_run_one_step_at_a_time_in_order() -> None:
    """A version 1 payload goes through the 1->2 step, then the 2->3 step;
    a version 2 payload only through the second."""
    registry = _lesson_registry()

    @registry.upcaster("LessonPlanned", from_version=1)
    def _minutes_from_hours(fields: dict[str, Any]) -> dict[str, Any]:
        fields["minutes"] = fields.pop("hours") * 60
        return fields

    @registry.upcaster("LessonPlanned", from_version=2)
    def _steps_from_outline(fields: dict[str, Any]) -> dict[str, Any]:
        fields["steps"] = fields.pop("outline").split("; ")
        return fields

    from_one = registry.decode_payload(
        "LessonPlanned", 1, b'{"topic":"Tides","hours":2,"outline":"moon; sea"}'
    )
    from_two = registry.decode_payload(
        "LessonPlanned", 2, b'{"topic":"Tides","minutes":45,"outline":"moon"}'
    )

    assert from_one == LessonPlanned(topic="Tides", minutes=120, steps=("moon", "sea"))
    assert from_two == LessonPlanned(topic="Tides", minutes=45, steps=("moon",))
    assert registry.missing_upcasters() == []


def test_contract_has_an_upcaster_for_every_older_version() -> None:
    """Every version below a type's current one can be carried forward, so
    no stored event of the contract becomes unreadable."""
    assert CONTRACT.missing_upcasters() == []


def test_registering_a_type_twice_raises() -> None:
    """Adding the same payload type again raises ContractError, whichever
    service claims it."""
    registry = _lesson_registry()

    with pytest.raises(ContractError, match="registered twice"):
        registry.add(LessonPlanned, service="grading", stream="lesson")


def test_registering_two_upcasters_for_one_step_raises() -> None:
    """A second upcaster for the same type and version raises ContractError
    instead of silently replacing the first."""
    registry = _lesson_registry()
    registry.upcaster("LessonPlanned", from_version=1)(lambda fields: fields)

    with pytest.raises(ContractError, match="two upcasters"):
        registry.upcaster("LessonPlanned", from_version=1)(lambda fields: fields)


def test_unknown_fields_at_the_current_version_are_tolerated() -> None:
    """A stored payload with a field this code does not know (written by a
    newer producer that added it) still decodes."""
    fields = msgspec.to_builtins(FRACTIONS_QUIZ)
    fields["room"] = "B12"
    stored = msgspec.json.encode(fields)

    decoded = CONTRACT.decode_payload("AssessmentRecorded", 2, stored)

    assert decoded == FRACTIONS_QUIZ


def test_unknown_fields_survive_upcasting_without_harm() -> None:
    """A stored version 1 payload with an unknown field upcasts and decodes
    as if the field were absent."""
    fields = msgspec.json.decode(STORED_V1_ASSESSMENT)
    fields["room"] = "B12"
    with_room = msgspec.json.encode(fields)

    decoded = CONTRACT.decode_payload("AssessmentRecorded", 1, with_room)

    assert decoded == CONTRACT.decode_payload(
        "AssessmentRecorded", 1, STORED_V1_ASSESSMENT
    )


def test_each_event_type_is_registered_with_its_service_and_version() -> None:
    """The registry knows AssessmentRecorded as the grading service's, at
    version 2, on the assessment stream."""
    event_type = CONTRACT.get("AssessmentRecorded")

    assert (event_type.service, event_type.stream, event_type.version) == (
        "grading",
        "assessment",
        2,
    )
    assert list(CONTRACT.services()) == ["grading", "objectives", "reports"]
