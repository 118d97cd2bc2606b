"""Who may read and write which record, and what a token's claims become."""

from __future__ import annotations

from typing import Any

import pytest

from mastery_events.access import (
    NotVisibleError,
    Owner,
    authorize,
    may,
    may_act,
)
from mastery_events.identity import (
    Identity,
    InvalidClaimsError,
    Role,
    identity_from_claims,
)

TENANT_WIDE = Owner(tenant_id="lakeside")
NORTH = Owner(tenant_id="lakeside", school_id="north")
ROOM_12 = Owner(tenant_id="lakeside", school_id="north", section_id="room-12")
ROOM_14 = Owner(tenant_id="lakeside", school_id="south", section_id="room-14")
RIVERSIDE_ROOM = Owner(tenant_id="riverside", section_id="room-12")


def person(*roles: Role, scopes: frozenset[str] = frozenset()) -> Identity:
    """Return a lakeside caller who teaches room 12 at North."""
    return Identity(
        subject="ms-frizzle",
        tenant_id="lakeside",
        roles=frozenset(roles),
        schools=frozenset({"north"}),
        sections=frozenset({"room-12"}),
        scopes=scopes,
    )


@pytest.mark.parametrize(
    ("roles", "owner", "reads", "writes"),
    [
        (("district_admin",), ROOM_14, True, True),
        (("district_admin",), RIVERSIDE_ROOM, False, False),
        (("teacher",), ROOM_12, True, True),
        (("teacher",), ROOM_14, False, False),
        (("teacher",), NORTH, True, False),
        (("teacher",), TENANT_WIDE, True, False),
        (("teacher",), RIVERSIDE_ROOM, False, False),
        (("school_leader",), NORTH, True, False),
        (("school_leader",), ROOM_12, True, False),
        (("school_leader",), ROOM_14, False, False),
        (("auditor",), ROOM_14, True, False),
        (("auditor",), RIVERSIDE_ROOM, False, False),
        (("service",), ROOM_14, False, False),
    ],
)
def test_each_role_reaches_exactly_its_records(
    roles: tuple[Role, ...], owner: Owner, reads: bool, writes: bool
) -> None:
    """The table of docs/security.md, record by record."""
    caller = person(*roles)

    assert may(caller, owner, action="read", area="grading") is reads
    assert may(caller, owner, action="write", area="grading") is writes


def test_a_service_token_reaches_only_the_areas_its_scope_names() -> None:
    """``grading:write`` writes and reads grading, and nothing of reports;
    ``reports:read`` only reads."""
    service = person("service", scopes=frozenset({"grading:write", "reports:read"}))

    assert may(service, ROOM_14, action="write", area="grading")
    assert may(service, ROOM_14, action="read", area="grading")
    assert may(service, ROOM_14, action="read", area="reports")
    assert not may(service, ROOM_14, action="write", area="reports")
    assert not may(service, ROOM_14, action="read", area="objectives")
    assert not may(service, RIVERSIDE_ROOM, action="read", area="grading")


def test_route_level_checks_keep_auditors_and_leaders_from_writing() -> None:
    """Guards refuse whole routes: auditors and leaders never write."""
    assert may_act(person("auditor"), action="read", area="grading")
    assert not may_act(person("auditor"), action="write", area="grading")
    assert not may_act(person("school_leader"), action="write", area="grading")
    assert may_act(person("teacher"), action="write", area="grading")
    assert not may_act(person("service"), action="read", area="grading")


def test_authorize_says_not_visible_for_another_tenants_record() -> None:
    """The object check raises the error the HTTP edge answers with 404."""
    with pytest.raises(NotVisibleError) as raised:
        authorize(person("teacher"), RIVERSIDE_ROOM, action="read", area="grading")

    assert raised.value.tenant_id == "lakeside"


def test_claims_become_an_identity() -> None:
    """Lists become sets and the scope string splits on spaces."""
    identity = identity_from_claims(
        "svc-roster",
        {
            "tenant": "lakeside",
            "roles": ["service"],
            "scope": "grading:read  reports:write",
            "iss": "ignored here",
        },
    )

    assert identity == Identity(
        subject="svc-roster",
        tenant_id="lakeside",
        roles=frozenset({"service"}),
        scopes=frozenset({"grading:read", "reports:write"}),
    )


@pytest.mark.parametrize(
    ("claims", "claim"),
    [
        ({"roles": ["teacher"]}, "tenant"),
        ({"tenant": "Lake Side", "roles": ["teacher"]}, "tenant"),
        ({"tenant": "lakeside", "roles": []}, "roles"),
        ({"tenant": "lakeside", "roles": ["headmaster"]}, "roles"),
        (
            {"tenant": "lakeside", "roles": ["teacher"], "sections": "room-12"},
            "sections",
        ),
    ],
)
def test_malformed_claims_are_refused_naming_the_claim(
    claims: dict[str, Any], claim: str
) -> None:
    """Each refusal names the claim at fault, and nothing of its value."""
    with pytest.raises(InvalidClaimsError) as raised:
        identity_from_claims("ms-frizzle", claims)

    assert raised.value.claim == claim
