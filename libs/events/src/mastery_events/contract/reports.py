"""Events of the reports service: share links and their disclosure log."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from mastery_events.envelope import Event


class ShareLinkCreated(Event, frozen=True, kw_only=True):
    """A teacher or leader shared one student's report through a link.

    The link covers ``section_ids``, narrowed to ``term_id`` when one is
    given. ``token_hash`` is the SHA-256 of the link's token, in hex: the
    token itself is shown once to its creator and kept nowhere.
    """

    share_link_id: UUID
    student_id: str
    section_ids: tuple[str, ...] = ()
    term_id: str | None = None
    token_hash: str
    created_by: str
    created_at: datetime
    expires_at: datetime


class ShareLinkRevoked(Event, frozen=True, kw_only=True):
    """A share link stopped working before its expiry; ``reason`` says why
    when it was not its creator's choice (the student was erased)."""

    share_link_id: UUID
    revoked_by: str
    revoked_at: datetime
    reason: str | None = None


class ReportViewed(Event, frozen=True, kw_only=True):
    """Somebody opened a shared report: one line of the disclosure log.

    ``format`` says how it was read: as a page, a PDF or JSON.
    """

    share_link_id: UUID
    viewed_at: datetime
    format: str = "html"


ShareLinkEvent = ShareLinkCreated | ShareLinkRevoked | ReportViewed
