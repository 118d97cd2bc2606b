"""Identifiers for events: UUIDv7, so that ids sort by creation time."""

from __future__ import annotations

import os
import time
from uuid import UUID

MAX_UNIX_MS = (1 << 48) - 1


def uuid7(*, unix_ms: int | None = None) -> UUID:
    """Return a new version 7 UUID (RFC 9562): 48 bits of milliseconds, then
    random bits, so ids made in a later millisecond sort later and index well.

    Ids made within the same millisecond are in random order, so a reader
    must not take more than millisecond order from them.
    """
    millis = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    if not 0 <= millis <= MAX_UNIX_MS:
        message = f"unix_ms {millis} does not fit the 48 bits of a UUIDv7"
        raise ValueError(message)
    random_bits = int.from_bytes(os.urandom(10), "big")
    value = millis << 80
    value |= 0x7 << 76
    value |= ((random_bits >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= random_bits & 0x3FFF_FFFF_FFFF_FFFF

    return UUID(int=value)
