"""Events of the reports service: share links and their disclosure log."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

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
    """Somebody opened a shared report: one line of the disclosure log,
    and enough to show an auditor the very report that was read.

    ``format`` says how it was read: as a page, a PDF or JSON;
    ``language`` the language it was written in. ``positions`` are the log
    positions, per source service, of the newest events the served report
    reflected: replaying each source up to them gives that report again.
    Views recorded before these were kept carry none.
    """

    share_link_id: UUID
    viewed_at: datetime
    format: str = "html"
    language: str | None = None
    positions: dict[str, int] = msgspec.field(default_factory=dict)


ShareLinkEvent = ShareLinkCreated | ShareLinkRevoked | ReportViewed


class ReportReproduced(Event, frozen=True, kw_only=True):
    """An auditor had one view of a shared report rendered again from the
    log: a look at a student's report like any other, so it is recorded.

    ``view_id`` is the event id of the ``ReportViewed`` reproduced.
    """

    reproduction_id: UUID
    auditor: str
    view_id: UUID
    share_link_id: UUID
    reproduced_at: datetime
