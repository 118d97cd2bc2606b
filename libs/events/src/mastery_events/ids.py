"""Identifiers for events: UUIDv7, so that ids sort by creation time."""

from __future__ import annotations

import os
import time
from uuid import UUID


def uuid7(*, unix_ms: int | None = None) -> UUID:
    """Return a new version 7 UUID (RFC 9562): 48 bits of milliseconds, then
    random bits, so ids made later sort later and index well."""
    millis = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    random_bits = int.from_bytes(os.urandom(10), "big")
    value = (millis & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= ((random_bits >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= random_bits & 0x3FFF_FFFF_FFFF_FFFF

    return UUID(int=value)
