"""`mastery up` as an operator runs it: a real stack in child processes,
reached over HTTP, stopped by a signal or by a service dying."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from mastery_deploy.status import StackStatus, process_alive, status_path

MASTERY = Path(sys.executable).parent / "mastery"
START_DEADLINE = 120.0
STOP_DEADLINE = 60.0


class RunningStack(msgspec.Struct, kw_only=True):
    """A `mastery up` process and where its output goes."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    environment: dict[str, str]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        """Return what the launcher printed for people."""
        return self.stdout.read_text()

    def logs(self) -> str:
        """Return every log line of the launcher and its services."""
        return self.stderr.read_text()

    def log_events(self) -> list[dict[str, object]]:
        """Return the JSON log lines, skipping what Python itself printed
        (warnings at import, for one)."""
        return [
            json.loads(line)
            for line in self.logs().splitlines()
            if line.startswith("{")
        ]


def wait_until(
    condition: Callable[[], bool], *, timeout: float, failure: Callable[[], str]
) -> None:
    """Check ``condition`` until it holds; fail with ``failure()`` at the
    deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(failure())
        time.sleep(0.1)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[RunningStack]:
    """Start `mastery up --no-demo` with no URLs configured, so it starts
    the embedded engines; make sure it is gone afterwards."""
    yield from running_stack(tmp_path, "--no-demo")


def running_stack(tmp_path: Path, *options: str) -> Iterator[RunningStack]:
    """Run `mastery up` with ``options`` in a data folder of the test's own,
    and stop it (or kill it) when the test is done."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MASTERY_")
    }
    environment.update(
        MASTERY_DATA_DIR=str(tmp_path / "stack"), MASTERY_LOG_FORMAT="json"
    )
    stdout, stderr = tmp_path / "up.out", tmp_path / "up.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [str(MASTERY), "up", *options],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    running = RunningStack(
        process=process,
        data_dir=tmp_path / "stack",
        environment=environment,
        stdout=stdout,
        stderr=stderr,
    )
    yield running

    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ready_status(stack: RunningStack) -> StackStatus:
    """Wait for the stack to record itself, then ask `mastery status --json`."""
    status_file = status_path(stack.data_dir)

    def recorded() -> bool:
        if stack.process.poll() is not None:
            pytest.fail(
                f"mastery up exited with {stack.process.returncode}:\n{stack.logs()}"
            )
        return status_file.exists()

    wait_until(
        recorded,
        timeout=START_DEADLINE,
        failure=lambda: f"no status file after {START_DEADLINE}s:\n{stack.logs()}",
    )
    answer = subprocess.run(
        [str(MASTERY), "status", "--json"],
        env=stack.environment,
        capture_output=True,
        check=True,
    )

    return msgspec.json.decode(answer.stdout, type=StackStatus)


def test_mastery_up_serves_every_service_and_stops_cleanly_on_sigint(
    stack: RunningStack,
) -> None:
    """Every service answers its probes and OpenAPI, a second `mastery up`
    on the same data is refused, and SIGINT then stops the services and both
    engines and removes the status file."""
    status = ready_status(stack)

    assert [service.name for service in status.services] == [
        "objectives",
        "grading",
        "reports",
    ]
    assert status.postgres_pid is not None
    assert status.nats_pid is not None
    for service in status.services:
        assert httpx.get(f"{service.url}/healthz").status_code == 200
        ready = httpx.get(f"{service.url}/readyz")
        assert ready.status_code == 200, ready.text
        openapi = httpx.get(service.openapi_url)
        assert openapi.status_code == 200
        assert openapi.json()["info"]["title"] == f"Mastery {service.name}"
        assert service.url in stack.output()
        assert service.openapi_url in stack.output()
    assert status.database_url in stack.output()
    assert status.nats_url in stack.output()

    second = subprocess.run(
        [str(MASTERY), "up", "--no-demo"],
        env=stack.environment,
        capture_output=True,
        text=True,
    )
    assert second.returncode == 1
    assert "a stack already runs on" in second.stderr
    assert status_path(stack.data_dir).exists()

    stack.process.send_signal(signal.SIGINT)

    assert stack.process.wait(timeout=STOP_DEADLINE) == 0
    processes = status.processes()
    wait_until(
        lambda: not any(process_alive(pid) for pid in processes.values()),
        timeout=10,
        failure=lambda: f"still running after the stop: {processes}",
    )
    assert not status_path(stack.data_dir).exists()
    events = [line["event"] for line in stack.log_events()]
    assert events.index("stack.stopping") < events.index("stack.stopped")


def test_a_service_that_dies_stops_the_whole_stack_with_a_failure(
    stack: RunningStack,
) -> None:
    """When a service is killed from outside, `mastery up` logs which one,
    stops the rest and both engines, and exits non-zero."""
    status = ready_status(stack)
    grading = next(service for service in status.services if service.name == "grading")

    os.kill(grading.pid, signal.SIGKILL)

    assert stack.process.wait(timeout=STOP_DEADLINE) == 1
    processes = status.processes()
    wait_until(
        lambda: not any(process_alive(pid) for pid in processes.values()),
        timeout=10,
        failure=lambda: f"still running after the failure: {processes}",
    )
    assert not status_path(stack.data_dir).exists()
    died = [
        (line["level"], line["service"], line["returncode"])
        for line in stack.log_events()
        if line["event"] == "stack.service_died"
    ]
    assert died == [("error", "grading", -signal.SIGKILL)]
