"""Client idempotency keys: a retried request records nothing twice.

A client sends an ``Idempotency-Key`` header with a write. The key is
claimed in the transaction that makes the write, and the answer is kept
with it before that transaction commits, so either both the events and the
kept answer exist or neither does. A retry of the same request (same caller,
route and body) gets the kept answer back and writes nothing; the same key with
another request is refused. A refused request keeps no key, so a corrected
request may use it again.
"""

from __future__ import annotations

import hashlib
from typing import TypeVar

import msgspec
import structlog

from mastery_events.database import Connection
from mastery_grading.errors import IdempotencyKeyReusedError

log = structlog.get_logger()

Answer = TypeVar("Answer", bound=msgspec.Struct)


class IdempotencyClaim(msgspec.Struct, frozen=True, kw_only=True):
    """A request's key and what identifies the request it came with."""

    key: str
    digest: str


def claim_of(
    key: str | None, route: str, body: msgspec.Struct, *, caller: str
) -> IdempotencyClaim | None:
    """Return the claim of ``caller``'s request on ``route`` with ``body``,
    or ``None`` when it carries no key.

    The body is read canonically, so the spacing and field order of the
    JSON sent do not matter. The caller is part of the request: another
    person of the tenant sending the same key and body is refused rather
    than handed the first caller's answer.
    """
    if key is None:
        return None
    canonical = msgspec.json.encode(body, order="sorted")
    request = b"\n".join([caller.encode(), route.encode(), canonical])

    return IdempotencyClaim(key=key, digest=hashlib.sha256(request).hexdigest())


class IdempotencyKeys:
    """The key table of one schema, used inside a caller's transaction."""

    def __init__(self, table: str) -> None:
        self._table = table

    async def kept_answer(
        self,
        connection: Connection,
        tenant_id: str,
        claim: IdempotencyClaim | None,
        answer_type: type[Answer],
    ) -> Answer | None:
        """Claim the request's key for this transaction and return ``None``,
        or return the answer kept for it when the same request came before.

        A request without a key claims nothing. A concurrent request with
        the same key waits here until the first one's transaction ends,
        then sees its answer (or, when it rolled back, claims the key
        itself).
        """
        if claim is None:
            return None
        claimed = await connection.fetchval(
            f"INSERT INTO {self._table} (tenant_id, key, digest, answer) "
            "VALUES ($1, $2, $3, 'null') ON CONFLICT DO NOTHING RETURNING true",
            tenant_id,
            claim.key,
            claim.digest,
        )
        if claimed:
            return None
        row = await connection.fetchrow(
            f"SELECT digest, answer FROM {self._table} "
            "WHERE tenant_id = $1 AND key = $2",
            tenant_id,
            claim.key,
        )
        assert row is not None
        if row["digest"] != claim.digest:
            raise IdempotencyKeyReusedError(claim.key)
        log.info("request.replayed", tenant=tenant_id, answer=answer_type.__name__)

        return msgspec.json.decode(row["answer"], type=answer_type)

    async def keep(
        self,
        connection: Connection,
        tenant_id: str,
        claim: IdempotencyClaim | None,
        answer: msgspec.Struct,
    ) -> None:
        """Keep the answer to the request that claimed the key, if it
        came with one."""
        if claim is None:
            return
        await connection.execute(
            f"UPDATE {self._table} SET answer = $3::json "
            "WHERE tenant_id = $1 AND key = $2",
            tenant_id,
            claim.key,
            msgspec.json.encode(answer).decode(),
        )
