"""NATS subjects of the bus: built from service, tenant and type, parsed
back, and closed to anything that would widen a subscription."""

from __future__ import annotations

import pytest

from mastery_events.errors import EventsError
from mastery_events.subjects import (
    EventSubject,
    InvalidSubjectError,
    InvalidTenantError,
    Subjects,
    check_tenant_id,
)

SUBJECTS = Subjects()


def test_event_subject_names_prefix_service_tenant_and_type() -> None:
    """An event is published on <prefix>.<service>.<tenant>.<EventType>."""
    subject = SUBJECTS.event("grading", "springfield-usd", "AssessmentRecorded")

    assert subject == "mastery.grading.springfield-usd.AssessmentRecorded"


def test_event_subject_parses_back_into_its_parts() -> None:
    """Parsing a subject gives back the service, tenant and type it was built
    from, and tenant_of picks the tenant out."""
    subject = SUBJECTS.event("reports", "district-9", "ShareLinkRevoked")

    assert SUBJECTS.parse(subject) == EventSubject(
        service="reports", tenant_id="district-9", event_type="ShareLinkRevoked"
    )
    assert SUBJECTS.tenant_of(subject) == "district-9"


def test_a_prefix_of_several_tokens_builds_and_parses() -> None:
    """A dotted prefix, such as one a test run uses, is kept whole and
    stripped whole when parsing."""
    subjects = Subjects(prefix="ci.run-7")
    subject = subjects.event("grading", "springfield-usd", "AssessmentVoided")

    assert subject == "ci.run-7.grading.springfield-usd.AssessmentVoided"
    assert subjects.tenant_of(subject) == "springfield-usd"


@pytest.mark.parametrize(
    "subject",
    [
        "other.grading.springfield-usd.AssessmentRecorded",
        "mastery.grading.springfield-usd",
        "mastery.grading.springfield-usd.AssessmentRecorded.extra",
        "mastery.grading.*.AssessmentRecorded",
        "mastery.grading.springfield-usd.>",
        "mastery.*.springfield-usd.AssessmentRecorded",
        "mastery.grading.Springfield.AssessmentRecorded",
        "mastery.grading..AssessmentRecorded",
    ],
)
def test_parse_refuses_what_is_not_one_event_subject(subject: str) -> None:
    """Another prefix, the wrong number of tokens, a wildcard or a bad
    tenant is refused with an EventsError, never half-parsed."""
    with pytest.raises(EventsError):
        SUBJECTS.parse(subject)


@pytest.mark.parametrize(
    "tenant_id",
    ["a", "9lives", "springfield-usd", "district-42", "a" * 63],
)
def test_lower_case_slugs_are_valid_tenant_ids(tenant_id: str) -> None:
    """Lower-case letters, digits and hyphens, up to 63 characters, make a
    tenant id."""
    assert check_tenant_id(tenant_id) == tenant_id


@pytest.mark.parametrize(
    "tenant_id",
    [
        "",
        "springfield.usd",
        "springfield usd",
        "*",
        ">",
        "spring*",
        "Springfield",
        "SPRINGFIELD",
        "-springfield",
        "springfield_usd",
        "a" * 64,
        "springfield\n",
        "école",
    ],
)
def test_tenant_ids_that_would_break_a_subject_are_refused(tenant_id: str) -> None:
    """Dots, spaces, wildcards, upper case, an empty id, a leading hyphen,
    a trailing newline and non-ASCII letters are all refused."""
    with pytest.raises(InvalidTenantError) as raised:
        check_tenant_id(tenant_id)

    assert raised.value.tenant_id == tenant_id


def test_building_a_subject_checks_the_tenant() -> None:
    """A bad tenant id never reaches a subject."""
    with pytest.raises(InvalidTenantError):
        SUBJECTS.event("grading", "springfield.usd", "AssessmentRecorded")


@pytest.mark.parametrize(
    ("service", "event_type"),
    [
        ("grading", "Assessment.Recorded"),
        ("grading", "*"),
        ("grading", ">"),
        ("grading", ""),
        ("grad ing", "AssessmentRecorded"),
    ],
)
def test_building_a_subject_refuses_tokens_that_widen_it(
    service: str, event_type: str
) -> None:
    """A service or type with a dot, a wildcard, a space or nothing at all
    would publish somewhere else, so it is refused."""
    with pytest.raises(InvalidSubjectError):
        SUBJECTS.event(service, "springfield-usd", event_type)


@pytest.mark.parametrize("prefix", ["mastery.*", "mastery.>", "", "a..b", "my prefix"])
def test_a_prefix_with_wildcards_or_empty_tokens_is_refused(prefix: str) -> None:
    """The prefix is literal tokens too; anything else is refused when the
    Subjects is made."""
    with pytest.raises(InvalidSubjectError):
        Subjects(prefix=prefix)


def test_service_wildcard_and_stream_name() -> None:
    """A service's stream takes every subject under the service, and is named
    in capitals with underscores, as JetStream allows."""
    assert SUBJECTS.service_events("grading") == "mastery.grading.>"
    assert SUBJECTS.stream_name("grading") == "MASTERY_GRADING"
    assert Subjects(prefix="ci.run-7").stream_name("reports") == "CI_RUN_7_REPORTS"


def test_dead_letter_subjects_name_the_consumer() -> None:
    """A consumer parks messages under its own name; ``*`` names them all."""
    assert SUBJECTS.dead_letter("reports-projector") == (
        "mastery.deadletter.reports-projector"
    )
    assert SUBJECTS.dead_letter("*") == "mastery.deadletter.*"
    with pytest.raises(InvalidSubjectError):
        SUBJECTS.dead_letter("reports.projector")


def test_channel_addresses_leave_a_placeholder_for_the_variable_part() -> None:
    """The AsyncAPI addresses are the subjects with ``{tenant}`` and
    ``{consumer}`` where the variable token goes."""
    address = SUBJECTS.event_address("grading", "AssessmentRecorded")

    assert address == "mastery.grading.{tenant}.AssessmentRecorded"
    assert SUBJECTS.dead_letter_address() == "mastery.deadletter.{consumer}"
