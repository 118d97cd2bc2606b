"""Where a follower of a store's global order has got to, and how far behind
it is.

A checkpoint row names a follower (the relay, a projection) and the last
``(transaction_id, position)`` it has finished with. It only moves forward,
so a follower that was deposed and writes late cannot undo its successor's
progress.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from mastery_events.database import Connection
from mastery_events.migrations import quote_schema
from mastery_events.store import Checkpoint


class Lag(msgspec.Struct, frozen=True, kw_only=True):
    """How far a follower is behind its store: the committed events past its
    checkpoint, and the age in seconds of the oldest of them."""

    events: int
    oldest_age: float | None


class Checkpoints:
    """Read and move one follower's checkpoint in one service's schema."""

    def __init__(self, schema: str, name: str) -> None:
        self.schema = schema
        self.name = name
        quoted = quote_schema(schema)
        self._load = f"""
            SELECT transaction_id::text::bigint AS transaction_id, position
            FROM {quoted}.checkpoints WHERE name = $1
        """
        self._save = f"""
            INSERT INTO {quoted}.checkpoints AS c (name, transaction_id, position)
            VALUES ($1, $2::text::xid8, $3)
            ON CONFLICT (name) DO UPDATE
            SET transaction_id = excluded.transaction_id,
                position = excluded.position,
                updated_at = now()
            WHERE (c.transaction_id, c.position)
                < (excluded.transaction_id, excluded.position)
        """
        self._lag = f"""
            SELECT count(e.position) AS events,
                   extract(epoch FROM clock_timestamp() - min(e.recorded_at))
                       AS oldest_age
            FROM {quoted}.events e
            LEFT JOIN {quoted}.checkpoints c ON c.name = $1
            WHERE c.name IS NULL
               OR (e.transaction_id, e.position) > (c.transaction_id, c.position)
        """
        self._locate = f"""
            SELECT transaction_id::text::bigint AS transaction_id, position
            FROM {quoted}.events WHERE event_id = $1
        """

    async def load(self, connection: Connection) -> Checkpoint:
        """Return the checkpoint, or the start of the log when there is none."""
        row = await connection.fetchrow(self._load, self.name)
        if row is None:
            return Checkpoint()

        return Checkpoint(
            transaction_id=row["transaction_id"], position=row["position"]
        )

    async def save(self, connection: Connection, checkpoint: Checkpoint) -> None:
        """Move the checkpoint to ``checkpoint``, unless it is already past."""
        await connection.execute(
            self._save,
            self.name,
            str(checkpoint.transaction_id),
            checkpoint.position,
        )

    async def lag(self, connection: Connection) -> Lag:
        """Count the committed events past the checkpoint and measure the age
        of the oldest, for dashboards and alerts."""
        row = await connection.fetchrow(self._lag, self.name)
        assert row is not None
        age = row["oldest_age"]

        return Lag(events=row["events"], oldest_age=None if age is None else float(age))

    async def locate(self, connection: Connection, event_id: str) -> Checkpoint | None:
        """Return where the event ``event_id`` stands in the global order, or
        ``None`` when this store has no such event."""
        try:
            parsed = UUID(event_id)
        except ValueError:
            return None
        row = await connection.fetchrow(self._locate, parsed)
        if row is None:
            return None

        return Checkpoint(
            transaction_id=row["transaction_id"], position=row["position"]
        )
