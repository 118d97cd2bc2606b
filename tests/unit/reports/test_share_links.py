"""Share link decisions: what a link covers, how long it lasts, when it
stops opening, and what revoking twice does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from mastery_events.contract.reports import ReportViewed, ShareLinkCreated
from mastery_reports.errors import InvalidShareRequestError, SharedReportNotFoundError
from mastery_reports.share_links import (
    CreateShareLink,
    Served,
    decide_create,
    decide_revoke,
    decide_view,
    fold,
    token_hash,
)

LINK = UUID("01a23cb1-6997-74ca-8af2-0d18b6dd6511")
MONDAY = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)


def create(**changes: object) -> CreateShareLink:
    """Share Ada's room 12 report on Monday."""
    fields: dict[str, object] = {
        "share_link_id": LINK,
        "student_id": "ada",
        "section_ids": ("room-12", "room-12", "art-3"),
        "token_hash": token_hash("a-token"),
        "created_by": "ms-frizzle",
        "at": MONDAY,
    }
    return CreateShareLink(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_link_lasts_thirty_days_by_default() -> None:
    """Created on the 7th of September, it expires on the 7th of October,
    each section named once, and the event keeps the hash only."""
    (event,) = decide_create(create())

    assert isinstance(event, ShareLinkCreated)
    assert event.expires_at == MONDAY + timedelta(days=30)
    assert event.section_ids == ("room-12", "art-3")
    assert event.token_hash == token_hash("a-token")
    assert "a-token" not in repr(event)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"section_ids": ()}, "section_ids"),
        ({"valid_for": timedelta(0)}, "expires_in_days"),
        ({"valid_for": timedelta(days=366)}, "expires_in_days"),
    ],
)
def test_a_link_covering_nothing_or_lasting_too_long_is_refused(
    changes: dict[str, object], field: str
) -> None:
    """No sections, no time, or more than a year are refused by name."""
    with pytest.raises(InvalidShareRequestError) as refused:
        decide_create(create(**changes))

    assert refused.value.field == field


def test_a_link_opens_until_the_moment_it_expires() -> None:
    """A second before expiry the view is logged; at expiry it is not
    found, exactly as a revoked link is."""
    link = fold(decide_create(create(valid_for=timedelta(days=1))))
    assert link is not None
    expiry = MONDAY + timedelta(days=1)

    served = Served(format="pdf", language="es", positions={"grading": 42})
    viewed = decide_view(link, at=expiry - timedelta(seconds=1), served=served)
    revoked = fold([*decide_create(create()), *decide_revoke(link, by="x", at=MONDAY)])
    assert revoked is not None

    assert viewed == [
        ReportViewed(
            share_link_id=LINK,
            viewed_at=expiry - timedelta(seconds=1),
            format="pdf",
            language="es",
            positions={"grading": 42},
        )
    ]
    with pytest.raises(SharedReportNotFoundError):
        decide_view(link, at=expiry, served=served)
    with pytest.raises(SharedReportNotFoundError):
        decide_view(revoked, at=MONDAY, served=served)


def test_revoking_twice_changes_nothing() -> None:
    """The second revoke decides no event, and the first revocation's time
    stands."""
    created = decide_create(create())
    link = fold(created)
    assert link is not None
    revoked = fold([*created, *decide_revoke(link, by="ms-frizzle", at=MONDAY)])
    assert revoked is not None

    assert decide_revoke(revoked, by="ms-frizzle", at=MONDAY + timedelta(days=1)) == []
    assert revoked.revoked_at == MONDAY


def test_the_hash_is_sha256_of_the_token() -> None:
    """A known vector, so links stay findable from one release to the next."""
    assert token_hash("test") == (
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    )
