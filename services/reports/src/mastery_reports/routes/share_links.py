"""Routes that create, list and revoke share links of a student's report.

The token of a new link is in the answer to its creation and nowhere else:
not in the list, not in the events, not in the log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import get, post
from litestar.params import FromPath, JSONBody

from mastery_events.access import Caller, NotAllowedError, NotVisibleError, reads
from mastery_events.identity import Identity, Role
from mastery_events.ids import uuid7
from mastery_reports.errors import InvalidShareRequestError, StudentNotFoundError
from mastery_reports.routes.callers import AREA, reads_section, shares_section
from mastery_reports.routes.dependencies import LinkStore, SnapshotReader
from mastery_reports.share_link_store import new_token
from mastery_reports.share_links import CreateShareLink, ShareLink, token_hash
from mastery_reports.snapshot_store import Snapshots

SHARERS: tuple[Role, ...] = ("district_admin", "school_leader", "teacher")
# PostgreSQL text holds no NUL: a body that carries one is refused here,
# not by the database.
SectionId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=200, pattern="^[^\\x00]+$")
]
LinkStatus = Literal["open", "expired", "revoked"]


class ShareLinkBody(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """Share a student's report for these sections, maybe one term, for a
    number of days (30 unless given)."""

    section_ids: Annotated[list[SectionId], msgspec.Meta(min_length=1, max_length=20)]
    term_id: (
        Annotated[
            str, msgspec.Meta(min_length=1, max_length=200, pattern="^[^\\x00]+$")
        ]
        | None
    ) = None
    expires_in_days: Annotated[int, msgspec.Meta(ge=1, le=365)] = 30


class ShareLinkView(msgspec.Struct, frozen=True, kw_only=True):
    """A share link as its creator and colleagues see it: never the token."""

    share_link_id: UUID
    student_id: str
    section_ids: tuple[str, ...]
    term_id: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    status: LinkStatus
    views: int
    last_viewed_at: datetime | None


class NewShareLink(msgspec.Struct, frozen=True, kw_only=True):
    """A link just created, with its token and path: shown this once."""

    share_link: ShareLinkView
    token: str
    path: str


def view_of(link: ShareLink, *, now: datetime) -> ShareLinkView:
    """Describe a link for a client."""
    status: LinkStatus = "open"
    if link.revoked_at is not None:
        status = "revoked"
    elif not link.is_open(now):
        status = "expired"

    return ShareLinkView(
        share_link_id=link.share_link_id,
        student_id=link.student_id,
        section_ids=link.section_ids,
        term_id=link.term_id,
        created_by=link.created_by,
        created_at=link.created_at,
        expires_at=link.expires_at,
        revoked_at=link.revoked_at,
        status=status,
        views=link.views,
        last_viewed_at=link.last_viewed_at,
    )


def shared_path(tenant_id: str, token: str) -> str:
    """Return the public path of a shared report."""
    return f"/shared/{tenant_id}/{token}"


def require_sharer(identity: Identity) -> None:
    """Refuse a caller who may never share a report (auditors, services)."""
    if not identity.has_role(*SHARERS):
        raise NotAllowedError(identity.subject, needed="a teacher or leader role")


async def visible_student(
    snapshots: Snapshots, identity: Identity, student_id: str
) -> None:
    """Raise unless the student has a report and one of their sections is
    the caller's to read, answered alike when either fails."""
    stored = await snapshots.of_student(identity.tenant_id, student_id)
    if stored is None:
        raise StudentNotFoundError(student_id)
    if not any(reads_section(identity, s) for s in stored.snapshot.sections):
        raise NotVisibleError(
            identity.subject, tenant_id=identity.tenant_id, action="read"
        )


@post("/students/{student_id:str}/share-links", guards=[reads(AREA)])
async def create_share_link(
    identity: Caller,
    snapshots: SnapshotReader,
    links: LinkStore,
    student_id: FromPath[str],
    data: JSONBody[ShareLinkBody],
) -> NewShareLink:
    """Share a student's report through a new link; the answer holds the
    token, which is shown this once."""
    require_sharer(identity)
    tenant = identity.tenant_id
    # Who the student is comes before what the body asks: a caller who
    # reads none of their sections learns nothing, not even an enrollment.
    await visible_student(snapshots, identity, student_id)
    stored = await snapshots.of_student(tenant, student_id)
    if stored is None:
        raise StudentNotFoundError(student_id)
    enrolled = {s.section_id: s for s in stored.snapshot.sections}
    sections = await snapshots.sections(tenant, data.section_ids)
    for section in sections:
        if not shares_section(identity, section):
            raise NotVisibleError(identity.subject, tenant_id=tenant, action="write")
    missing = [s for s in data.section_ids if s not in enrolled]
    if missing:
        raise InvalidShareRequestError(
            "section_ids", f"the student is not enrolled in {', '.join(missing)}"
        )
    if data.term_id is not None and not any(
        data.term_id in enrolled[s].term_ids for s in data.section_ids
    ):
        raise InvalidShareRequestError(
            "term_id", "none of the sections runs in this term"
        )

    token = new_token()
    now = datetime.now(UTC)
    link = await links.create(
        tenant,
        CreateShareLink(
            share_link_id=uuid7(),
            student_id=student_id,
            section_ids=tuple(data.section_ids),
            term_id=data.term_id,
            token_hash=token_hash(token),
            valid_for=timedelta(days=data.expires_in_days),
            created_by=identity.subject,
            at=now,
        ),
    )

    return NewShareLink(
        share_link=view_of(link, now=now),
        token=token,
        path=shared_path(tenant, token),
    )


@get("/students/{student_id:str}/share-links", guards=[reads(AREA)])
async def list_share_links(
    identity: Caller,
    snapshots: SnapshotReader,
    links: LinkStore,
    student_id: FromPath[str],
) -> list[ShareLinkView]:
    """List a student's share links, newest first, with their views."""
    await visible_student(snapshots, identity, student_id)
    now = datetime.now(UTC)
    found = await links.of_student(identity.tenant_id, student_id)

    return [view_of(link, now=now) for link in found]


@post("/share-links/{share_link_id:uuid}/revoke", guards=[reads(AREA)], status_code=200)
async def revoke_share_link(
    identity: Caller,
    snapshots: SnapshotReader,
    links: LinkStore,
    share_link_id: FromPath[UUID],
) -> ShareLinkView:
    """Revoke a share link at once; revoking it again changes nothing."""
    require_sharer(identity)
    tenant = identity.tenant_id
    link = await links.get(tenant, share_link_id)
    sections = await snapshots.sections(tenant, link.section_ids)
    if not sections or not all(shares_section(identity, s) for s in sections):
        raise NotVisibleError(identity.subject, tenant_id=tenant, action="write")

    now = datetime.now(UTC)
    revoked = await links.revoke(tenant, share_link_id, by=identity.subject, at=now)

    return view_of(revoked, now=now)
