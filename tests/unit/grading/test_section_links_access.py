"""Who may choose the objective sets a section teaches."""

from __future__ import annotations

import pytest

from mastery_events.identity import Identity, Role
from mastery_grading.roster_store import SectionRow
from mastery_grading.routes.roster import may_link

ALGEBRA = SectionRow(
    section_id="alg-h",
    title="Algebra I (Hillside)",
    class_code=None,
    school_id="hillside",
    course_id="algebra",
    course_title="Algebra I",
    course_code=None,
    term_ids=["fall-26"],
    removed=False,
    objective_set_ids=[],
)


def caller(
    role: Role,
    *,
    schools: frozenset[str] = frozenset(),
    sections: frozenset[str] = frozenset(),
    scopes: frozenset[str] = frozenset(),
) -> Identity:
    """Return a caller of Lakeside holding ``role``."""
    return Identity(
        subject="someone",
        tenant_id="lakeside",
        roles=frozenset({role}),
        schools=schools,
        sections=sections,
        scopes=scopes,
    )


@pytest.mark.parametrize(
    ("identity", "allowed"),
    [
        (caller("district_admin"), True),
        (caller("teacher", sections=frozenset({"alg-h"})), True),
        (caller("teacher", sections=frozenset({"alg-r"})), False),
        (caller("teacher", schools=frozenset({"hillside"})), False),
        (caller("school_leader", schools=frozenset({"hillside"})), True),
        (caller("school_leader", schools=frozenset({"riverside"})), False),
        (caller("auditor"), False),
        (caller("service", scopes=frozenset({"grading:write"})), True),
        (caller("service", scopes=frozenset({"grading:read"})), False),
    ],
)
def test_the_teacher_a_leader_of_its_school_or_an_admin_may_link(
    identity: Identity, allowed: bool
) -> None:
    """A teacher of the school who does not teach the section may not, nor
    an auditor, nor a service that only reads."""
    assert may_link(identity, ALGEBRA) is allowed
