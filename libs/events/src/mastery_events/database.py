"""Connections to the service's PostgreSQL database."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy


class StatementConnection(asyncpg.Connection):
    """A pooled connection that runs statements standing each on its own,
    handed back without asyncpg's session reset.

    On release a pool rolls back any open transaction and then sends a
    query that drops advisory locks, cursors, listeners and session
    settings: a round trip as long as the read it follows. A connection
    whose every statement binds what it needs for its own transaction
    (``set_config(..., true)``) leaves none of those behind, so the reset
    would find nothing to undo. Use such a pool for nothing that takes a
    session lock, listens or sets a session variable.
    """

    def get_reset_query(self) -> str:
        """Return no query: a statement connection keeps no session state."""
        return ""
