"""Share links kept as the reports service's own events, with a table of
each link's current state written in the same transaction.

A view locks its link's row, so concurrent views of one link append to
its stream one after another instead of colliding.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from mastery_events.contract.reports import ShareLinkEvent
from mastery_events.database import Connection
from mastery_events.envelope import PendingEvent
from mastery_events.ids import uuid7
from mastery_events.migrations import quote_schema
from mastery_events.store import EventStore, StreamAppend
from mastery_events.tenancy import tenant_transaction
from mastery_reports.errors import SharedReportNotFoundError, ShareLinkNotFoundError
from mastery_reports.share_links import (
    TOKEN_BYTES,
    CreateShareLink,
    ShareLink,
    decide_create,
    decide_revoke,
    decide_view,
    evolve,
    occurred_at,
)

COLUMNS = (
    "share_link_id, student_id, section_ids, term_id, created_by, created_at, "
    "expires_at, revoked_at, views, last_viewed_at"
)


def new_token() -> str:
    """Return a fresh, unguessable share token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def stream_of(share_link_id: UUID) -> str:
    """Return the event stream of one share link."""
    return f"share-link-{share_link_id}"


class ShareLinks:
    """Create, list, revoke and open share links of one tenant at a time."""

    def __init__(self, pool: asyncpg.Pool, store: EventStore) -> None:
        self.pool = pool
        self.store = store
        self._table = f"{quote_schema(store.schema)}.share_links"

    async def create(self, tenant_id: str, command: CreateShareLink) -> ShareLink:
        """Record a new link and return it."""
        events = decide_create(command)
        link = evolve(None, events[0])

        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            await self._append(
                connection, tenant_id, link, 0, events, command.created_by
            )
            await connection.execute(
                f"INSERT INTO {self._table} (tenant_id, {COLUMNS}, token_hash, "
                "stream_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, 0, "
                "NULL, $9, 1)",
                tenant_id,
                link.share_link_id,
                link.student_id,
                list(link.section_ids),
                link.term_id,
                link.created_by,
                link.created_at,
                link.expires_at,
                command.token_hash,
            )

        return link

    async def of_student(self, tenant_id: str, student_id: str) -> list[ShareLink]:
        """Return a student's links, newest first."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            rows = await connection.fetch(
                f"SELECT {COLUMNS} FROM {self._table} WHERE tenant_id = $1 "
                "AND student_id = $2 ORDER BY created_at DESC, share_link_id",
                tenant_id,
                student_id,
            )

        return [link_of(row) for row in rows]

    async def get(self, tenant_id: str, share_link_id: UUID) -> ShareLink:
        """Return one link, or raise ``ShareLinkNotFoundError``."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            row = await connection.fetchrow(
                f"SELECT {COLUMNS} FROM {self._table} WHERE tenant_id = $1 "
                "AND share_link_id = $2",
                tenant_id,
                share_link_id,
            )
        if row is None:
            raise ShareLinkNotFoundError(share_link_id)

        return link_of(row)

    async def revoke(
        self, tenant_id: str, share_link_id: UUID, *, by: str, at: datetime
    ) -> ShareLink:
        """Revoke a link; a link already revoked stays as it was."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            link, version = await self._locked(
                connection, tenant_id, "share_link_id = $2", share_link_id
            )
            if link is None:
                raise ShareLinkNotFoundError(share_link_id)
            events = decide_revoke(link, by=by, at=at)
            link = await self._apply(connection, tenant_id, link, version, events, by)

        return link

    async def revoke_student_within(
        self,
        connection: Connection,
        tenant_id: str,
        student_id: str,
        *,
        by: str,
        at: datetime,
        reason: str,
    ) -> int:
        """Revoke every link of a student not revoked yet, in the caller's
        tenant transaction; return how many were revoked."""
        rows = await connection.fetch(
            f"SELECT {COLUMNS}, stream_version FROM {self._table} "
            "WHERE tenant_id = $1 AND student_id = $2 AND revoked_at IS NULL "
            "ORDER BY share_link_id FOR UPDATE",
            tenant_id,
            student_id,
        )
        for row in rows:
            link = link_of(row)
            events = decide_revoke(link, by=by, at=at, reason=reason)
            await self._apply(
                connection, tenant_id, link, row["stream_version"], events, by
            )

        return len(rows)

    async def view(
        self, tenant_id: str, hashed: str, *, at: datetime, format: str
    ) -> ShareLink:
        """Record a view of the open link whose token hashes to ``hashed``
        and return it; raise ``SharedReportNotFoundError`` for a link that
        is unknown, expired or revoked alike."""
        async with (
            self.pool.acquire() as connection,
            tenant_transaction(connection, tenant_id),
        ):
            link, version = await self._locked(
                connection, tenant_id, "token_hash = $2", hashed
            )
            if link is None:
                raise SharedReportNotFoundError
            events = decide_view(link, at=at, format=format)
            link = await self._apply(
                connection, tenant_id, link, version, events, "share-link"
            )

        return link

    async def _locked(
        self, connection: Connection, tenant_id: str, where: str, value: object
    ) -> tuple[ShareLink | None, int]:
        row = await connection.fetchrow(
            f"SELECT {COLUMNS}, stream_version FROM {self._table} "
            f"WHERE tenant_id = $1 AND {where} FOR UPDATE",
            tenant_id,
            value,
        )
        if row is None:
            return None, 0

        return link_of(row), row["stream_version"]

    async def _apply(
        self,
        connection: Connection,
        tenant_id: str,
        link: ShareLink,
        version: int,
        events: Sequence[ShareLinkEvent],
        actor: str,
    ) -> ShareLink:
        if not events:
            return link
        await self._append(connection, tenant_id, link, version, events, actor)
        for event in events:
            link = evolve(link, event)
        await connection.execute(
            f"UPDATE {self._table} SET revoked_at = $3, views = $4, "
            "last_viewed_at = $5, stream_version = $6 "
            "WHERE tenant_id = $1 AND share_link_id = $2",
            tenant_id,
            link.share_link_id,
            link.revoked_at,
            link.views,
            link.last_viewed_at,
            version + len(events),
        )

        return link

    async def _append(
        self,
        connection: Connection,
        tenant_id: str,
        link: ShareLink,
        version: int,
        events: Sequence[ShareLinkEvent],
        actor: str,
    ) -> None:
        correlation = uuid7()
        pending = [
            PendingEvent(
                payload=event,
                occurred_at=occurred_at(event),
                actor=actor,
                correlation_id=correlation,
            )
            for event in events
        ]
        await self.store.append_within(
            connection,
            [
                StreamAppend(
                    tenant_id=tenant_id,
                    stream_id=stream_of(link.share_link_id),
                    expected_version=version,
                    events=pending,
                )
            ],
        )


def link_of(row: Any) -> ShareLink:
    """Read a link from a row of the share links table."""
    return ShareLink(
        share_link_id=row["share_link_id"],
        student_id=row["student_id"],
        section_ids=tuple(row["section_ids"]),
        term_id=row["term_id"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        views=row["views"],
        last_viewed_at=row["last_viewed_at"],
    )
