"""Rate-limit counts that every replica of a service shares.

Litestar's rate limiter keeps, per client address, the times of its recent
requests in a key-value store. In each process's memory, N replicas would
allow N times the limit. ``SharedCounts`` keeps them in a JetStream
key-value bucket of the service's own instead, so the limit holds however
many replicas answer.

The bucket lives in memory on the NATS server and forgets a key a minute
after its last write, which is as long as a count matters. Keys are
digests of the limiter's keys, so client addresses are not written to the
bus. While NATS does not answer, counts fall back to the process's memory:
the limit still holds per replica, and no request waits on the bus; a
count made there carries on into the bucket once NATS answers.

Two replicas answering the same address at the same instant may each
write their own count over the other's; the limit can then be passed by
about one request per replica, which the limiter accepts in exchange for
one read and one write per request.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import timedelta

import structlog
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from nats.errors import Error as NatsError
from nats.js.api import KeyValueConfig, StorageType
from nats.js.client import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

log = structlog.get_logger(__name__)

BUCKET_TTL = 60.0
# A request must never wait long on its count.
COUNT_TIMEOUT = 0.25
RATE_LIMIT_STORE = "mastery_rate_limits"


def bucket_name(prefix: str, service: str) -> str:
    """Return the key-value bucket that holds ``service``'s counts."""
    # Bucket names allow letters, digits, '-' and '_', as prefixes do.
    return f"{prefix}_rate_limits_{service}"


async def open_counts_bucket(
    js: JetStreamContext, name: str, *, replicas: int
) -> KeyValue:
    """Return the bucket ``name``, made first when no replica made it yet."""
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        config = KeyValueConfig(
            bucket=name,
            history=1,
            ttl=BUCKET_TTL,
            storage=StorageType.MEMORY,
            replicas=replicas,
        )
        # Replicas racing here ask for the same bucket, which JetStream
        # accepts as one.
        return await js.create_key_value(config)


def shared_key(key: str) -> str:
    """Return the bucket key for a limiter key, which names an address."""
    return hashlib.sha256(key.encode()).hexdigest()


class SharedCounts(Store):
    """A Litestar store over the bucket ``bucket()`` returns, or over the
    process's memory while it returns ``None`` or NATS fails."""

    def __init__(self, bucket: Callable[[], KeyValue | None]) -> None:
        self._bucket = bucket
        self._local = MemoryStore()
        self._shared = True

    async def get(
        self, key: str, renew_for: int | timedelta | None = None
    ) -> bytes | None:
        """Return the counts kept for ``key``, if any."""
        bucket = self._bucket()
        if bucket is not None:
            try:
                async with asyncio.timeout(COUNT_TIMEOUT):
                    entry = await bucket.get(shared_key(key))
            except KeyNotFoundError:
                # Counts made in memory before the bus was linked carry on
                # into the bucket with the next write.
                return await self._local.get(key, renew_for)
            except (NatsError, TimeoutError) as error:
                self._fall_back(error)
            else:
                self._shared = True
                return entry.value

        return await self._local.get(key, renew_for)

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        """Keep ``value`` as the counts of ``key``; the bucket forgets it a
        minute after this write."""
        data = value.encode() if isinstance(value, str) else value
        bucket = self._bucket()
        if bucket is not None:
            try:
                async with asyncio.timeout(COUNT_TIMEOUT):
                    await bucket.put(shared_key(key), data)
            except (NatsError, TimeoutError) as error:
                self._fall_back(error)
            else:
                return

        await self._local.set(key, data, expires_in)

    async def delete(self, key: str) -> None:
        """Forget the counts of ``key``, shared and local."""
        bucket = self._bucket()
        if bucket is not None:
            try:
                async with asyncio.timeout(COUNT_TIMEOUT):
                    await bucket.purge(shared_key(key))
            except (NatsError, TimeoutError) as error:
                self._fall_back(error)
        await self._local.delete(key)

    async def delete_all(self) -> None:
        """Forget this process's local counts; shared ones expire alone."""
        await self._local.delete_all()

    async def exists(self, key: str) -> bool:
        """Tell whether counts are kept for ``key``."""
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        """Return ``None``: a count's expiry is the bucket's, not the key's."""
        return None

    def _fall_back(self, error: BaseException) -> None:
        # Said once per outage, not once per request.
        if self._shared:
            log.warning(
                "rate_limit.shared_counts_unavailable", error=type(error).__name__
            )
        self._shared = False
