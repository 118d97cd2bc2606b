"""Events of the reports service: share links and their disclosure log."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from mastery_events.envelope import Event


class ShareLinkCreated(Event, frozen=True, kw_only=True):
    """A teacher or leader shared one student's report through a link."""

    share_link_id: UUID
    student_id: str
    created_by: str
    created_at: datetime
    expires_at: datetime


class ShareLinkRevoked(Event, frozen=True, kw_only=True):
    """A share link stopped working before its expiry."""

    share_link_id: UUID
    revoked_by: str
    revoked_at: datetime


class ReportViewed(Event, frozen=True, kw_only=True):
    """Somebody opened a shared report: one line of the disclosure log."""

    share_link_id: UUID
    viewed_at: datetime


ShareLinkEvent = ShareLinkCreated | ShareLinkRevoked | ReportViewed
