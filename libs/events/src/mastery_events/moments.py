"""Moments and people as operators type them on the command line: the time
formats the audit commands accept, and who is asking."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime

# A date, or a time with its zone, with or without fractions of a second.
TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"]


def as_utc(moment: datetime | None) -> datetime | None:
    """Return ``moment`` with UTC as its zone when it was given without one."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def operator() -> str:
    """Name the operator running a command, as the events it records say
    who asked: ``operator:<login>``."""
    return f"operator:{getpass.getuser()}"
