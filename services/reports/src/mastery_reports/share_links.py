"""Share links: one student's report opened by whoever holds the token.

Decisions are pure and are given the time. A link is open from its
creation until it expires or is revoked, whichever comes first; each view
while it is open is one ``ReportViewed``, the school's disclosure log. The
token never appears here: only its hash, which is all a link keeps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import msgspec

from mastery_events.contract.reports import (
    ReportViewed,
    ShareLinkCreated,
    ShareLinkEvent,
    ShareLinkRevoked,
)
from mastery_reports.errors import InvalidShareRequestError, SharedReportNotFoundError

DEFAULT_VALIDITY = timedelta(days=30)
LONGEST_VALIDITY = timedelta(days=365)
# secrets.token_urlsafe(32) gives 256 random bits; 128 is the floor.
TOKEN_BYTES = 32


class ShareLink(msgspec.Struct, frozen=True, kw_only=True):
    """A share link as its events leave it."""

    share_link_id: UUID
    student_id: str
    section_ids: tuple[str, ...]
    term_id: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    views: int = 0
    last_viewed_at: datetime | None = None

    def is_open(self, now: datetime) -> bool:
        """Tell whether the link shows its report at ``now``."""
        return self.revoked_at is None and now < self.expires_at


class CreateShareLink(msgspec.Struct, frozen=True, kw_only=True):
    """Share one student's report, for some sections and maybe one term."""

    share_link_id: UUID
    student_id: str
    section_ids: tuple[str, ...]
    term_id: str | None = None
    token_hash: str
    valid_for: timedelta = DEFAULT_VALIDITY
    created_by: str
    at: datetime


def token_hash(token: str) -> str:
    """Return the hex SHA-256 of a token, the only form a link keeps: the
    token is random enough that a slow hash would add nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def decide_create(command: CreateShareLink) -> list[ShareLinkEvent]:
    """Create a link, or refuse one that covers no section or lasts no time
    or more than a year."""
    if not command.section_ids:
        raise InvalidShareRequestError("section_ids", "name at least one section")
    if not timedelta(0) < command.valid_for <= LONGEST_VALIDITY:
        raise InvalidShareRequestError(
            "expires_in_days", "a link lasts from 1 to 365 days"
        )

    return [
        ShareLinkCreated(
            share_link_id=command.share_link_id,
            student_id=command.student_id,
            section_ids=tuple(dict.fromkeys(command.section_ids)),
            term_id=command.term_id,
            token_hash=command.token_hash,
            created_by=command.created_by,
            created_at=command.at,
            expires_at=command.at + command.valid_for,
        )
    ]


def decide_revoke(
    link: ShareLink, *, by: str, at: datetime, reason: str | None = None
) -> list[ShareLinkEvent]:
    """Revoke a link, saying why when given; revoking it again changes
    nothing."""
    if link.revoked_at is not None:
        return []

    return [
        ShareLinkRevoked(
            share_link_id=link.share_link_id,
            revoked_by=by,
            revoked_at=at,
            reason=reason,
        )
    ]


def decide_view(link: ShareLink, *, at: datetime, format: str) -> list[ShareLinkEvent]:
    """Record a view of an open link; a closed one is not found, exactly
    like a token that never was."""
    if not link.is_open(at):
        raise SharedReportNotFoundError

    return [ReportViewed(share_link_id=link.share_link_id, viewed_at=at, format=format)]


def evolve(link: ShareLink | None, event: ShareLinkEvent) -> ShareLink:
    """Return the link after ``event``."""
    match event:
        case ShareLinkCreated():
            return ShareLink(
                share_link_id=event.share_link_id,
                student_id=event.student_id,
                section_ids=event.section_ids,
                term_id=event.term_id,
                created_by=event.created_by,
                created_at=event.created_at,
                expires_at=event.expires_at,
            )
        case ShareLinkRevoked():
            assert link is not None
            return msgspec.structs.replace(link, revoked_at=event.revoked_at)
        case ReportViewed():
            assert link is not None
            return msgspec.structs.replace(
                link, views=link.views + 1, last_viewed_at=event.viewed_at
            )


def fold(events: Sequence[ShareLinkEvent]) -> ShareLink | None:
    """Return the link its events describe, or ``None`` for no events."""
    link = None
    for event in events:
        link = evolve(link, event)

    return link


def occurred_at(event: ShareLinkEvent) -> datetime:
    """Return when the thing ``event`` records happened."""
    match event:
        case ShareLinkCreated():
            return event.created_at
        case ShareLinkRevoked():
            return event.revoked_at
        case ReportViewed():
            return event.viewed_at
