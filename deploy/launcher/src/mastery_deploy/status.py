"""The status file of a running stack: where everything listens, and which
processes to check.

``mastery up`` writes it into the data folder once every service is ready
and removes it on the way out; ``mastery status`` reads it, and believes it
only while the processes it names are alive, since a stack killed outright
leaves its file behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import msgspec

STATUS_FILE = "stack.json"


class NoStackError(Exception):
    """Raised when no stack is running from a data folder: no status file,
    or one whose processes have exited."""


class ServiceEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    """One running service: where it answers, and its process."""

    name: str
    url: str
    openapi_url: str
    pid: int


class StackStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a script needs to reach a running stack."""

    pid: int
    data_dir: str
    database_url: str
    nats_url: str
    services: list[ServiceEndpoint]
    postgres_pid: int | None = None
    nats_pid: int | None = None

    def processes(self) -> dict[str, int]:
        """Return the process ids the stack runs, by what they are."""
        found = {"launcher": self.pid}
        found.update({service.name: service.pid for service in self.services})
        if self.postgres_pid is not None:
            found["postgres"] = self.postgres_pid
        if self.nats_pid is not None:
            found["nats"] = self.nats_pid

        return found


def status_path(data_dir: Path) -> Path:
    """Return where the status file of a stack on ``data_dir`` lives."""
    return data_dir / STATUS_FILE


def write_status(path: Path, status: StackStatus) -> None:
    """Write the status file whole, so a reader never sees half of it."""
    partial = path.with_suffix(".partial")
    partial.write_bytes(msgspec.json.format(msgspec.json.encode(status)))
    partial.replace(path)


def remove_status(path: Path) -> None:
    """Remove the status file, if it is there."""
    path.unlink(missing_ok=True)


def read_status(path: Path) -> StackStatus:
    """Return the running stack's status, or raise ``NoStackError`` when no
    file is there or a process it names has exited."""
    try:
        status = msgspec.json.decode(path.read_bytes(), type=StackStatus)
    except FileNotFoundError:
        message = f"no stack is running: there is no {path}"
        raise NoStackError(message) from None
    except msgspec.DecodeError as error:
        message = f"no stack is running: {path} is not a status file ({error})"
        raise NoStackError(message) from None

    exited = [
        f"{what} (pid {pid})"
        for what, pid in status.processes().items()
        if not process_alive(pid)
    ]
    if exited:
        message = (
            f"no stack is running: {path} names processes that have exited: "
            f"{', '.join(exited)}"
        )
        raise NoStackError(message)

    return status


def process_alive(pid: int) -> bool:
    """Tell whether a process runs (a zombie waiting to be reaped does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # It exists but belongs to another user, like PostgreSQL run as its
        # own system user.
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return True

    return fields[0] != "Z"


def without_password(url: str) -> str:
    """Return ``url`` with any password masked, for screens and files."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)

    return urlunsplit(parts._replace(netloc=netloc))


def describe(status: StackStatus) -> str:
    """Return the lines that tell a person where the stack answers."""
    width = max(len(service.name) for service in status.services)
    lines = [f"mastery stack (pid {status.pid}), data in {status.data_dir}"]
    for service in status.services:
        lines.append(f"  {service.name:<{width}}  {service.url}")
        lines.append(f"  {'':<{width}}  OpenAPI: {service.openapi_url}")
    lines.append(f"  PostgreSQL: {status.database_url}")
    lines.append(f"  NATS:       {status.nats_url}")

    return "\n".join(lines)
